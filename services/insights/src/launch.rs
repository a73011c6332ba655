//! Launch early reads, without I/O: which launches are comparable, hour buckets since
//! launch, and the median and interquartile range of comparables at the same age.

use std::collections::BTreeMap;

use crate::query::Counts;

/// Fewest comparable launches a comparison is made with.
pub const MIN_COMPARABLES: usize = 3;

/// Most hours one early read covers (two weeks).
pub const MAX_HOURS: u32 = 14 * 24;

/// Hours read when the request does not say.
pub const DEFAULT_HOURS: u32 = 24;

const HOUR_MS: i64 = 3_600_000;

/// A catalog entry as far as launches are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The title.
    pub video_id: i64,
    /// `movie` or `series`.
    pub kind: String,
    /// Genre names.
    pub genres: Vec<String>,
    /// Launch time, ms since the Unix epoch.
    pub launch_at_ms: i64,
}

/// Whether `candidate` is comparable to `launch`: another title of the same kind,
/// sharing a genre, launched before it but within `lookback_ms`.
pub fn is_comparable(launch: &Launch, candidate: &Launch, lookback_ms: i64) -> bool {
    candidate.video_id != launch.video_id
        && candidate.kind == launch.kind
        && candidate.launch_at_ms < launch.launch_at_ms
        && candidate.launch_at_ms >= launch.launch_at_ms.saturating_sub(lookback_ms)
        && candidate.genres.iter().any(|g| launch.genres.contains(g))
}

/// Start of a title's age 0: its launch time rounded down to an epoch boundary, since
/// counts are kept per epoch.
pub fn age_zero_ms(launch_at_ms: i64, epoch_ms: i64) -> i64 {
    launch_at_ms.div_euclid(epoch_ms) * epoch_ms
}

/// Sums per-epoch counts into hours since `age_zero_ms`; hours outside `0..hours` are dropped.
pub fn hourly(epochs: &[(i64, Counts)], age_zero_ms: i64, hours: u32) -> BTreeMap<u32, Counts> {
    let mut by_hour = BTreeMap::new();
    for &(epoch_start_ms, counts) in epochs {
        let age = (epoch_start_ms - age_zero_ms).div_euclid(HOUR_MS);
        if let Ok(hour) = u32::try_from(age)
            && hour < hours
        {
            *by_hour.entry(hour).or_insert_with(Counts::default) += counts;
        }
    }
    by_hour
}

/// How many whole hours since `age_zero_ms` have been reached by `now_ms`, at most `hours`.
pub fn reached_hours(age_zero_ms: i64, now_ms: i64, hours: u32) -> u32 {
    let elapsed = (now_ms - age_zero_ms).max(0);
    // An hour that has started is shown: early reads matter most while they are partial.
    let started = elapsed.div_euclid(HOUR_MS) + i64::from(elapsed % HOUR_MS != 0);
    u32::try_from(started).unwrap_or(u32::MAX).min(hours)
}

/// Median and interquartile range of one metric over comparable launches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// 50th percentile.
    pub median: f64,
    /// 25th percentile.
    pub p25: f64,
    /// 75th percentile.
    pub p75: f64,
    /// How many comparables it is computed from.
    pub titles: usize,
}

/// The spread of `values`, or `None` with fewer than [`MIN_COMPARABLES`] values.
pub fn spread(mut values: Vec<f64>) -> Option<Spread> {
    if values.len() < MIN_COMPARABLES {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(Spread {
        median: percentile(&values, 0.5),
        p25: percentile(&values, 0.25),
        p75: percentile(&values, 0.75),
        titles: values.len(),
    })
}

/// Percentile `q` of sorted, non-empty `values` with linear interpolation between the
/// closest ranks (the common "type 7" definition).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let weight = position - lower as f64;
    sorted[lower] + (sorted[upper] - sorted[lower]) * weight
}

/// Comparable spreads at one age.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourComparison {
    /// Impressions of comparables at this age.
    pub impressions: Option<Spread>,
    /// Plays of comparables at this age.
    pub plays: Option<Spread>,
    /// Take rate of comparables at this age (those with impressions).
    pub take_rate: Option<Spread>,
}

/// Compares at one `hour` of age across `comparables` (each one's hourly counts and the
/// hours it has reached); a comparable that has not reached the hour is left out, one
/// that reached it with nothing counted counts as zero.
pub fn compare_hour(hour: u32, comparables: &[(BTreeMap<u32, Counts>, u32)]) -> HourComparison {
    let at_age: Vec<Counts> = comparables
        .iter()
        .filter(|(_, reached)| hour < *reached)
        .map(|(hours, _)| hours.get(&hour).copied().unwrap_or_default())
        .collect();
    HourComparison {
        impressions: spread(at_age.iter().map(|c| c.impressions as f64).collect()),
        plays: spread(at_age.iter().map(|c| c.plays as f64).collect()),
        take_rate: spread(at_age.iter().filter_map(|c| c.take_rate()).collect()),
    }
}

/// The note shown when there are too few comparables, or `None`.
pub fn too_few_note(comparables: usize) -> Option<String> {
    (comparables < MIN_COMPARABLES).then(|| {
        format!(
            "too few comparable launches: {comparables} found (same kind, a shared genre, launched within the lookback), at least {MIN_COMPARABLES} are needed"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(video_id: i64, kind: &str, genres: &[&str], launch_at_ms: i64) -> Launch {
        Launch {
            video_id,
            kind: kind.into(),
            genres: genres.iter().map(|g| g.to_string()).collect(),
            launch_at_ms,
        }
    }

    #[test]
    fn comparables_share_kind_and_genre_within_lookback() {
        let me = launch(1, "movie", &["drama", "crime"], 1_000_000);
        assert!(is_comparable(&me, &launch(2, "movie", &["crime"], 500_000), 600_000));
        assert!(!is_comparable(&me, &launch(3, "series", &["crime"], 500_000), 600_000));
        assert!(!is_comparable(&me, &launch(4, "movie", &["comedy"], 500_000), 600_000));
        assert!(!is_comparable(&me, &launch(5, "movie", &["drama"], 300_000), 600_000));
        assert!(!is_comparable(&me, &launch(6, "movie", &["drama"], 1_000_001), 600_000));
        assert!(!is_comparable(&me, &me, 600_000));
    }

    #[test]
    fn percentiles_interpolate() {
        let s = spread(vec![4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.p25, s.median, s.p75, s.titles), (1.75, 2.5, 3.25, 4));
        assert_eq!(spread(vec![1.0, 2.0]), None);
    }

    #[test]
    fn hours_since_launch() {
        let epoch = 1_800_000;
        let zero = age_zero_ms(5 * epoch + 10, epoch);
        assert_eq!(zero, 5 * epoch);
        let c = |impressions, plays| Counts { impressions, plays };
        let epochs =
            [(zero - epoch, c(9, 9)), (zero, c(1, 0)), (zero + epoch, c(2, 1)), (zero + 2 * epoch, c(4, 2))];
        let by_hour = hourly(&epochs, zero, 24);
        assert_eq!(by_hour.get(&0), Some(&c(3, 1)));
        assert_eq!(by_hour.get(&1), Some(&c(4, 2)));
        assert_eq!(by_hour.len(), 2);
        assert_eq!(reached_hours(zero, zero + 90 * 60_000, 24), 2);
        assert_eq!(reached_hours(zero, zero + 100 * HOUR_MS, 24), 24);
        assert_eq!(reached_hours(zero, zero - 1, 24), 0);
    }

    #[test]
    fn hour_comparison_skips_comparables_too_young() {
        let c = |impressions, plays| Counts { impressions, plays };
        let comparables = vec![
            (BTreeMap::from([(0, c(10, 1)), (1, c(10, 2))]), 2),
            (BTreeMap::from([(0, c(10, 3))]), 2),
            (BTreeMap::from([(0, c(10, 5)), (1, c(20, 2))]), 2),
            (BTreeMap::from([(0, c(10, 4))]), 1),
        ];
        let zero = compare_hour(0, &comparables);
        assert_eq!(zero.take_rate.unwrap().titles, 4);
        assert!((zero.take_rate.unwrap().median - 0.35).abs() < 1e-12);
        let one = compare_hour(1, &comparables);
        assert_eq!(one.impressions.unwrap().median, 10.0);
        // The second comparable had nothing at hour 1: no take rate, so too few.
        assert_eq!(one.take_rate, None);
        assert!(too_few_note(2).is_some());
        assert!(too_few_note(3).is_none());
    }
}

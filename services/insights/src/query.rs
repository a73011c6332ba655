//! Query planning and validation, without I/O.
//!
//! Request strings never reach SQL text: dimensions, granularities and metrics are
//! closed enums parsed from an allowlist, filter values are only ever bound, and every
//! problem is reported as an [`Invalid`] naming the parameter at fault.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// A request parameter that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The parameter (HTTP query name or gRPC field).
    pub param: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Invalid {
    /// A problem with `param`.
    pub fn new(param: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { param: param.into(), reason: reason.into() }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.param, self.reason)
    }
}

/// A cell dimension counts can be grouped and filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// ISO 3166 alpha-2 country.
    Country,
    /// Device class.
    Device,
    /// Where on the page the impression was shown.
    Canvas,
    /// The region the impression was logged in (multi-region deployments; docs/regions.md).
    Region,
}

impl Dimension {
    /// Every dimension, in canonical order.
    pub const ALL: [Dimension; 4] =
        [Dimension::Country, Dimension::Device, Dimension::Canvas, Dimension::Region];

    /// The name used in requests, responses and as the column name.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Country => "country",
            Dimension::Device => "device",
            Dimension::Canvas => "canvas",
            Dimension::Region => "region",
        }
    }

    /// Parses a dimension name from the allowlist.
    pub fn parse(param: &str, value: &str) -> Result<Self, Invalid> {
        Self::ALL.into_iter().find(|d| d.name() == value.trim()).ok_or_else(|| {
            Invalid::new(
                param,
                format!("unknown dimension {value:?}; expected one of country, device, canvas, region"),
            )
        })
    }
}

/// The width of the buckets of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One bucket per attribution epoch.
    Epoch,
    /// One per UTC hour.
    Hour,
    /// One per UTC day.
    Day,
}

impl Granularity {
    /// The name used in requests and responses.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Epoch => "epoch",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    /// Parses `epoch`, `hour` or `day`; empty means `epoch`.
    pub fn parse(param: &str, value: &str) -> Result<Self, Invalid> {
        match value.trim() {
            "" | "epoch" => Ok(Granularity::Epoch),
            "hour" => Ok(Granularity::Hour),
            "day" => Ok(Granularity::Day),
            other => Err(Invalid::new(
                param,
                format!("unknown granularity {other:?}; expected epoch, hour or day"),
            )),
        }
    }

    /// Bucket width in ms; an epoch bucket is the epoch length.
    pub fn bucket_ms(self, epoch_ms: i64) -> i64 {
        match self {
            Granularity::Epoch => epoch_ms,
            Granularity::Hour => 3_600_000,
            Granularity::Day => 86_400_000,
        }
    }
}

/// What top titles are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Attributed plays.
    Plays,
    /// Impressions.
    Impressions,
    /// Plays per impression.
    TakeRate,
}

impl Metric {
    /// The name used in requests and responses.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Plays => "plays",
            Metric::Impressions => "impressions",
            Metric::TakeRate => "take_rate",
        }
    }

    /// Parses `plays`, `impressions` or `take_rate`; empty means `plays`.
    pub fn parse(param: &str, value: &str) -> Result<Self, Invalid> {
        match value.trim() {
            "" | "plays" => Ok(Metric::Plays),
            "impressions" => Ok(Metric::Impressions),
            "take_rate" => Ok(Metric::TakeRate),
            other => Err(Invalid::new(
                param,
                format!("unknown metric {other:?}; expected plays, impressions or take_rate"),
            )),
        }
    }
}

/// Allowed values per dimension; an empty list does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    /// Countries to keep.
    pub country: Vec<String>,
    /// Devices to keep.
    pub device: Vec<String>,
    /// Canvases to keep.
    pub canvas: Vec<String>,
    /// Regions to keep.
    pub region: Vec<String>,
}

impl Filters {
    /// The values for `dimension`.
    pub fn values(&self, dimension: Dimension) -> &[String] {
        match dimension {
            Dimension::Country => &self.country,
            Dimension::Device => &self.device,
            Dimension::Canvas => &self.canvas,
            Dimension::Region => &self.region,
        }
    }

    /// Sets the values for `dimension` from a comma-separated list (or repeated values).
    pub fn add(&mut self, dimension: Dimension, values: &str) {
        let list = match dimension {
            Dimension::Country => &mut self.country,
            Dimension::Device => &mut self.device,
            Dimension::Canvas => &mut self.canvas,
            Dimension::Region => &mut self.region,
        };
        list.extend(split_list(values).map(str::to_string));
        list.sort();
        list.dedup();
    }
}

/// The non-empty trimmed items of a comma-separated list.
pub fn split_list(values: &str) -> impl Iterator<Item = &str> {
    values.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// Parses a comma-separated `group_by` into canonical order without duplicates.
pub fn parse_group_by<'a>(
    param: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Dimension>, Invalid> {
    let mut dims = Vec::new();
    for value in values {
        if value.trim().is_empty() {
            continue;
        }
        for item in value.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(Invalid::new(param, format!("{value:?} has an empty item between commas")));
            }
            dims.push(Dimension::parse(param, item)?);
        }
    }
    dims.sort();
    dims.dedup();
    Ok(dims)
}

/// Parses an RFC 3339 time into ms since the Unix epoch.
pub fn parse_time(param: &str, value: &str) -> Result<i64, Invalid> {
    DateTime::parse_from_rfc3339(value.trim()).map(|t| t.timestamp_millis()).map_err(|e| {
        Invalid::new(param, format!("{value:?} is not an RFC 3339 time such as 2026-11-22T10:00:00Z ({e})"))
    })
}

/// Formats ms since the Unix epoch as RFC 3339 UTC (`2026-11-22T10:00:00Z`).
pub fn format_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// The limits every time range is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeRules {
    /// Attribution epoch length in ms; bounds must be multiples of it.
    pub epoch_ms: i64,
    /// Longest allowed range in ms.
    pub max_range_ms: i64,
}

impl RangeRules {
    /// Rules from the configured epoch length and maximum range.
    pub fn new(epoch_len: Duration, max_range: Duration) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1);
        Self { epoch_ms: ms(epoch_len), max_range_ms: ms(max_range) }
    }
}

/// A validated half-open range `[from_ms, to_ms)` of epoch-aligned times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// Inclusive start.
    pub from_ms: i64,
    /// Exclusive end.
    pub to_ms: i64,
}

impl TimeRange {
    /// Checks alignment, order and length; `from`/`to` name the parameters in errors.
    pub fn new(
        (from_param, from_ms): (&str, i64),
        (to_param, to_ms): (&str, i64),
        rules: RangeRules,
    ) -> Result<Self, Invalid> {
        for (param, ms) in [(from_param, from_ms), (to_param, to_ms)] {
            if ms < 0 {
                return Err(Invalid::new(param, "must not be before 1970-01-01T00:00:00Z"));
            }
            if ms % rules.epoch_ms != 0 {
                let epoch = humanize_ms(rules.epoch_ms);
                let below = format_time(ms - ms % rules.epoch_ms);
                return Err(Invalid::new(
                    param,
                    format!(
                        "{} is not aligned to the {epoch} attribution epoch; use an epoch boundary such as {below}",
                        format_time(ms)
                    ),
                ));
            }
        }
        if from_ms >= to_ms {
            return Err(Invalid::new(
                from_param,
                format!("{} is not before {to_param} {}", format_time(from_ms), format_time(to_ms)),
            ));
        }
        if to_ms - from_ms > rules.max_range_ms {
            return Err(Invalid::new(
                to_param,
                format!(
                    "the range spans {}, more than the maximum of {}",
                    humanize_ms(to_ms - from_ms),
                    humanize_ms(rules.max_range_ms)
                ),
            ));
        }
        Ok(Self { from_ms, to_ms })
    }
}

/// `30m`, `2h`, `90d`-style rendering of a duration in ms: days, hours, minutes and
/// seconds only (humantime's months are 30.44 days, so 90 days would print as
/// `2months 29days 2h 52m 48s`).
fn humanize_ms(ms: i64) -> String {
    let mut rest = ms.max(0) / 1000;
    let mut parts = Vec::new();
    for (unit, seconds) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= seconds {
            parts.push(format!("{}{unit}", rest / seconds));
            rest %= seconds;
        }
    }
    if parts.is_empty() { "0s".to_owned() } else { parts.join(" ") }
}

/// A validated title performance query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PerformanceQuery {
    /// The title.
    pub video_id: i64,
    /// The impression-epoch range.
    pub range: TimeRange,
    /// Bucket width.
    pub granularity: Granularity,
    /// Dimensions in the group of each series point, in canonical order.
    pub group_by: Vec<Dimension>,
    /// Cell filters.
    pub filters: Filters,
}

/// A validated top titles query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopQuery {
    /// The impression-epoch range.
    pub range: TimeRange,
    /// Ranking metric.
    pub metric: Metric,
    /// Most titles returned.
    pub limit: usize,
    /// Titles with fewer impressions are not ranked.
    pub min_impressions: u64,
    /// Cell filters.
    pub filters: Filters,
}

/// Most titles one top query may return.
pub const MAX_TOP_LIMIT: usize = 1000;

/// Validates a top titles `limit`; 0 or absent means 10.
pub fn top_limit(param: &str, limit: u64) -> Result<usize, Invalid> {
    match limit {
        0 => Ok(10),
        n if n as usize <= MAX_TOP_LIMIT => Ok(n as usize),
        n => Err(Invalid::new(param, format!("{n} is more than the maximum of {MAX_TOP_LIMIT}"))),
    }
}

/// Validates a title search `limit`; 0 or absent means 20, at most 100.
pub fn search_limit(param: &str, limit: u64) -> Result<usize, Invalid> {
    match limit {
        0 => Ok(20),
        n if n <= 100 => Ok(n as usize),
        n => Err(Invalid::new(param, format!("{n} is more than the maximum of 100"))),
    }
}

/// Impressions and plays, with the take rate derived from them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Impressions.
    pub impressions: u64,
    /// Attributed plays.
    pub plays: u64,
}

impl Counts {
    /// Plays per impression; `None` without impressions.
    pub fn take_rate(self) -> Option<f64> {
        (self.impressions > 0).then(|| self.plays as f64 / self.impressions as f64)
    }

    /// Whether anything was counted.
    pub fn is_empty(self) -> bool {
        self.impressions == 0 && self.plays == 0
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.impressions += other.impressions;
        self.plays += other.plays;
    }
}

/// One grouped row as the database returns it: the dimensions not grouped by are empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupedRow {
    /// Bucket start.
    pub start_ms: i64,
    /// Country, device, canvas and region (empty when not grouped).
    pub dims: [String; 4],
    /// The counts.
    pub counts: Counts,
}

/// One point of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// Bucket start.
    pub start_ms: i64,
    /// Exactly the `group_by` dimensions and their values.
    pub group: Group,
    /// The counts.
    pub counts: Counts,
}

/// The grouped dimensions of a point and their values, by dimension name.
///
/// A short list rather than a map: a result cache holds hundreds of thousands of points,
/// and a `BTreeMap` allocates a node of eleven slots for one or two entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group(Vec<(&'static str, String)>);

impl Group {
    /// The value of dimension `name`, if grouped by.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Grouped dimensions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the point is not grouped at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (name, value) pairs, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(n, v)| (*n, v.as_str()))
    }
}

impl FromIterator<(&'static str, String)> for Group {
    fn from_iter<I: IntoIterator<Item = (&'static str, String)>>(pairs: I) -> Self {
        let mut pairs: Vec<_> = pairs.into_iter().collect();
        // By name, as a JSON object's keys have always been written.
        pairs.sort_unstable_by_key(|(name, _)| *name);
        pairs.shrink_to_fit();
        Group(pairs)
    }
}

impl serde::Serialize for Group {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Turns grouped rows into the response series: merges rows of the same bucket and
/// group, drops empty ones, and sorts by start then group (byte order of the values,
/// the same on every backend whatever its collation).
///
/// Sorted and merged in place rather than through a map keyed by copies of the values:
/// a busy title's week has thousands of points, and this runs for every one.
pub fn build_series(mut rows: Vec<GroupedRow>, group_by: &[Dimension]) -> (Vec<SeriesPoint>, Counts) {
    // A dimension not grouped by is empty in every row, so ordering by all four in
    // canonical order is ordering by the grouped values in `group_by`'s (canonical) order.
    rows.sort_unstable_by(|a, b| (a.start_ms, &a.dims).cmp(&(b.start_ms, &b.dims)));
    let mut totals = Counts::default();
    let mut series: Vec<SeriesPoint> = Vec::with_capacity(rows.len());
    let mut last: Option<(i64, [String; 4])> = None;
    for row in rows {
        totals += row.counts;
        let same = last.as_ref().is_some_and(|(start, dims)| *start == row.start_ms && *dims == row.dims);
        if same {
            if let Some(point) = series.last_mut() {
                point.counts += row.counts;
            }
            continue;
        }
        let group = group_by.iter().map(|d| (d.name(), row.dims[*d as usize].clone())).collect();
        series.push(SeriesPoint { start_ms: row.start_ms, group, counts: row.counts });
        last = Some((row.start_ms, row.dims));
    }
    series.retain(|point| !point.counts.is_empty());
    (series, totals)
}

/// A title's counts over a range, before ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TitleCounts {
    /// The title.
    pub video_id: i64,
    /// Its counts.
    pub counts: Counts,
}

/// Ranks titles by `metric` (descending, ties by ascending video id), keeping those with
/// at least `min_impressions` impressions (and, for take rate, at least one).
pub fn rank(
    mut titles: Vec<TitleCounts>,
    metric: Metric,
    min_impressions: u64,
    limit: usize,
) -> Vec<TitleCounts> {
    let floor = match metric {
        Metric::TakeRate => min_impressions.max(1),
        Metric::Plays | Metric::Impressions => min_impressions,
    };
    titles.retain(|t| t.counts.impressions >= floor && !t.counts.is_empty());
    let key = |t: &TitleCounts| match metric {
        Metric::Plays => t.counts.plays as f64,
        Metric::Impressions => t.counts.impressions as f64,
        Metric::TakeRate => t.counts.take_rate().unwrap_or(0.0),
    };
    titles.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.video_id.cmp(&b.video_id)));
    titles.truncate(limit);
    titles
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: i64 = 30 * 60 * 1000;

    fn rules() -> RangeRules {
        RangeRules { epoch_ms: EPOCH, max_range_ms: 7 * 86_400_000 }
    }

    fn row(start_ms: i64, dims: [&str; 4], impressions: u64, plays: u64) -> GroupedRow {
        GroupedRow { start_ms, dims: dims.map(str::to_string), counts: Counts { impressions, plays } }
    }

    #[test]
    fn dimensions_are_an_allowlist() {
        assert_eq!(
            parse_group_by("group_by", ["device, country", "country"]).unwrap(),
            vec![Dimension::Country, Dimension::Device]
        );
        assert_eq!(
            parse_group_by("group_by", ["region,country"]).unwrap(),
            vec![Dimension::Country, Dimension::Region]
        );
        let err = parse_group_by("group_by", ["country,continent"]).unwrap_err();
        assert_eq!(err.param, "group_by");
        assert!(err.reason.contains("\"continent\""), "{}", err.reason);
    }

    #[test]
    fn times_parse_and_format() {
        let ms = parse_time("from", "2026-11-22T10:00:00Z").unwrap();
        assert_eq!(format_time(ms), "2026-11-22T10:00:00Z");
        assert_eq!(parse_time("from", "2026-11-22T11:00:00+01:00").unwrap(), ms);
        assert_eq!(parse_time("from", "yesterday").unwrap_err().param, "from");
    }

    #[test]
    fn ranges_must_be_aligned_ordered_and_bounded() {
        let at = |s: &str| parse_time("t", s).unwrap();
        let ok =
            TimeRange::new(("from", at("2026-11-22T10:00:00Z")), ("to", at("2026-11-22T12:30:00Z")), rules());
        assert!(ok.is_ok());
        let misaligned =
            TimeRange::new(("from", at("2026-11-22T10:10:00Z")), ("to", at("2026-11-22T12:00:00Z")), rules())
                .unwrap_err();
        assert_eq!(misaligned.param, "from");
        assert!(misaligned.reason.contains("aligned to the 30m attribution epoch"), "{}", misaligned.reason);
        assert!(misaligned.reason.contains("2026-11-22T10:00:00Z"), "{}", misaligned.reason);
        let reversed =
            TimeRange::new(("from", at("2026-11-22T12:00:00Z")), ("to", at("2026-11-22T10:00:00Z")), rules())
                .unwrap_err();
        assert_eq!(reversed.param, "from");
        let long =
            TimeRange::new(("from", at("2026-11-01T00:00:00Z")), ("to", at("2026-11-22T00:00:00Z")), rules())
                .unwrap_err();
        assert_eq!(long.param, "to");
        assert!(long.reason.contains("maximum of 7d"), "{}", long.reason);
    }

    #[test]
    fn series_merges_drops_empty_and_sorts() {
        let group_by = [Dimension::Country];
        let rows = vec![
            row(EPOCH, ["US", "", "", ""], 2, 1),
            row(0, ["US", "", "", ""], 1, 0),
            row(0, ["CA", "", "", ""], 3, 1),
            row(0, ["BR", "", "", ""], 0, 0),
            row(EPOCH, ["US", "", "", ""], 1, 1),
        ];
        let (series, totals) = build_series(rows, &group_by);
        assert_eq!(totals, Counts { impressions: 7, plays: 3 });
        let flat: Vec<(i64, &str, u64, u64)> = series
            .iter()
            .map(|p| (p.start_ms, p.group.get("country").unwrap(), p.counts.impressions, p.counts.plays))
            .collect();
        assert_eq!(flat, vec![(0, "CA", 3, 1), (0, "US", 1, 0), (EPOCH, "US", 3, 2)]);
        assert_eq!(series[0].group.len(), 1);
    }

    #[test]
    fn take_rate_is_null_without_impressions() {
        assert_eq!(Counts { impressions: 0, plays: 2 }.take_rate(), None);
        assert_eq!(Counts { impressions: 4, plays: 1 }.take_rate(), Some(0.25));
    }

    #[test]
    fn ranking_honours_min_impressions_and_breaks_ties_by_id() {
        let t =
            |video_id, impressions, plays| TitleCounts { video_id, counts: Counts { impressions, plays } };
        let titles = vec![t(1, 100, 10), t(2, 2, 2), t(3, 50, 10), t(4, 0, 3)];
        let by_rate: Vec<i64> =
            rank(titles.clone(), Metric::TakeRate, 10, 10).iter().map(|t| t.video_id).collect();
        assert_eq!(by_rate, vec![3, 1]);
        let by_plays: Vec<i64> =
            rank(titles.clone(), Metric::Plays, 0, 3).iter().map(|t| t.video_id).collect();
        assert_eq!(by_plays, vec![1, 3, 4]);
        let by_impressions: Vec<i64> =
            rank(titles, Metric::Impressions, 0, 10).iter().map(|t| t.video_id).collect();
        assert_eq!(by_impressions, vec![1, 3, 2, 4]);
    }

    #[test]
    fn limits() {
        assert_eq!(top_limit("limit", 0), Ok(10));
        assert_eq!(top_limit("limit", 1000), Ok(1000));
        assert_eq!(top_limit("limit", 1001).unwrap_err().param, "limit");
    }

    #[test]
    fn durations_print_in_days_not_months() {
        assert_eq!(super::humanize_ms(90 * 86_400_000), "90d");
        assert_eq!(super::humanize_ms(30 * 60_000), "30m");
        assert_eq!(super::humanize_ms(26 * 3_600_000 + 1_000), "1d 2h 1s");
    }

    #[test]
    fn group_by_refuses_empty_items() {
        let err = parse_group_by("group_by", ["country,,"]).unwrap_err();
        assert!(err.reason.contains("empty item"), "{}", err.reason);
        assert_eq!(parse_group_by("group_by", [""]).unwrap(), vec![]);
    }
}

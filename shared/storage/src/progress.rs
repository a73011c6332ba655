//! Stream progress as `partition_progress` stores it, and the one definition of
//! `complete_until` that attribution's `GetProgress` and insights both report.
//!
//! Attribution keeps one row per consumer group, topic and partition, holding that
//! topic partition's own watermark (the largest event time read from it). Each topic is
//! judged against its own watermark (DESIGN §3), so a count can no longer change once
//! *every* topic partition's watermark is past it by the allowed lateness.

use crate::Database;

/// Stored as the watermark of a topic partition that has shown no event yet.
pub const NO_WATERMARK: i64 = i64::MIN;

/// The time before which counts can no longer change, from the watermark of every
/// topic partition (`None`: it has shown no event yet): the smallest minus
/// `allowed_lateness_ms`.
///
/// `None` when there is no progress at all, or some topic partition has no watermark
/// yet: an event of any time could still arrive there and count.
pub fn complete_until_ms(
    watermarks: impl IntoIterator<Item = Option<i64>>,
    allowed_lateness_ms: i64,
) -> Option<i64> {
    let mut min: Option<i64> = None;
    for wm in watermarks {
        let wm = wm?;
        min = Some(min.map_or(wm, |m| m.min(wm)));
    }
    min.map(|wm| wm.saturating_sub(allowed_lateness_ms))
}

/// [`complete_until_ms`] over the progress stored for `consumer_group`.
pub async fn complete_until(
    database: &Database,
    consumer_group: &str,
    allowed_lateness_ms: i64,
) -> sqlx::Result<Option<i64>> {
    const PG: &str = "SELECT watermark_ms FROM partition_progress WHERE consumer_group = $1";
    const SQLITE: &str = "SELECT watermark_ms FROM partition_progress WHERE consumer_group = ?1";
    let watermarks: Vec<i64> = match database {
        Database::Postgres(pool) => sqlx::query_scalar(PG).bind(consumer_group).fetch_all(pool).await?,
        Database::Sqlite(pool) => sqlx::query_scalar(SQLITE).bind(consumer_group).fetch_all(pool).await?,
    };
    let watermarks = watermarks.into_iter().map(|wm| (wm != NO_WATERMARK).then_some(wm));
    Ok(complete_until_ms(watermarks, allowed_lateness_ms))
}

#[cfg(test)]
mod tests {
    use super::complete_until_ms;

    #[test]
    fn the_smallest_watermark_minus_the_lateness() {
        assert_eq!(complete_until_ms([Some(10_000), Some(7_000), Some(9_000)], 1_000), Some(6_000));
    }

    #[test]
    fn nothing_is_complete_without_progress_or_while_a_topic_partition_shows_nothing() {
        assert_eq!(complete_until_ms([], 1_000), None);
        assert_eq!(complete_until_ms([Some(10_000), None], 1_000), None);
    }
}

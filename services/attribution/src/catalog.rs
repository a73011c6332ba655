//! The video catalog as attribution sees it: an in-memory copy of `videos`, refreshed
//! in the background, that enriches outcomes with the title's kind, genres and launch.
//!
//! Lookups happen on the worker's hot path for every outcome, so they read a snapshot
//! and never touch the database; a title added to the catalog shows up within one
//! refresh interval. A failed refresh keeps the previous snapshot.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nearline_proto::events::v1 as pb;
use nearline_storage::Database;
use tokio_util::sync::CancellationToken;

use crate::metrics as m;

/// What attribution knows about one title.
pub type TitleInfo = pb::TitleInfo;

/// A shared, refreshable snapshot of the catalog.
#[derive(Debug, Clone, Default)]
pub struct CatalogCache {
    titles: Arc<RwLock<Arc<HashMap<i64, TitleInfo>>>>,
}

type Row = (i64, String, String, Option<i64>);

impl CatalogCache {
    /// An empty cache (every lookup misses until the first refresh).
    pub fn empty() -> Self {
        Self::default()
    }

    /// The catalog's facts about `video_id`, when it has the title.
    pub fn get(&self, video_id: i64) -> Option<TitleInfo> {
        let titles = self.titles.read().expect("catalog lock").clone();
        let found = titles.get(&video_id).cloned();
        m::catalog_lookup(found.is_some());
        found
    }

    /// Replaces the snapshot with the `videos` table as it is now.
    pub async fn refresh(&self, database: &Database) -> Result<usize, sqlx::Error> {
        const QUERY: &str = "SELECT video_id, kind, genres, launch_at_ms FROM videos";
        let rows: Vec<Row> = match database {
            Database::Postgres(pool) => sqlx::query_as(QUERY).fetch_all(pool).await?,
            Database::Sqlite(pool) => sqlx::query_as(QUERY).fetch_all(pool).await?,
        };
        let titles: HashMap<i64, TitleInfo> = rows
            .into_iter()
            .map(|(video_id, kind, genres, launch_at_ms)| {
                // Ingest writes `genres` as a JSON array; anything else reads as none.
                let genres = serde_json::from_str(&genres).unwrap_or_default();
                (video_id, TitleInfo { kind, genres, launch_at_ms })
            })
            .collect();
        let count = titles.len();
        *self.titles.write().expect("catalog lock") = Arc::new(titles);
        m::catalog_refreshed(count);
        Ok(count)
    }

    /// Refreshes every `interval` until `shutdown`, logging (not failing on) errors:
    /// enrichment is best effort and must not stop the counts.
    pub async fn keep_fresh(self, database: Database, interval: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.refresh(&database).await {
                Ok(count) => tracing::debug!(count, "video catalog refreshed"),
                Err(error) => {
                    m::catalog_refresh_failed();
                    tracing::warn!(%error, "refreshing the video catalog failed; keeping the previous copy");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refresh_picks_up_new_and_changed_titles() {
        let pool = nearline_storage::connect_sqlite(":memory:").await.expect("sqlite");
        let database = Database::Sqlite(pool.clone());
        database.migrate().await.expect("migrate");
        let catalog = CatalogCache::empty();
        assert_eq!(catalog.refresh(&database).await.expect("refresh"), 0);
        assert_eq!(catalog.get(1), None);

        sqlx::query("INSERT INTO videos (video_id, title, kind, genres, launch_at_ms) VALUES (1, 'A', 'movie', '[\"comedy\"]', 5), (2, 'B', 'series', 'not json', NULL)")
            .execute(&pool)
            .await
            .expect("insert");
        // Lookups read the snapshot: nothing changes until the next refresh.
        assert_eq!(catalog.get(1), None);
        assert_eq!(catalog.refresh(&database).await.expect("refresh"), 2);
        assert_eq!(
            catalog.get(1),
            Some(TitleInfo { kind: "movie".into(), genres: vec!["comedy".into()], launch_at_ms: Some(5) })
        );
        assert_eq!(catalog.get(2).map(|t| t.genres), Some(vec![]), "unreadable genres read as none");

        sqlx::query("UPDATE videos SET genres = '[\"drama\"]' WHERE video_id = 1")
            .execute(&pool)
            .await
            .expect("update");
        catalog.refresh(&database).await.expect("refresh");
        assert_eq!(catalog.get(1).map(|t| t.genres), Some(vec!["drama".to_string()]));
    }
}

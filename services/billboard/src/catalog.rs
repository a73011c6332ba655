//! The titles billboard may show: the `videos` catalog with each title's artworks
//! (owned by ingest, `PUT /v1/videos/{id}`) and the billboard pool (owned by billboard),
//! read into an immutable snapshot that is reloaded every `billboard.catalog_refresh`.

use std::collections::HashMap;
use std::sync::Arc;

use nearline_storage::Database;

use crate::error::{ApiError, FieldError};
use crate::policy::{Arm, TitleFacts};

/// Most candidates of one request, and titles of the pool.
pub const MAX_CANDIDATES: usize = 256;

/// One title as billboard sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Title {
    /// Kind and genres, for cold-start priors.
    pub facts: TitleFacts,
    /// Its artworks, in the catalog's order (the sticky draw needs a stable order).
    pub artworks: Vec<Arc<str>>,
}

/// A snapshot of the catalog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// Every title of `videos`, with its artworks.
    pub titles: HashMap<i64, Title>,
    /// The billboard pool, in order.
    pub pool: Vec<i64>,
}

impl Catalog {
    /// The facts of every title, for the model.
    pub fn facts(&self) -> HashMap<i64, TitleFacts> {
        self.titles.iter().map(|(id, t)| (*id, t.facts.clone())).collect()
    }

    /// The (title, artwork) pairs of `video_ids`, adjacent per title, with every problem
    /// named by `field[i]`.
    pub fn arms(&self, field: &str, video_ids: &[i64]) -> Result<Vec<Arm>, ApiError> {
        let mut problems = Vec::new();
        let mut arms = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, id) in video_ids.iter().enumerate() {
            let at = format!("{field}[{i}]");
            if !seen.insert(*id) {
                problems.push(FieldError::new(at, format!("title {id} is listed twice")));
                continue;
            }
            match self.titles.get(id) {
                None => problems.push(FieldError::new(at, format!("title {id} is not in the catalog"))),
                Some(t) if t.artworks.is_empty() => problems.push(FieldError::new(
                    at,
                    format!(
                        "title {id} has no artworks (give it \"artworks\" with PUT /v1/videos/{id} on ingest)"
                    ),
                )),
                Some(t) => {
                    arms.extend(t.artworks.iter().map(|a| Arm { video_id: *id, artwork_id: a.clone() }))
                }
            }
        }
        if problems.is_empty() { Ok(arms) } else { Err(ApiError::Invalid(problems)) }
    }

    /// Reads the whole catalog.
    pub async fn load(database: &Database) -> Result<Self, sqlx::Error> {
        let videos: Vec<(i64, String, String, String)> = crate::store::fetch_all!(
            database,
            (i64, String, String, String),
            "SELECT video_id, kind, genres, artworks FROM videos"
        )?;
        let pool: Vec<(i64,)> = crate::store::fetch_all!(
            database,
            (i64,),
            "SELECT video_id FROM billboard_pool ORDER BY position"
        )?;
        let titles: HashMap<i64, Title> = videos
            .into_iter()
            .map(|(id, kind, genres, artworks)| {
                // Ingest writes both columns as JSON arrays; anything else reads as none.
                let genres = serde_json::from_str(&genres).unwrap_or_default();
                let artworks: Vec<String> = serde_json::from_str(&artworks).unwrap_or_default();
                let artworks = artworks.into_iter().map(Arc::from).collect();
                (id, Title { facts: TitleFacts { kind: Some(kind), genres, early_read: None }, artworks })
            })
            .collect();
        Ok(Self { titles, pool: pool.into_iter().map(|(id,)| id).collect() })
    }
}

/// Replaces the pool; every title must be in `catalog` with artworks.
pub async fn put_pool(database: &Database, catalog: &Catalog, video_ids: &[i64]) -> Result<(), ApiError> {
    if video_ids.is_empty() || video_ids.len() > MAX_CANDIDATES {
        return Err(ApiError::field(
            "video_ids",
            format!("must hold 1..={MAX_CANDIDATES} titles, got {}", video_ids.len()),
        ));
    }
    catalog.arms("video_ids", video_ids)?;
    crate::store::in_transaction!(database, tx, {
        sqlx::query("DELETE FROM billboard_pool").execute(&mut *tx).await?;
        for (position, id) in video_ids.iter().enumerate() {
            sqlx::query("INSERT INTO billboard_pool (video_id, position) VALUES ($1, $2)")
                .bind(id)
                .bind(position as i32)
                .execute(&mut *tx)
                .await?;
        }
        Ok::<(), sqlx::Error>(())
    })
    .map_err(ApiError::Database)
}

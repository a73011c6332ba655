//! The titles billboard may show: the `videos` catalog (owned by ingest) with each
//! title's artworks and the billboard pool (owned by billboard), read into an immutable
//! snapshot that is reloaded every `billboard.catalog_refresh`.

use std::collections::HashMap;
use std::sync::Arc;

use nearline_storage::Database;

use crate::error::{ApiError, FieldError};
use crate::policy::{Arm, TitleFacts};

/// Most artworks of one title.
pub const MAX_ARTWORKS: usize = 64;
/// Most candidates of one request, and titles of the pool.
pub const MAX_CANDIDATES: usize = 256;

/// One title as billboard sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Title {
    /// Kind and genres, for cold-start priors.
    pub facts: TitleFacts,
    /// Its artworks, sorted by id (the sticky draw needs a stable order).
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
                    format!("title {id} has no artworks (PUT /v1/billboard/artworks/{id})"),
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
        let videos: Vec<(i64, String, String)> = crate::store::fetch_all!(
            database,
            (i64, String, String),
            "SELECT video_id, kind, genres FROM videos"
        )?;
        let artworks: Vec<(i64, String)> = crate::store::fetch_all!(
            database,
            (i64, String),
            "SELECT video_id, artwork_id FROM billboard_artworks ORDER BY video_id, artwork_id"
        )?;
        let pool: Vec<(i64,)> = crate::store::fetch_all!(
            database,
            (i64,),
            "SELECT video_id FROM billboard_pool ORDER BY position"
        )?;
        let mut titles: HashMap<i64, Title> = videos
            .into_iter()
            .map(|(id, kind, genres)| {
                let genres = serde_json::from_str(&genres).unwrap_or_default();
                (id, Title { facts: TitleFacts { kind: Some(kind), genres }, artworks: Vec::new() })
            })
            .collect();
        for (id, artwork) in artworks {
            // Artworks of a title that left the catalog are not shown.
            if let Some(t) = titles.get_mut(&id) {
                t.artworks.push(Arc::from(artwork));
            }
        }
        Ok(Self { titles, pool: pool.into_iter().map(|(id,)| id).collect() })
    }
}

/// Checks an artwork id: `[A-Za-z0-9._-]{1,64}`.
pub fn check_artwork_id(id: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(format!("must match [A-Za-z0-9._-]{{1,64}}, got {id:?}")) }
}

/// Replaces the artworks of `video_id` (1–64 unique valid ids).
pub async fn put_artworks(database: &Database, video_id: i64, artworks: &[String]) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    if video_id <= 0 {
        problems.push(FieldError::new("video_id", format!("must be a positive integer, got {video_id}")));
    }
    if artworks.is_empty() || artworks.len() > MAX_ARTWORKS {
        problems.push(FieldError::new(
            "artworks",
            format!("must hold 1..={MAX_ARTWORKS} ids, got {}", artworks.len()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, a) in artworks.iter().enumerate() {
        if let Err(reason) = check_artwork_id(a) {
            problems.push(FieldError::new(format!("artworks[{i}]"), reason));
        } else if !seen.insert(a) {
            problems.push(FieldError::new(format!("artworks[{i}]"), format!("{a:?} is listed twice")));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems));
    }
    let known: Option<(i64,)> = crate::store::fetch_optional!(
        database,
        (i64,),
        "SELECT video_id FROM videos WHERE video_id = $1",
        video_id
    )
    .map_err(ApiError::Database)?;
    if known.is_none() {
        return Err(ApiError::field(
            "video_id",
            format!("title {video_id} is not in the catalog (PUT /v1/videos/{video_id} on ingest)"),
        ));
    }
    crate::store::in_transaction!(database, tx, {
        sqlx::query("DELETE FROM billboard_artworks WHERE video_id = $1")
            .bind(video_id)
            .execute(&mut *tx)
            .await?;
        for a in artworks {
            sqlx::query("INSERT INTO billboard_artworks (video_id, artwork_id) VALUES ($1, $2)")
                .bind(video_id)
                .bind(a)
                .execute(&mut *tx)
                .await?;
        }
        Ok::<(), sqlx::Error>(())
    })
    .map_err(ApiError::Database)
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

//! The video catalog (`videos`): what attribution and insights know about each title.
//!
//! One repository over both backends, with the query written once per dialect and
//! every value bound (never spliced into SQL). Genres are stored as a JSON array in a
//! TEXT column, the same representation on Postgres and SQLite.

use nearline_storage::Database;
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError};
use crate::validate;

/// Earliest accepted launch time: 1900-01-01T00:00:00Z, in ms since the Unix epoch.
pub const EARLIEST_LAUNCH_MS: i64 = -2_208_988_800_000;
/// Latest accepted launch time: 2199-12-31T23:59:59.999Z (every answer can print it as
/// an RFC 3339 time, and none is a sentinel like i64::MAX).
pub const LATEST_LAUNCH_MS: i64 = 7_258_118_399_999;

/// Most characters of a title.
pub const MAX_TITLE_CHARS: usize = 512;
/// Most genres of one title.
pub const MAX_GENRES: usize = 32;
/// Most artworks of one title.
pub const MAX_ARTWORKS: usize = validate::MAX_ARTWORKS;

/// Movie or series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A film.
    Movie,
    /// A show with episodes.
    Series,
}

impl Kind {
    /// The stored and JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Movie => "movie",
            Kind::Series => "series",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "movie" => Some(Kind::Movie),
            "series" => Some(Kind::Series),
            _ => None,
        }
    }
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    /// Positive video id.
    pub video_id: i64,
    /// Display title, 1..=512 characters.
    pub title: String,
    /// Movie or series.
    pub kind: Kind,
    /// Genre tokens.
    pub genres: Vec<String>,
    /// Launch time, ms since the Unix epoch, when known.
    pub launch_at_ms: Option<i64>,
    /// Artwork ids, in the order given (billboard chooses among them); empty when the
    /// title has none.
    pub artworks: Vec<String>,
}

impl Video {
    /// The JSON answered by `GET /v1/videos/{id}`.
    pub fn to_json(&self) -> Value {
        let launch_at = self
            .launch_at_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        serde_json::json!({
            "video_id": self.video_id,
            "title": self.title,
            "kind": self.kind.as_str(),
            "genres": self.genres,
            "launch_at": launch_at,
            "launch_at_ms": self.launch_at_ms,
            "artworks": self.artworks,
        })
    }

    /// Reads a `PUT /v1/videos/{id}` body for video `video_id`, with every problem.
    pub fn from_json(video_id: i64, body: Value) -> Result<Self, Vec<FieldError>> {
        let mut problems = Vec::new();
        let mut fail =
            |field: &str, reason: String| problems.push(FieldError { field: field.into(), reason });
        let Value::Object(mut map) = body else {
            fail("body", "must be a JSON object".into());
            return Err(problems);
        };
        let title = match take(&mut map, "title") {
            Some(Value::String(title)) => {
                let chars = title.chars().count();
                if !(1..=MAX_TITLE_CHARS).contains(&chars) || title.trim().is_empty() {
                    fail(
                        "title",
                        format!("must be 1..={MAX_TITLE_CHARS} characters, not blank; got {chars}"),
                    );
                } else if let Err(reason) = crate::validate::printable(&title) {
                    fail("title", reason);
                }
                title
            }
            Some(_) => {
                fail("title", "must be a string".into());
                String::new()
            }
            None => {
                fail("title", "is required".into());
                String::new()
            }
        };
        let kind = match take(&mut map, "kind") {
            Some(Value::String(kind)) => Kind::parse(&kind).unwrap_or_else(|| {
                fail("kind", format!("must be \"movie\" or \"series\", got {kind:?}"));
                Kind::Movie
            }),
            Some(_) => {
                fail("kind", "must be \"movie\" or \"series\"".into());
                Kind::Movie
            }
            None => {
                fail("kind", "is required: \"movie\" or \"series\"".into());
                Kind::Movie
            }
        };
        let mut genres = Vec::new();
        match take(&mut map, "genres") {
            None => {}
            Some(Value::Array(values)) => {
                if values.len() > MAX_GENRES {
                    fail("genres", format!("at most {MAX_GENRES} genres, got {}", values.len()));
                }
                for (i, value) in values.into_iter().enumerate() {
                    match value {
                        Value::String(genre) => match validate::token(&genre) {
                            Ok(()) => genres.push(genre),
                            Err(reason) => fail(&format!("genres[{i}]"), reason),
                        },
                        _ => fail(&format!("genres[{i}]"), "must be a string".into()),
                    }
                }
            }
            Some(_) => fail("genres", "must be an array of genre tokens".into()),
        }
        let launch_at_ms = match take(&mut map, "launch_at") {
            None => None,
            Some(Value::String(text)) => match chrono::DateTime::parse_from_rfc3339(&text) {
                Ok(time) => Some(time.timestamp_millis()),
                Err(e) => {
                    fail("launch_at", format!("{text:?} is not an RFC 3339 time: {e}"));
                    None
                }
            },
            // JSON does not tell 5 from 5.0; a whole number written either way is one.
            Some(value) => value.as_i64().or_else(|| whole_number(&value)).map(Some).unwrap_or_else(|| {
                fail(
                    "launch_at",
                    "must be an RFC 3339 time or integer milliseconds since the Unix epoch".into(),
                );
                None
            }),
        };
        let launch_at_ms = launch_at_ms.filter(|&ms| {
            let sane = (EARLIEST_LAUNCH_MS..=LATEST_LAUNCH_MS).contains(&ms);
            if !sane {
                fail(
                    "launch_at",
                    format!("must be between 1900-01-01 and 2199-12-31 (ms {EARLIEST_LAUNCH_MS}..={LATEST_LAUNCH_MS}), got {ms}"),
                );
            }
            sane
        });
        let mut artworks = Vec::new();
        match take(&mut map, "artworks") {
            None => {}
            Some(Value::Array(values)) => {
                if values.is_empty() || values.len() > MAX_ARTWORKS {
                    fail(
                        "artworks",
                        format!("must hold 1..={MAX_ARTWORKS} artwork ids, got {}", values.len()),
                    );
                }
                for (i, value) in values.into_iter().enumerate() {
                    match value {
                        Value::String(id) => match validate::artwork_id(&id) {
                            Ok(()) if artworks.contains(&id) => {
                                fail(&format!("artworks[{i}]"), format!("{id:?} is listed twice"))
                            }
                            Ok(()) => artworks.push(id),
                            Err(reason) => fail(&format!("artworks[{i}]"), reason),
                        },
                        _ => fail(&format!("artworks[{i}]"), "must be a string".into()),
                    }
                }
            }
            Some(_) => fail("artworks", "must be an array of artwork ids".into()),
        }
        for key in map.keys() {
            fail(key, "is not a field of a video".into());
        }
        if problems.is_empty() {
            Ok(Video { video_id, title, kind, genres, launch_at_ms, artworks })
        } else {
            Err(problems)
        }
    }
}

fn take(map: &mut Map<String, Value>, field: &str) -> Option<Value> {
    map.remove(field).filter(|v| !v.is_null())
}

/// Parses a `{id}` path segment: a positive integer.
pub fn parse_video_id(text: &str) -> Result<i64, ApiError> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::InvalidVideo(vec![FieldError {
            field: "video_id".into(),
            reason: format!("must be a positive integer, got {text:?}"),
        }])),
    }
}

/// The `videos` table of either backend.
#[derive(Debug, Clone)]
pub struct Catalog {
    database: Database,
}

type Row = (i64, String, String, String, Option<i64>, String);

impl Catalog {
    /// The catalog in `database`.
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Inserts or replaces a video.
    pub async fn upsert(&self, video: &Video) -> Result<(), ApiError> {
        let genres = serde_json::to_string(&video.genres).expect("a list of strings serializes");
        let artworks = serde_json::to_string(&video.artworks).expect("a list of strings serializes");
        match &self.database {
            Database::Postgres(pool) => sqlx::query(
                "INSERT INTO videos (video_id, title, kind, genres, launch_at_ms, artworks, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, now())
                 ON CONFLICT (video_id) DO UPDATE SET title = EXCLUDED.title, kind = EXCLUDED.kind,
                   genres = EXCLUDED.genres, launch_at_ms = EXCLUDED.launch_at_ms,
                   artworks = EXCLUDED.artworks, updated_at = now()",
            )
            .bind(video.video_id)
            .bind(&video.title)
            .bind(video.kind.as_str())
            .bind(&genres)
            .bind(video.launch_at_ms)
            .bind(&artworks)
            .execute(pool)
            .await
            .map(drop),
            Database::Sqlite(pool) => sqlx::query(
                "INSERT INTO videos (video_id, title, kind, genres, launch_at_ms, artworks, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                 ON CONFLICT (video_id) DO UPDATE SET title = excluded.title, kind = excluded.kind,
                   genres = excluded.genres, launch_at_ms = excluded.launch_at_ms,
                   artworks = excluded.artworks, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            )
            .bind(video.video_id)
            .bind(&video.title)
            .bind(video.kind.as_str())
            .bind(&genres)
            .bind(video.launch_at_ms)
            .bind(&artworks)
            .execute(pool)
            .await
            .map(drop),
        }
        .map_err(ApiError::Database)
    }

    /// The video with `video_id`, if the catalog has it.
    pub async fn get(&self, video_id: i64) -> Result<Option<Video>, ApiError> {
        let row: Option<Row> = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT video_id, title, kind, genres, launch_at_ms, artworks FROM videos WHERE video_id = $1",
                )
                .bind(video_id)
                .fetch_optional(pool)
                .await
            }
            Database::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT video_id, title, kind, genres, launch_at_ms, artworks FROM videos WHERE video_id = ?1",
                )
                .bind(video_id)
                .fetch_optional(pool)
                .await
            }
        }
        .map_err(ApiError::Database)?;
        Ok(row.map(|(video_id, title, kind, genres, launch_at_ms, artworks)| Video {
            video_id,
            title,
            // The table's CHECK constraint admits only these two.
            kind: Kind::parse(&kind).unwrap_or(Kind::Movie),
            // Rows are written by `upsert`; anything else in the column reads as no genres.
            genres: serde_json::from_str(&genres).unwrap_or_default(),
            launch_at_ms,
            artworks: serde_json::from_str(&artworks).unwrap_or_default(),
        }))
    }
}

/// A JSON number with no fraction that fits in i64 (`-605253.0`), as i64.
fn whole_number(value: &Value) -> Option<i64> {
    let f = value.as_f64()?;
    // `i64::MAX as f64` rounds up to 2^63, which does not fit: compare strictly.
    (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{LATEST_LAUNCH_MS, Video};

    fn launch_error(launch_at: serde_json::Value) -> Option<String> {
        let body = json!({"title": "T", "kind": "movie", "launch_at": launch_at});
        Video::from_json(1, body).err().map(|errors| format!("{errors:?}"))
    }

    #[test]
    fn launch_times_are_bounded_to_a_sane_range() {
        assert_eq!(launch_error(json!("2026-12-01T00:00:00Z")), None);
        assert_eq!(launch_error(json!(LATEST_LAUNCH_MS)), None);
        assert_eq!(launch_error(json!(-605_253.0)), None, "a whole number written with .0");
        assert!(launch_error(json!(1.5)).is_some(), "a fraction of a millisecond is not a time");
        for bad in [json!(i64::MAX), json!("9999-01-01T00:00:00Z"), json!(-140_751_590_400_000_i64)] {
            let error = launch_error(bad.clone()).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(error.contains("launch_at") && error.contains("1900-01-01"), "{error}");
        }
    }

    #[test]
    fn artworks_are_1_to_64_unique_ids_and_each_problem_is_named() {
        let with = |artworks: serde_json::Value| {
            Video::from_json(1, json!({"title": "T", "kind": "movie", "artworks": artworks}))
        };
        let fields = |artworks: serde_json::Value| -> Vec<String> {
            with(artworks).err().unwrap_or_default().into_iter().map(|e| e.field).collect()
        };
        assert_eq!(with(json!(["st-hero", "st.duo_2"])).unwrap().artworks, ["st-hero", "st.duo_2"]);
        let no_artworks = Video::from_json(1, json!({"title": "T", "kind": "movie"})).unwrap();
        assert!(no_artworks.artworks.is_empty(), "optional");
        assert_eq!(fields(json!((0..64).map(|i| format!("a{i}")).collect::<Vec<_>>())), Vec::<String>::new());
        assert_eq!(fields(json!([])), ["artworks"]);
        assert_eq!(fields(json!((0..65).map(|i| format!("a{i}")).collect::<Vec<_>>())), ["artworks"]);
        assert_eq!(fields(json!("a")), ["artworks"]);
        assert_eq!(
            fields(json!(["ok", "no spaces", "ok", 3, "x".repeat(65), ""])),
            ["artworks[1]", "artworks[2]", "artworks[3]", "artworks[4]", "artworks[5]"]
        );
    }

    #[test]
    fn titles_with_control_characters_are_rejected() {
        let error = Video::from_json(1, json!({"title": "a\u{0}b", "kind": "movie"})).expect_err("refused");
        assert!(format!("{error:?}").contains("control characters"), "{error:?}");
    }
}

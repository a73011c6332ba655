//! Decoding request bodies into the protobuf event model: the JSON contract of issue 3
//! (`{"events":[...]}` or NDJSON) and protobuf `PublishRequest`s.
//!
//! A body that is not well-formed at all is [`DecodeError::Malformed`], naming where
//! (line and column, or the protobuf field path). A well-formed body yields every event
//! it holds plus a [`Violation`] for every field of the wrong type, missing or unknown,
//! so that a client learns about all of them at once; range rules are
//! [`crate::validate`]'s job.

use nearline_proto::events::v1::{
    CandidateArtworks, Event, Explore, ExploreContext, Impression, Play, event,
};
use nearline_proto::ingest::v1::PublishRequest;
use prost::Message as _;
use serde_json::{Map, Value};

use crate::validate::Violation;

/// The body formats `POST /v1/events` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: `{"events":[...]}`.
    Json,
    /// `application/x-ndjson`: one event object per line.
    Ndjson,
    /// `application/x-protobuf`: a `nearline.ingest.v1.PublishRequest`.
    Protobuf,
}

/// Events decoded from a body, with what was wrong with their fields.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decoded {
    /// The events, in body order; fields in violation hold defaults.
    pub events: Vec<Event>,
    /// Missing, mistyped and unknown fields.
    pub violations: Vec<Violation>,
}

/// Why a body could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not well-formed JSON / NDJSON / protobuf.
    #[error("malformed body at {position}: {reason}")]
    Malformed {
        /// Where: `line 3 column 7`, or a protobuf field path.
        position: String,
        /// What the parser found.
        reason: String,
    },
    /// More events than one batch may hold.
    #[error("the batch holds {count} events; at most {max} are accepted in one request")]
    TooManyEvents {
        /// Events in the body (a lower bound when counting stopped early).
        count: usize,
        /// The configured maximum.
        max: usize,
    },
}

/// Decodes `body` in `format`, filling empty regions with `default_region`.
pub fn decode(
    format: Format,
    body: &[u8],
    default_region: &str,
    max_events: usize,
) -> Result<Decoded, DecodeError> {
    match format {
        Format::Json => decode_json(body, default_region, max_events),
        Format::Ndjson => decode_ndjson(body, default_region, max_events),
        Format::Protobuf => decode_protobuf(body, default_region, max_events),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    events: Vec<Value>,
}

/// Decodes `{"events":[...]}`.
pub fn decode_json(body: &[u8], default_region: &str, max_events: usize) -> Result<Decoded, DecodeError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| json_error(&e, None))?;
    check_count(envelope.events.len(), max_events)?;
    let mut decoded = Decoded { events: Vec::with_capacity(envelope.events.len()), violations: Vec::new() };
    for (index, value) in envelope.events.into_iter().enumerate() {
        let event = event_from_json(index, value, default_region, &mut decoded.violations);
        decoded.events.push(event);
    }
    Ok(decoded)
}

/// Decodes one JSON event object per line; blank lines are skipped.
pub fn decode_ndjson(body: &[u8], default_region: &str, max_events: usize) -> Result<Decoded, DecodeError> {
    let mut decoded = Decoded::default();
    for (number, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let index = decoded.events.len();
        // Stop before decoding an event past the limit: the body is rejected anyway.
        check_count(index + 1, max_events)?;
        let value: Value = serde_json::from_slice(line).map_err(|e| json_error(&e, Some(number + 1)))?;
        let event = event_from_json(index, value, default_region, &mut decoded.violations);
        decoded.events.push(event);
    }
    Ok(decoded)
}

/// Decodes a protobuf `PublishRequest`.
pub fn decode_protobuf(body: &[u8], default_region: &str, max_events: usize) -> Result<Decoded, DecodeError> {
    let request = PublishRequest::decode(body).map_err(|e| DecodeError::Malformed {
        // prost names the field path it was decoding (`PublishRequest.events: Event.kind: ...`).
        position: format!("byte stream of {} bytes", body.len()),
        reason: e.to_string(),
    })?;
    check_count(request.events.len(), max_events)?;
    let mut events = request.events;
    for event in &mut events {
        fill_region(event, default_region);
    }
    Ok(Decoded { events, violations: Vec::new() })
}

/// Gives events that do not say where they were logged the configured region.
pub fn fill_region(event: &mut Event, default_region: &str) {
    let region = match &mut event.kind {
        Some(event::Kind::Impression(i)) => &mut i.region,
        Some(event::Kind::Play(p)) => &mut p.region,
        None => return,
    };
    if region.is_empty() {
        default_region.clone_into(region);
    }
}

fn check_count(count: usize, max: usize) -> Result<(), DecodeError> {
    if count > max { Err(DecodeError::TooManyEvents { count, max }) } else { Ok(()) }
}

fn json_error(error: &serde_json::Error, ndjson_line: Option<usize>) -> DecodeError {
    let position = match ndjson_line {
        Some(line) => format!("line {line} column {}", error.column()),
        None => format!("line {} column {}", error.line(), error.column()),
    };
    // serde_json appends " at line L column C" itself; the position says it already.
    let text = error.to_string();
    let reason = text.rsplit_once(" at line ").map_or(text.as_str(), |(head, _)| head).to_owned();
    DecodeError::Malformed { position, reason }
}

/// Converts one JSON event, recording every field problem in `out`.
fn event_from_json(index: usize, value: Value, default_region: &str, out: &mut Vec<Violation>) -> Event {
    let Value::Object(map) = value else {
        out.push(Violation::new(index, "event", format!("must be a JSON object, got {}", kind_of(&value))));
        return Event { kind: None };
    };
    let mut f = Fields { index, map, out };
    let kind = match f.map.remove("type") {
        Some(Value::String(t)) if t == "impression" => Kind::Impression,
        Some(Value::String(t)) if t == "play" => Kind::Play,
        Some(other) => {
            f.fail("type", format!("must be \"impression\" or \"play\", got {}", short(&other)));
            return Event { kind: None };
        }
        None => {
            f.fail("type", "is required: \"impression\" or \"play\"");
            return Event { kind: None };
        }
    };
    let event_id = f.string("event_id");
    let request_id = f.string("request_id");
    let member_id = f.string("member_id");
    let video_id = f.video_id("video_id");
    let country = f.string("country");
    let device = f.string("device");
    let region = f.optional_string("region").unwrap_or_else(|| default_region.to_owned());
    let event_time_ms = f.event_time();
    let kind = match kind {
        Kind::Impression => event::Kind::Impression(Impression {
            event_id,
            request_id,
            member_id,
            video_id,
            artwork_id: f.optional_string("artwork_id").unwrap_or_default(),
            canvas: f.string("canvas"),
            country,
            device,
            region,
            event_time_ms,
            explore: f.explore(),
        }),
        Kind::Play => event::Kind::Play(Play {
            event_id,
            request_id,
            member_id,
            video_id,
            country,
            device,
            region,
            event_time_ms,
            watch_seconds: f.watch_seconds(),
        }),
    };
    f.unknown_fields("");
    Event { kind: Some(kind) }
}

enum Kind {
    Impression,
    Play,
}

/// The fields of one JSON object, taken out one by one; what is left is unknown.
struct Fields<'a> {
    index: usize,
    map: Map<String, Value>,
    out: &'a mut Vec<Violation>,
}

impl Fields<'_> {
    fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.out.push(Violation::new(self.index, field, reason));
    }

    /// A field that may be absent or null.
    fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field).filter(|v| !v.is_null())
    }

    fn required(&mut self, field: &str) -> Option<Value> {
        let value = self.take(field);
        if value.is_none() {
            self.fail(field, "is required");
        }
        value
    }

    fn string(&mut self, field: &str) -> String {
        match self.required(field) {
            Some(Value::String(s)) => s,
            Some(other) => {
                self.fail(field, format!("must be a string, got {}", kind_of(&other)));
                String::new()
            }
            None => String::new(),
        }
    }

    fn optional_string(&mut self, field: &str) -> Option<String> {
        match self.take(field)? {
            Value::String(s) => Some(s),
            other => {
                self.fail(field, format!("must be a string, got {}", kind_of(&other)));
                None
            }
        }
    }

    fn video_id(&mut self, field: &str) -> i64 {
        match self.required(field) {
            Some(value) => integer(&value).unwrap_or_else(|| {
                self.fail(field, format!("must be a positive integer, got {}", short(&value)));
                0
            }),
            None => 0,
        }
    }

    fn event_time(&mut self) -> i64 {
        match self.required("event_time") {
            Some(Value::String(text)) => match chrono::DateTime::parse_from_rfc3339(&text) {
                Ok(time) => time.timestamp_millis(),
                Err(e) => {
                    self.fail("event_time", format!("{text:?} is not an RFC 3339 time: {e}"));
                    0
                }
            },
            Some(value) => integer(&value).unwrap_or_else(|| {
                let reason = format!(
                    "must be an RFC 3339 time or integer milliseconds since the Unix epoch, got {}",
                    short(&value)
                );
                self.fail("event_time", reason);
                0
            }),
            None => 0,
        }
    }

    fn watch_seconds(&mut self) -> u32 {
        let value = self.required("watch_seconds");
        match value.as_ref().and_then(Value::as_u64).map(u32::try_from) {
            Some(Ok(seconds)) => seconds,
            _ => {
                if let Some(value) = value {
                    let reason = format!("must be an integer in 0..={}, got {}", u32::MAX, short(&value));
                    self.fail("watch_seconds", reason);
                }
                0
            }
        }
    }

    fn explore(&mut self) -> Option<Explore> {
        let map = match self.take("explore")? {
            Value::Object(map) => map,
            other => {
                self.fail("explore", format!("must be an object, got {}", kind_of(&other)));
                return None;
            }
        };
        let mut nested = Fields { index: self.index, map, out: &mut *self.out };
        let explore = nested.explore_fields();
        nested.unknown_fields("explore.");
        Some(explore)
    }

    fn explore_fields(&mut self) -> Explore {
        let policy = self.prefixed(|f| f.string("policy"));
        let model_version = self.prefixed(|f| f.string("model_version"));
        let propensity = match self.take("propensity") {
            Some(value) => value.as_f64().unwrap_or_else(|| {
                self.fail("explore.propensity", format!("must be a number in (0, 1], got {}", short(&value)));
                // A valid value, so validation does not report the field a second time.
                1.0
            }),
            None => {
                self.fail("explore.propensity", "is required");
                1.0
            }
        };
        let explored = match self.take("explored") {
            Some(Value::Bool(b)) => b,
            Some(other) => {
                self.fail("explore.explored", format!("must be true or false, got {}", kind_of(&other)));
                false
            }
            None => {
                self.fail("explore.explored", "is required");
                false
            }
        };
        let mut candidates = Vec::new();
        match self.take("candidates") {
            None => {}
            Some(Value::Array(values)) => {
                for (i, value) in values.iter().enumerate() {
                    match integer(value) {
                        Some(id) => candidates.push(id),
                        None => {
                            let field = format!("explore.candidates[{i}]");
                            self.fail(&field, format!("must be a positive integer, got {}", short(value)));
                        }
                    }
                }
            }
            Some(other) => {
                self.fail("explore.candidates", format!("must be an array, got {}", kind_of(&other)))
            }
        }
        let candidate_artworks = self.candidate_artworks();
        let context = self.explore_context();
        Explore { policy, model_version, propensity, explored, candidates, candidate_artworks, context }
    }

    /// `explore.candidate_artworks`: `[{"video_id": 1, "artwork_ids": ["a", ...]}, ...]`.
    fn candidate_artworks(&mut self) -> Vec<CandidateArtworks> {
        let values = match self.take("candidate_artworks") {
            None => return Vec::new(),
            Some(Value::Array(values)) => values,
            Some(other) => {
                let reason = format!("must be an array, got {}", kind_of(&other));
                self.fail("explore.candidate_artworks", reason);
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(values.len());
        for (i, value) in values.into_iter().enumerate() {
            let at = format!("explore.candidate_artworks[{i}]");
            // Placeholders for what is wrong keep the later entries at their index, and
            // are valid, so validation does not report them a second time.
            let Value::Object(map) = value else {
                self.fail(&at, format!("must be an object, got {}", kind_of(&value)));
                out.push(CandidateArtworks { video_id: 1, artwork_ids: Vec::new() });
                continue;
            };
            let mut f = Fields { index: self.index, map, out: &mut *self.out };
            let video_id = match f.take("video_id") {
                Some(value) => integer(&value).unwrap_or_else(|| {
                    f.fail(
                        &format!("{at}.video_id"),
                        format!("must be a positive integer, got {}", short(&value)),
                    );
                    // A valid value, so validation does not report the field a second time.
                    1
                }),
                None => {
                    f.fail(&format!("{at}.video_id"), "is required");
                    1
                }
            };
            let mut artwork_ids = Vec::new();
            match f.take("artwork_ids") {
                Some(Value::Array(ids)) => {
                    for (j, id) in ids.into_iter().enumerate() {
                        match id {
                            Value::String(id) => artwork_ids.push(id),
                            other => {
                                let reason = format!("must be a string, got {}", kind_of(&other));
                                f.fail(&format!("{at}.artwork_ids[{j}]"), reason);
                                artwork_ids.push("_".into());
                            }
                        }
                    }
                }
                Some(other) => {
                    f.fail(&format!("{at}.artwork_ids"), format!("must be an array, got {}", kind_of(&other)))
                }
                None => f.fail(&format!("{at}.artwork_ids"), "is required"),
            }
            f.unknown_fields(&format!("{at}."));
            out.push(CandidateArtworks { video_id, artwork_ids });
        }
        out
    }

    /// `explore.context`: `{"country": "US", "device": "tv", "hour_of_day": 20}`.
    fn explore_context(&mut self) -> Option<ExploreContext> {
        let map = match self.take("context")? {
            Value::Object(map) => map,
            other => {
                self.fail("explore.context", format!("must be an object, got {}", kind_of(&other)));
                return None;
            }
        };
        let mut f = Fields { index: self.index, map, out: &mut *self.out };
        let from = f.out.len();
        let country = f.string("country");
        let device = f.string("device");
        let hour_of_day = match f.required("hour_of_day") {
            Some(value) => match value.as_u64().and_then(|h| u32::try_from(h).ok()) {
                Some(h) => h,
                None => {
                    f.fail("hour_of_day", format!("must be an integer in 0..=23, got {}", short(&value)));
                    0
                }
            },
            None => 0,
        };
        for violation in &mut f.out[from..] {
            violation.field.insert_str(0, "explore.context.");
        }
        f.unknown_fields("explore.context.");
        Some(ExploreContext { country, device, hour_of_day })
    }

    /// Runs `read` so that the violations it records name `explore.<field>`.
    fn prefixed<T>(&mut self, read: impl FnOnce(&mut Self) -> T) -> T {
        let from = self.out.len();
        let value = read(self);
        for violation in &mut self.out[from..] {
            violation.field.insert_str(0, "explore.");
        }
        value
    }

    fn unknown_fields(&mut self, prefix: &str) {
        let unknown: Vec<String> = self.map.keys().cloned().collect();
        for key in unknown {
            self.fail(&format!("{prefix}{key}"), "is not a field of this event type");
        }
    }
}

/// An integer that fits in i64 (not a float, not a string).
fn integer(value: &Value) -> Option<i64> {
    value.as_i64()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value for an error message, cut short so a huge value cannot bloat the answer.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 64 {
        text
    } else {
        format!("{}…", text.chars().take(64).collect::<String>())
    }
}

#[cfg(test)]
mod tests;

//! The topics' wire format: log records (protobuf) to join inputs, and join outputs
//! (outcomes, too-late events) to log records.

use bytes::Bytes;
use nearline_eventlog::{OutgoingRecord, Record};
use nearline_proto::events::v1 as pb;
use prost::Message as _;

use crate::join::{self, Event, Input, Late, Outcome, Source};

/// A record that is not a valid event of its topic; it is skipped and counted.
#[derive(Debug, thiserror::Error)]
#[error("record {topic}/{partition}@{offset} is not a valid {expected}: {reason}")]
pub struct DecodeError {
    /// Topic of the record.
    pub topic: String,
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
    /// What it should have been.
    pub expected: &'static str,
    /// Why it is not.
    pub reason: String,
}

/// Decodes a record of `source`'s topic into a join input.
pub fn input(record: &Record, source: Source) -> Result<Input, DecodeError> {
    let error = |expected: &'static str, reason: String| DecodeError {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        expected,
        reason,
    };
    let event = match source {
        Source::Impressions => {
            let i = pb::Impression::decode(record.payload.as_ref())
                .map_err(|e| error("nearline.events.v1.Impression", e.to_string()))?;
            Event::Impression(impression(i))
        }
        Source::Plays => {
            let p = pb::Play::decode(record.payload.as_ref())
                .map_err(|e| error("nearline.events.v1.Play", e.to_string()))?;
            Event::Play(play(p))
        }
    };
    if let Some(field) = text_with_nul(&event) {
        // Neither database can store it, and one such record must not stop counting.
        return Err(error("event", format!("{field} contains a NUL character")));
    }
    Ok(Input::local(record.offset, event))
}

/// The first text field of `event` holding a NUL character, if any.
fn text_with_nul(event: &Event) -> Option<&'static str> {
    let fields: Vec<(&'static str, &str)> = match event {
        Event::Impression(i) => {
            let mut fields = vec![
                ("request_id", i.request_id.as_str()),
                ("member_id", &i.member_id),
                ("artwork_id", &i.artwork_id),
                ("canvas", &i.canvas),
                ("country", &i.country),
                ("device", &i.device),
                ("region", &i.region),
            ];
            if let Some(e) = &i.explore {
                fields.extend([
                    ("explore.policy", e.policy.as_str()),
                    ("explore.model_version", &e.model_version),
                ]);
                if let Some(c) = &e.context {
                    fields.extend([
                        ("explore.context.country", c.country.as_str()),
                        ("explore.context.device", &c.device),
                    ]);
                }
                for c in e.candidate_artworks.iter() {
                    fields.extend(c.artwork_ids.iter().map(|a| ("explore.candidate_artworks", a.as_str())));
                }
            }
            fields
        }
        Event::Play(p) => vec![
            ("request_id", p.request_id.as_str()),
            ("member_id", &p.member_id),
            ("country", &p.country),
            ("device", &p.device),
            ("region", &p.region),
        ],
    };
    fields.into_iter().find(|(_, text)| text.contains('\0')).map(|(name, _)| name)
}

/// The record for `nearline.late.v1` that keeps a record the join could not use (not an
/// event of its topic, or one no database can store), with why, where it came from and
/// its bytes; keyed like it.
pub fn dead_letter_record(topic: &str, record: &Record, error: &DecodeError) -> OutgoingRecord {
    let message = pb::LateEvent {
        event: None,
        reason: format!("undecodable: {}", error.reason),
        watermark_ms: 0,
        source_topic: record.topic.clone(),
        source_partition: record.partition,
        source_offset: record.offset,
        payload: record.payload.to_vec(),
    };
    OutgoingRecord {
        topic: topic.to_string(),
        key: record.key.clone(),
        payload: message.encode_to_vec().into(),
        timestamp_ms: Some(record.timestamp_ms),
    }
}

/// A protobuf event (as ingest decodes it from JSON) as a join input at `offset`;
/// `None` for an event with neither kind set.
pub fn from_event(event: pb::Event, offset: i64) -> Option<Input> {
    let event = match event.kind? {
        pb::event::Kind::Impression(i) => Event::Impression(impression(i)),
        pb::event::Kind::Play(p) => Event::Play(play(p)),
    };
    Some(Input::local(offset, event))
}

fn impression(i: pb::Impression) -> join::Impression {
    join::Impression {
        request_id: i.request_id,
        member_id: i.member_id,
        video_id: i.video_id,
        artwork_id: i.artwork_id,
        canvas: i.canvas,
        country: i.country,
        device: i.device,
        region: i.region,
        event_time_ms: i.event_time_ms,
        explore: i.explore.map(|e| join::Explore {
            policy: e.policy,
            model_version: e.model_version,
            propensity: e.propensity,
            explored: e.explored,
            candidates: e.candidates,
            candidate_artworks: e
                .candidate_artworks
                .into_iter()
                .map(|c| join::CandidateArtworks { video_id: c.video_id, artwork_ids: c.artwork_ids })
                .collect(),
            context: e.context.map(|c| {
                std::sync::Arc::new(join::ExploreContext {
                    country: c.country,
                    device: c.device,
                    hour_of_day: c.hour_of_day,
                })
            }),
        }),
    }
}

fn play(p: pb::Play) -> join::Play {
    join::Play {
        request_id: p.request_id,
        member_id: p.member_id,
        video_id: p.video_id,
        country: p.country,
        device: p.device,
        region: p.region,
        event_time_ms: p.event_time_ms,
        watch_seconds: p.watch_seconds,
    }
}

fn explore_pb(e: &join::Explore) -> pb::Explore {
    pb::Explore {
        policy: e.policy.clone(),
        model_version: e.model_version.clone(),
        propensity: e.propensity,
        explored: e.explored,
        candidates: e.candidates.clone(),
        candidate_artworks: e
            .candidate_artworks
            .iter()
            .map(|c| pb::CandidateArtworks { video_id: c.video_id, artwork_ids: c.artwork_ids.clone() })
            .collect(),
        context: e.context.as_ref().map(|c| pb::ExploreContext {
            country: c.country.clone(),
            device: c.device.clone(),
            hour_of_day: c.hour_of_day,
        }),
    }
}

/// The protobuf event of a join input, as ingest published it.
pub fn event_pb(event: &Event) -> pb::Event {
    let kind = match event {
        Event::Impression(i) => pb::event::Kind::Impression(pb::Impression {
            event_id: String::new(),
            request_id: i.request_id.clone(),
            member_id: i.member_id.clone(),
            video_id: i.video_id,
            artwork_id: i.artwork_id.clone(),
            canvas: i.canvas.clone(),
            country: i.country.clone(),
            device: i.device.clone(),
            region: i.region.clone(),
            event_time_ms: i.event_time_ms,
            explore: i.explore.as_ref().map(explore_pb),
        }),
        Event::Play(p) => pb::event::Kind::Play(pb::Play {
            event_id: String::new(),
            request_id: p.request_id.clone(),
            member_id: p.member_id.clone(),
            video_id: p.video_id,
            country: p.country.clone(),
            device: p.device.clone(),
            region: p.region.clone(),
            event_time_ms: p.event_time_ms,
            watch_seconds: p.watch_seconds,
        }),
    };
    pb::Event { kind: Some(kind) }
}

/// An input as the record ingest would have published for it on `topic` (its own
/// topic: impressions or plays), keyed by request id.
pub fn input_record(topic: &str, input: &Input) -> OutgoingRecord {
    let (request_id, time) = match &input.event {
        Event::Impression(i) => (i.request_id.as_str(), i.event_time_ms),
        Event::Play(p) => (p.request_id.as_str(), p.event_time_ms),
    };
    let payload = match event_pb(&input.event).kind {
        Some(pb::event::Kind::Impression(i)) => i.encode_to_vec(),
        Some(pb::event::Kind::Play(p)) => p.encode_to_vec(),
        None => unreachable!("every event has a kind"),
    };
    OutgoingRecord {
        topic: topic.to_string(),
        key: Bytes::copy_from_slice(request_id.as_bytes()),
        payload: payload.into(),
        timestamp_ms: Some(time),
    }
}

/// The record for `nearline.late.v1`, keyed like its source so it stays co-partitioned.
pub fn late_record(topic: &str, late: &Late) -> OutgoingRecord {
    let (request_id, time) = match &late.input.event {
        Event::Impression(i) => (i.request_id.as_str(), i.event_time_ms),
        Event::Play(p) => (p.request_id.as_str(), p.event_time_ms),
    };
    let message = pb::LateEvent {
        event: Some(event_pb(&late.input.event)),
        reason: late.reason.as_str().to_string(),
        watermark_ms: late.watermark_ms,
        ..Default::default()
    };
    OutgoingRecord {
        topic: topic.to_string(),
        key: Bytes::copy_from_slice(request_id.as_bytes()),
        payload: message.encode_to_vec().into(),
        timestamp_ms: Some(time),
    }
}

/// The record for `nearline.outcomes.v1`, keyed by request id, with the catalog's
/// facts about the title when it has them.
pub fn outcome_record(topic: &str, outcome: &Outcome, title: Option<pb::TitleInfo>) -> OutgoingRecord {
    let request_id = outcome.request_id.to_string();
    let message = pb::Outcome {
        request_id: request_id.clone(),
        video_id: outcome.cell.video_id,
        member_id: outcome.member_id.clone(),
        canvas: outcome.cell.dims.canvas.to_string(),
        country: outcome.cell.dims.country.to_string(),
        device: outcome.cell.dims.device.to_string(),
        artwork_id: outcome.artwork_id.clone(),
        explore: Some(explore_pb(&outcome.explore)),
        played: outcome.played,
        impression_time_ms: outcome.impression_time_ms,
        play_time_ms: outcome.play_time_ms,
        title,
    };
    OutgoingRecord {
        topic: topic.to_string(),
        key: Bytes::from(request_id.into_bytes()),
        payload: message.encode_to_vec().into(),
        timestamp_ms: Some(outcome.impression_time_ms),
    }
}

/// Decodes a late record back into its input (for backfill from `nearline.late.v1`).
pub fn late_input(record: &Record) -> Result<Input, DecodeError> {
    let error = |reason: String| DecodeError {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        expected: "nearline.events.v1.LateEvent",
        reason,
    };
    let late = pb::LateEvent::decode(record.payload.as_ref()).map_err(|e| error(e.to_string()))?;
    let event = match late.event.and_then(|e| e.kind) {
        Some(pb::event::Kind::Impression(i)) => Event::Impression(impression(i)),
        Some(pb::event::Kind::Play(p)) => Event::Play(play(p)),
        None => return Err(error("no event inside".into())),
    };
    Ok(Input::local(record.offset, event))
}

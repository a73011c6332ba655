//! Tests of the join core: one per rule and boundary (`rules`), and property tests
//! against a reference written directly from DESIGN §3 (`props`, `reference`), also
//! with the input split over regions whose topics are mirrored (`regions`).

mod props;
mod reference;
mod regions;
mod rules;

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{
    CandidateArtworks, Event, Explore, ExploreContext, Impression, Input, JoinConfig, JoinState, Outcome,
    Outputs, Play,
};

const MIN: i64 = 60_000;

/// A neutral view of a cell: (video, epoch, country, device, canvas, region).
type CellView = (i64, i64, String, String, String, String);
/// (video, play epoch, country, device, region).
type UnattributedView = (i64, i64, String, String, String);

/// The set facts of a run, as plain values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Facts {
    impressions: BTreeSet<(CellView, String)>,
    plays: BTreeSet<(CellView, String)>,
    unattributed: BTreeSet<(UnattributedView, String)>,
}

impl Facts {
    fn absorb(&mut self, out: &Outputs) {
        let cell = |c: &super::Cell| {
            let dims = c.dims;
            let text = |s: &str| s.to_string();
            (
                c.video_id,
                c.epoch,
                text(&dims.country),
                text(&dims.device),
                text(&dims.canvas),
                text(&dims.region),
            )
        };
        for m in &out.impressions {
            self.impressions.insert((cell(&m.cell), m.request_id.to_string()));
        }
        for m in &out.plays {
            self.plays.insert((cell(&m.cell), m.request_id.to_string()));
        }
        for m in &out.unattributed {
            let k = &m.key;
            let dims = k.dims;
            self.unattributed.insert((
                (
                    k.video_id,
                    k.epoch,
                    dims.country.to_string(),
                    dims.device.to_string(),
                    dims.region.to_string(),
                ),
                m.request_id.to_string(),
            ));
        }
    }

    fn union(&mut self, other: &Facts) {
        self.impressions.extend(other.impressions.iter().cloned());
        self.plays.extend(other.plays.iter().cloned());
        self.unattributed.extend(other.unattributed.iter().cloned());
    }
}

/// Feeds events with per-source offsets and collects everything emitted.
#[derive(Debug)]
struct Run {
    state: JoinState,
    facts: Facts,
    /// Every output list, concatenated, to check for repeats.
    all: Outputs,
    next_offset: [i64; 2],
}

impl Run {
    fn new(config: JoinConfig) -> Self {
        Self {
            state: JoinState::new(config).expect("valid config"),
            facts: Facts::default(),
            all: Outputs::default(),
            next_offset: [0, 0],
        }
    }

    fn input(&mut self, event: Event) -> Input {
        let slot = match event {
            Event::Impression(_) => 0,
            Event::Play(_) => 1,
        };
        let offset = self.next_offset[slot];
        self.next_offset[slot] += 1;
        Input::local(offset, event)
    }

    /// Feeds events, one batch.
    fn feed(&mut self, events: impl IntoIterator<Item = Event>) -> Outputs {
        let batch: Vec<Input> = events.into_iter().map(|e| self.input(e)).collect();
        let out = self.state.apply(&batch);
        self.record(&out);
        out
    }

    fn finish(&mut self) -> Outputs {
        let out = self.state.finish();
        self.record(&out);
        out
    }

    fn record(&mut self, out: &Outputs) {
        self.facts.absorb(out);
        self.all.append(&mut out.clone());
    }

    fn outcomes(&self) -> &[Outcome] {
        &self.all.outcomes
    }
}

fn config() -> JoinConfig {
    JoinConfig::default()
}

fn impression(rid: &str, video_id: i64, t: i64) -> Impression {
    Impression {
        request_id: rid.to_owned(),
        member_id: "m1".to_owned(),
        video_id,
        artwork_id: "a1".to_owned(),
        canvas: "row".to_owned(),
        country: "US".to_owned(),
        device: "tv".to_owned(),
        region: "us-east-1".to_owned(),
        event_time_ms: t,
        explore: None,
    }
}

fn imp(rid: &str, video_id: i64, t: i64) -> Event {
    Event::Impression(impression(rid, video_id, t))
}

fn explore() -> Explore {
    Explore {
        policy: "thompson".to_owned(),
        model_version: "v1".to_owned(),
        propensity: 0.5,
        explored: true,
        candidates: vec![1, 2, 3],
        candidate_artworks: [1, 2, 3]
            .map(|video_id| CandidateArtworks { video_id, artwork_ids: vec!["a1".into(), "a2".into()] })
            .into(),
        context: Some(Arc::new(ExploreContext {
            country: "US".into(),
            device: "tv".into(),
            hour_of_day: 20,
        })),
    }
}

fn explored_imp(rid: &str, video_id: i64, t: i64) -> Event {
    Event::Impression(Impression { explore: Some(explore()), ..impression(rid, video_id, t) })
}

fn play_event(rid: &str, video_id: i64, t: i64) -> Play {
    Play {
        request_id: rid.to_owned(),
        member_id: "m1".to_owned(),
        video_id,
        country: "US".to_owned(),
        device: "tv".to_owned(),
        region: "eu-west-1".to_owned(),
        event_time_ms: t,
        watch_seconds: 42,
    }
}

fn play(rid: &str, video_id: i64, t: i64) -> Event {
    Event::Play(play_event(rid, video_id, t))
}

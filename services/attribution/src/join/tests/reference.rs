//! The reference: DESIGN §3 written as set comprehensions over a whole input, O(n^2),
//! sharing no code with the join (only the input types).

use super::super::{Event, JoinConfig};
use super::{CellView, Facts, UnattributedView};

fn attributes(c: &JoinConfig, impression_t: i64, play_t: i64) -> bool {
    impression_t - c.skew_ms <= play_t && play_t <= impression_t + c.attribution_window_ms
}

/// The facts DESIGN §3 defines for `events` (each counted, none too late).
pub(super) fn reference(c: &JoinConfig, events: &[Event]) -> Facts {
    let epoch = |t: i64| t.div_euclid(c.epoch_len_ms);
    let impressions: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Impression(i) => Some(i),
            Event::Play(_) => None,
        })
        .collect();
    let plays: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Play(p) => Some(p),
            Event::Impression(_) => None,
        })
        .collect();
    let mut facts = Facts::default();
    for i in &impressions {
        let cell: CellView = (
            i.video_id,
            epoch(i.event_time_ms),
            i.country.clone(),
            i.device.clone(),
            i.canvas.clone(),
            i.region.clone(),
        );
        facts.impressions.insert((cell.clone(), i.request_id.clone()));
        let played = plays.iter().any(|p| {
            p.request_id == i.request_id
                && p.video_id == i.video_id
                && attributes(c, i.event_time_ms, p.event_time_ms)
        });
        if played {
            facts.plays.insert((cell, i.request_id.clone()));
        }
    }
    for p in &plays {
        let attributed = impressions.iter().any(|i| {
            p.request_id == i.request_id
                && p.video_id == i.video_id
                && attributes(c, i.event_time_ms, p.event_time_ms)
        });
        if !attributed {
            let key: UnattributedView =
                (p.video_id, epoch(p.event_time_ms), p.country.clone(), p.device.clone(), p.region.clone());
            facts.unattributed.insert((key, p.request_id.clone()));
        }
    }
    facts
}

/// Whether the explored impression at `impression_t` has a rewarding play in `events`.
pub(super) fn rewarded(
    c: &JoinConfig,
    events: &[Event],
    rid: &str,
    video_id: i64,
    impression_t: i64,
) -> bool {
    events.iter().any(|e| match e {
        Event::Play(p) => {
            p.request_id == rid
                && p.video_id == video_id
                && attributes(c, impression_t, p.event_time_ms)
                && p.event_time_ms <= impression_t + c.reward_window_ms
        }
        Event::Impression(_) => false,
    })
}

//! Logged data from billboard's simulated world, where every policy's true value is
//! known: a logging policy decides (with billboard's core, learning from delayed
//! rewards as it would online), and each decision becomes the outcome attribution
//! would emit, `explore` block included.
//!
//! The truth of a target is the mean, over the evaluated requests, of its own expected
//! reward `Σₐ π(a|x) p(a|x)` with the world's true play probabilities `p`: what it would
//! have earned on exactly those requests, trained as it was.

use std::sync::Arc;

use nearline_billboard::policy::rng::{Rng, stable_hash};
use nearline_billboard::policy::{Observation, pick_pair, sticky_unit};
use nearline_billboard::request_id;
use nearline_billboard::sim::{Online, RunConfig, World};

use crate::input::{CandidateArtworksJson, ContextJson, ExploreJson, OutcomeJson, TitleJson};
use crate::record::{Decision, Logs};

/// Mixed into the run's seed for the decisions' and plays' draws (the requests use the
/// seed itself, as billboard's simulator does).
const DRAWS_SEED: u64 = 0x5eed_d1a5_0000_0001;
/// Mixed into the run's seed for request ids and local hours.
const IDS_SEED: u64 = 0x1d5e_ed00_0000_0002;

/// Runs the logging policies of `config` (its split) through `world` and returns the
/// outcome of every decision, in decision order.
pub fn simulate(world: &World, config: &RunConfig) -> Vec<OutcomeJson> {
    let mut requests = Rng::new(config.seed);
    let mut rng = Rng::new(config.seed ^ DRAWS_SEED);
    let mut ids = Rng::new(config.seed ^ IDS_SEED);
    let facts = Arc::new(world.facts());
    let mut online = Online::new(config, facts.clone());
    let mut out = Vec::with_capacity(config.decisions);
    for i in 0..config.decisions {
        let now = i as i64 * config.gap_ms;
        let model = online.at(now).clone();
        let request = world.request(&mut requests, now);
        let policy = config.split.policy(&request.member);
        let probabilities = model.probabilities(policy, &request.cell, &request.candidates);
        let decision = pick_pair(&probabilities, &request.candidates, rng.uniform(), |video| {
            sticky_unit(&request.member, video, now, config.stickiness_ms)
        });
        let arm = request.candidates[decision.index].clone();
        let truth = world.play_probability(&request.cell, &arm, now);
        let played = rng.uniform() < truth;
        // A local hour inside the simulated daypart.
        let hour = request.cell.daypart.index() as u32 * 6 + ids.below(6) as u32;
        let id = request_id::mint(u128::from(ids.next_u64()) << 64 | u128::from(ids.next_u64()));
        let mut candidate_artworks: Vec<CandidateArtworksJson> = Vec::new();
        for a in request.candidates.iter() {
            match candidate_artworks.last_mut() {
                Some(c) if c.video_id == a.video_id => c.artwork_ids.push(a.artwork_id.to_string()),
                _ => candidate_artworks.push(CandidateArtworksJson {
                    video_id: a.video_id,
                    artwork_ids: vec![a.artwork_id.to_string()],
                }),
            }
        }
        let title = facts
            .get(&arm.video_id)
            .map(|f| TitleJson { kind: f.kind.clone().unwrap_or_default(), genres: f.genres.clone() });
        out.push(OutcomeJson {
            request_id: id.clone(),
            video_id: arm.video_id,
            member_id: request.member.clone(),
            canvas: "billboard".into(),
            country: request.cell.country.to_string(),
            device: request.cell.device.to_string(),
            artwork_id: arm.artwork_id.to_string(),
            explore: Some(ExploreJson {
                policy: policy.as_str().into(),
                model_version: model.version().to_string(),
                propensity: Some(decision.propensity),
                explored: decision.explored,
                candidates: candidate_artworks.iter().map(|c| c.video_id).collect(),
                candidate_artworks,
                context: Some(ContextJson {
                    country: request.cell.country.to_string(),
                    device: request.cell.device.to_string(),
                    hour_of_day: hour,
                }),
            }),
            played,
            impression_time_ms: now,
            play_time_ms: played.then(|| now + 30_000 + (stable_hash(&[id.as_bytes()]) % 600_000) as i64),
            title,
        });
        online.observe(Observation { request_id: id, arm, cell: request.cell.clone(), played, time_ms: now });
    }
    out
}

/// The target's expected reward at one decision: `Σₐ π(a) p(a)` over its candidates
/// (`probs` `None`: the logged pair's true probability).
pub fn expected_reward(world: &World, logs: &Logs, decision: &Decision, probs: Option<&[f64]>) -> f64 {
    let cell = logs.cell(decision);
    match probs {
        None => world.play_probability(cell, &decision.arm, decision.time_ms),
        Some(p) => logs
            .candidates(decision)
            .iter()
            .zip(p)
            .map(|(arm, q)| q * world.play_probability(cell, arm, decision.time_ms))
            .sum(),
    }
}

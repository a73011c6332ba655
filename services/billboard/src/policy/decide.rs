//! Drawing a decision from a policy's distribution.
//!
//! A billboard pick is a (title, artwork) pair. It is drawn in two steps with the same
//! joint law as one draw over pairs: the title from the pairs' title marginals with the
//! request's own randomness, then the artwork from the title's conditional with a
//! uniform number seeded by (member, title, period). The second draw is what makes
//! artwork sticky: within a period a member maps to the same point of the conditional
//! distribution, so they keep seeing the same artwork while the policy's preference is
//! stable, with no per-member state; and because that seed is uniform over members, the
//! propensity `P(title) · P(artwork | title)` is still the real probability of the pair.

use super::Probabilities;
use super::rng::{stable_hash, unit};
use super::stats::Arm;

/// One drawn candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Index into the candidates.
    pub index: usize,
    /// Its probability under the policy, in (0, 1].
    pub propensity: f64,
    /// Whether it is outside the policy's best guess.
    pub explored: bool,
}

/// Draws one candidate with the uniform number `u` in [0, 1) (inverse CDF).
pub fn pick(probabilities: &Probabilities, u: f64) -> Decision {
    let index = inverse_cdf(probabilities.probs.iter().copied().enumerate(), u);
    decision(probabilities, index)
}

/// Draws a (title, artwork) pair: the title with `title_u`, then its artwork with
/// `artwork_u(video_id)`. Pairs of one title must be adjacent in `candidates`, in a
/// stable order (artwork id), so that the sticky draw maps to the same artwork.
pub fn pick_pair(
    probabilities: &Probabilities,
    candidates: &[Arm],
    title_u: f64,
    artwork_u: impl FnOnce(i64) -> f64,
) -> Decision {
    let probs = &probabilities.probs;
    // Title runs: (start, end, mass).
    let mut runs: Vec<(usize, usize, f64)> = Vec::new();
    for (i, arm) in candidates.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if candidates[run.0].video_id == arm.video_id => {
                run.1 = i + 1;
                run.2 += probs[i];
            }
            _ => runs.push((i, i + 1, probs[i])),
        }
    }
    let run = inverse_cdf(runs.iter().map(|r| r.2).enumerate(), title_u);
    let (start, end, mass) = runs[run];
    let u = artwork_u(candidates[start].video_id);
    let within = inverse_cdf((start..end).map(|i| (i, probs[i] / mass)), u);
    decision(probabilities, within)
}

/// The uniform number of the sticky artwork draw for `member` and `video_id` at
/// `now_ms`. Periods are `stickiness_ms` long and start at an offset seeded by the
/// member and title, so members do not all switch artwork at the same instant.
pub fn sticky_unit(member: &str, video_id: i64, now_ms: i64, stickiness_ms: i64) -> f64 {
    let seed = stable_hash(&[member.as_bytes(), &video_id.to_le_bytes()]);
    let period = if stickiness_ms > 0 {
        let offset = (seed % stickiness_ms as u64) as i64;
        now_ms.saturating_add(offset).div_euclid(stickiness_ms)
    } else {
        now_ms
    };
    unit(stable_hash(&[member.as_bytes(), &video_id.to_le_bytes(), &period.to_le_bytes(), b"artwork"]))
}

fn decision(probabilities: &Probabilities, index: usize) -> Decision {
    Decision {
        index,
        propensity: probabilities.probs[index],
        explored: !probabilities.best.get(index).copied().unwrap_or(false),
    }
}

/// The first item whose cumulative weight exceeds `u`; the last one with positive
/// weight when rounding leaves `u` past the total.
fn inverse_cdf<I: Iterator<Item = (usize, f64)>>(items: I, u: f64) -> usize {
    let mut acc = 0.0;
    let mut last = None;
    for (index, weight) in items {
        if weight <= 0.0 {
            continue;
        }
        acc += weight;
        last = Some(index);
        if u < acc {
            return index;
        }
    }
    last.unwrap_or(0)
}

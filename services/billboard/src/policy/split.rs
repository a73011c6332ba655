//! The traffic split: which policy serves a member.
//!
//! By a stable hash of the member id, so a member stays with one policy (their
//! experience is consistent, and each policy's slice is a fixed random sample of
//! members, which is what replay and A/B comparisons need).

use super::PolicyKind;
use super::rng::{stable_hash, unit};

/// Shares of traffic per policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// `(policy, cumulative share)` in [`PolicyKind::ALL`] order, ending at 1.
    cumulative: Vec<(PolicyKind, f64)>,
}

impl Split {
    /// A split from shares (non-negative, summing to 1 within 1e-6; checked by the
    /// configuration). Policies with no share never serve.
    pub fn new(shares: &[(PolicyKind, f64)]) -> Self {
        let total: f64 = shares.iter().map(|(_, s)| s).sum();
        let mut cumulative = Vec::new();
        let mut acc = 0.0;
        for policy in PolicyKind::ALL {
            let share: f64 = shares.iter().filter(|(p, _)| *p == policy).map(|(_, s)| s).sum();
            if share > 0.0 {
                acc += share / total;
                cumulative.push((policy, acc));
            }
        }
        Self { cumulative }
    }

    /// The policy that serves `member`.
    pub fn policy(&self, member: &str) -> PolicyKind {
        let u = unit(stable_hash(&[member.as_bytes(), b"policy-split"]));
        self.cumulative
            .iter()
            .find(|(_, c)| u < *c)
            .or(self.cumulative.last())
            .map_or(PolicyKind::Uniform, |(p, _)| *p)
    }

    /// Every policy with a share, with its share.
    pub fn shares(&self) -> Vec<(PolicyKind, f64)> {
        let mut previous = 0.0;
        self.cumulative
            .iter()
            .map(|(p, c)| {
                let share = c - previous;
                previous = *c;
                (*p, share)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_split_by_share() {
        let split = Split::new(&[
            (PolicyKind::Linear, 0.85),
            (PolicyKind::Thompson, 0.10),
            (PolicyKind::Uniform, 0.05),
        ]);
        let mut counts = std::collections::HashMap::new();
        for i in 0..100_000 {
            *counts.entry(split.policy(&format!("member-{i}"))).or_insert(0) += 1;
        }
        assert!((84_000..86_000).contains(&counts[&PolicyKind::Linear]), "{counts:?}");
        assert!((9_400..10_600).contains(&counts[&PolicyKind::Thompson]), "{counts:?}");
        assert!((4_500..5_500).contains(&counts[&PolicyKind::Uniform]), "{counts:?}");
        assert_eq!(split.policy("m1"), split.policy("m1"));
    }
}

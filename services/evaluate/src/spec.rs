//! Target policies named the way configuration names them.
//!
//! `NAME` or `NAME(key=value, ...)`:
//!
//! - `linucb`, `thompson`, `epsilon_greedy`, `ucb1`, `uniform`: billboard's policy of that
//!   name with the configured parameters (`billboard.*`), any given here overriding them;
//!   trained on the logged outcomes before each decision, as it would have been online.
//! - `logging`: whatever logged each decision (weights 1): every estimator then gives the
//!   logged take rate, a sanity check of the pipeline.
//! - `snapshot(version=V[, policy=linucb])`: the model billboard served as version `V`,
//!   frozen. Billboard keeps only its latest statistics, not old models, so the snapshot
//!   is rebuilt from the logs: the outcomes known (reward window closed) when the first
//!   decision logged with model version `V` was made.
//!
//! Parameters: `alpha` (linucb), `ridge` (linucb), `draws` (thompson), `epsilon`
//! (epsilon_greedy), `c` (ucb1), and for every learned policy `floor` (the exploration
//! floor), `new_title_floor`, `new_title_impressions`, `prior_strength`,
//! `half_life_hours`.

use std::fmt;

use nearline_billboard::policy::{Discount, Params, PolicyKind};

use crate::{Error, Result};

/// What a target is.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetKind {
    /// A billboard policy trained along the logs.
    Policy(PolicyKind),
    /// The logging policy itself.
    Logging,
    /// A policy frozen at the model of a logged version.
    Snapshot {
        /// The model version.
        version: String,
        /// The policy reading that model.
        policy: PolicyKind,
    },
}

/// A parsed target policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What it is.
    pub kind: TargetKind,
    /// Its tunables (the configured ones with the spec's overrides).
    pub params: Params,
    /// The spec as given.
    pub spec: String,
}

impl Target {
    /// The billboard policy, unless this is `logging`.
    pub fn policy(&self) -> Option<PolicyKind> {
        match &self.kind {
            TargetKind::Policy(p) | TargetKind::Snapshot { policy: p, .. } => Some(*p),
            TargetKind::Logging => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

/// Parses `spec` over the configured `base` parameters.
pub fn parse(spec: &str, base: Params) -> Result<Target> {
    let bad = |why: String| Error::Spec(format!("--policy {spec:?}: {why}"));
    let text = spec.trim();
    let (name, args) = match text.find('(') {
        Some(open) => {
            let Some(inner) = text[open + 1..].strip_suffix(')') else {
                return Err(bad("missing the closing `)`".into()));
            };
            (text[..open].trim(), inner)
        }
        None => (text, ""),
    };
    let mut pairs = Vec::new();
    for part in args.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(bad(format!("`{part}` is not key=value")));
        };
        pairs.push((key.trim(), value.trim()));
    }
    let (kind, policy) = match name {
        "logging" => {
            if let Some((key, _)) = pairs.first() {
                return Err(bad(format!("logging takes no parameters (got `{key}`)")));
            }
            return Ok(Target { kind: TargetKind::Logging, params: base, spec: text.to_string() });
        }
        "snapshot" => {
            let version = take(&mut pairs, "version")
                .ok_or_else(|| bad("snapshot needs version=V (a logged explore.model_version)".into()))?;
            let policy = match take(&mut pairs, "policy") {
                Some(p) => PolicyKind::parse(p).ok_or_else(|| {
                    bad(format!("policy={p}: not a policy (linucb, thompson, epsilon_greedy, ucb1, uniform)"))
                })?,
                None => PolicyKind::Linear,
            };
            (TargetKind::Snapshot { version: version.to_string(), policy }, policy)
        }
        other => {
            let policy = PolicyKind::parse(other).ok_or_else(|| {
                bad(format!(
                    "unknown policy `{other}` (linucb, thompson, epsilon_greedy, ucb1, uniform, logging, snapshot)"
                ))
            })?;
            (TargetKind::Policy(policy), policy)
        }
    };
    let mut params = base;
    for (key, value) in pairs {
        let number = || -> Result<f64> {
            value
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| bad(format!("{key}={value}: must be a non-negative number")))
        };
        let unit = || -> Result<f64> {
            number().and_then(|x| {
                if x <= 1.0 { Ok(x) } else { Err(bad(format!("{key}={value}: must be in [0, 1]"))) }
            })
        };
        match (policy, key) {
            (PolicyKind::Linear, "alpha") => params.linucb_alpha = number()?,
            (PolicyKind::Linear, "ridge") => {
                params.ridge = number()?;
                if params.ridge == 0.0 {
                    return Err(bad("ridge=0: must be positive".into()));
                }
            }
            (PolicyKind::Thompson, "draws") => {
                params.thompson_draws = number()? as usize;
                if params.thompson_draws == 0 {
                    return Err(bad("draws=0: must be at least 1".into()));
                }
            }
            (PolicyKind::EpsilonGreedy, "epsilon") => params.epsilon = unit()?,
            (PolicyKind::Ucb1, "c") => params.ucb_c = number()?,
            (_, "floor") => params.min_propensity = unit()?,
            (_, "new_title_floor") => params.new_title_floor = unit()?,
            (_, "new_title_impressions") => params.new_title_impressions = number()? as u64,
            (_, "prior_strength") => params.prior_strength = number()?,
            (_, "half_life_hours") => params.discount = Discount::new((number()? * 3_600_000.0) as i64),
            (_, key) => {
                let own = match policy {
                    PolicyKind::Linear => "alpha, ridge, ",
                    PolicyKind::Thompson => "draws, ",
                    PolicyKind::EpsilonGreedy => "epsilon, ",
                    PolicyKind::Ucb1 => "c, ",
                    PolicyKind::Uniform => "",
                };
                return Err(bad(format!(
                    "{policy} has no parameter `{key}` (it takes {own}floor, new_title_floor, new_title_impressions, prior_strength, half_life_hours)"
                )));
            }
        }
    }
    Ok(Target { kind, params, spec: text.to_string() })
}

fn take<'a>(pairs: &mut Vec<(&str, &'a str)>, key: &str) -> Option<&'a str> {
    let i = pairs.iter().position(|(k, _)| *k == key)?;
    Some(pairs.remove(i).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies_with_parameters() {
        let base = Params::default();
        let t = parse("linucb(alpha=0.5)", base).unwrap();
        assert_eq!(t.kind, TargetKind::Policy(PolicyKind::Linear));
        assert_eq!(t.params.linucb_alpha, 0.5);
        let t = parse(" epsilon_greedy( epsilon = 0.05 , floor=0.01 ) ", base).unwrap();
        assert_eq!((t.params.epsilon, t.params.min_propensity), (0.05, 0.01));
        assert_eq!(parse("thompson", base).unwrap().params, base);
        assert_eq!(parse("ucb1(c=1)", base).unwrap().params.ucb_c, 1.0);
        assert_eq!(parse("logging", base).unwrap().kind, TargetKind::Logging);
        let t = parse("snapshot(version=17, policy=thompson, draws=50)", base).unwrap();
        assert_eq!(t.kind, TargetKind::Snapshot { version: "17".into(), policy: PolicyKind::Thompson });
        assert_eq!(t.params.thompson_draws, 50);
        assert_eq!(
            parse("snapshot(version=3)", base).unwrap().kind,
            TargetKind::Snapshot { version: "3".into(), policy: PolicyKind::Linear }
        );
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let base = Params::default();
        let err = |s: &str| parse(s, base).unwrap_err().to_string();
        assert!(
            err("linucb(epsilon=0.1)").contains("linucb has no parameter `epsilon`"),
            "{}",
            err("linucb(epsilon=0.1)")
        );
        assert!(err("epsilon_greedy(epsilon=2)").contains("epsilon=2: must be in [0, 1]"));
        assert!(err("linucb(alpha=-1)").contains("alpha=-1: must be a non-negative number"));
        assert!(err("greedy").contains("unknown policy `greedy`"));
        assert!(err("linucb(alpha=1").contains("closing"));
        assert!(err("snapshot").contains("needs version=V"));
        assert!(err("logging(x=1)").contains("no parameters"));
        assert!(err("ucb1(c)").contains("not key=value"));
    }
}

//! The result of an evaluation: a stable JSON document (documented in the crate's
//! README) and its table form.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// One evaluation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The target policy spec.
    pub target: String,
    /// Range start (inclusive), impression time in ms since the Unix epoch.
    pub from_ms: i64,
    /// Range end (exclusive).
    pub to_ms: i64,
    /// Outcomes read, duplicates included (the range selects among them).
    pub outcomes_read: u64,
    /// Re-emitted outcomes ignored (the first per (request_id, video_id) wins).
    pub duplicates_ignored: u64,
    /// An outcome trains the target this long after its impression.
    pub reward_delay_ms: i64,
    /// The target's model is rebuilt at most this often (event time).
    pub rebuild_every_ms: i64,
    /// Target model versions built along the logs.
    pub model_versions: u64,
    /// Bootstrap resamples (0: no intervals).
    pub bootstrap: usize,
    /// Seed of the bootstrap and the replay draws.
    pub seed: u64,
    /// Interval level.
    pub confidence: f64,
    /// Weight clip, when asked (`null`: weights are not clipped).
    pub clip: Option<f64>,
    /// Which decisions replay used: `uniform_slice` or `all_decisions`.
    pub replay_data: &'static str,
    /// Evaluated decisions whose artwork repeated an earlier draw for the same member
    /// and title (billboard's artwork stickiness; titles with several artworks only): the
    /// repeats within a stickiness of the last showing, an upper bound.
    pub sticky_repeats: u64,
    /// What may make the estimates less trustworthy than their intervals say.
    pub warnings: Vec<String>,
    /// Over every decision in the range.
    pub overall: SliceReport,
    /// Per slice of `--by`, in key order (empty without `--by`).
    pub slices: Vec<SliceReport>,
}

/// The estimates of one slice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SliceReport {
    /// Slice field to value (`{}` overall).
    pub slice: BTreeMap<String, String>,
    /// Decisions evaluated.
    pub decisions: u64,
    /// Mean logged reward (the logging policy's take rate).
    pub logged_take_rate: f64,
    /// `(Σw)² / Σw²` over the weights used.
    pub effective_sample_size: f64,
    /// The largest importance weight, before any clipping.
    pub max_weight: f64,
    /// Weights lowered by `--clip`.
    pub clipped_weights: u64,
    /// One per requested estimator, in the order replay, ips, snips, dr.
    pub estimates: Vec<EstimateReport>,
}

/// One estimator's estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimateReport {
    /// `replay`, `ips`, `snips` or `dr`.
    pub estimator: &'static str,
    /// Estimated take rate of the target (`null` with `error`).
    pub value: Option<f64>,
    /// Lower end of the 95 % bootstrap interval (`null` without bootstrap).
    pub low: Option<f64>,
    /// Upper end.
    pub high: Option<f64>,
    /// Replay only: decisions accepted by rejection sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<u64>,
    /// Replay only: decisions it could accept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eligible: Option<u64>,
    /// Why the data cannot support this estimate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// The overall estimates that the data could not support, as `estimator: why`.
    pub fn unsupported(&self) -> Vec<String> {
        self.overall
            .estimates
            .iter()
            .filter_map(|e| e.error.as_ref().map(|why| format!("{}: {why}", e.estimator)))
            .collect()
    }

    /// The report as an aligned text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "target {}  ·  decisions {}..{}  ·  {} outcomes read",
            self.target, self.from_ms, self.to_ms, self.outcomes_read
        );
        let clip = self.clip.map_or("weights not clipped".to_string(), |c| format!("weights CLIPPED at {c}"));
        let _ = writeln!(
            out,
            "reward delay {} s  ·  rebuild every {} s  ·  {} model versions  ·  {} bootstrap resamples (seed {})  ·  {clip}  ·  replay on {}",
            self.reward_delay_ms / 1000,
            self.rebuild_every_ms / 1000,
            self.model_versions,
            self.bootstrap,
            self.seed,
            self.replay_data
        );
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<24} {:<8} {:>9} {:>21} {:>9} {:>9} {:>10} {:>9}",
            "slice", "estimator", "estimate", "95% interval", "decisions", "logged", "ESS", "max w"
        );
        for s in std::iter::once(&self.overall).chain(&self.slices) {
            let name = if s.slice.is_empty() {
                "overall".to_string()
            } else {
                s.slice.values().cloned().collect::<Vec<_>>().join("/")
            };
            for e in &s.estimates {
                let (value, interval) = match (e.value, e.low, e.high) {
                    (Some(v), Some(l), Some(h)) => (format!("{v:.5}"), format!("[{l:.5}, {h:.5}]")),
                    (Some(v), _, _) => (format!("{v:.5}"), "-".to_string()),
                    _ => ("n/a".to_string(), "-".to_string()),
                };
                let _ = write!(
                    out,
                    "{name:<24} {:<8} {value:>9} {interval:>21} {:>9} {:>9.5} {:>10.1} {:>9.2}",
                    e.estimator, s.decisions, s.logged_take_rate, s.effective_sample_size, s.max_weight
                );
                if let (Some(a), Some(el)) = (e.accepted, e.eligible) {
                    let _ = write!(out, "  accepted {a}/{el}");
                }
                if s.clipped_weights > 0 {
                    let _ = write!(out, "  {} weights clipped", s.clipped_weights);
                }
                if let Some(why) = &e.error {
                    let _ = write!(out, "  ({why})");
                }
                let _ = writeln!(out);
            }
        }
        out
    }
}

//! The simulated world's truth: who asks, in which context, for which titles, and how
//! likely each (title, artwork) pair is to be played there.
//!
//! Play probabilities are a logistic function of a title effect, an artwork effect, and
//! interactions of the title with each context field and of the artwork with the
//! device: what is best depends on the context, but through effects that context
//! fields share, which is the structure a contextual policy can learn from.

use std::collections::HashMap;

use crate::policy::rng::Rng;
use crate::policy::{Arm, Cell, Daypart, TitleFacts};

const COUNTRIES: [&str; 8] = ["US", "BR", "FR", "IN", "JP", "DE", "MX", "GB"];
const DEVICES: [&str; 4] = ["tv", "mobile", "web", "tablet"];
const GENRES: [&str; 5] = ["drama", "comedy", "thriller", "documentary", "animation"];

/// The world's shape.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    /// Seed of the truth.
    pub seed: u64,
    /// Countries (at most 8).
    pub countries: usize,
    /// Devices (at most 4).
    pub devices: usize,
    /// Titles in the pool from the start.
    pub titles: usize,
    /// Artworks per title (cycled).
    pub artworks: Vec<usize>,
    /// Members.
    pub members: usize,
    /// Logit of the average play probability.
    pub base_logit: f64,
    /// Spread of title effects (logit).
    pub title_sd: f64,
    /// Spread of artwork effects (logit).
    pub artwork_sd: f64,
    /// Spread of title × context-field interactions (logit).
    pub interaction_sd: f64,
    /// When a new, appealing title joins the pool (event time), if ever.
    pub launch_at_ms: Option<i64>,
    /// When the appeal of a third of the titles is redrawn (event time), if ever.
    pub drift_at_ms: Option<i64>,
}

impl Default for WorldConfig {
    /// Tens of context buckets (5 countries × 3 devices × 4 dayparts = 60) and dozens of
    /// pairs per request (12 titles × 2–4 artworks = 36), a launch at 12 h and a drift at
    /// 16 h of a one-day run.
    fn default() -> Self {
        Self {
            seed: 42,
            countries: 5,
            devices: 3,
            titles: 12,
            artworks: vec![3, 2, 4],
            members: 20_000,
            base_logit: -3.0,
            title_sd: 0.4,
            artwork_sd: 0.25,
            interaction_sd: 0.5,
            launch_at_ms: Some(12 * 3_600_000),
            drift_at_ms: Some(16 * 3_600_000),
        }
    }
}

/// One title's truth.
#[derive(Debug, Clone)]
struct Title {
    video_id: i64,
    facts: TitleFacts,
    artworks: Vec<String>,
    /// Effect before and after the drift.
    effect: [f64; 2],
    artwork_effect: Vec<f64>,
    by_country: Vec<f64>,
    by_device: Vec<f64>,
    by_daypart: [f64; 4],
    artwork_by_device: Vec<Vec<f64>>,
    launch_at_ms: i64,
}

/// A request of the simulated world.
#[derive(Debug, Clone)]
pub struct Request {
    /// Who asks.
    pub member: String,
    /// In which context.
    pub cell: Cell,
    /// Every launched pair, adjacent per title, artworks in id order.
    pub candidates: Vec<Arm>,
}

/// The truth.
#[derive(Debug, Clone)]
pub struct World {
    config: WorldConfig,
    titles: Vec<Title>,
    country_weights: Vec<f64>,
}

impl World {
    /// The world of `config`.
    pub fn new(config: WorldConfig) -> Self {
        let mut rng = Rng::new(config.seed);
        let n = |rng: &mut Rng, sd: f64| rng.normal() * sd;
        let mut titles = Vec::new();
        let total = config.titles + usize::from(config.launch_at_ms.is_some());
        for t in 0..total {
            let launched_late = t == config.titles;
            let artworks = config.artworks[t % config.artworks.len()].max(1);
            let effect0 = if launched_late { config.title_sd * 1.5 } else { n(&mut rng, config.title_sd) };
            let genre_count = 1 + rng.below(2);
            let genres = (0..genre_count).map(|_| GENRES[rng.below(GENRES.len())].to_string()).collect();
            titles.push(Title {
                video_id: 80_100_000 + t as i64,
                facts: TitleFacts {
                    kind: Some(if rng.below(2) == 0 { "movie" } else { "series" }.into()),
                    genres,
                    early_read: None,
                },
                artworks: (0..artworks).map(|a| format!("art-{t}-{a}")).collect(),
                effect: [effect0, n(&mut rng, config.title_sd)],
                artwork_effect: (0..artworks).map(|_| n(&mut rng, config.artwork_sd)).collect(),
                by_country: (0..config.countries).map(|_| n(&mut rng, config.interaction_sd)).collect(),
                by_device: (0..config.devices).map(|_| n(&mut rng, config.interaction_sd)).collect(),
                by_daypart: [(); 4].map(|()| n(&mut rng, config.interaction_sd)),
                artwork_by_device: (0..artworks)
                    .map(|_| (0..config.devices).map(|_| n(&mut rng, config.artwork_sd)).collect())
                    .collect(),
                launch_at_ms: if launched_late { config.launch_at_ms.unwrap_or(0) } else { i64::MIN },
            });
        }
        // Larger countries ask more often (weights 1, 1/2, 1/3, ...).
        let country_weights = (0..config.countries).map(|i| 1.0 / (i + 1) as f64).collect();
        Self { config, titles, country_weights }
    }

    /// The catalog facts of every title.
    pub fn facts(&self) -> HashMap<i64, TitleFacts> {
        self.titles.iter().map(|t| (t.video_id, t.facts.clone())).collect()
    }

    /// A random request at `now_ms`.
    pub fn request(&self, rng: &mut Rng, now_ms: i64) -> Request {
        let member = format!("member-{}", rng.below(self.config.members));
        let total: f64 = self.country_weights.iter().sum();
        let mut u = rng.uniform() * total;
        let mut country = 0;
        for (i, w) in self.country_weights.iter().enumerate() {
            if u < *w {
                country = i;
                break;
            }
            u -= w;
        }
        let cell = Cell {
            country: COUNTRIES[country].into(),
            device: DEVICES[rng.below(self.config.devices)].into(),
            daypart: Daypart::ALL[rng.below(4)],
        };
        let candidates = self
            .titles
            .iter()
            .filter(|t| t.launch_at_ms <= now_ms)
            .flat_map(|t| t.artworks.iter().map(|a| Arm::new(t.video_id, a)))
            .collect();
        Request { member, cell, candidates }
    }

    /// The true probability that `arm` shown in `cell` at `now_ms` is played.
    pub fn play_probability(&self, cell: &Cell, arm: &Arm, now_ms: i64) -> f64 {
        let Some(title) = self.titles.iter().find(|t| t.video_id == arm.video_id) else { return 0.0 };
        let artwork = title.artworks.iter().position(|a| **a == *arm.artwork_id).unwrap_or(0);
        let country = COUNTRIES.iter().position(|c| **c == *cell.country).unwrap_or(0);
        let device = DEVICES.iter().position(|d| **d == *cell.device).unwrap_or(0);
        let drifted = self.config.drift_at_ms.is_some_and(|at| now_ms >= at) && title.video_id % 3 == 0;
        let logit = self.config.base_logit
            + title.effect[usize::from(drifted)]
            + title.artwork_effect[artwork]
            + title.by_country.get(country).copied().unwrap_or(0.0)
            + title.by_device.get(device).copied().unwrap_or(0.0)
            + title.by_daypart[cell.daypart.index()]
            + title.artwork_by_device[artwork].get(device).copied().unwrap_or(0.0);
        1.0 / (1.0 + (-logit).exp())
    }
}

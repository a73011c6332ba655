//! The demo's simulated day: billboard's seeded world (members, contexts, titles with
//! artworks and their true play probabilities, a launch) dressed as a
//! catalog, with the schedule the demo tells.
//!
//! Times here are relative to the episode's start (midnight UTC of the simulated day).
//! The truth comes from [`nearline_billboard::sim::World`]; what the catalog says
//! about a title (name, kind, genres) is the demo's, chosen so the launch has
//! comparable launches: the truth does not depend on it.

use nearline_billboard::policy::rng::Rng;
use nearline_billboard::policy::{Arm, Cell, Daypart};
use nearline_billboard::sim::{World, WorldConfig};

pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One episode: a simulated day.
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;
/// The new title launches.
pub(crate) const LAUNCH_AT_MS: i64 = 6 * HOUR_MS;
/// An upstream delay starts holding back the plays of [`DELAYED_REGION`]...
pub(crate) const DELAY_FROM_MS: i64 = 10 * HOUR_MS;
/// ...and delivers them four hours later.
pub(crate) const DELAY_UNTIL_MS: i64 = 14 * HOUR_MS;
/// The region whose plays are held back.
pub(crate) const DELAYED_REGION: &str = "eu-west";

/// A title as the catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct Title {
    pub(crate) video_id: i64,
    pub(crate) name: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) genres: &'static [&'static str],
    pub(crate) artworks: Vec<String>,
    /// Relative launch time.
    pub(crate) launch_ms: i64,
}

/// Names, kinds and genres, by the world's title index; the last one is the launch.
/// Six series share a genre with it (drama or thriller), so its early read has
/// comparable launches from the start of the day.
const CATALOG: [(&str, &str, &[&str]); 13] = [
    ("Northern Lights", "series", &["drama", "thriller"]),
    ("Paper Moons", "movie", &["comedy"]),
    ("The Quiet Shore", "series", &["drama"]),
    ("Iron Orchard", "movie", &["thriller"]),
    ("Small Hours", "series", &["thriller"]),
    ("Wild Kingdoms", "series", &["documentary"]),
    ("Glass Harbor", "movie", &["drama"]),
    ("Pixel Hearts", "movie", &["animation", "comedy"]),
    ("Deep Field", "series", &["documentary", "drama"]),
    ("Last Train Home", "movie", &["drama", "thriller"]),
    ("Copper Sky", "series", &["drama"]),
    ("Lantern Bay", "series", &["comedy", "drama"]),
    ("The Long Night", "series", &["thriller", "drama"]),
];

/// A request of the simulated day, in the context the client would send.
#[derive(Debug, Clone)]
pub(crate) struct Visit {
    pub(crate) member: String,
    pub(crate) country: String,
    pub(crate) device: String,
    pub(crate) region: &'static str,
    pub(crate) hour_of_day: u32,
    pub(crate) cell: Cell,
}

/// The world and its catalog.
#[derive(Debug)]
pub(crate) struct Story {
    world: World,
    pub(crate) titles: Vec<Title>,
}

impl Story {
    /// The story of `seed` with `members` members.
    pub(crate) fn new(seed: u64, members: usize) -> Self {
        let world = World::new(WorldConfig {
            seed,
            members: members.max(1),
            launch_at_ms: Some(LAUNCH_AT_MS),
            // No drift: it would redraw the launch's appeal (a third of the titles
            // change), and the day's story is the launch and the delay.
            drift_at_ms: None,
            ..WorldConfig::default()
        });
        // The world's arms, read from a request after the launch (every title then).
        let arms = world.request(&mut Rng::new(0), DAY_MS).candidates;
        let mut titles: Vec<Title> = Vec::new();
        for arm in arms {
            match titles.last_mut() {
                Some(t) if t.video_id == arm.video_id => t.artworks.push(arm.artwork_id.to_string()),
                _ => {
                    let (name, kind, genres) = CATALOG[titles.len() % CATALOG.len()];
                    titles.push(Title {
                        video_id: arm.video_id,
                        name,
                        kind,
                        genres,
                        artworks: vec![arm.artwork_id.to_string()],
                        launch_ms: 0,
                    });
                }
            }
        }
        if let Some(last) = titles.last_mut() {
            last.launch_ms = LAUNCH_AT_MS;
        }
        Self { world, titles }
    }

    /// The title that launches during the day.
    pub(crate) fn launched(&self) -> &Title {
        self.titles.last().expect("the world has titles")
    }

    /// The titles launched by `at_ms`.
    pub(crate) fn live(&self, at_ms: i64) -> impl Iterator<Item = &Title> {
        self.titles.iter().filter(move |t| t.launch_ms <= at_ms)
    }

    /// A random visit at `at_ms`: the world's member, country and device, and the local
    /// hour of the country's time zone at that moment (the world draws its daypart at
    /// random; here it follows the simulated clock).
    pub(crate) fn visit(&self, rng: &mut Rng, at_ms: i64) -> Visit {
        let request = self.world.request(rng, at_ms);
        let country = request.cell.country.to_string();
        let utc_hour = at_ms.div_euclid(HOUR_MS).rem_euclid(24);
        let hour_of_day = (utc_hour + utc_offset_hours(&country)).rem_euclid(24) as u32;
        let daypart = Daypart::of_hour(hour_of_day).expect("0..24");
        let cell = Cell { daypart, ..request.cell };
        Visit {
            member: request.member,
            region: region(&country),
            device: cell.device.to_string(),
            country,
            hour_of_day,
            cell,
        }
    }

    /// The true probability that `video_id` with `artwork_id` shown in `cell` at `at_ms`
    /// is played.
    pub(crate) fn play_probability(&self, cell: &Cell, video_id: i64, artwork_id: &str, at_ms: i64) -> f64 {
        self.world.play_probability(cell, &Arm::new(video_id, artwork_id), at_ms)
    }

    /// The schedule, as announced.
    pub(crate) fn schedule(&self) -> Vec<(i64, String)> {
        let launched = self.launched();
        vec![
            (
                0,
                format!(
                    "{} titles in the catalog and the billboard pool; traffic starts",
                    self.titles.len() - 1
                ),
            ),
            (
                LAUNCH_AT_MS,
                format!(
                    "\"{}\" ({}) launches; its early read fills in hour by hour",
                    launched.name, launched.video_id
                ),
            ),
            (DELAY_FROM_MS, format!("an upstream delay starts holding back {DELAYED_REGION}'s plays")),
            (
                DELAY_UNTIL_MS,
                format!("the delay ends: four hours of {DELAYED_REGION}'s plays arrive at once"),
            ),
            (DAY_MS, "end of the day: the demo reconciles the counts against a batch recount".to_string()),
        ]
    }
}

/// Hours ahead of UTC in each simulated country (standard time).
fn utc_offset_hours(country: &str) -> i64 {
    match country {
        "US" | "MX" => -6,
        "BR" => -3,
        "FR" | "DE" => 1,
        "GB" => 0,
        "IN" => 5,
        "JP" => 9,
        _ => 0,
    }
}

/// The region an event is logged in.
pub(crate) fn region(country: &str) -> &'static str {
    match country {
        "US" | "MX" => "us-east",
        "BR" => "sa-east",
        "FR" | "DE" | "GB" => "eu-west",
        _ => "ap-south",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launch_has_comparables_and_every_title_artworks() {
        let story = Story::new(42, 1000);
        assert_eq!(story.titles.len(), 13);
        let launched = story.launched();
        assert_eq!(launched.launch_ms, LAUNCH_AT_MS);
        let comparables = story.titles[..12]
            .iter()
            .filter(|t| t.kind == launched.kind && t.genres.iter().any(|g| launched.genres.contains(g)))
            .count();
        assert!(comparables >= 3, "{comparables}");
        assert!(story.titles.iter().all(|t| !t.artworks.is_empty()));
        assert_eq!(story.live(0).count(), 12);
        assert_eq!(story.live(LAUNCH_AT_MS).count(), 13);
    }

    #[test]
    fn visits_follow_the_local_clock() {
        let story = Story::new(42, 1000);
        let mut rng = Rng::new(1);
        for _ in 0..50 {
            let v = story.visit(&mut rng, 20 * HOUR_MS);
            let expected = (20 + utc_offset_hours(&v.country)).rem_euclid(24) as u32;
            assert_eq!(v.hour_of_day, expected);
            assert_eq!(v.cell.daypart, Daypart::of_hour(expected).unwrap());
        }
    }
}

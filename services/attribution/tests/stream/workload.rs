//! Test workloads (deterministic, the same on every run) and the reference counts,
//! computed directly from the DESIGN §3 definitions.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use nearline_attribution::join::JoinConfig;
use nearline_eventlog::partition_for_key;

pub(crate) const PARTITIONS: i32 = 4;
pub(crate) const MINUTE: i64 = 60_000;
pub(crate) const HOUR: i64 = 60 * MINUTE;
/// 2026-11-20T00:00:00Z.
pub(crate) const T0: i64 = 1_795_132_800_000;

/// A test event, in the few fields the counts depend on.
#[derive(Debug, Clone)]
pub(crate) enum Ev {
    Impression {
        request: String,
        video: i64,
        t: i64,
        country: &'static str,
        device: &'static str,
        canvas: &'static str,
    },
    Play {
        request: String,
        video: i64,
        t: i64,
        country: &'static str,
        device: &'static str,
    },
}

impl Ev {
    /// Where the harness logs this event unless the test says otherwise.
    pub(crate) fn default_region(&self) -> &'static str {
        match self {
            Ev::Impression { .. } => IMPRESSION_REGION,
            Ev::Play { .. } => PLAY_REGION,
        }
    }

    pub(crate) fn request(&self) -> &str {
        match self {
            Ev::Impression { request, .. } | Ev::Play { request, .. } => request,
        }
    }

    pub(crate) fn time(&self) -> i64 {
        match self {
            Ev::Impression { t, .. } | Ev::Play { t, .. } => *t,
        }
    }
}

/// A small deterministic generator (the workload must be the same on every run).
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next(items.len() as u64) as usize]
    }
}

/// Impressions over 3 hours; some played within the window, some outside it, some plays
/// without any impression; published roughly in time order with jitter and duplicates.
pub(crate) fn workload(seed: u64, requests: usize) -> Vec<Ev> {
    let mut rng = Lcg(seed);
    let mut events = Vec::new();
    for r in 0..requests {
        let request = format!("req-{seed}-{r}");
        let t = T0 + rng.next(3 * HOUR as u64) as i64;
        let country = rng.pick(&["US", "CA", "BR"]);
        let device = rng.pick(&["tv", "phone"]);
        let video = 100 + rng.next(5) as i64;
        match rng.next(10) {
            // A play with no impression at all.
            0 => events.push(Ev::Play { request, video, t, country, device }),
            k => {
                let canvas = rng.pick(&["row", "billboard"]);
                events.push(Ev::Impression { request: request.clone(), video, t, country, device, canvas });
                if k <= 4 {
                    // Mostly inside [t - 60 s, t + 1 h], a few just outside either end.
                    let dt = rng.next(75 * MINUTE as u64) as i64 - 2 * MINUTE;
                    events.push(Ev::Play { request, video, t: t + dt, country, device });
                }
            }
        }
    }
    events.sort_by_key(Ev::time);
    // Reorder within ~20 minutes and duplicate one event in ten.
    let mut jittered: Vec<(i64, Ev)> = Vec::new();
    for ev in events {
        let at = ev.time() + rng.next(20 * MINUTE as u64) as i64;
        if rng.next(10) == 0 {
            jittered.push((at + rng.next(5 * MINUTE as u64) as i64, ev.clone()));
        }
        jittered.push((at, ev));
    }
    jittered.sort_by_key(|(at, _)| *at);
    jittered.into_iter().map(|(_, ev)| ev).collect()
}

/// The first request id `{prefix}-{i}` that lands on `partition`.
pub(crate) fn request_on(prefix: &str, partition: i32) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|r| partition_for_key(r.as_bytes(), PARTITIONS) == partition)
        .unwrap()
}

/// An impression and its play per partition far in the future, so both watermarks of
/// every partition pass every deadline and the stream settles all unattributed plays.
pub(crate) fn sentinels(after: i64) -> Vec<Ev> {
    (0..PARTITIONS)
        .flat_map(|p| {
            let request = request_on("sentinel", p);
            let (video, t, country, device) = (999, after + 10 * HOUR, "US", "tv");
            [
                Ev::Impression { request: request.clone(), video, t, country, device, canvas: "row" },
                Ev::Play { request, video, t, country, device },
            ]
        })
        .collect()
}

pub(crate) type CellKey = (i64, i64, String, String, String, String);
pub(crate) type UnattributedKey = (i64, i64, String, String, String);

/// Where the harness logs an event unless the test says otherwise (`event_record`).
pub(crate) const IMPRESSION_REGION: &str = "us-east";
/// Where the harness logs a play unless the test says otherwise.
pub(crate) const PLAY_REGION: &str = "eu-west";

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) cells: BTreeMap<CellKey, (i64, i64)>,
    pub(crate) unattributed: BTreeMap<UnattributedKey, i64>,
}

/// DESIGN §3, written out directly over the whole input, logged where the harness logs
/// by default.
pub(crate) fn reference(events: &[Ev], config: &JoinConfig) -> Counts {
    let logged: Vec<(&str, &Ev)> = events.iter().map(|ev| (ev.default_region(), ev)).collect();
    reference_logged(&logged, config)
}

/// DESIGN §3 over events each logged in the region named beside it.
pub(crate) fn reference_logged(events: &[(&str, &Ev)], config: &JoinConfig) -> Counts {
    let epoch_start = |t: i64| t.div_euclid(config.epoch_len_ms) * config.epoch_len_ms;
    let mut impressions: BTreeMap<CellKey, BTreeSet<String>> = BTreeMap::new();
    let mut plays: BTreeMap<CellKey, BTreeSet<String>> = BTreeMap::new();
    let mut unattributed: BTreeMap<UnattributedKey, BTreeSet<String>> = BTreeMap::new();
    let mut by_key: HashMap<(String, i64), Vec<(&str, &Ev)>> = HashMap::new();
    for &(region, ev) in events {
        if let Ev::Impression { request, video, .. } = ev {
            by_key.entry((request.clone(), *video)).or_default().push((region, ev));
        }
    }
    let cell = |video: i64, t: i64, country: &str, device: &str, canvas: &str, region: &str| -> CellKey {
        let text = str::to_string;
        (video, epoch_start(t), text(country), text(device), text(canvas), text(region))
    };
    for &(region, ev) in events {
        if let Ev::Impression { request, video, t, country, device, canvas } = ev {
            impressions
                .entry(cell(*video, *t, country, device, canvas, region))
                .or_default()
                .insert(request.clone());
        }
    }
    for &(region, ev) in events {
        let Ev::Play { request, video, t: pt, country, device } = ev else { continue };
        let mut attributed = false;
        for &(imp_region, imp) in by_key.get(&(request.clone(), *video)).into_iter().flatten() {
            let Ev::Impression { t, country: ic, device: id, canvas, .. } = imp else { continue };
            if *t - config.skew_ms <= *pt && *pt <= *t + config.attribution_window_ms {
                attributed = true;
                plays
                    .entry(cell(*video, *t, ic, id, canvas, imp_region))
                    .or_default()
                    .insert(request.clone());
            }
        }
        if !attributed {
            let key = (*video, epoch_start(*pt), country.to_string(), device.to_string(), region.to_string());
            unattributed.entry(key).or_default().insert(request.clone());
        }
    }
    let mut counts = Counts::default();
    for (cell, set) in impressions {
        counts.cells.entry(cell).or_default().0 = set.len() as i64;
    }
    for (cell, set) in plays {
        counts.cells.entry(cell).or_default().1 = set.len() as i64;
    }
    counts.unattributed = unattributed.into_iter().map(|(k, s)| (k, s.len() as i64)).collect();
    counts
}

/// Ten hours of traffic, five impressions for every play, in event-time order.
pub(crate) fn backlog(requests: usize) -> Vec<Ev> {
    let mut rng = Lcg(7);
    let mut events = Vec::new();
    for r in 0..requests {
        let request = format!("backlog-{r}");
        let t = T0 + (r as i64 * 10 * HOUR) / requests as i64;
        let (country, device, canvas) = ("US", "tv", "row");
        let video = 100 + rng.next(3) as i64;
        events.push(Ev::Impression { request: request.clone(), video, t, country, device, canvas });
        if r % 5 == 0 {
            let play_t = t + rng.next(30 * MINUTE as u64) as i64;
            events.push(Ev::Play { request, video, t: play_t, country, device });
        }
    }
    events.sort_by_key(Ev::time);
    events
}

/// Three days of traffic as clients deliver it after an outage: each event arrives with
/// a delay (80 % within 5 minutes, 15 % up to 2 hours, 5 % 3 to 5 hours), one in twenty
/// twice, plays often before their impressions, some on the skew and window edges. The
/// result is in arrival order; every event arrives within 5 h of its event time, so
/// nothing that arrived before it is more than the allowed 6 h newer: none is too late.
pub(crate) fn disorderly_backlog(seed: u64, requests: usize) -> Vec<Ev> {
    let mut rng = Lcg(seed);
    let mut events = Vec::new();
    for r in 0..requests {
        let request = format!("dis-{seed}-{r}");
        let t = T0 + rng.next(72 * HOUR as u64) as i64;
        let country = rng.pick(&["US", "CA", "BR", "DE"]);
        let device = rng.pick(&["tv", "phone", "web"]);
        let canvas = rng.pick(&["row", "billboard", "search"]);
        let video = 100 + rng.next(11) as i64;
        match rng.next(20) {
            0 => events.push(Ev::Play { request, video, t, country, device }),
            k => {
                events.push(Ev::Impression { request: request.clone(), video, t, country, device, canvas });
                if k <= 8 {
                    let dt = match rng.next(10) {
                        // Exactly on an edge: the skew, the window, or just outside either.
                        0 => rng.pick(&[-MINUTE, HOUR, -MINUTE - 1, HOUR + 1]),
                        _ => rng.next(70 * MINUTE as u64) as i64 - 2 * MINUTE,
                    };
                    events.push(Ev::Play { request, video, t: t + dt, country, device });
                }
            }
        }
    }
    let mut arrivals: Vec<(i64, Ev)> = Vec::new();
    for ev in events {
        let delay = |rng: &mut Lcg| match rng.next(100) {
            0..80 => rng.next(5 * MINUTE as u64) as i64,
            80..95 => rng.next(2 * HOUR as u64) as i64,
            _ => 3 * HOUR + rng.next(2 * HOUR as u64) as i64,
        };
        let at = ev.time() + delay(&mut rng);
        if rng.next(20) == 0 {
            arrivals.push((ev.time() + delay(&mut rng), ev.clone()));
        }
        arrivals.push((at, ev));
    }
    arrivals.sort_by_key(|(at, _)| *at);
    arrivals.into_iter().map(|(_, ev)| ev).collect()
}

//! The driver: runs the simulated day minute by minute through the public APIs.
//!
//! Each simulated minute: the catalog step when titles launch (ingest's catalog with
//! the artworks, then billboard's pool); billboard decisions for homepage visits and artwork
//! decisions for rows, concurrently; each decision's impression logged with its
//! `explore` block copied as it is; for each impression a play drawn from the world's
//! true probability, with a realistic delay (seconds to most of an hour), sent once the
//! simulated clock reaches it, except that the upstream delay holds back one region's
//! plays for four hours and then delivers them at once. Everything ingest acknowledges
//! is archived. The clock then waits until `speed` × real time has caught up (and never
//! runs ahead of it: when the machine cannot keep up, the day simply takes longer).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nearline_billboard::policy::rng::{Rng, mix64};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::archive::Archive;
use super::client::Client;
use super::state::{Pending, State};
use super::story::{self, DAY_MS, MINUTE_MS, Story, Title, Visit};

/// Mixed into the seed of each minute's draws.
const MINUTE_SALT: u64 = 0xde30_0000_0000_0001;
/// Titles in one row of the homepage (one artwork decision each).
const ROW_TITLES: usize = 6;
/// Save the state every this many simulated minutes (and on stop).
const SAVE_EVERY: i64 = 10;

/// Counters the status line reads.
#[derive(Debug, Default)]
pub(crate) struct Live {
    /// The simulated minute being run.
    pub(crate) minute: AtomicI64,
    /// Events acknowledged by ingest.
    pub(crate) events: AtomicU64,
    /// Decisions answered by billboard (each choice of a row counts).
    pub(crate) decisions: AtomicU64,
}

/// The driver of one episode.
#[derive(Debug)]
pub(crate) struct Driver {
    pub(crate) story: Story,
    pub(crate) client: Client,
    pub(crate) state: State,
    pub(crate) dir: std::path::PathBuf,
    pub(crate) archive: Archive,
    pub(crate) speed: f64,
    pub(crate) live: Arc<Live>,
}

/// A decision as the driver needs it.
struct Shown {
    request_id: String,
    video_id: i64,
    artwork_id: String,
    explore: Value,
}

impl Driver {
    /// Runs minutes until the end of the day or `stop`; saves the state either way.
    /// Calls `announce` with each scheduled moment of the story as it is reached.
    pub(crate) async fn run(
        &mut self,
        stop: &CancellationToken,
        announce: &dyn Fn(String),
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let first = self.state.minute;
        let schedule = self.story.schedule();
        while self.state.minute < DAY_MS / MINUTE_MS && !stop.is_cancelled() {
            let minute = self.state.minute;
            let at = minute * MINUTE_MS;
            for (_, line) in schedule.iter().filter(|(when, _)| *when == at) {
                announce(format!("{}  {line}", super::of_day(at)));
            }
            self.live.minute.store(minute, Ordering::Relaxed);
            self.minute(minute).await.with_context(|| format!("simulated minute {minute}"))?;
            self.state.minute += 1;
            if self.state.minute % SAVE_EVERY == 0 {
                self.state.save(&self.dir)?;
            }
            let due =
                started + Duration::from_secs_f64((self.state.minute - first) as f64 * 60.0 / self.speed);
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep_until(due.into()) => {}
            }
        }
        self.live.minute.store(self.state.minute, Ordering::Relaxed);
        self.state.save(&self.dir)
    }

    async fn minute(&mut self, minute: i64) -> anyhow::Result<()> {
        let at = minute * MINUTE_MS;
        let launching: Vec<Title> = self.story.titles.iter().filter(|t| t.launch_ms == at).cloned().collect();
        if !launching.is_empty() {
            let pool: Vec<i64> = self.story.live(at).map(|t| t.video_id).collect();
            publish_catalog(&self.client, &launching, &pool, self.state.start_ms).await?;
        }
        let live: Vec<i64> = self.story.live(at).map(|t| t.video_id).collect();
        let mut rng = Rng::new(mix64(self.state.seed ^ MINUTE_SALT ^ minute as u64));
        // Who visits this minute, drawn before any answer so the draws do not depend on
        // how the services answer.
        let traffic = self.state.traffic as usize;
        let billboard: Vec<(Visit, i64)> =
            (0..traffic).map(|_| (self.story.visit(&mut rng, at), rng.below(60_000) as i64)).collect();
        let rows: Vec<(Visit, i64, Vec<i64>)> = (0..traffic.div_ceil(4))
            .map(|_| {
                let visit = self.story.visit(&mut rng, at);
                let offset = rng.below(60_000) as i64;
                let mut titles = live.clone();
                for i in 0..ROW_TITLES.min(titles.len()) {
                    let j = i + rng.below(titles.len() - i);
                    titles.swap(i, j);
                }
                titles.truncate(ROW_TITLES);
                (visit, offset, titles)
            })
            .collect();

        // Decisions, concurrently; answers are put back in request order.
        let mut calls = JoinSet::new();
        for (i, (visit, _)) in billboard.iter().enumerate() {
            let (client, body) =
                (self.client.clone(), json!({"member_id": visit.member, "context": context(visit)}));
            calls.spawn(async move {
                (i, client.post(format!("{}/v1/billboard", client.billboard), &body).await)
            });
        }
        for (i, (visit, _, titles)) in rows.iter().enumerate() {
            let body = json!({"member_id": visit.member, "context": context(visit), "video_ids": titles});
            let client = self.client.clone();
            calls.spawn(async move {
                (
                    billboard_len_marker(i),
                    client.post(format!("{}/v1/artwork", client.billboard), &body).await,
                )
            });
        }
        let mut billboard_answers: Vec<Option<Value>> = vec![None; billboard.len()];
        let mut row_answers: Vec<Option<Value>> = vec![None; rows.len()];
        while let Some(joined) = calls.join_next().await {
            let (i, answer) = joined.context("a decision task panicked")?;
            let answer = answer?;
            match row_index(i) {
                Some(r) => row_answers[r] = Some(answer),
                None => billboard_answers[i] = Some(answer),
            }
        }

        let base = self.state.start_ms;
        let mut events = Vec::new();
        let mut decisions = 0u64;
        for (k, ((visit, offset), answer)) in billboard.iter().zip(billboard_answers).enumerate() {
            let answer = answer.expect("every call answered");
            let shown = Shown {
                request_id: text(&answer, "request_id")?,
                video_id: answer["video_id"].as_i64().context("a billboard answer without video_id")?,
                artwork_id: text(&answer, "artwork_id")?,
                explore: answer["explore"].clone(),
            };
            decisions += 1;
            let id = format!("b{minute}-{k}");
            self.show(&mut rng, &mut events, &id, visit, at + offset, "billboard", &shown, base);
        }
        for (k, ((visit, offset, _), answer)) in rows.iter().zip(row_answers).enumerate() {
            let answer = answer.expect("every call answered");
            let request_id = text(&answer, "request_id")?;
            for (j, choice) in
                answer["choices"].as_array().context("an artwork answer without choices")?.iter().enumerate()
            {
                let shown = Shown {
                    request_id: request_id.clone(),
                    video_id: choice["video_id"].as_i64().context("an artwork choice without video_id")?,
                    artwork_id: text(choice, "artwork_id")?,
                    explore: choice["explore"].clone(),
                };
                decisions += 1;
                let id = format!("r{minute}-{k}-{j}");
                self.show(&mut rng, &mut events, &id, visit, at + offset + j as i64, "row", &shown, base);
            }
        }
        self.state.totals.impressions += events.len() as u64;

        // The plays whose time has come (and, once the delay ends, every held one).
        let until = at + MINUTE_MS;
        let (due, waiting): (Vec<Pending>, Vec<Pending>) =
            std::mem::take(&mut self.state.pending).into_iter().partition(|p| p.send_ms < until);
        self.state.pending = waiting;
        self.state.totals.plays += due.len() as u64;
        events.extend(due.into_iter().map(|p| p.event));

        for chunk in events.chunks(5_000) {
            self.client.post_events(chunk).await?;
            self.archive.append(chunk)?;
        }
        self.state.totals.events += events.len() as u64;
        self.state.totals.decisions += decisions;
        self.live.events.fetch_add(events.len() as u64, Ordering::Relaxed);
        self.live.decisions.fetch_add(decisions, Ordering::Relaxed);
        Ok(())
    }

    /// Logs the impression of `shown` and schedules its play, if the world says it is
    /// played.
    #[allow(clippy::too_many_arguments)]
    fn show(
        &mut self,
        rng: &mut Rng,
        events: &mut Vec<Value>,
        id: &str,
        visit: &Visit,
        at: i64,
        canvas: &str,
        shown: &Shown,
        base: i64,
    ) {
        events.push(json!({
            "type": "impression",
            "event_id": format!("i{id}"),
            "request_id": shown.request_id,
            "member_id": visit.member,
            "video_id": shown.video_id,
            "artwork_id": shown.artwork_id,
            "canvas": canvas,
            "country": visit.country,
            "device": visit.device,
            "region": visit.region,
            "event_time": base + at,
            "explore": shown.explore,
        }));
        let p = self.story.play_probability(&visit.cell, shown.video_id, &shown.artwork_id, at);
        if rng.uniform() >= p {
            return;
        }
        // Most plays start within minutes, some much later (still inside the one-hour
        // attribution window); an exponential delay with a floor.
        let delay = 15_000
            + (-(1.0 - rng.uniform()).ln() * 4.0 * MINUTE_MS as f64).min(50.0 * MINUTE_MS as f64) as i64;
        let play_at = at + delay;
        let held = visit.region == story::DELAYED_REGION
            && (story::DELAY_FROM_MS..story::DELAY_UNTIL_MS).contains(&play_at);
        let send_ms = if held { story::DELAY_UNTIL_MS } else { play_at };
        self.state.pending.push(Pending {
            send_ms,
            held,
            event: json!({
                "type": "play",
                "event_id": format!("p{id}"),
                "request_id": shown.request_id,
                "member_id": visit.member,
                "video_id": shown.video_id,
                "country": visit.country,
                "device": visit.device,
                "region": visit.region,
                "event_time": base + play_at,
                "watch_seconds": 60 + rng.below(3_600),
            }),
        });
    }
}

/// Row answers are told apart from billboard answers by a high bit in the index.
const ROW_BIT: usize = 1 << 40;

fn billboard_len_marker(row: usize) -> usize {
    row | ROW_BIT
}

fn row_index(i: usize) -> Option<usize> {
    (i & ROW_BIT != 0).then_some(i & !ROW_BIT)
}

fn context(visit: &Visit) -> Value {
    json!({"country": visit.country, "device": visit.device, "hour_of_day": visit.hour_of_day})
}

fn text(answer: &Value, field: &str) -> anyhow::Result<String> {
    answer[field].as_str().map(str::to_owned).with_context(|| format!("an answer without {field}: {answer}"))
}

/// The catalog step, in one place: each title into ingest's catalog with its launch
/// time and artworks, then the billboard pool.
pub(crate) async fn publish_catalog(
    client: &Client,
    titles: &[Title],
    pool: &[i64],
    start_ms: i64,
) -> anyhow::Result<()> {
    for title in titles {
        let video = json!({
            "title": title.name,
            "kind": title.kind,
            "genres": title.genres,
            "launch_at": start_ms + title.launch_ms,
            "artworks": title.artworks,
        });
        client.put(format!("{}/v1/videos/{}", client.ingest, title.video_id), &video).await?;
    }
    client.put(format!("{}/v1/billboard/pool", client.billboard), &json!({"video_ids": pool})).await?;
    Ok(())
}

//! The red/black drill (DESIGN §4, docs/operations.md): server group v001 of ingest,
//! attribution, insights and billboard as separate `nearline serve` processes takes
//! steady traffic; v002 is started next to it (same consumer groups), waited for until
//! ready, traffic moves to it, and v001 gets SIGTERM; later the same again from v002 to
//! v003 (the rollback: a new server group of the previous version). The traffic is plain
//! row impressions and plays, and billboard decisions whose impressions (with their
//! explore blocks) and plays are logged, so outcomes flow to billboard's learner.
//!
//! Asserted: every event ingest acknowledged (200) is counted exactly once (insights'
//! totals equal the load generator's own tally), clients of the group with traffic see
//! no 5xx and no connection error, a large batch still in flight at the old ingest when
//! SIGTERM arrives is answered 200 and counted, each draining process exits cleanly
//! within its grace period, the old attribution leaves its consumer group (the
//! hand-over is quicker than the session timeout), and billboard's statistics equal
//! those of one billboard that learned the same outcomes without any swap. Printed: the
//! hand-over times, from SIGTERM of the old attribution process to the new one owning
//! every partition (from its `partition assigned` log lines), and of billboard's
//! learner's lease.
//!
//! Runs its own tansu broker (as the chaos tests do) and needs `tansu` on the PATH.

#[allow(dead_code)]
#[path = "chaos/infra.rs"]
mod infra;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use infra::{Backends, Broker, PARTITIONS, SESSION_TIMEOUT, wait_drained};
use nearline_eventlog::{EventLog, TopicPartition, topics};
use nearline_testkit::{TestDatabase, wait_for};
use serde_json::{Value, json};

/// Grace period of every process in the drill (`<service>.grace_period`).
const GRACE: Duration = Duration::from_secs(5);
const VIDEOS: i64 = 4;
/// Requests (each an impression; every third also a play) per ingest batch.
const BATCH: u64 = 10;
const GENERATORS: usize = 2;
const PAUSE: Duration = Duration::from_millis(40);
const STEADY: Duration = Duration::from_secs(4);
/// Requests in the batch in flight at the old ingest when it gets SIGTERM.
const IN_FLIGHT: u64 = 3_000;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as i64
}

/// A `nearline serve <service>` process of one server group.
struct Served {
    name: String,
    child: Child,
    http: String,
    /// The JSON log lines it wrote to stderr, with when they were read.
    log: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Served {
    fn start(backends: &Backends, service: &str, group: &str) -> Served {
        let section = service.to_uppercase();
        let name = format!("{service}-{group}");
        let mut child = backends
            .command(&["serve", service])
            // Outcomes of impressions without a play within seconds, not minutes, so
            // billboard learns from both kinds during the drill.
            .env("NEARLINE__ATTRIBUTION__REWARD_WINDOW", "2s")
            .env("NEARLINE__ATTRIBUTION__REWARD_GRACE", "1s")
            .env(format!("NEARLINE__{section}__HTTP_PORT"), "0")
            .env(format!("NEARLINE__{section}__GRPC_PORT"), "0")
            .env(format!("NEARLINE__{section}__GRACE_PERIOD"), format!("{}s", GRACE.as_secs()))
            .env("NEARLINE__TELEMETRY__LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nearline starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("nearline prints its addresses");
        let http = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: address line {line:?}"))
            .to_string();
        std::thread::spawn(move || for _ in stdout.lines() {});
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sink, stderr, who) = (log.clone(), child.stderr.take().expect("piped stderr"), name.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let at = Instant::now();
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        // (Not-ready answers to /readyz are logged as errors; they are expected.)
                        let probe = value["span"]["route"] == "/readyz";
                        if matches!(value["level"].as_str(), Some("WARN" | "ERROR")) && !probe {
                            eprintln!("[{who}] {line}");
                        }
                        sink.lock().unwrap().push((at, value));
                    }
                    Err(_) => eprintln!("[{who}] {line}"),
                }
            }
        });
        Served { name, child, http, log }
    }

    async fn is_ready(&self) -> bool {
        let response = reqwest::get(format!("{}/readyz", self.http)).await;
        response.is_ok_and(|r| r.status().is_success())
    }

    fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM to {}", self.name);
    }

    /// Waits for the process to exit; how long that took since `since`, and whether cleanly.
    async fn exited(&mut self, since: Instant, deadline: Duration) -> (Duration, bool) {
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (since.elapsed(), status.success());
            }
            assert!(since.elapsed() < deadline, "{} did not exit within {deadline:?}", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Partitions this attribution process owns at `at`, from its log lines.
    fn owned_at(&self, at: Instant) -> BTreeSet<i64> {
        let mut owned = BTreeSet::new();
        for (when, line) in self.log.lock().unwrap().iter() {
            if *when > at {
                break;
            }
            let Some(partition) = line["partition"].as_i64() else { continue };
            match line["message"].as_str() {
                Some("partition assigned") => {
                    owned.insert(partition);
                }
                Some("partition revoked") => {
                    owned.remove(&partition);
                }
                _ => {}
            }
        }
        owned
    }

    /// When this billboard process logged taking the learner's lease, after `since`.
    fn took_lease_at(&self, since: Instant) -> Option<Instant> {
        let log = self.log.lock().unwrap();
        log.iter()
            .find(|(at, line)| {
                *at >= since
                    && line["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("billboard learner took the lease"))
            })
            .map(|(at, _)| *at)
    }

    /// The first moment after `since` at which this process owned every partition.
    fn owned_all_at(&self, since: Instant) -> Option<Instant> {
        let times: Vec<Instant> = self.log.lock().unwrap().iter().map(|(at, _)| *at).collect();
        times.into_iter().filter(|at| *at >= since).find(|at| self.owned_at(*at).len() == PARTITIONS as usize)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One server group: ingest, attribution, insights, billboard.
struct Group {
    name: &'static str,
    ingest: Served,
    attribution: Served,
    insights: Served,
    billboard: Served,
}

impl Group {
    fn start(backends: &Backends, name: &'static str) -> Group {
        Group {
            name,
            ingest: Served::start(backends, "ingest", name),
            attribution: Served::start(backends, "attribution", name),
            insights: Served::start(backends, "insights", name),
            billboard: Served::start(backends, "billboard", name),
        }
    }

    async fn wait_ready(&self) -> Duration {
        let started = Instant::now();
        wait_for(&format!("server group {} to be ready", self.name), Duration::from_secs(60), || async {
            let ready = self.ingest.is_ready().await
                && self.attribution.is_ready().await
                && self.insights.is_ready().await
                && self.billboard.is_ready().await;
            ready.then_some(())
        })
        .await;
        started.elapsed()
    }
}

/// Where the load generator and the dashboard client send their requests: what the
/// Services select. Moving traffic is swapping these.
struct Traffic {
    ingest: RwLock<String>,
    insights: RwLock<String>,
    billboard: RwLock<String>,
    stop: AtomicBool,
    /// Accepted (200) impressions and plays per video, the generator's own tally.
    impressions: BTreeMap<i64, AtomicU64>,
    plays: BTreeMap<i64, AtomicU64>,
    batches: AtomicU64,
    queries: AtomicU64,
    decisions: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Traffic {
    fn new(group: &Group) -> Traffic {
        Traffic {
            ingest: RwLock::new(group.ingest.http.clone()),
            insights: RwLock::new(group.insights.http.clone()),
            billboard: RwLock::new(group.billboard.http.clone()),
            stop: AtomicBool::new(false),
            impressions: (1..=VIDEOS).map(|v| (v, AtomicU64::new(0))).collect(),
            plays: (1..=VIDEOS).map(|v| (v, AtomicU64::new(0))).collect(),
            batches: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            decisions: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
        }
    }

    fn route_to(&self, group: &Group) {
        *self.ingest.write().unwrap() = group.ingest.http.clone();
        *self.insights.write().unwrap() = group.insights.http.clone();
        *self.billboard.write().unwrap() = group.billboard.http.clone();
    }

    fn fail(&self, what: String) {
        let what = format!("{what} (traffic at {})", self.ingest.read().unwrap());
        eprintln!("client failure: {what}");
        self.failures.lock().unwrap().push(what);
    }
}

/// A batch of `n` fresh requests (each an impression, every third also a play) and how
/// many impressions and plays per video it holds.
struct Batch {
    body: Value,
    /// Impressions plus plays.
    events: u64,
    impressions: BTreeMap<i64, u64>,
    plays: BTreeMap<i64, u64>,
}

fn batch(prefix: &str, first: u64, n: u64) -> Batch {
    let t = now_ms();
    let (mut events, mut impressions, mut plays) = (Vec::new(), BTreeMap::new(), BTreeMap::new());
    for seq in first..first + n {
        let request = format!("{prefix}-{seq}");
        let video = 1 + (seq as i64 % VIDEOS);
        let member = format!("m{}", seq % 97);
        events.push(json!({
            "type": "impression", "event_id": format!("{request}-i"), "request_id": request,
            "member_id": member, "video_id": video, "canvas": "row",
            "country": "US", "device": "tv", "event_time": t,
        }));
        *impressions.entry(video).or_default() += 1;
        if seq.is_multiple_of(3) {
            events.push(json!({
                "type": "play", "event_id": format!("{request}-p"), "request_id": request,
                "member_id": member, "video_id": video,
                "country": "US", "device": "tv", "event_time": t + 1_000, "watch_seconds": 60,
            }));
            *plays.entry(video).or_default() += 1;
        }
    }
    Batch { events: events.len() as u64, body: json!({ "events": events }), impressions, plays }
}

/// Waits until `ingest` reports at least `events` events handed to the broker and not yet
/// acknowledged (true), or `task` is done first (false).
async fn publishing<T>(ingest: &str, events: u64, task: &tokio::task::JoinHandle<T>) -> bool {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !task.is_finished() {
        assert!(Instant::now() < deadline, "the batch to {ingest} neither went in flight nor finished");
        if let Ok(response) = client.get(format!("{ingest}/metrics")).send().await
            && let Ok(text) = response.text().await
        {
            let in_flight = text
                .lines()
                .find_map(|l| l.strip_prefix("nearline_ingest_in_flight_events "))
                .and_then(|v| v.trim().parse::<f64>().ok());
            if in_flight.is_some_and(|n| n >= events as f64) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

/// Posts `batch` to `ingest`; on 200 adds it to the tally, otherwise records the failure.
async fn post(client: &reqwest::Client, traffic: &Traffic, ingest: &str, batch: Batch) -> bool {
    let url = format!("{ingest}/v1/events");
    match client.post(&url).json(&batch.body).send().await {
        Ok(response) if response.status() == 200 => {
            for (video, n) in batch.impressions {
                traffic.impressions[&video].fetch_add(n, Ordering::Relaxed);
            }
            for (video, n) in batch.plays {
                traffic.plays[&video].fetch_add(n, Ordering::Relaxed);
            }
            traffic.batches.fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            traffic.fail(format!("POST {url}: {status} {body}"));
            false
        }
        Err(error) => {
            traffic.fail(format!("POST {url}: {}", chain(&error)));
            false
        }
    }
}

/// Posts batches of fresh requests until told to stop, tallying what ingest accepted.
async fn generate(traffic: Arc<Traffic>, generator: usize) {
    let client = reqwest::Client::new();
    let mut seq = 0u64;
    while !traffic.stop.load(Ordering::Relaxed) {
        let ingest = traffic.ingest.read().unwrap().clone();
        post(&client, &traffic, &ingest, batch(&format!("rb-{generator}"), seq, BATCH)).await;
        seq += BATCH;
        tokio::time::sleep(PAUSE).await;
    }
}

/// Billboard decisions asked for in a row, whose impressions one ingest batch logs.
const DECISIONS: u64 = 5;
const COUNTRIES: [&str; 3] = ["US", "BR", "DE"];

/// One billboard decision as the client got it.
struct Decided {
    seq: u64,
    member: String,
    country: &'static str,
    answer: Value,
}

/// Asks whichever billboard has traffic for decisions, then logs each one's impression
/// as a client would (the request id, artwork and explore block copied as they are) and
/// a play for every third, tallying what ingest accepted.
async fn decide(traffic: Arc<Traffic>) {
    let client = reqwest::Client::new();
    let mut seq = 0u64;
    while !traffic.stop.load(Ordering::Relaxed) {
        let billboard = traffic.billboard.read().unwrap().clone();
        let url = format!("{billboard}/v1/billboard");
        let mut decided = Vec::new();
        for _ in 0..DECISIONS {
            seq += 1;
            let (member, country) = (format!("bb-m{}", seq % 53), COUNTRIES[(seq % 3) as usize]);
            let context = json!({ "country": country, "device": "tv", "hour_of_day": seq % 24 });
            let request = json!({ "member_id": member, "context": context });
            match client.post(&url).json(&request).send().await {
                Ok(response) if response.status() == 200 => match response.json::<Value>().await {
                    Ok(answer) => {
                        traffic.decisions.fetch_add(1, Ordering::Relaxed);
                        decided.push(Decided { seq, member, country, answer });
                    }
                    Err(error) => traffic.fail(format!("POST {url}: unreadable answer: {}", chain(&error))),
                },
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    traffic.fail(format!("POST {url}: {status} {body}"));
                }
                Err(error) => traffic.fail(format!("POST {url}: {}", chain(&error))),
            }
        }
        let ingest = traffic.ingest.read().unwrap().clone();
        post(&client, &traffic, &ingest, logged(&decided)).await;
        tokio::time::sleep(PAUSE).await;
    }
}

/// The impressions (and every third a play) of billboard decisions, as one batch.
fn logged(decided: &[Decided]) -> Batch {
    let t = now_ms();
    let (mut events, mut impressions, mut plays) = (Vec::new(), BTreeMap::new(), BTreeMap::new());
    for Decided { seq, member, country, answer } in decided {
        let request = answer["request_id"].as_str().expect("a decision has a request_id");
        let video = answer["video_id"].as_i64().expect("a decision has a video_id");
        events.push(json!({
            "type": "impression", "event_id": format!("{request}-i"), "request_id": request,
            "member_id": member, "video_id": video, "artwork_id": answer["artwork_id"],
            "canvas": "billboard", "country": country, "device": "tv", "event_time": t,
            "explore": answer["explore"],
        }));
        *impressions.entry(video).or_default() += 1;
        if seq.is_multiple_of(3) {
            events.push(json!({
                "type": "play", "event_id": format!("{request}-p"), "request_id": request,
                "member_id": member, "video_id": video,
                "country": country, "device": "tv", "event_time": t + 1_000, "watch_seconds": 60,
            }));
            *plays.entry(video).or_default() += 1;
        }
    }
    Batch { events: events.len() as u64, body: json!({ "events": events }), impressions, plays }
}

/// An error with its causes, which say what went wrong on the connection.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// A dashboard reading title performance from whichever insights has traffic.
async fn query(traffic: Arc<Traffic>, range: (String, String)) {
    let client = reqwest::Client::new();
    while !traffic.stop.load(Ordering::Relaxed) {
        let base = traffic.insights.read().unwrap().clone();
        let url = format!("{base}/v1/titles/1/performance?from={}&to={}", range.0, range.1);
        match client.get(&url).send().await {
            Ok(response) if response.status() == 200 => {
                traffic.queries.fetch_add(1, Ordering::Relaxed);
            }
            Ok(response) => traffic.fail(format!("GET {url}: {}", response.status())),
            Err(error) => traffic.fail(format!("GET {url}: {}", chain(&error))),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What one swap measured.
struct Swap {
    from: &'static str,
    to: &'static str,
    ready_after: Duration,
    hand_over: Duration,
    /// From SIGTERM to the new billboard taking the learner's lease.
    lease_hand_over: Duration,
    /// Partitions the old and the new attribution owned at SIGTERM.
    before: (BTreeSet<i64>, BTreeSet<i64>),
    /// How long after SIGTERM the old ingest answered the batch in flight.
    in_flight: Duration,
    exits: Vec<(String, Duration)>,
}

/// The red/black sequence from `old` to a new group `name`: start it, wait until ready,
/// move traffic, SIGTERM the old one, wait until it has exited and the new attribution
/// owns every partition.
async fn swap(
    backends: &Backends,
    traffic: &Arc<Traffic>,
    mut old: Group,
    name: &'static str,
) -> (Group, Swap) {
    let new = Group::start(backends, name);
    let ready_after = new.wait_ready().await;
    traffic.route_to(&new);
    // What the preStop sleep is for in Kubernetes: requests already sent to the old group
    // (clients that had not yet seen the change) arrive before SIGTERM.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A large batch the old ingest is still publishing when SIGTERM arrives: draining
    // means it is answered (200) and counted, not cut off. SIGTERM goes out once the old
    // ingest's metrics show the batch handed to the broker and not yet acknowledged.
    let mut attempt = 0;
    let in_flight = loop {
        attempt += 1;
        let (traffic, ingest) = (traffic.clone(), old.ingest.http.clone());
        let big = batch(&format!("rb-in-flight-{name}-{attempt}"), 0, IN_FLIGHT);
        let events = big.events;
        let task = tokio::spawn(async move {
            let answered = post(&reqwest::Client::new(), &traffic, &ingest, big).await;
            (answered, Instant::now())
        });
        if publishing(&old.ingest.http, events, &task).await {
            break task;
        }
        // Answered before it was seen in flight (a fast broker): counted, try again.
        let (answered, _) = task.await.expect("batch task");
        assert!(answered, "a batch to the old ingest before SIGTERM was not answered 200");
        assert!(attempt < 5, "no batch caught in flight at the old ingest in {attempt} attempts");
    };
    let sigterm = Instant::now();
    let before = (old.attribution.owned_at(sigterm), new.attribution.owned_at(sigterm));
    for served in [&old.ingest, &old.attribution, &old.insights, &old.billboard] {
        served.sigterm();
    }
    let mut exits = Vec::new();
    for served in [&mut old.ingest, &mut old.attribution, &mut old.insights, &mut old.billboard] {
        let (took, clean) = served.exited(sigterm, GRACE + Duration::from_secs(10)).await;
        assert!(clean, "{} exited with an error after SIGTERM (see its log above)", served.name);
        assert!(
            took <= GRACE + Duration::from_secs(1),
            "{} took {took:?} to exit; grace is {GRACE:?}",
            served.name
        );
        exits.push((served.name.clone(), took));
    }
    let (answered, answered_at) = in_flight.await.expect("in-flight batch task");
    assert!(answered, "the batch in flight at SIGTERM was not answered 200 (see the client failure above)");
    let in_flight = answered_at.duration_since(sigterm);
    let owned_all = wait_for(
        &format!("attribution-{name} to own all {PARTITIONS} partitions"),
        Duration::from_secs(30),
        || async { new.attribution.owned_all_at(sigterm) },
    )
    .await;
    let hand_over = owned_all.duration_since(sigterm);
    let took_lease = wait_for(
        &format!("billboard-{name} to take the learner's lease"),
        Duration::from_secs(30),
        || async { new.billboard.took_lease_at(sigterm) },
    )
    .await;
    let lease_hand_over = took_lease.duration_since(sigterm);
    // Sooner than the session timeout: the old member left the group on its way out
    // rather than being timed out of it.
    let session_timeout = humantime::parse_duration(SESSION_TIMEOUT).expect("a duration");
    assert!(
        hand_over < session_timeout,
        "hand-over took {hand_over:?}, not less than the {session_timeout:?} session timeout: \
         the old attribution did not leave its group"
    );
    (
        new,
        Swap { from: old.name, to: name, ready_after, hand_over, lease_hand_over, before, exits, in_flight },
    )
}

/// The drill's titles make the billboard pool.
async fn set_up_pool(client: &reqwest::Client, billboard: &str) {
    let body = json!({ "video_ids": (1..=VIDEOS).collect::<Vec<_>>() });
    let url = format!("{billboard}/v1/billboard/pool");
    let response = client.put(&url).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "PUT {url}: {}", response.status());
}

/// Billboard's statistics as saved, in key order.
type StatsRow = (i64, String, String, String, String, f64, f64, i64, i64, i64);

async fn billboard_stats(database: &sqlx::PgPool) -> Vec<StatsRow> {
    sqlx::query_as(
        "SELECT video_id, artwork_id, country, device, daypart, weight, reward, at_ms, impressions, plays \
         FROM billboard_arm_stats ORDER BY video_id, artwork_id, country, device, daypart",
    )
    .fetch_all(database)
    .await
    .expect("billboard_arm_stats")
}

/// Waits until billboard's learner saved offsets at the end of every outcomes partition.
async fn wait_learned_to_end(log: &impl EventLog, database: &sqlx::PgPool, who: &str) {
    wait_for(&format!("{who} to learn every outcome"), Duration::from_secs(60), || async {
        let saved: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT partition, committed_offset FROM partition_progress WHERE consumer_group = $1 AND topic = $2",
        )
        .bind("nearline-billboard")
        .bind(topics::OUTCOMES)
        .fetch_all(database)
        .await
        .ok()?;
        let saved: BTreeMap<i32, i64> = saved.into_iter().collect();
        for p in 0..PARTITIONS {
            let (_, end) = log.watermarks(&TopicPartition::new(topics::OUTCOMES, p)).await.ok()?;
            if end > 0 && saved.get(&p) != Some(&end) {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// The statistics of the swapped billboards equal one billboard's that learned the same
/// outcomes, on a database of its own, without a swap: counts exactly, the discounted
/// weights up to float rounding (outcomes of different partitions may be summed in
/// another order).
async fn assert_same_as_unswapped(backends: &Backends, swapped: &sqlx::PgPool) -> usize {
    let reference = TestDatabase::create().await;
    let unswapped = Backends { kafka: backends.kafka.clone(), database_url: reference.url.clone() };
    unswapped.migrate();
    let mut learner = Served::start(&unswapped, "billboard", "unswapped");
    let pool = unswapped.database().await;
    wait_learned_to_end(&unswapped.log(), &pool, "the unswapped billboard").await;
    learner.sigterm();
    learner.exited(Instant::now(), GRACE + Duration::from_secs(10)).await;
    let (expected, got) = (billboard_stats(&pool).await, billboard_stats(swapped).await);
    assert!(!expected.is_empty(), "the unswapped billboard learned nothing: no outcomes reached it");
    let key = |r: &StatsRow| (r.0, r.1.clone(), r.2.clone(), r.3.clone(), r.4.clone(), r.7, r.8, r.9);
    assert_eq!(
        got.iter().map(key).collect::<Vec<_>>(),
        expected.iter().map(key).collect::<Vec<_>>(),
        "billboard's counters after the swaps vs without (arm, cell, at_ms, impressions, plays)"
    );
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    for (g, e) in got.iter().zip(&expected) {
        assert!(
            close(g.5, e.5) && close(g.6, e.6),
            "discounted weight/reward of {:?}: {g:?} vs {e:?}",
            key(e)
        );
    }
    expected.len()
}

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_black_swaps_lose_and_double_count_nothing() {
    let broker = Broker::start();
    let database = TestDatabase::create().await;
    let backends = Backends { kafka: broker.address(), database_url: database.url.clone() };
    backends.migrate();

    let v001 = Group::start(&backends, "v001");
    v001.wait_ready().await;
    let client = reqwest::Client::new();
    for video in 1..=VIDEOS {
        let body = json!({
            "title": format!("Red/black {video}"), "kind": "movie", "genres": ["drama"],
            "artworks": [format!("art-{video}-a"), format!("art-{video}-b")],
        });
        let response =
            client.put(format!("{}/v1/videos/{video}", v001.ingest.http)).json(&body).send().await.unwrap();
        assert!(response.status().is_success(), "PUT video {video}: {}", response.status());
    }
    set_up_pool(&client, &v001.billboard.http).await;
    let epoch = 30 * 60_000;
    let from = now_ms() / epoch * epoch - epoch;
    let range = (rfc3339(from), rfc3339(from + 4 * epoch));

    let traffic = Arc::new(Traffic::new(&v001));
    let mut clients = Vec::new();
    for generator in 0..GENERATORS {
        clients.push(tokio::spawn(generate(traffic.clone(), generator)));
    }
    clients.push(tokio::spawn(query(traffic.clone(), range.clone())));
    clients.push(tokio::spawn(decide(traffic.clone())));

    tokio::time::sleep(STEADY).await;
    let (v002, first) = swap(&backends, &traffic, v001, "v002").await;
    tokio::time::sleep(STEADY).await;
    let (v003, second) = swap(&backends, &traffic, v002, "v003").await;
    tokio::time::sleep(STEADY).await;
    traffic.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client task");
    }

    // Every record on the topics processed, then insights must say what was accepted.
    let (log, pool) = (backends.log(), backends.database().await);
    wait_drained(&log, &pool, Duration::from_secs(60)).await;
    let tally: BTreeMap<i64, (u64, u64)> = (1..=VIDEOS)
        .map(|v| {
            (v, (traffic.impressions[&v].load(Ordering::Relaxed), traffic.plays[&v].load(Ordering::Relaxed)))
        })
        .collect();
    let counted = |insights: String| {
        let (client, range) = (client.clone(), range.clone());
        async move {
            let mut counts = BTreeMap::new();
            for video in 1..=VIDEOS {
                let url = format!("{insights}/v1/titles/{video}/performance?from={}&to={}", range.0, range.1);
                let body: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
                let totals = &body["totals"];
                counts.insert(video, (totals["impressions"].as_u64()?, totals["plays"].as_u64()?));
            }
            Some(counts)
        }
    };
    let settled = wait_for("insights to report every accepted event", Duration::from_secs(30), || async {
        counted(v003.insights.http.clone()).await.filter(|counts| *counts == tally)
    })
    .await;

    wait_learned_to_end(&log, &pool, "billboard-v003").await;
    let cells = assert_same_as_unswapped(&backends, &pool).await;

    let (impressions, plays): (u64, u64) = tally.values().fold((0, 0), |(i, p), (a, b)| (i + a, p + b));
    eprintln!(
        "\nred/black drill: {} batches accepted ({impressions} impressions, {plays} plays), {} dashboard queries \
         answered, {} billboard decisions; billboard's statistics ({cells} arm x cell counters) equal an unswapped run's",
        traffic.batches.load(Ordering::Relaxed),
        traffic.queries.load(Ordering::Relaxed),
        traffic.decisions.load(Ordering::Relaxed),
    );
    for swap in [&first, &second] {
        let exits: Vec<String> =
            swap.exits.iter().map(|(n, d)| format!("{n} {:.2}s", d.as_secs_f64())).collect();
        eprintln!(
            "  {} -> {}: new group ready after {:.2}s; partitions at SIGTERM: {} {:?}, {} {:?}; \
             hand-over (SIGTERM -> attribution-{} owns all {PARTITIONS}) {:.2}s, (SIGTERM -> billboard-{} learns) {:.2}s; batch in flight at SIGTERM \
             answered 200 {:.2}s after it; exits after SIGTERM: {}",
            swap.from,
            swap.to,
            swap.ready_after.as_secs_f64(),
            swap.from,
            swap.before.0,
            swap.to,
            swap.before.1,
            swap.to,
            swap.hand_over.as_secs_f64(),
            swap.to,
            swap.lease_hand_over.as_secs_f64(),
            swap.in_flight.as_secs_f64(),
            exits.join(", ")
        );
    }
    let failures = traffic.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "clients of the group with traffic saw {} failure(s): {failures:#?}",
        failures.len()
    );
    assert!(impressions > 0 && plays > 0, "the load generator got nothing accepted");
    assert_eq!(settled, tally, "insights totals (impressions, plays) per video vs the generator's tally");
    // And they stay so (nothing counted twice later).
    let again = counted(v003.insights.http.clone()).await.expect("insights answers");
    assert_eq!(again, tally, "insights totals changed after settling");
}

//! A `nearline serve all --embedded` process on free ports, and the HTTP calls the
//! embedded tests make to it.

// Shared by several test crates, each of which uses only part of it.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// The title every test event is about.
pub(crate) const VIDEO: i64 = 80_100_172;
/// The longest any condition may take to come true.
pub(crate) const DEADLINE: Duration = Duration::from_secs(90);
/// Grace period of every service, so SIGTERM ends the process quickly.
const GRACE: Duration = Duration::from_secs(5);

/// A running `nearline serve all --embedded`; killed (SIGKILL) when dropped.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) ingest: String,
    pub(crate) insights: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts nearline on `dir` (SQLite file and log inside it) with extra `NEARLINE__*`
/// settings; its log lines are appended to `dir/nearline.log`.
pub(crate) fn start(dir: &Path, settings: &[(&str, &str)]) -> Node {
    let mut command = command(dir, settings);
    let mut child = command.stdout(Stdio::piped()).spawn().expect("nearline starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut http = std::collections::HashMap::new();
    for _ in 0..4 {
        let line = lines
            .next()
            .unwrap_or_else(|| {
                panic!("nearline exited before printing its addresses; see {}", log_path(dir).display())
            })
            .expect("readable stdout");
        let words: Vec<&str> = line.split_whitespace().collect();
        http.insert(words[0].to_owned(), words[1].to_owned());
    }
    Node { child, ingest: http["ingest"].clone(), insights: http["insights"].clone() }
}

/// Starts only the ingest service on `dir` (the durable log without consumers).
pub(crate) fn start_ingest(dir: &Path, settings: &[(&str, &str)]) -> Node {
    let mut command = command_for("ingest", dir, settings);
    let mut child = command.stdout(Stdio::piped()).spawn().expect("nearline starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).expect("address line");
    let ingest =
        line.split_whitespace().nth(1).unwrap_or_else(|| panic!("no address in {line:?}")).to_owned();
    Node { child, ingest, insights: String::new() }
}

/// The command that runs all of nearline on `dir`, not yet spawned.
pub(crate) fn command(dir: &Path, settings: &[(&str, &str)]) -> Command {
    command_for("all", dir, settings)
}

fn command_for(service: &str, dir: &Path, settings: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nearline"));
    command.args(["serve", service, "--embedded"]);
    for section in ["INGEST", "ATTRIBUTION", "INSIGHTS", "BILLBOARD"] {
        command.env(format!("NEARLINE__{section}__HTTP_PORT"), "0");
        command.env(format!("NEARLINE__{section}__GRPC_PORT"), "0");
        command.env(format!("NEARLINE__{section}__GRACE_PERIOD"), format!("{}s", GRACE.as_secs()));
    }
    command
        .env("NEARLINE__ATTRIBUTION__BATCH_INTERVAL", "200ms")
        .env("NEARLINE__EMBEDDED__SQLITE_PATH", dir.join("nearline.db"))
        .env("NEARLINE__EMBEDDED__DATA_DIR", log_dir(dir));
    for (key, value) in settings {
        command.env(key, value);
    }
    let log = OpenOptions::new().create(true).append(true).open(log_path(dir)).expect("log file");
    command.stderr(Stdio::from(log));
    command
}

/// The embedded log's data directory inside a test directory.
pub(crate) fn log_dir(dir: &Path) -> PathBuf {
    dir.join("log")
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("nearline.log")
}

impl Node {
    /// SIGKILL, as a crash or the OOM killer would: no shutdown code runs.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("SIGKILL delivered");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, then waits for the exit.
    pub(crate) fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "SIGTERM delivered");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(start.elapsed() < GRACE * 4, "still running {:?} after SIGTERM", start.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resident set size of the process, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status");
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in KiB")
    }

    /// Waits until ingest is ready and the test title is in the catalog.
    pub(crate) async fn ready(&self, client: &reqwest::Client) {
        nearline_testkit::wait_for("ingest to be ready", DEADLINE, || async {
            let ready = client.get(format!("{}/readyz", self.ingest)).send().await.ok()?;
            ready.status().is_success().then_some(())
        })
        .await;
        let video = json!({"title": "Durability", "kind": "movie", "genres": ["drama"]});
        let put = client
            .put(format!("{}/v1/videos/{VIDEO}", self.ingest))
            .json(&video)
            .send()
            .await
            .expect("PUT video");
        assert_eq!(put.status(), StatusCode::OK, "registering the test title");
    }

    /// Posts a batch; the status, or the transport error (connection refused or cut).
    pub(crate) async fn post(
        &self,
        client: &reqwest::Client,
        batch: &Value,
    ) -> Result<StatusCode, reqwest::Error> {
        post(client, &self.ingest, batch).await
    }

    /// Waits until insights reports exactly `(impressions, plays)` for the test title
    /// around `time_ms`; fails with the last totals seen.
    pub(crate) async fn wait_totals(&self, client: &reqwest::Client, time_ms: i64, expected: (i64, i64)) {
        let epoch_ms = 30 * 60 * 1000;
        let from = time_ms / epoch_ms * epoch_ms - epoch_ms;
        let url = format!(
            "{}/v1/titles/{VIDEO}/performance?from={}&to={}",
            self.insights,
            nearline_insights::query::format_time(from),
            nearline_insights::query::format_time(from + 3 * epoch_ms)
        );
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < DEADLINE {
            if let Ok(response) = client.get(&url).send().await
                && let Ok(body) = response.json::<Value>().await
            {
                let totals = (
                    body["totals"]["impressions"].as_i64().unwrap_or(-1),
                    body["totals"]["plays"].as_i64().unwrap_or(-1),
                );
                if totals == expected {
                    return;
                }
                last = Some(totals);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("expected (impressions, plays) = {expected:?} within {DEADLINE:?}, last seen {last:?}");
    }
}

/// Posts a batch to the ingest at `ingest`.
pub(crate) async fn post(
    client: &reqwest::Client,
    ingest: &str,
    batch: &Value,
) -> Result<StatusCode, reqwest::Error> {
    Ok(client.post(format!("{ingest}/v1/events")).json(batch).send().await?.status())
}

/// A batch of impressions of the test title with request ids `{prefix}-{i}` for `ids`.
pub(crate) fn impressions(prefix: &str, ids: std::ops::Range<usize>, time_ms: i64) -> Value {
    let events: Vec<Value> = ids
        .map(|i| {
            json!({"type": "impression", "event_id": format!("i-{prefix}-{i}"), "request_id": format!("{prefix}-{i}"),
                   "member_id": "m1", "video_id": VIDEO, "canvas": "row", "country": "US", "device": "tv",
                   "event_time": time_ms})
        })
        .collect();
    json!({ "events": events })
}

/// A batch of plays matching [`impressions`] of the same ids, a second later.
pub(crate) fn plays(prefix: &str, ids: std::ops::Range<usize>, time_ms: i64) -> Value {
    let events: Vec<Value> = ids
        .map(|i| {
            json!({"type": "play", "event_id": format!("p-{prefix}-{i}"), "request_id": format!("{prefix}-{i}"),
                   "member_id": "m1", "video_id": VIDEO, "country": "US", "device": "tv",
                   "event_time": time_ms + 1000, "watch_seconds": 60})
        })
        .collect();
    json!({ "events": events })
}

/// Now, in ms since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(since.as_millis()).expect("fits")
}

/// A fresh test directory.
pub(crate) fn test_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name(prefix));
    std::fs::create_dir_all(&dir).expect("test directory");
    dir
}

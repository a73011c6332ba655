//! `nearline demo` as a newcomer runs it, sped up: a real process plays the simulated
//! day; stopped with SIGINT part way and started again, it continues the day; at the
//! end the story's outcomes are checked through the public APIs: the launched title has
//! an early read next to comparable launches, the default mix's main policy (LinUCB)
//! takes above the uniform slice, and once the held-back plays have arrived the stored
//! counts equal a batch recount: the demo's own reconcile says "0 differences", and so
//! does `nearline reconcile --embedded` over the demo's archive, run as a separate
//! process afterwards.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The launched title of the default world (its 13th title).
const LAUNCHED: i64 = 80_100_012;

struct Demo {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(data: &std::path::Path, fresh: bool) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nearline"));
        // Fast enough to play the day in well under a minute when the machine keeps up;
        // light enough traffic that a debug build does.
        command.args(["demo", "--speed", "2400", "--traffic", "10", "--members", "3000"]);
        if fresh {
            command.arg("--fresh");
        }
        for section in ["INGEST", "ATTRIBUTION", "INSIGHTS", "BILLBOARD"] {
            command.env(format!("NEARLINE__{section}__HTTP_PORT"), "0");
            command.env(format!("NEARLINE__{section}__GRPC_PORT"), "0");
        }
        let mut child = command
            .env("NEARLINE__EMBEDDED__DATA_DIR", data)
            .env("NEARLINE__ATTRIBUTION__BATCH_INTERVAL", "200ms")
            .env("NEARLINE__BILLBOARD__FLUSH_INTERVAL", "200ms")
            .env("NEARLINE__BILLBOARD__CATALOG_REFRESH", "1s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nearline demo starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("demo| {line}");
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines, seen: Vec::new() }
    }

    /// The first line matching `wanted`, waiting at most `within`.
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool, within: Duration, what: &str) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} within {within:?}; saw:\n{}", self.seen.join("\n"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the demo exited before {what}; saw:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// The HTTP address the demo printed for `service`.
    fn url(&self, service: &str) -> String {
        self.seen
            .iter()
            .find_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                (words.first() == Some(&service)).then(|| words[1].to_string())
            })
            .unwrap_or_else(|| panic!("no address line for {service}"))
    }

    fn interrupt_and_wait(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the demo exits cleanly on Ctrl-C, got {status}");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the demo did not stop within 30 s of SIGINT"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

async fn get(url: String) -> Value {
    let response = reqwest::get(&url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.unwrap()
}

/// The simulated minute of a status line (`sim 2026-11-30 03:12 | ...`).
fn sim_minute(line: &str) -> Option<i64> {
    let time = line.strip_prefix("sim ")?.get(11..16)?;
    let (h, m) = time.split_once(':')?;
    Some(h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_tells_its_story_through_the_apis() {
    let data = std::env::temp_dir().join(nearline_testkit::unique_name("nearline_demo"));
    std::fs::create_dir_all(&data).unwrap();

    // Part of the morning, then Ctrl-C.
    let mut demo = Demo::start(&data, true);
    let first =
        demo.wait_for(|l| l.starts_with("nearline demo: open http://"), Duration::from_secs(60), "URL");
    assert!(first.contains("/dashboard/billboard"), "{first}");
    demo.wait_for(
        |l| sim_minute(l).is_some_and(|m| (120..=23 * 60).contains(&m)),
        Duration::from_secs(60),
        "sim 02:00",
    );
    demo.interrupt_and_wait();

    // Again, without --fresh: the same day continues, to its end and the reconcile.
    let mut demo = Demo::start(&data, false);
    let resumed =
        demo.wait_for(|l| l.starts_with("continuing the day at "), Duration::from_secs(60), "resumption");
    assert!(!resumed.ends_with(" 00:00"), "{resumed}");
    let verdict = demo.wait_for(|l| l.starts_with("episode complete: "), Duration::from_secs(150), "the end");
    assert!(verdict.contains("0 differences"), "{verdict}");
    let reconciled =
        demo.seen.iter().find(|l| l.starts_with("reconciling ")).cloned().expect("a reconcile line");

    // The launched title's early read: filled hours next to comparables.
    let insights = demo.url("insights");
    let read = get(format!("{insights}/v1/titles/{LAUNCHED}/launch?hours=24")).await;
    assert_eq!(read["title"], "The Long Night", "{read}");
    assert!(read["comparable_titles"].as_u64().unwrap() >= 3, "{read}");
    let hours = read["hours"].as_array().unwrap();
    let filled = hours.iter().filter(|h| h["impressions"].as_u64().unwrap_or(0) > 0).count();
    assert!(filled >= 12, "hours with impressions: {filled}: {read}");
    assert!(hours.iter().any(|h| h["comparables"]["take_rate"].is_object()), "{read}");

    // The bandits: the default mix's main policy above the uniform slice (the thin
    // Thompson slice is on the dashboard too, too few decisions to compare here).
    let billboard = demo.url("billboard");
    let history = get(format!("{billboard}/v1/billboard/history?canvas=billboard")).await;
    let rate = |policy: &str| {
        history["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["policy"] == policy)
            .and_then(|t| t["take_rate"].as_f64())
            .unwrap_or_else(|| panic!("no take rate of {policy}: {history}"))
    };
    assert!(rate("linucb") > rate("uniform"), "linucb {} vs uniform {}", rate("linucb"), rate("uniform"));
    // And the relay the dashboard reads answers the same.
    let relayed = get(format!("{insights}/dashboard/api/billboard/history?canvas=billboard")).await;
    assert_eq!(relayed["totals"], history["totals"]);

    // The same reconcile as a separate process over the archive, once the demo stopped.
    let (from, to) = {
        let words: Vec<&str> = reconciled.split_whitespace().collect();
        (format!("{}T{}:00Z", words[1], words[2]), format!("{}T{}:00Z", words[4], words[5]))
    };
    demo.interrupt_and_wait();
    let dir = data.join("demo");
    let output = Command::new(env!("CARGO_BIN_EXE_nearline"))
        .args(["reconcile", "--embedded", "--from", &from, "--to", &to, "--input"])
        .arg(dir.join("archive"))
        .env("NEARLINE__EMBEDDED__SQLITE_PATH", dir.join("nearline.db"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "reconcile failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("0 differences"), "{stdout}");
    let _ = std::fs::remove_dir_all(&data);
}

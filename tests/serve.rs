//! The binary as an operator runs it: `nearline serve` on port 0 answers health, liveness
//! and metrics, and SIGTERM stops it within the grace period; `serve all --embedded`
//! turns an impression and its play into counts that insights reports.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nearline_testkit::wait_for;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const GRACE: Duration = Duration::from_secs(5);

struct Served {
    child: Child,
    http: String,
    grpc: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Starts `nearline serve <service> --embedded` on free ports and reads the addresses
/// it prints.
fn serve_embedded(service: &str, sqlite_dir: &std::path::Path) -> Served {
    let section = service.to_uppercase();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nearline"))
        .args(["serve", service, "--embedded"])
        .env(format!("NEARLINE__{section}__HTTP_PORT"), "0")
        .env(format!("NEARLINE__{section}__GRPC_PORT"), "0")
        .env(format!("NEARLINE__{section}__GRACE_PERIOD"), format!("{}s", GRACE.as_secs()))
        .env("NEARLINE__EMBEDDED__SQLITE_PATH", sqlite_dir.join("nearline.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nearline starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("nearline prints its addresses");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&service), "address line names the service: {line:?}");
    let http = words[1].to_string();
    let grpc = words[2].replace("grpc://", "http://");
    Served { child, http, grpc }
}

#[tokio::test]
async fn serve_answers_health_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name("nearline_serve"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut served = serve_embedded("ingest", &dir);

    let channel = tonic::transport::Channel::from_shared(served.grpc.clone()).unwrap().connect_lazy();
    let health = HealthClient::new(channel);
    let status = wait_for("gRPC health SERVING", Duration::from_secs(20), || {
        let mut health = health.clone();
        async move {
            let response = health.check(HealthCheckRequest { service: String::new() }).await.ok()?;
            let status = response.into_inner().status();
            (status == ServingStatus::Serving).then_some(status)
        }
    })
    .await;
    assert_eq!(status, ServingStatus::Serving);

    let http = reqwest::Client::new();
    let livez = http.get(format!("{}/livez", served.http)).send().await.unwrap();
    assert_eq!(livez.status(), 200);
    let readyz = http.get(format!("{}/readyz", served.http)).send().await.unwrap();
    assert_eq!(readyz.status(), 200);
    let metrics = http.get(format!("{}/metrics", served.http)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("nearline_") && !l.starts_with('#')),
        "no nearline_ metric in:\n{metrics}"
    );

    let pid = served.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(sent.success(), "SIGTERM delivered");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < GRACE + Duration::from_secs(5), "still running {GRACE:?} after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "clean exit after SIGTERM, got {status}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn invalid_configuration_exits_64_naming_the_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_nearline"))
        .args(["config", "print"])
        .env("NEARLINE__INGEST__HTTP_PORT", "abc")
        .output()
        .expect("nearline runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ingest.http_port") && stderr.contains("NEARLINE__INGEST__HTTP_PORT"),
        "{stderr}"
    );
}

#[test]
fn config_print_masks_secrets() {
    let output = Command::new(env!("CARGO_BIN_EXE_nearline"))
        .args(["config", "print"])
        .env("NEARLINE__DATABASE__URL", "postgres://app:hunter2hunter2@db:5432/nearline")
        .output()
        .expect("nearline runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("postgres://app:********@db:5432/nearline"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
}

/// Starts `nearline serve all --embedded` on free ports; the HTTP address of each service.
fn serve_all_embedded(sqlite_dir: &std::path::Path) -> (Child, std::collections::HashMap<String, String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nearline"));
    command.args(["serve", "all", "--embedded"]);
    for section in ["INGEST", "ATTRIBUTION", "INSIGHTS", "BILLBOARD"] {
        command.env(format!("NEARLINE__{section}__HTTP_PORT"), "0");
        command.env(format!("NEARLINE__{section}__GRPC_PORT"), "0");
    }
    let mut child = command
        .env("NEARLINE__ATTRIBUTION__BATCH_INTERVAL", "200ms")
        .env("NEARLINE__EMBEDDED__SQLITE_PATH", sqlite_dir.join("nearline.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nearline starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut http = std::collections::HashMap::new();
    for _ in 0..4 {
        let line = lines.next().expect("an address line").expect("readable");
        let words: Vec<&str> = line.split_whitespace().collect();
        http.insert(words[0].to_string(), words[1].to_string());
    }
    (child, http)
}

#[tokio::test]
async fn serve_all_embedded_counts_a_played_impression_end_to_end() {
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name("nearline_serve_all"));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut child, http) = serve_all_embedded(&dir);
    let (ingest, insights) = (&http["ingest"], &http["insights"]);
    let client = reqwest::Client::new();
    wait_for("ingest to be ready", Duration::from_secs(20), || async {
        let ready = client.get(format!("{ingest}/readyz")).send().await.ok()?;
        ready.status().is_success().then_some(())
    })
    .await;

    let video = serde_json::json!({"title": "Smoke Test", "kind": "movie", "genres": ["drama"]});
    let put = client.put(format!("{ingest}/v1/videos/80100172")).json(&video).send().await.unwrap();
    assert_eq!(put.status(), 200);
    let now_ms = i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
    )
    .unwrap();
    let events = serde_json::json!({"events": [
        {"type": "impression", "event_id": "e1", "request_id": "r1", "member_id": "m1",
         "video_id": 80100172, "canvas": "row", "country": "US", "device": "tv", "event_time": now_ms},
        {"type": "play", "event_id": "e2", "request_id": "r1", "member_id": "m1",
         "video_id": 80100172, "country": "US", "device": "tv", "event_time": now_ms + 1000,
         "watch_seconds": 120},
    ]});
    let posted = client.post(format!("{ingest}/v1/events")).json(&events).send().await.unwrap();
    assert_eq!(posted.status(), 200);

    let epoch_ms = 30 * 60 * 1000;
    let from = now_ms / epoch_ms * epoch_ms;
    let url = format!(
        "{insights}/v1/titles/80100172/performance?from={}&to={}",
        nearline_insights::query::format_time(from),
        nearline_insights::query::format_time(from + epoch_ms)
    );
    let body: serde_json::Value =
        wait_for("insights to report the play", Duration::from_secs(30), || async {
            let body: serde_json::Value = client.get(&url).send().await.ok()?.json().await.ok()?;
            (body["totals"]["plays"] == 1).then_some(body)
        })
        .await;
    assert_eq!(body["title"], "Smoke Test");
    assert_eq!(body["totals"]["impressions"], 1);
    assert_eq!(body["totals"]["take_rate"], 1.0);
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(dir).unwrap();
}

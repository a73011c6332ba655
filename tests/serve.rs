//! The binary as an operator runs it: `nearline serve` on port 0 answers health, liveness
//! and metrics, and SIGTERM stops it within the grace period.

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

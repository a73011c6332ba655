//! What the chaos tests run: their own tansu broker, Postgres (a fresh database on the
//! test server, or a private cluster they can restart), `nearline serve attribution` as
//! real processes, a deterministic workload published straight to the topics, and the
//! checks (every record's effects stored, totals as built, reconcile empty).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::{EventLog, OutgoingRecord, TopicPartition, topics};
use nearline_proto::events::v1 as pb;
use nearline_testkit::wait_for;
use prost::Message as _;

pub(crate) const PARTITIONS: i32 = 4;
pub(crate) const MINUTE: i64 = 60_000;
pub(crate) const HOUR: i64 = 60 * MINUTE;
/// 2026-11-20T00:00:00Z.
pub(crate) const T0: i64 = 1_795_132_800_000;
/// Short, so a killed member's partitions move on within seconds (tansu accepts it).
pub(crate) const SESSION_TIMEOUT: &str = "6s";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name(prefix));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A tansu broker of the test's own (so it can be stopped), SQLite storage in a temp dir.
pub(crate) struct Broker {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    pub(crate) fn start() -> Broker {
        let mut broker = Broker { dir: temp_dir("chaos_broker"), port: free_port(), child: None };
        broker.restart();
        broker
    }

    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port and storage.
    pub(crate) fn restart(&mut self) {
        let url = format!("tcp://{}", self.address());
        let log =
            std::fs::File::options().create(true).append(true).open(self.dir.join("broker.log")).unwrap();
        let child = Command::new("tansu")
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://broker.db"])
            .current_dir(&self.dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tansu starts (scripts/test.sh installs it)");
        self.child = Some(child);
        let address = self.address();
        for _ in 0..100 {
            if std::net::TcpStream::connect(&address).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tansu did not listen on {address}; see {}", self.dir.display());
    }

    /// Stops it abruptly.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Postgres cluster of the test's own on a free port, so it can be restarted.
pub(crate) struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

/// Runs a Postgres tool as the `postgres` user when we are root (it refuses root).
fn as_postgres(bin: &Path, tool: &str) -> Command {
    let tool = bin.join(tool);
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(tool);
        command
    } else {
        Command::new(tool)
    }
}

impl PrivatePostgres {
    pub(crate) fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's PostgreSQL server under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .expect("an initdb");
        let dir = temp_dir("chaos_pg");
        let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
        let data = dir.join("data");
        let status = as_postgres(&bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(status.success(), "initdb failed");
        let postgres = PrivatePostgres { dir, port: free_port(), bin };
        postgres.pg_ctl("start");
        postgres
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub(crate) fn stop(&self) {
        self.pg_ctl("stop");
    }

    pub(crate) fn start_again(&self) {
        self.pg_ctl("start");
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let status = as_postgres(&self.bin, "pg_ctl")
            .args(["-D"])
            .arg(self.dir.join("data"))
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("postgres.log"))
            .args(["-m", "fast", "-w", action])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {action} failed; see {}/postgres.log", self.dir.display());
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .args(["-D"])
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the processes of a test find their broker and database.
#[derive(Clone)]
pub(crate) struct Backends {
    pub(crate) kafka: String,
    pub(crate) database_url: String,
}

impl Backends {
    /// `nearline ARGS` with this test's broker, database and fast attribution settings.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nearline"));
        command
            .args(args)
            .env("NEARLINE__DATABASE__URL", &self.database_url)
            .env("NEARLINE__KAFKA__BOOTSTRAP_SERVERS", &self.kafka)
            .env("NEARLINE__KAFKA__PARTITIONS", PARTITIONS.to_string())
            .env("NEARLINE__KAFKA__SESSION_TIMEOUT", SESSION_TIMEOUT)
            .env("NEARLINE__ATTRIBUTION__BATCH_INTERVAL", "200ms")
            .env("NEARLINE__ATTRIBUTION__HTTP_PORT", "0")
            .env("NEARLINE__ATTRIBUTION__GRPC_PORT", "0")
            .env("NEARLINE__ATTRIBUTION__GRACE_PERIOD", "5s");
        command
    }

    /// `nearline migrate`: the database's tables and the topics.
    pub(crate) fn migrate(&self) {
        let output = self.command(&["migrate"]).output().expect("nearline migrate runs");
        assert!(output.status.success(), "migrate failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// `nearline serve attribution` as a process of its own.
    pub(crate) fn serve_attribution(&self) -> Attribution {
        let mut child = self
            .command(&["serve", "attribution"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nearline starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("nearline prints its addresses");
        let http =
            line.split_whitespace().nth(1).unwrap_or_else(|| panic!("address line: {line:?}")).to_string();
        Attribution { child, http }
    }

    /// `nearline reconcile` over `[from, to)`: its exit status and output.
    pub(crate) fn reconcile(&self, from: &str, to: &str) -> (bool, String) {
        let output = self
            .command(&["reconcile", "--from", from, "--to", to])
            .output()
            .expect("nearline reconcile runs");
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    pub(crate) async fn database(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.database_url).await.expect("the test database")
    }

    pub(crate) fn log(&self) -> KafkaLog {
        KafkaLog::connect(KafkaConfig::new(self.kafka.clone())).expect("the broker")
    }
}

/// A running `nearline serve attribution`.
pub(crate) struct Attribution {
    pub(crate) child: Child,
    pub(crate) http: String,
}

impl Attribution {
    /// Kills it with SIGKILL: no shutdown, no leaving the group.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("SIGKILL delivered");
        self.child.wait().expect("reaped");
    }

    /// `/readyz` answered 200.
    pub(crate) async fn is_ready(&self) -> bool {
        let response = reqwest::get(format!("{}/readyz", self.http)).await;
        response.is_ok_and(|r| r.status().is_success())
    }
}

impl Drop for Attribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request id landing on each partition, for the sentinels.
fn request_on(prefix: &str, partition: i32) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|r| nearline_eventlog::partition_for_key(r.as_bytes(), PARTITIONS) == partition)
        .expect("some id lands on every partition")
}

/// The workload and what its counts must be.
pub(crate) struct Workload {
    /// Records in publishing order (each topic's order disordered by up to 20 minutes).
    pub(crate) records: Vec<OutgoingRecord>,
    pub(crate) impressions: i64,
    pub(crate) attributed: i64,
    pub(crate) unattributed: i64,
}

fn impression(request: &str, video: i64, t: i64, country: &str) -> OutgoingRecord {
    let payload = pb::Impression {
        event_id: format!("{request}-i"),
        request_id: request.to_owned(),
        member_id: "m".into(),
        video_id: video,
        canvas: "row".into(),
        country: country.to_owned(),
        device: "tv".into(),
        region: "us-east".into(),
        event_time_ms: t,
        ..Default::default()
    };
    record(topics::IMPRESSIONS, request, t, payload.encode_to_vec())
}

fn play(request: &str, video: i64, t: i64, country: &str) -> OutgoingRecord {
    let payload = pb::Play {
        event_id: format!("{request}-p"),
        request_id: request.to_owned(),
        member_id: "m".into(),
        video_id: video,
        country: country.to_owned(),
        device: "tv".into(),
        region: "us-east".into(),
        event_time_ms: t,
        watch_seconds: 60,
    };
    record(topics::PLAYS, request, t, payload.encode_to_vec())
}

fn record(topic: &str, key: &str, t: i64, payload: Vec<u8>) -> OutgoingRecord {
    OutgoingRecord {
        topic: topic.to_owned(),
        key: Bytes::copy_from_slice(key.as_bytes()),
        payload: payload.into(),
        timestamp_ms: Some(t),
    }
}

/// `requests` requests over three hours: every one an impression; one in three played
/// (within the window), one in ten a play with no impression; each event repeated now
/// and then; arrival disordered by up to 20 minutes. Totals are known by construction.
pub(crate) fn workload(requests: usize) -> Workload {
    let mut arrivals = Vec::new();
    let (mut impressions, mut attributed, mut unattributed) = (0, 0, 0);
    for r in 0..requests {
        let request = format!("chaos-{r}");
        let t = T0 + (r as i64 * 3 * HOUR) / requests as i64;
        let video = 100 + (r % 7) as i64;
        let country = ["US", "BR", "DE"][r % 3];
        let jitter = |k: usize| ((r * 7919 + k * 104_729) % 20) as i64 * MINUTE;
        if r % 10 == 9 {
            arrivals.push((t + jitter(1), play(&request, video, t, country)));
            unattributed += 1;
            continue;
        }
        arrivals.push((t + jitter(2), impression(&request, video, t, country)));
        impressions += 1;
        if r % 3 == 0 {
            arrivals.push((t + jitter(3), play(&request, video, t + ((r % 50) as i64) * MINUTE, country)));
            attributed += 1;
        }
        if r % 11 == 0 {
            arrivals.push((t + jitter(4), impression(&request, video, t, country)));
        }
    }
    arrivals.sort_by_key(|(at, _)| *at);
    Workload {
        records: arrivals.into_iter().map(|(_, r)| r).collect(),
        impressions,
        attributed,
        unattributed,
    }
}

/// An impression and its play on every partition, far ahead of the workload, so both
/// watermarks pass every deadline and the stream settles its unattributed plays.
pub(crate) fn sentinels() -> Vec<OutgoingRecord> {
    (0..PARTITIONS)
        .flat_map(|p| {
            let request = request_on("sentinel", p);
            let t = T0 + 20 * HOUR;
            [impression(&request, 999, t, "US"), play(&request, 999, t, "US")]
        })
        .collect()
}

/// Publishes in batches of 200.
pub(crate) async fn publish(log: &KafkaLog, records: &[OutgoingRecord]) {
    for chunk in records.chunks(200) {
        log.publish(chunk.to_vec()).await.expect("published");
    }
}

/// Records on the input topics, and records whose effects are stored.
pub(crate) async fn published_and_stored(log: &KafkaLog, database: &sqlx::PgPool) -> (i64, i64) {
    let mut published = 0;
    for topic in [topics::IMPRESSIONS, topics::PLAYS] {
        for p in 0..PARTITIONS {
            published += log.watermarks(&TopicPartition::new(topic, p)).await.map_or(0, |(_, high)| high);
        }
    }
    let stored: Option<i64> = sqlx::query_scalar(
        "SELECT SUM(committed_offset)::BIGINT FROM partition_progress WHERE topic IN ($1, $2)",
    )
    .bind(topics::IMPRESSIONS)
    .bind(topics::PLAYS)
    .fetch_one(database)
    .await
    .unwrap_or(None);
    (published, stored.unwrap_or(0))
}

/// Waits until every published record's effects are stored.
pub(crate) async fn wait_drained(log: &KafkaLog, database: &sqlx::PgPool, deadline: Duration) {
    wait_for("every published record to be stored", deadline, || async {
        let (published, stored) = published_and_stored(log, database).await;
        (published > 0 && stored == published).then_some(())
    })
    .await;
}

/// The stored totals equal what the workload was built to give (sentinels excluded),
/// and reconcile over the whole range finds no cell that differs from a batch recount.
pub(crate) async fn assert_exact(backends: &Backends, database: &sqlx::PgPool, workload: &Workload) {
    let (impressions, plays): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(impressions), 0)::BIGINT, COALESCE(SUM(plays), 0)::BIGINT \
         FROM cell_counts WHERE video_id <> 999",
    )
    .fetch_one(database)
    .await
    .expect("cell counts");
    let unattributed: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(plays), 0)::BIGINT FROM unattributed_counts WHERE video_id <> 999",
    )
    .fetch_one(database)
    .await
    .expect("unattributed counts");
    assert_eq!(
        (impressions, plays, unattributed),
        (workload.impressions, workload.attributed, workload.unattributed),
        "stored (impressions, attributed plays, unattributed plays)"
    );
    let (agrees, output) = backends.reconcile("2026-11-19T23:00:00Z", "2026-11-20T21:00:00Z");
    assert!(agrees, "reconcile found differences:\n{output}");
}

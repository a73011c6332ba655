//! The configuration tree, one section per concern, with the defaults a laptop run needs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::{DatabaseUrl, Secret};

/// The whole nearline configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Postgres (distributed) connection.
    pub database: DatabaseConfig,
    /// Kafka (distributed) connection and topic layout.
    pub kafka: KafkaConfig,
    /// The single-process deployment: SQLite and the in-process log.
    pub embedded: EmbeddedConfig,
    /// Logs, traces and metrics.
    pub telemetry: TelemetryConfig,
    /// Bearer tokens guarding `/v1/*` and the gRPC APIs.
    pub auth: AuthConfig,
    /// The ingest service.
    pub ingest: IngestConfig,
    /// The attribution service.
    pub attribution: AttributionConfig,
    /// The insights service.
    pub insights: InsightsConfig,
    /// The billboard service.
    pub billboard: BillboardConfig,
}

/// Postgres connection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/database`; the password is masked when printed.
    pub url: DatabaseUrl,
    /// Upper bound on pooled connections per process.
    pub max_connections: u32,
    /// How long to wait for a connection before failing a request.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: DatabaseUrl::new("postgres://postgres@127.0.0.1:5432/nearline"),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Kafka connection settings and topic layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Client id reported to the brokers.
    pub client_id: String,
    /// Partitions of every nearline topic; impressions and plays must match.
    pub partitions: i32,
    /// Replication factor of created topics.
    pub replication: i32,
    /// Timeout of broker operations (metadata, admin, delivery).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long a consumer group member may go unheard before the broker gives its
    /// partitions to the others (`session.timeout.ms`): how soon a crashed attribution
    /// instance's partitions move on. Within the broker's allowed range (6 s to 30 min
    /// by default on Kafka).
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Other regions whose impressions and plays topics are mirrored into this cluster,
    /// named as Kafka MirrorMaker 2's `DefaultReplicationPolicy` names them:
    /// `<region>.<topic>` (`eu-west.nearline.plays.v1`), with the local topics' partition
    /// count. Attribution joins them with the local topics, so a pair whose impression
    /// and play were logged in different regions counts once. Empty (the default): one
    /// region.
    pub mirrored_regions: Vec<String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            client_id: "nearline".into(),
            partitions: 8,
            replication: 1,
            timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(45),
            mirrored_regions: Vec::new(),
        }
    }
}

impl KafkaConfig {
    /// Why a `kafka.mirrored_regions` entry cannot name a mirrored region, if it cannot.
    fn region_problem(region: &str) -> Option<String> {
        if region.is_empty() {
            return Some("a region name must not be empty".into());
        }
        if region.len() > 64 {
            return Some(format!("region name {region:?} is longer than 64 characters"));
        }
        // Kafka topic names allow [a-zA-Z0-9._-]; MirrorMaker 2 separates the region
        // from the topic with '.', so a '.' in the region would make the name ambiguous.
        if let Some(c) = region.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Some(format!(
                "region name {region:?} contains {c:?}; use letters, digits, '-' and '_' only \
                 (it prefixes topic names as <region>.<topic>)"
            ));
        }
        None
    }
}

/// The embedded deployment's storage: the SQLite file and the durable event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmbeddedConfig {
    /// SQLite database file, created when missing.
    pub sqlite_path: String,
    /// Partitions of the embedded log's topics (fixed once the log was created).
    pub partitions: i32,
    /// Directory of the event log's segment files, committed offsets and lock; empty
    /// puts it next to the SQLite file, named after it (`nearline.db` -> `nearline-log`).
    pub data_dir: String,
    /// Size at which a log segment is closed and a new one started, in bytes.
    pub segment_bytes: u64,
    /// How long log records are kept: at least `attribution.allowed_lateness`, plus
    /// how far back a replay or a `nearline backfill` from the log may need to go.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Most bytes of log records kept per partition; older segments are deleted first.
    pub retention_bytes: u64,
    /// Bytes of recent records each log partition keeps in memory for consumers that
    /// keep up; older records are read back from disk.
    pub cache_bytes: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            sqlite_path: "nearline.db".into(),
            partitions: 4,
            data_dir: String::new(),
            segment_bytes: 64 * 1024 * 1024,
            retention: Duration::from_secs(24 * 3600),
            retention_bytes: 1024 * 1024 * 1024,
            cache_bytes: 4 * 1024 * 1024,
        }
    }
}

impl EmbeddedConfig {
    /// The event log's directory: `data_dir`, or the default next to the SQLite file.
    pub fn log_dir(&self) -> PathBuf {
        if !self.data_dir.is_empty() {
            return PathBuf::from(&self.data_dir);
        }
        let sqlite = Path::new(&self.sqlite_path);
        match (sqlite.file_stem(), self.sqlite_path.starts_with(':')) {
            (Some(stem), false) => {
                let mut name = stem.to_os_string();
                name.push("-log");
                sqlite.with_file_name(name)
            }
            // `:memory:` and friends have no directory to sit in.
            _ => PathBuf::from("nearline-log"),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Logs, traces and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// `tracing` filter directives, e.g. `info,nearline_ingest=debug`; `RUST_LOG` wins.
    pub log_filter: String,
    /// OTLP/gRPC endpoint for traces, e.g. `http://otel-collector:4317`; empty disables
    /// export unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub otlp_endpoint: String,
    /// Service name reported in traces.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            otlp_endpoint: String::new(),
            service_name: "nearline".into(),
        }
    }
}

/// Bearer tokens; when the list is empty the APIs are open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Accepted tokens; masked when printed.
    pub tokens: Vec<Secret>,
}

/// Where and how one service listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Interface to bind.
    pub host: IpAddr,
    /// gRPC port; 0 picks a free one.
    pub grpc_port: u16,
    /// HTTP port; 0 picks a free one.
    pub http_port: u16,
    /// Longest a request may take before it is answered with a timeout.
    pub request_timeout: Duration,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// How long shutdown waits for in-flight work before giving up.
    pub grace_period: Duration,
    /// Most HTTP connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers before the connection
    /// is closed (slow or stalled clients cannot hold connections forever).
    pub header_read_timeout: Duration,
}

impl ServerConfig {
    /// The gRPC socket address.
    pub fn grpc_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.grpc_port)
    }

    /// The HTTP socket address.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.http_port)
    }
}

/// Declares a service section: the listening settings every service has, then its own.
/// (A macro rather than `#[serde(flatten)]`, which would lose the key paths that error
/// messages name.)
macro_rules! service_section {
    (
        $(#[$meta:meta])*
        $name:ident, grpc = $grpc:expr, http = $http:expr,
        { $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $default:expr ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            /// Interface to bind.
            pub host: IpAddr,
            /// gRPC port; 0 picks a free one.
            pub grpc_port: u16,
            /// HTTP port; 0 picks a free one.
            pub http_port: u16,
            /// Longest a request may take.
            #[serde(with = "humantime_serde")]
            pub request_timeout: Duration,
            /// Largest accepted request body, in bytes.
            pub body_limit_bytes: usize,
            /// How long shutdown waits for in-flight work.
            #[serde(with = "humantime_serde")]
            pub grace_period: Duration,
            /// Most HTTP connections open at once; more are answered 503 and closed.
            pub max_connections: usize,
            /// How long a client may take to send a request's headers.
            #[serde(with = "humantime_serde")]
            pub header_read_timeout: Duration,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    host: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    grpc_port: $grpc,
                    http_port: $http,
                    request_timeout: Duration::from_secs(10),
                    body_limit_bytes: 8 * 1024 * 1024,
                    grace_period: Duration::from_secs(20),
                    // Four services in one process stay under a 20 000 open-file limit.
                    max_connections: 4096,
                    header_read_timeout: Duration::from_secs(10),
                    $( $field: $default, )*
                }
            }
        }

        impl $name {
            /// The listening settings of this service.
            pub fn server(&self) -> ServerConfig {
                ServerConfig {
                    host: self.host,
                    grpc_port: self.grpc_port,
                    http_port: self.http_port,
                    request_timeout: self.request_timeout,
                    body_limit_bytes: self.body_limit_bytes,
                    grace_period: self.grace_period,
                    max_connections: self.max_connections,
                    header_read_timeout: self.header_read_timeout,
                }
            }
        }
    };
}

service_section!(
    /// The ingest service.
    IngestConfig, grpc = 50051, http = 8081,
    {
        /// Region stamped on events that do not say where they were logged.
        default_region: String = "local".into(),
        /// Most events accepted in one batch.
        max_batch_events: usize = 10_000,
        /// Furthest ahead of the server clock an event time may be.
        #[serde(with = "humantime_serde")]
        max_future_skew: Duration = Duration::from_secs(5 * 60),
        /// Oldest an event time may be.
        #[serde(with = "humantime_serde")]
        max_event_age: Duration = Duration::from_secs(7 * 24 * 3600),
        /// Events that may be waiting for broker acknowledgement at once.
        max_in_flight_events: usize = 200_000,
    }
);

service_section!(
    /// The attribution service and the join semantics (DESIGN §3).
    AttributionConfig, grpc = 50052, http = 8082,
    {
        /// Length of a counting epoch.
        #[serde(with = "humantime_serde")]
        epoch_len: Duration = Duration::from_secs(30 * 60),
        /// How far a play may precede its impression and still be attributed.
        #[serde(with = "humantime_serde")]
        skew: Duration = Duration::from_secs(60),
        /// How long after an impression a play is attributed to it.
        #[serde(with = "humantime_serde")]
        attribution_window: Duration = Duration::from_secs(3600),
        /// How far behind the watermark an event may be and still be counted by the stream.
        #[serde(with = "humantime_serde")]
        allowed_lateness: Duration = Duration::from_secs(6 * 3600),
        /// A play within this long after an explored impression is a reward.
        #[serde(with = "humantime_serde")]
        reward_window: Duration = Duration::from_secs(15 * 60),
        /// Extra wait past the reward window before emitting a no-play outcome.
        #[serde(with = "humantime_serde")]
        reward_grace: Duration = Duration::from_secs(2 * 60),
        /// How often accumulated effects are written and offsets committed.
        #[serde(with = "humantime_serde")]
        batch_interval: Duration = Duration::from_secs(1),
        /// Consumer group of the streaming join.
        consumer_group: String = "nearline-attribution".into(),
        /// How often the cached video catalog that enriches outcomes is reloaded.
        #[serde(with = "humantime_serde")]
        catalog_refresh: Duration = Duration::from_secs(60),
    }
);

service_section!(
    /// The insights service.
    InsightsConfig, grpc = 50053, http = 8083,
    {
        /// Longest time range one query may span.
        #[serde(with = "humantime_serde")]
        max_range: Duration = Duration::from_secs(90 * 24 * 3600),
        /// How far back comparable launches are looked for.
        #[serde(with = "humantime_serde")]
        launch_lookback: Duration = Duration::from_secs(365 * 24 * 3600),
        /// Whether queries read the hourly and daily roll-ups where they fit (exact;
        /// much faster for long ranges). `false` answers from the cells alone.
        read_rollups: bool = true,
        /// Billboard's HTTP address, whose read endpoints (model, history) the dashboard's
        /// billboard page reaches through insights (same origin). `serve all` in one
        /// process points it at its own billboard.
        billboard_url: String = "http://127.0.0.1:8084".into(),
    }
);

service_section!(
    /// The billboard service (DESIGN §6).
    BillboardConfig, grpc = 50054, http = 8084,
    {
        /// Share of members each policy serves, by policy name (`thompson`, `linucb`,
        /// `epsilon_greedy`, `ucb1`, `uniform`); the shares sum to 1. The uniform slice
        /// keeps replay evaluation valid. The default is the mix that serves best in
        /// billboard's simulator (≥ 90 % of the oracle's take rate): every point of
        /// uniform traffic costs about 0.007 of it, so the slice is 1 %.
        policy_mix: BTreeMap<String, f64> = BTreeMap::from([
            ("linucb".to_string(), 0.98),
            ("thompson".to_string(), 0.01),
            ("uniform".to_string(), 0.01),
        ]),
        /// Least probability of any candidate (bounds inverse-propensity weights).
        exploration_floor: f64 = 0.0003,
        /// A title with fewer outcomes than this is new...
        new_title_impressions: u64 = 100,
        /// ...and each of its (title, artwork) pairs gets at least this probability.
        new_title_floor: f64 = 0.01,
        /// Half-life of the statistics' exponential discount, by event time.
        #[serde(with = "humantime_serde")]
        half_life: Duration = Duration::from_secs(7 * 24 * 3600),
        /// Context fields that make a bucket of the per-bucket bandits.
        bucket_fields: Vec<String> = vec!["country".into(), "device".into(), "daypart".into()],
        /// Width of LinUCB's confidence bonus, in standard deviations (0.4 served best
        /// in billboard's simulator, of 0.1–0.7).
        linucb_alpha: f64 = 0.4,
        /// ε of the ε-greedy policy.
        epsilon: f64 = 0.05,
        /// Exploration constant of UCB1.
        ucb_c: f64 = 0.2,
        /// Pseudo-impressions of each level of the prior ladder.
        prior_strength: f64 = 20.0,
        /// How Thompson sampling's pick probabilities are computed: 0, by quadrature
        /// (exact to about 0.001, and much cheaper); else estimated by this many Monte
        /// Carlo draws.
        thompson_draws: usize = 0,
        /// How long a member keeps seeing the same artwork for a title.
        #[serde(with = "humantime_serde")]
        artwork_stickiness: Duration = Duration::from_secs(24 * 3600),
        /// How often learned outcomes are saved, with the offsets, and reach the model.
        #[serde(with = "humantime_serde")]
        flush_interval: Duration = Duration::from_secs(1),
        /// How long the learner's lease lasts without renewal. One instance per
        /// consumer group learns (it holds the lease, renewed with every save); the
        /// others serve decisions from the saved statistics and take over when the
        /// holder leaves, or this long after it died.
        #[serde(with = "humantime_serde")]
        learner_lease: Duration = Duration::from_secs(10),
        /// How often the catalog (titles, artworks, pool) is reloaded.
        #[serde(with = "humantime_serde")]
        catalog_refresh: Duration = Duration::from_secs(5),
        /// Consumer group that learns from outcomes.
        consumer_group: String = "nearline-billboard".into(),
        /// Topic the outcomes are read from.
        outcomes_topic: String = "nearline.outcomes.v1".into(),
        /// Address of the insights gRPC API, for cold-start priors.
        insights_url: String = "http://127.0.0.1:50053".into(),
    }
);

impl Config {
    /// Semantic checks that types alone cannot express, as `(key, reason)` pairs.
    pub fn semantic_problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &str, reason: &str| {
            if !ok {
                problems.push((key.to_string(), reason.to_string()));
            }
        };
        check(self.database.max_connections > 0, "database.max_connections", "must be at least 1");
        check(
            self.database.url.as_str().starts_with("postgres://")
                || self.database.url.as_str().starts_with("postgresql://"),
            "database.url",
            "must be a postgres:// URL",
        );
        check(
            !self.kafka.bootstrap_servers.trim().is_empty(),
            "kafka.bootstrap_servers",
            "must not be empty",
        );
        check(self.kafka.partitions >= 1, "kafka.partitions", "must be at least 1");
        check(self.kafka.replication >= 1, "kafka.replication", "must be at least 1");
        check(
            self.kafka.session_timeout >= Duration::from_secs(1),
            "kafka.session_timeout",
            "must be at least 1s",
        );
        for (n, region) in self.kafka.mirrored_regions.iter().enumerate() {
            if let Some(reason) = KafkaConfig::region_problem(region) {
                check(false, "kafka.mirrored_regions", &reason);
            } else if self.kafka.mirrored_regions[..n].contains(region) {
                check(false, "kafka.mirrored_regions", &format!("region {region:?} is named twice"));
            }
        }
        check(self.embedded.partitions >= 1, "embedded.partitions", "must be at least 1");
        check(!self.embedded.sqlite_path.is_empty(), "embedded.sqlite_path", "must not be empty");
        check(self.embedded.segment_bytes >= 1024, "embedded.segment_bytes", "must be at least 1024");
        check(self.embedded.retention_bytes > 0, "embedded.retention_bytes", "must be at least 1");
        check(
            self.embedded.retention >= self.attribution.allowed_lateness,
            "embedded.retention",
            "must be at least attribution.allowed_lateness, or a restart cannot replay what the join needs",
        );
        for (name, server) in [
            ("ingest", self.ingest.server()),
            ("attribution", self.attribution.server()),
            ("insights", self.insights.server()),
            ("billboard", self.billboard.server()),
        ] {
            check(server.body_limit_bytes > 0, &format!("{name}.body_limit_bytes"), "must be at least 1");
            check(!server.request_timeout.is_zero(), &format!("{name}.request_timeout"), "must be positive");
            check(server.max_connections > 0, &format!("{name}.max_connections"), "must be at least 1");
            check(
                !server.header_read_timeout.is_zero(),
                &format!("{name}.header_read_timeout"),
                "must be positive",
            );
            let clash = server.grpc_port != 0 && server.grpc_port == server.http_port;
            check(!clash, &format!("{name}.http_port"), "must differ from grpc_port");
        }
        check(self.ingest.max_batch_events > 0, "ingest.max_batch_events", "must be at least 1");
        check(self.ingest.max_in_flight_events > 0, "ingest.max_in_flight_events", "must be at least 1");
        check(!self.attribution.epoch_len.is_zero(), "attribution.epoch_len", "must be positive");
        check(!self.attribution.batch_interval.is_zero(), "attribution.batch_interval", "must be positive");
        check(!self.attribution.catalog_refresh.is_zero(), "attribution.catalog_refresh", "must be positive");
        check(
            self.attribution.reward_window <= self.attribution.attribution_window,
            "attribution.reward_window",
            "must not exceed attribution.attribution_window",
        );
        check(!self.insights.max_range.is_zero(), "insights.max_range", "must be positive");
        self.billboard_problems(&mut check);
        check(
            self.auth.tokens.iter().all(|t| t.expose().len() >= 16),
            "auth.tokens",
            "every token must be at least 16 characters",
        );
        problems
    }

    fn billboard_problems(&self, check: &mut impl FnMut(bool, &str, &str)) {
        const POLICIES: [&str; 5] = ["thompson", "linucb", "epsilon_greedy", "ucb1", "uniform"];
        let b = &self.billboard;
        for (name, share) in &b.policy_mix {
            check(
                POLICIES.contains(&name.as_str()),
                &format!("billboard.policy_mix.{name}"),
                "unknown policy; expected one of thompson, linucb, epsilon_greedy, ucb1, uniform",
            );
            check(
                share.is_finite() && *share >= 0.0,
                &format!("billboard.policy_mix.{name}"),
                "must be a share in [0, 1]",
            );
        }
        let total: f64 = b.policy_mix.values().sum();
        check((total - 1.0).abs() < 1e-6, "billboard.policy_mix", "shares must sum to 1");
        for name in &b.bucket_fields {
            check(
                ["country", "device", "daypart"].contains(&name.as_str()),
                "billboard.bucket_fields",
                "fields must be country, device or daypart",
            );
        }
        let unit = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
        check(unit(b.exploration_floor), "billboard.exploration_floor", "must be in [0, 1]");
        check(unit(b.new_title_floor), "billboard.new_title_floor", "must be in [0, 1]");
        check(unit(b.epsilon), "billboard.epsilon", "must be in [0, 1]");
        let positive = |x: f64| x.is_finite() && x >= 0.0;
        check(positive(b.linucb_alpha), "billboard.linucb_alpha", "must be a non-negative number");
        check(positive(b.ucb_c), "billboard.ucb_c", "must be a non-negative number");
        check(
            b.prior_strength.is_finite() && b.prior_strength > 0.0,
            "billboard.prior_strength",
            "must be positive",
        );
        check(!b.flush_interval.is_zero(), "billboard.flush_interval", "must be positive");
        check(
            b.learner_lease > 2 * b.flush_interval,
            "billboard.learner_lease",
            "must be more than twice billboard.flush_interval",
        );
        check(!b.catalog_refresh.is_zero(), "billboard.catalog_refresh", "must be positive");
        check(!b.consumer_group.is_empty(), "billboard.consumer_group", "must not be empty");
        check(!b.outcomes_topic.is_empty(), "billboard.outcomes_topic", "must not be empty");
    }
}

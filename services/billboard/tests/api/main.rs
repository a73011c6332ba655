//! The billboard service over HTTP and gRPC against a real database of either backend
//! and the in-process log: decisions and their errors, the impression to log, and
//! learning from outcomes exactly once; [`pool_and_model`]: the pool and the model view
//! over gRPC, with auth.

mod pool_and_model;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nearline_billboard::learn;
use nearline_billboard::policy::{Discount, Learner};
use nearline_eventlog::memory::MemoryLog;
use nearline_eventlog::{EventLog, OutgoingRecord, TopicSpec};
use nearline_proto::billboard::v1 as pb;
use nearline_proto::billboard::v1::billboard_service_client::BillboardServiceClient;
use nearline_proto::events::v1 as events;
use nearline_runtime::Config;
use nearline_runtime::config::Secret;
use nearline_runtime::server::Listeners;
use nearline_storage::Database;
use nearline_testkit::{TestDatabase, wait_for};
use prost::Message as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic_types::StatusExt as _;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Postgres,
    Sqlite,
}

async fn database(backend: Backend) -> Database {
    let database = match backend {
        Backend::Postgres => {
            let test = TestDatabase::create().await;
            Database::Postgres(sqlx::PgPool::connect(&test.url).await.expect("connect to the test database"))
        }
        Backend::Sqlite => {
            Database::Sqlite(nearline_storage::connect_sqlite(":memory:").await.expect("open SQLite"))
        }
    };
    database.migrate().await.expect("migrate");
    database
}

/// Titles 1..=5 in the catalog, written by ingest's catalog code: title `id` has `id`
/// artworks `art-{id}.0`.., title 5 none.
async fn seed_videos(database: &Database) {
    let catalog = nearline_ingest::catalog::Catalog::new(database.clone());
    for id in 1..=5i64 {
        catalog.upsert(&video(id, if id == 5 { 0 } else { id })).await.expect("upsert video");
    }
}

fn video(id: i64, artworks: i64) -> nearline_ingest::catalog::Video {
    use nearline_ingest::catalog::{Kind, Video};
    let (kind, genre) = if id % 2 == 0 { (Kind::Movie, "drama") } else { (Kind::Series, "comedy") };
    Video {
        video_id: id,
        title: format!("t{id}"),
        kind,
        genres: vec![genre.into()],
        launch_at_ms: None,
        artworks: (0..artworks).map(|a| format!("art-{id}.{a}")).collect(),
    }
}

struct Server {
    database: Database,
    http: String,
    grpc: String,
    log: Arc<MemoryLog>,
    topic: String,
    shutdown: CancellationToken,
    client: reqwest::Client,
    /// The bearer token every HTTP call carries, when the server asks for one.
    token: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Server {
    async fn start(database: Database) -> Server {
        Self::start_with(database, None).await
    }

    /// With `token` as the one accepted bearer token, when given.
    async fn start_with(database: Database, token: Option<&str>) -> Server {
        let mut config = Config::default();
        config.auth.tokens = token.into_iter().map(Secret::new).collect();
        config.billboard.http_port = 0;
        config.billboard.grpc_port = 0;
        config.billboard.flush_interval = Duration::from_millis(100);
        config.billboard.catalog_refresh = Duration::from_millis(200);
        let topic = config.billboard.outcomes_topic.clone();
        let log = Arc::new(MemoryLog::new());
        log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 2, replication: 1 }]).await.unwrap();
        let listeners = Listeners::bind(&config.billboard.server()).await.expect("bind port 0");
        let http = format!("http://{}", listeners.http_addr());
        let grpc = format!("http://{}", listeners.grpc_addr());
        let shutdown = CancellationToken::new();
        let dyn_log: Arc<dyn EventLog> = log.clone();
        tokio::spawn(nearline_billboard::run(
            Arc::new(config),
            database.clone(),
            dyn_log,
            listeners,
            shutdown.clone(),
        ));
        let client = reqwest::Client::new();
        let ready = format!("{http}/readyz");
        wait_for("billboard ready", Duration::from_secs(20), || {
            let (client, ready) = (client.clone(), ready.clone());
            async move { client.get(&ready).send().await.ok().filter(|r| r.status() == 200).map(drop) }
        })
        .await;
        Server { database, http, grpc, log, topic, shutdown, client, token: token.map(str::to_owned) }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.http));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
}

async fn setup(backend: Backend) -> Server {
    let database = database(backend).await;
    seed_videos(&database).await;
    Server::start(database).await
}

fn context() -> Value {
    json!({"country": "US", "device": "tv", "hour_of_day": 20})
}

fn invalid_fields(body: &Value) -> Vec<String> {
    body["invalid"].as_array().map_or_else(Vec::new, |a| {
        a.iter().map(|v| v["field"].as_str().unwrap_or_default().to_string()).collect()
    })
}

async fn decisions_and_errors(backend: Backend) {
    let server = setup(backend).await;

    // No candidates and an empty pool.
    let (status, body) = server.post("/v1/billboard", json!({"member_id": "m1", "context": context()})).await;
    assert_eq!((status, invalid_fields(&body)), (400, vec!["candidates".to_string()]), "{body}");

    let (status, body) = server.put("/v1/billboard/pool", json!({"video_ids": [1, 2, 3, 4]})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.call(reqwest::Method::GET, "/v1/billboard/pool", None).await;
    assert_eq!((status, body["video_ids"].clone()), (200, json!([1, 2, 3, 4])));

    let (status, d) = server.post("/v1/billboard", json!({"member_id": "m1", "context": context()})).await;
    assert_eq!(status, 200, "{d}");
    let request_id = d["request_id"].as_str().unwrap();
    let uuid = uuid::Uuid::try_parse(request_id).expect("a UUID");
    assert_eq!(uuid.hyphenated().to_string(), request_id, "canonical lowercase");
    let p = d["propensity"].as_f64().unwrap();
    assert!(p > 0.0 && p <= 1.0, "{d}");
    assert_eq!(d["candidates"], json!([1, 2, 3, 4]));
    let video = d["video_id"].as_i64().unwrap();
    assert!(d["artwork_id"].as_str().unwrap().starts_with(&format!("art-{video}.")), "{d}");
    assert_eq!(d["explore"]["propensity"], d["propensity"]);
    assert_eq!(d["explore"]["policy"], d["policy"]);
    assert_eq!(d["explore"]["candidates"], json!([1, 2, 3, 4]));
    // What offline evaluation needs: every candidate's artworks in the policy's order,
    // and the context it decided in.
    let candidate_artworks = d["explore"]["candidate_artworks"].as_array().unwrap();
    assert_eq!(candidate_artworks.len(), 4, "{d}");
    for (c, video) in candidate_artworks.iter().zip(1..) {
        assert_eq!(c["video_id"], video);
        let ids: Vec<&str> =
            c["artwork_ids"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert!(!ids.is_empty() && ids.iter().all(|a| a.starts_with(&format!("art-{video}."))), "{d}");
        assert!(ids.is_sorted(), "the catalog's order: {ids:?}");
    }
    assert_eq!(d["explore"]["context"], context());

    // The impression the client logs with it is accepted by ingest as it is.
    let impression = json!({"events": [{
        "type": "impression", "event_id": "e1", "request_id": request_id, "member_id": "m1",
        "video_id": video, "artwork_id": d["artwork_id"], "canvas": "billboard",
        "country": "US", "device": "tv", "event_time": chrono::Utc::now().timestamp_millis(),
        "explore": d["explore"],
    }]});
    let decoded =
        nearline_ingest::event::decode_json(&serde_json::to_vec(&impression).unwrap(), "local", 10).unwrap();
    assert!(decoded.violations.is_empty(), "{:?}", decoded.violations);
    let bounds =
        nearline_ingest::validate::TimeBounds::now(Duration::from_secs(3600), Duration::from_secs(60));
    let invalid = nearline_ingest::validate::check_batch(&decoded.events, &bounds);
    assert!(invalid.is_empty(), "{invalid:?}");

    // Errors name the field.
    for (request, field) in [
        (json!({"member_id": "m1", "context": context(), "candidates": [1, 99]}), "candidates[1]"),
        (json!({"member_id": "m1", "context": context(), "candidates": [5]}), "candidates[0]"),
        (
            json!({"member_id": "m1", "context": context(), "candidates": (1..=257).collect::<Vec<i64>>()}),
            "candidates",
        ),
        (
            json!({"member_id": "m1", "context": {"country": "XX", "device": "tv", "hour_of_day": 1}}),
            "context.country",
        ),
        (
            json!({"member_id": "m1", "context": {"country": "US", "device": "TV!", "hour_of_day": 1}}),
            "context.device",
        ),
        (
            json!({"member_id": "m1", "context": {"country": "US", "device": "tv", "hour_of_day": 24}}),
            "context.hour_of_day",
        ),
        (json!({"member_id": "", "context": context()}), "member_id"),
    ] {
        let (status, body) = server.post("/v1/billboard", request).await;
        assert_eq!((status, invalid_fields(&body)), (400, vec![field.to_string()]), "{body}");
    }

    // Artwork for a row: one choice per title, each with its explore block.
    let (status, a) = server
        .post("/v1/artwork", json!({"member_id": "m2", "context": context(), "video_ids": [4, 2]}))
        .await;
    assert_eq!(status, 200, "{a}");
    let choices = a["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!(choices[0]["video_id"], 4);
    assert_eq!(choices[0]["explore"]["candidates"], json!([4]));
    assert_eq!(choices[0]["explore"]["candidate_artworks"].as_array().unwrap().len(), 1);
    assert_eq!(choices[0]["explore"]["candidate_artworks"][0]["video_id"], 4);
    assert_eq!(choices[1]["explore"]["context"], context());
    // Sticky: the same member sees the same artwork again.
    let (_, again) = server
        .post("/v1/artwork", json!({"member_id": "m2", "context": context(), "video_ids": [4, 2]}))
        .await;
    assert_eq!(again["choices"][0]["artwork_id"], choices[0]["artwork_id"]);
    let (status, body) =
        server.post("/v1/artwork", json!({"member_id": "m2", "context": context(), "video_ids": [5]})).await;
    assert_eq!((status, invalid_fields(&body)), (400, vec!["video_ids[0]".to_string()]), "{body}");

    // gRPC: same semantics.
    let mut grpc = BillboardServiceClient::connect(server.grpc.clone()).await.unwrap();
    let d = grpc
        .choose_billboard(pb::ChooseBillboardRequest {
            member_id: "m3".into(),
            context: Some(pb::Context { country: "BR".into(), device: "mobile".into(), hour_of_day: 9 }),
            candidates: vec![2, 3],
        })
        .await
        .unwrap()
        .into_inner();
    assert!([2, 3].contains(&d.video_id));
    assert_eq!(d.explore.as_ref().unwrap().propensity, d.propensity);
    let seen = d.explore.as_ref().unwrap();
    assert_eq!(seen.candidate_artworks.iter().map(|c| c.video_id).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(
        seen.context,
        Some(events::ExploreContext { country: "BR".into(), device: "mobile".into(), hour_of_day: 9 })
    );
    let status = grpc
        .choose_billboard(pb::ChooseBillboardRequest {
            member_id: "m3".into(),
            context: Some(pb::Context { country: "BR".into(), device: "mobile".into(), hour_of_day: 9 }),
            candidates: vec![2, 77],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let violations = status.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations[0].field, "candidates[1]");
    let row = grpc
        .choose_artwork(pb::ChooseArtworkRequest {
            member_id: "m3".into(),
            video_ids: vec![3],
            context: Some(pb::Context { country: "BR".into(), device: "mobile".into(), hour_of_day: 9 }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(row.choices.len(), 1);
}

#[tokio::test]
async fn decisions_and_errors_postgres() {
    decisions_and_errors(Backend::Postgres).await;
}

#[tokio::test]
async fn decisions_and_errors_sqlite() {
    decisions_and_errors(Backend::Sqlite).await;
}

/// Artworks come from the catalog alone, and a change there reaches decisions within
/// `billboard.catalog_refresh` (200 ms here).
async fn catalog_changes_reach_decisions(backend: Backend) {
    let server = setup(backend).await;
    let catalog = nearline_ingest::catalog::Catalog::new(server.database.clone());
    let request = json!({"member_id": "m1", "context": context(), "candidates": [5]});
    let (status, body) = server.post("/v1/billboard", request.clone()).await;
    assert_eq!((status, invalid_fields(&body)), (400, vec!["candidates[0]".to_string()]), "{body}");
    assert!(body.to_string().contains("PUT /v1/videos/5"), "the error says where artworks are set: {body}");

    catalog.upsert(&video(5, 2)).await.unwrap();
    let (server, request) = (&server, &request);
    let d = wait_for("title 5's artworks seen", Duration::from_secs(10), || async move {
        let (status, d) = server.post("/v1/billboard", request.clone()).await;
        (status == 200).then_some(d)
    })
    .await;
    assert_eq!(d["explore"]["candidate_artworks"][0]["artwork_ids"], json!(["art-5.0", "art-5.1"]));

    // A replaced list replaces what billboard chooses among.
    let mut one = video(5, 0);
    one.artworks = vec!["art-5.9".into()];
    catalog.upsert(&one).await.unwrap();
    wait_for("the new artwork list seen", Duration::from_secs(10), || async move {
        let (_, d) = server.post("/v1/billboard", request.clone()).await;
        (d["artwork_id"] == "art-5.9" && d["propensity"] == 1.0).then_some(())
    })
    .await;

    // Billboard no longer takes artworks itself: one source of truth.
    let (status, _) = server.put("/v1/billboard/artworks/5", json!({"artworks": ["x"]})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn catalog_changes_reach_decisions_postgres() {
    catalog_changes_reach_decisions(Backend::Postgres).await;
}

#[tokio::test]
async fn catalog_changes_reach_decisions_sqlite() {
    catalog_changes_reach_decisions(Backend::Sqlite).await;
}

/// An outcome record as attribution publishes it.
fn outcome(request_id: &str, video_id: i64, artwork: &str, played: bool, time_ms: i64) -> events::Outcome {
    events::Outcome {
        request_id: request_id.into(),
        video_id,
        member_id: "m".into(),
        canvas: "billboard".into(),
        country: "US".into(),
        device: "tv".into(),
        artwork_id: artwork.into(),
        explore: Some(events::Explore {
            policy: "linucb".into(),
            model_version: "0".into(),
            propensity: 0.5,
            explored: false,
            candidates: vec![1, 2],
            candidate_artworks: vec![
                events::CandidateArtworks { video_id: 1, artwork_ids: vec!["art-1.0".into()] },
                events::CandidateArtworks {
                    video_id: 2,
                    artwork_ids: vec!["art-2.0".into(), "art-2.1".into()],
                },
            ],
            // The client's local evening, whatever the UTC hour of the impression.
            context: Some(events::ExploreContext {
                country: "US".into(),
                device: "tv".into(),
                hour_of_day: 20,
            }),
        }),
        played,
        impression_time_ms: time_ms,
        play_time_ms: played.then_some(time_ms + 1000),
        title: None,
    }
}

async fn learns_exactly_once(backend: Backend) {
    let server = setup(backend).await;
    server.put("/v1/billboard/pool", json!({"video_ids": [1, 2]})).await;
    let t0 = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let mut outcomes = Vec::new();
    for i in 0..300i64 {
        let request_id = nearline_billboard::request_id::mint(i as u128 * 7919);
        let (video, artwork) =
            if i % 3 == 0 { (1, "art-1.0") } else { (2, if i % 2 == 0 { "art-2.0" } else { "art-2.1" }) };
        outcomes.push(outcome(&request_id, video, artwork, video == 2 && i % 4 != 0, t0 + i * 1000));
    }
    // Every outcome twice, the copy with the reward flipped: the first wins.
    let mut stream = outcomes.clone();
    for o in &outcomes {
        stream.push(events::Outcome { played: !o.played, ..o.clone() });
    }
    let records: Vec<OutgoingRecord> = stream
        .iter()
        .map(|o| OutgoingRecord {
            topic: server.topic.clone(),
            key: Bytes::from(o.request_id.clone().into_bytes()),
            payload: o.encode_to_vec().into(),
            timestamp_ms: Some(o.impression_time_ms),
        })
        .collect();
    server.log.publish(records).await.unwrap();

    let view = wait_for("all outcomes learned", Duration::from_secs(30), || async {
        let (_, view) =
            server.call(reqwest::Method::GET, "/v1/billboard/model?country=US&device=tv", None).await;
        let impressions: u64 = view["buckets"]
            .as_array()?
            .iter()
            .flat_map(|b| b["arms"].as_array().cloned().unwrap_or_default())
            .map(|a| a["impressions"].as_u64().unwrap_or(0))
            .sum();
        (impressions == 300).then_some(view)
    })
    .await;
    // The same counts as the pure learner over the stream.
    let mut reference = Learner::default();
    let discount = Discount::new(7 * 24 * 3_600_000);
    for o in &stream {
        reference.apply(&learn::observation(&o.encode_to_vec()).unwrap(), discount);
    }
    let arms = &view["buckets"][0]["arms"];
    for (arm, cell, counter) in reference.stats.sorted() {
        let shown = arms
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["video_id"] == arm.video_id && a["artwork_id"] == *arm.artwork_id)
            .unwrap_or_else(|| panic!("{arm:?} in {cell:?} is shown"));
        assert_eq!(shown["impressions"], counter.impressions);
        assert_eq!(shown["plays"], counter.plays);
    }
    assert_eq!(view["buckets"][0]["daypart"], "evening", "the hour travelled in explore.context");
    assert_ne!(view["model_version"], "0");
    assert!(arms.as_array().unwrap().iter().any(|a| a["pick_probability"].as_f64().is_some()));
}

#[tokio::test]
async fn learns_exactly_once_postgres() {
    learns_exactly_once(Backend::Postgres).await;
}

#[tokio::test]
async fn learns_exactly_once_sqlite() {
    learns_exactly_once(Backend::Sqlite).await;
}

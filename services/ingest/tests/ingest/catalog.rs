//! The catalog round trip, written once and run on Postgres and on SQLite.

use nearline_storage::Database;
use serde_json::json;

use crate::harness::{self, Service, body};

async fn round_trip(database: Database) {
    let log = harness::memory();
    let topics = harness::topics(&log, 1, 1).await;
    let service = Service::start(harness::config(), database, log, topics).await;
    let url = |id: &str| format!("{}/v1/videos/{id}", service.http);

    let missing = service.client.get(url("80100172")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(body(missing).await["error"], "not_found");

    let video = json!({"title": "Stranger Things", "kind": "series", "genres": ["sci-fi", "drama"],
                       "launch_at": "2016-07-15T07:00:00Z", "artworks": ["st-hero", "st-duo"]});
    let put = service.client.put(url("80100172")).json(&video).send().await.unwrap();
    assert_eq!(put.status(), 200);
    let expected = json!({"video_id": 80100172, "title": "Stranger Things", "kind": "series",
                          "genres": ["sci-fi", "drama"], "launch_at": "2016-07-15T07:00:00.000Z",
                          "launch_at_ms": 1_468_566_000_000_i64, "artworks": ["st-hero", "st-duo"]});
    assert_eq!(body(put).await, expected);
    let got = service.client.get(url("80100172")).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(body(got).await, expected);

    // An upsert replaces the entry; launch_at in ms, genres optional.
    let replacement = json!({"title": "Stranger Things (remastered)", "kind": "series", "launch_at": 1_468_566_000_123_i64});
    assert_eq!(service.client.put(url("80100172")).json(&replacement).send().await.unwrap().status(), 200);
    let got = body(service.client.get(url("80100172")).send().await.unwrap()).await;
    assert_eq!(
        (got["title"].as_str(), got["genres"].clone(), got["artworks"].clone()),
        (Some("Stranger Things (remastered)"), json!([]), json!([])),
        "a PUT replaces the whole video, artworks included"
    );
    assert_eq!(got["launch_at_ms"], 1_468_566_000_123_i64);
    let movie = json!({"title": "Glass Onion", "kind": "movie"});
    assert_eq!(service.client.put(url("81458416")).json(&movie).send().await.unwrap().status(), 200);
    assert_eq!(
        body(service.client.get(url("81458416")).send().await.unwrap()).await["launch_at"],
        json!(null)
    );

    // Every problem is listed.
    let bad = json!({"title": "", "kind": "documentary", "genres": ["Drama", 3], "launch_at": "soon",
               "artworks": ["ok", "ok", "bad id"], "rating": 5});
    let response = service.client.put(url("5")).json(&bad).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let answer = body(response).await;
    let fields: Vec<&str> =
        answer["invalid"].as_array().unwrap().iter().map(|v| v["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        ["title", "kind", "genres[0]", "genres[1]", "launch_at", "artworks[1]", "artworks[2]", "rating"]
    );
    for id in ["0", "-4", "abc"] {
        assert_eq!(service.client.get(url(id)).send().await.unwrap().status(), 400, "{id}");
        assert_eq!(service.client.put(url(id)).json(&movie).send().await.unwrap().status(), 400, "{id}");
    }
    let long = json!({"title": "t".repeat(513), "kind": "movie"});
    assert_eq!(service.client.put(url("6")).json(&long).send().await.unwrap().status(), 400);
    assert_eq!(
        service.client.get(url("5")).send().await.unwrap().status(),
        404,
        "nothing invalid was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_round_trip_on_postgres() {
    round_trip(harness::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_round_trip_on_sqlite() {
    round_trip(harness::sqlite().await).await;
}

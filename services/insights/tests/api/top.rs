//! `GET /v1/titles/top` and `GET /v1/titles?search=` on known data, on both backends.

use serde_json::{Value, json};

use super::fixture::{T0, T2H};
use super::harness::{Backend, assert_rate, config, seeded, start};

fn ids(body: &Value) -> Vec<i64> {
    body["titles"].as_array().expect("titles").iter().map(|t| t["video_id"].as_i64().expect("id")).collect()
}

async fn top_scenario(backend: Backend) {
    let server = start(seeded(backend).await, config(&[])).await;
    let range = format!("from={T0}&to={T2H}");

    let (status, body) = server.get(&format!("/v1/titles/top?{range}&metric=plays")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metric"], "plays");
    assert_eq!(body["complete_until"], "2026-11-21T06:00:00Z");
    assert_eq!(ids(&body), vec![101, 104, 102, 103, 999]);
    assert_eq!(
        body["titles"][0],
        json!({"rank": 1, "video_id": 101, "title": "Stranger Lights", "impressions": 28, "plays": 9, "take_rate": 9.0 / 28.0})
    );
    // A title missing from the catalog is still ranked, without a name.
    assert_eq!(
        body["titles"][4],
        json!({"rank": 5, "video_id": 999, "title": null, "impressions": 1, "plays": 0, "take_rate": 0.0})
    );

    let (_, body) = server.get(&format!("/v1/titles/top?{range}&metric=impressions&limit=2")).await;
    assert_eq!(ids(&body), vec![102, 101]);
    assert_eq!(body["titles"][0]["impressions"], 50);

    // Take rate honours min_impressions (103 has 2, 999 has 1).
    let (_, body) = server.get(&format!("/v1/titles/top?{range}&metric=take_rate&min_impressions=5")).await;
    assert_eq!(ids(&body), vec![104, 101, 102]);
    assert_rate(&body["titles"][0]["take_rate"], 0.4);
    let (_, body) = server.get(&format!("/v1/titles/top?{range}&metric=take_rate")).await;
    assert_eq!(ids(&body), vec![103, 104, 101, 102, 999]);

    // Filters.
    let (_, body) = server.get(&format!("/v1/titles/top?{range}&device=tv")).await;
    assert_eq!(ids(&body), vec![101, 102, 103, 999]);
    assert_eq!(body["titles"][0]["impressions"], 20);
    assert_eq!(body["titles"][0]["plays"], 5);

    // Search by name, case-insensitive, sorted by name; LIKE wildcards are literal.
    let (status, body) = server.get("/v1/titles?search=HARBOR").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), vec![102, 108]);
    assert_eq!(
        body["titles"][0],
        json!({"video_id": 102, "title": "Dark Harbor", "kind": "movie", "genres": ["thriller", "crime"], "launch_at": "2026-06-01T00:15:00Z"})
    );
    assert_eq!(body["titles"][1]["launch_at"], json!(null));
    let (_, body) = server.get("/v1/titles?search=%25").await;
    assert_eq!(ids(&body), Vec::<i64>::new());
    let (_, body) = server.get("/v1/titles?search=lights&limit=1").await;
    assert_eq!(ids(&body), vec![101]);
}

#[tokio::test]
async fn top_titles_and_search_on_postgres() {
    top_scenario(Backend::Postgres).await;
}

#[tokio::test]
async fn top_titles_and_search_on_sqlite() {
    top_scenario(Backend::Sqlite).await;
}

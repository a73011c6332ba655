//! Per region and global (docs/regions.md): with mirroring, every region's attribution
//! counts all regions' events, each cell keeping the region its impression was logged
//! in. Without a `region` filter insights answers the global view (the sum over
//! regions); with one, only that region's impressions (and, for unattributed plays, the
//! plays logged there); `group_by=region` splits by region. HTTP and gRPC, both backends.

use nearline_proto::insights::v1 as pb;
use serde_json::json;

use super::harness::{Backend, config, database, start};

/// 2026-12-01T00:00:00Z, a day boundary; no other fixture has counts near it.
const DAY: &str = "2026-12-01T00:00:00Z";
const NEXT_DAY: &str = "2026-12-02T00:00:00Z";
const DAY_MS: i64 = 1_796_083_200_000;

/// Title 201 seen in two regions, hour 10 and 11 of the day; a play without impression
/// in each region.
const SEED: &str = "
INSERT INTO videos (video_id, title, kind) VALUES (201, 'Two Shores', 'movie'), (202, 'One Shore', 'movie');
INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays) VALUES
    (201, 1796119200000, 'US', 'tv',  'row', 'us-east', 10, 4),
    (201, 1796119200000, 'US', 'tv',  'row', 'eu-west',  2, 1),
    (201, 1796122800000, 'DE', 'web', 'row', 'eu-west',  8, 2),
    (202, 1796119200000, 'DE', 'tv',  'row', 'eu-west',  5, 3);
INSERT INTO unattributed_counts (video_id, epoch_start_ms, country, device, region, plays) VALUES
    (201, 1796119200000, 'US', 'tv', 'us-east', 1),
    (201, 1796122800000, 'DE', 'tv', 'eu-west', 2);
";

async fn seeded(backend: Backend) -> nearline_storage::Database {
    let database = database(backend).await;
    super::fixture::load(&database, SEED).await.expect("seed");
    database
}

async fn regions_scenario(backend: Backend) {
    let server = start(seeded(backend).await, config(&[])).await;
    let performance = |query: &str| format!("/v1/titles/201/performance?from={DAY}&to={NEXT_DAY}&{query}");

    // Global by default: both regions' impressions.
    let (status, body) = server.get(&performance("granularity=day")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["totals"],
        json!({"impressions": 20, "plays": 7, "take_rate": 0.35, "unattributed_plays": 3})
    );

    // One region: its impressions only, and the plays without impression logged there.
    let (status, body) = server.get(&performance("granularity=day&region=eu-west")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["totals"],
        json!({"impressions": 10, "plays": 3, "take_rate": 0.3, "unattributed_plays": 2})
    );

    // Split by region and hour (from the hourly roll-up, whatever the day's source).
    let (status, body) = server.get(&performance("granularity=hour&group_by=region")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["series"],
        json!([
            {"start": "2026-12-01T10:00:00Z", "group": {"region": "eu-west"}, "impressions": 2, "plays": 1, "take_rate": 0.5},
            {"start": "2026-12-01T10:00:00Z", "group": {"region": "us-east"}, "impressions": 10, "plays": 4, "take_rate": 0.4},
            {"start": "2026-12-01T11:00:00Z", "group": {"region": "eu-west"}, "impressions": 8, "plays": 2, "take_rate": 0.25},
        ])
    );

    // Country and region together, filtered to one country.
    let (_, body) = server.get(&performance("granularity=day&group_by=country,region&country=US")).await;
    assert_eq!(
        body["series"],
        json!([
            {"start": "2026-12-01T00:00:00Z", "group": {"country": "US", "region": "eu-west"}, "impressions": 2, "plays": 1, "take_rate": 0.5},
            {"start": "2026-12-01T00:00:00Z", "group": {"country": "US", "region": "us-east"}, "impressions": 10, "plays": 4, "take_rate": 0.4},
        ])
    );

    // Top titles: global, then in one region, where the ranking turns over.
    let top = |query: &str| format!("/v1/titles/top?from={DAY}&to={NEXT_DAY}&metric=plays&{query}");
    let (status, body) = server.get(&top("")).await;
    assert_eq!(status, 200, "{body}");
    let ranked = |body: &serde_json::Value| -> Vec<(i64, i64)> {
        body["titles"]
            .as_array()
            .expect("titles")
            .iter()
            .map(|t| (t["video_id"].as_i64().unwrap(), t["plays"].as_i64().unwrap()))
            .collect()
    };
    assert_eq!(ranked(&body), [(201, 7), (202, 3)]);
    let (_, body) = server.get(&top("region=eu-west")).await;
    assert_eq!(ranked(&body), [(201, 3), (202, 3)]);
    let (_, body) = server.get(&top("region=us-east")).await;
    assert_eq!(ranked(&body), [(201, 4)]);

    // A region nobody logged in: nothing, not an error.
    let (status, body) = server.get(&performance("region=ap-south")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totals"]["impressions"], 0);

    // gRPC: the same filter and group.
    let mut client = server.grpc_client().await;
    let response = client
        .get_title_performance(pb::TitlePerformanceRequest {
            video_id: 201,
            from_ms: DAY_MS,
            to_ms: DAY_MS + 86_400_000,
            granularity: "day".into(),
            group_by: vec!["region".into()],
            filters: Some(pb::Filters { region: vec!["eu-west".into()], ..Default::default() }),
        })
        .await
        .expect("ok")
        .into_inner();
    let totals = response.totals.expect("totals");
    assert_eq!((totals.impressions, totals.plays, response.unattributed_plays), (10, 3, 2));
    assert_eq!(response.series.len(), 1);
    assert_eq!(response.series[0].group.get("region").map(String::as_str), Some("eu-west"));
}

#[tokio::test]
async fn regions_on_postgres() {
    regions_scenario(Backend::Postgres).await;
}

#[tokio::test]
async fn regions_on_sqlite() {
    regions_scenario(Backend::Sqlite).await;
}

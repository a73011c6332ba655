//! `GET /v1/titles/{id}/performance` on known data, written once and run on both backends.

use serde_json::json;

use super::fixture::{T0, T2H};
use super::harness::{Backend, config, seeded, start};

async fn performance_scenario(backend: Backend) {
    let server = start(seeded(backend).await, config(&[])).await;

    // By epoch, grouped by country and device.
    let (status, body) = server
        .get(&format!(
            "/v1/titles/101/performance?from={T0}&to={T2H}&granularity=epoch&group_by=device,country"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "video_id": 101,
            "title": "Stranger Lights",
            "from": "2026-11-20T10:00:00Z",
            "to": "2026-11-20T12:00:00Z",
            "granularity": "epoch",
            "complete_until": "2026-11-21T06:00:00Z",
            "totals": {"impressions": 28, "plays": 9, "take_rate": 9.0 / 28.0, "unattributed_plays": 3},
            "series": [
                {"start": "2026-11-20T10:00:00Z", "group": {"country": "CA", "device": "tv"},
                 "impressions": 4, "plays": 0, "take_rate": 0.0},
                {"start": "2026-11-20T10:00:00Z", "group": {"country": "US", "device": "mobile"},
                 "impressions": 5, "plays": 1, "take_rate": 0.2},
                {"start": "2026-11-20T10:00:00Z", "group": {"country": "US", "device": "tv"},
                 "impressions": 10, "plays": 3, "take_rate": 0.3},
                {"start": "2026-11-20T10:30:00Z", "group": {"country": "US", "device": "tv"},
                 "impressions": 6, "plays": 2, "take_rate": 2.0 / 6.0},
                {"start": "2026-11-20T11:00:00Z", "group": {"country": "BR", "device": "web"},
                 "impressions": 3, "plays": 3, "take_rate": 1.0},
            ],
        })
    );

    // By hour, no grouping: the group is empty.
    let (status, body) =
        server.get(&format!("/v1/titles/101/performance?from={T0}&to={T2H}&granularity=hour")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["series"],
        json!([
            {"start": "2026-11-20T10:00:00Z", "group": {}, "impressions": 25, "plays": 6, "take_rate": 0.24},
            {"start": "2026-11-20T11:00:00Z", "group": {}, "impressions": 3, "plays": 3, "take_rate": 1.0},
        ])
    );
    assert_eq!(body["granularity"], "hour");

    // By day and canvas, filtered to two countries and one device; repeated values merge.
    let (status, body) = server
        .get(&format!(
            "/v1/titles/101/performance?from={T0}&to={T2H}&granularity=day&group_by=canvas&country=US,CA&device=tv"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["series"],
        json!([{"start": "2026-11-20T00:00:00Z", "group": {"canvas": "row"}, "impressions": 20, "plays": 5, "take_rate": 0.25}])
    );
    assert_eq!(
        body["totals"],
        json!({"impressions": 20, "plays": 5, "take_rate": 0.25, "unattributed_plays": 2})
    );

    // The canvas filter leaves unattributed plays alone: they have no canvas.
    let (_, body) = server
        .get(&format!("/v1/titles/101/performance?from={T0}&to={T2H}&canvas=billboard&country=US"))
        .await;
    assert_eq!(
        body["totals"],
        json!({"impressions": 5, "plays": 1, "take_rate": 0.2, "unattributed_plays": 2})
    );

    // A range without counts: no series, and no take rate.
    let (status, body) =
        server.get("/v1/titles/101/performance?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["series"], json!([]));
    assert_eq!(
        body["totals"],
        json!({"impressions": 0, "plays": 0, "take_rate": null, "unattributed_plays": 0})
    );
}

#[tokio::test]
async fn performance_on_postgres() {
    performance_scenario(Backend::Postgres).await;
}

#[tokio::test]
async fn performance_on_sqlite() {
    performance_scenario(Backend::Sqlite).await;
}

#[tokio::test]
async fn complete_until_is_null_without_progress() {
    let database = super::harness::database(Backend::Postgres).await;
    sqlx_exec(&database, "INSERT INTO videos (video_id, title, kind) VALUES (7, 'Fresh', 'movie')").await;
    let server = start(database, config(&[])).await;
    let (status, body) = server.get(&format!("/v1/titles/7/performance?from={T0}&to={T2H}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["complete_until"], json!(null));
    assert_eq!(body["series"], json!([]));
}

async fn sqlx_exec(database: &nearline_storage::Database, sql: &'static str) {
    match database {
        nearline_storage::Database::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        nearline_storage::Database::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
    .expect("execute");
}

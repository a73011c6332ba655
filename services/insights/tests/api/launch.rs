//! `GET /v1/titles/{id}/launch`: the early read against comparable launches.

use serde_json::{Value, json};

use super::harness::{Backend, config, seeded, start};

fn assert_spread(actual: &Value, (p25, median, p75): (f64, f64, f64), titles: u64) {
    let get = |k: &str| actual[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {actual}"));
    for (k, expected) in [("p25", p25), ("median", median), ("p75", p75)] {
        assert!((get(k) - expected).abs() < 1e-9, "{k}: {} != {expected} in {actual}", get(k));
    }
    assert_eq!(actual["titles"], titles, "{actual}");
}

async fn launch_scenario(backend: Backend) {
    let server = start(seeded(backend).await, config(&[])).await;

    // 102: a crime movie; 103, 104 and 105 are crime movies launched within the year
    // before it; 106 shares no genre, 107 is too old, 101 is a series.
    let (status, body) = server.get("/v1/titles/102/launch?hours=3").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["title"], "Dark Harbor");
    assert_eq!(body["launch_at"], "2026-06-01T00:15:00Z");
    assert_eq!(body["comparable_titles"], 3);
    assert_eq!(body["comparable_video_ids"], json!([103, 104, 105]));
    assert_eq!(body["note"], json!(null));
    let hours = body["hours"].as_array().expect("hours");
    assert_eq!(hours.len(), 3);

    assert_eq!(hours[0]["start"], "2026-06-01T00:00:00Z");
    assert_eq!(
        (&hours[0]["impressions"], &hours[0]["plays"], &hours[0]["take_rate"]),
        (&json!(20), &json!(5), &json!(0.25))
    );
    assert_spread(&hours[0]["comparables"]["impressions"], (10.0, 10.0, 15.0), 3);
    assert_spread(&hours[0]["comparables"]["plays"], (2.0, 3.0, 3.5), 3);
    assert_spread(&hours[0]["comparables"]["take_rate"], (0.15, 0.2, 0.25), 3);

    assert_eq!((&hours[1]["impressions"], &hours[1]["plays"]), (&json!(8), &json!(2)));
    assert_spread(&hours[1]["comparables"]["impressions"], (7.5, 10.0, 15.0), 3);
    assert_spread(&hours[1]["comparables"]["plays"], (2.0, 2.0, 4.0), 3);
    assert_spread(&hours[1]["comparables"]["take_rate"], (0.25, 0.3, 0.35), 3);

    // Hour 2: nothing counted for 102, and only two comparables have a take rate.
    assert_eq!(
        (&hours[2]["impressions"], &hours[2]["plays"], &hours[2]["take_rate"]),
        (&json!(0), &json!(0), &json!(null))
    );
    assert_spread(&hours[2]["comparables"]["impressions"], (2.0, 4.0, 7.0), 3);
    assert_eq!(hours[2]["comparables"]["take_rate"], json!(null));

    // The default is 24 hours (all long reached for a launch in June).
    let (_, body) = server.get("/v1/titles/102/launch").await;
    assert_eq!(body["hours"].as_array().map(Vec::len), Some(24));

    // Too few comparables: 106 has one (105 shares comedy), 101 none.
    let (status, body) = server.get("/v1/titles/106/launch?hours=2").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["comparable_video_ids"], json!([105]));
    let note = body["note"].as_str().expect("a note");
    assert!(note.contains("too few comparable launches: 1 found"), "{note}");
    assert_eq!(
        body["hours"][0]["comparables"],
        json!({"impressions": null, "plays": null, "take_rate": null})
    );
    let (_, body) = server.get("/v1/titles/101/launch?hours=2").await;
    assert_eq!(body["comparable_titles"], 0);
    assert!(body["note"].is_string(), "{body}");
}

#[tokio::test]
async fn launch_read_on_postgres() {
    launch_scenario(Backend::Postgres).await;
}

#[tokio::test]
async fn launch_read_on_sqlite() {
    launch_scenario(Backend::Sqlite).await;
}

//! The pool and the model view over gRPC (`PutPool`, `GetPool`, `GetModel`) behind a
//! bearer token: the answers and the errors (INVALID_ARGUMENT naming the field) of
//! `PUT/GET /v1/billboard/pool` and `GET /v1/billboard/model`, each side seeing what the
//! other wrote.

use super::*;

const TOKEN: &str = "billboard-test-token-0123456789";

fn authorized<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {TOKEN}").parse().expect("header"));
    request
}

fn violations(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

fn filter(country: &str, device: &str) -> pb::GetModelRequest {
    pb::GetModelRequest { country: country.into(), device: device.into() }
}

/// `json` is `expected` up to rounding (both absent, or both numbers within 1e-12).
fn close(json: &Value, expected: Option<f64>, what: &str) {
    match (json.as_f64(), expected) {
        (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{what}: {a} vs {b}"),
        (None, None) => assert!(json.is_null(), "{what}"),
        (a, b) => panic!("{what}: {a:?} vs {b:?}"),
    }
}

fn millis(rfc3339: &Value) -> Option<i64> {
    Some(chrono::DateTime::parse_from_rfc3339(rfc3339.as_str()?).ok()?.timestamp_millis())
}

async fn pool_and_model_over_grpc(backend: Backend) {
    let database = database(backend).await;
    seed_videos(&database).await;
    let server = Server::start_with(database, Some(TOKEN)).await;
    let mut grpc = BillboardServiceClient::connect(server.grpc.clone()).await.expect("connect");

    // Auth as the other services: without the token nothing is read or written.
    let denied = [
        grpc.get_pool(pb::GetPoolRequest {}).await.map(drop),
        grpc.put_pool(pb::PutPoolRequest { video_ids: vec![1] }).await.map(drop),
        grpc.get_model(pb::GetModelRequest::default()).await.map(drop),
    ];
    for status in denied {
        assert_eq!(status.expect_err("no token").code(), tonic::Code::Unauthenticated);
    }
    let pool = grpc.get_pool(authorized(pb::GetPoolRequest {})).await.expect("get pool").into_inner();
    assert!(pool.video_ids.is_empty(), "{pool:?}");

    // The same errors as HTTP, naming the same field.
    for (ids, field) in [
        (vec![], "video_ids"),
        ((1..=257).collect(), "video_ids"),
        (vec![1, 99], "video_ids[1]"),
        (vec![5], "video_ids[0]"),
        (vec![2, 2], "video_ids[1]"),
    ] {
        let status =
            grpc.put_pool(authorized(pb::PutPoolRequest { video_ids: ids.clone() })).await.unwrap_err();
        assert_eq!(
            (status.code(), violations(&status)),
            (tonic::Code::InvalidArgument, vec![field.to_string()]),
            "{ids:?}: {status:?}"
        );
        let (code, body) = server.put("/v1/billboard/pool", json!({"video_ids": ids})).await;
        assert_eq!((code, invalid_fields(&body)), (400, vec![field.to_string()]), "{body}");
    }

    // Saved in order; HTTP reads what gRPC wrote, and the other way round.
    let pool = grpc.put_pool(authorized(pb::PutPoolRequest { video_ids: vec![3, 1, 2] })).await.unwrap();
    assert_eq!(pool.into_inner().video_ids, [3, 1, 2]);
    let (status, body) = server.call(reqwest::Method::GET, "/v1/billboard/pool", None).await;
    assert_eq!((status, body["video_ids"].clone()), (200, json!([3, 1, 2])));
    let (status, body) = server.put("/v1/billboard/pool", json!({"video_ids": [1, 2]})).await;
    assert_eq!(status, 200, "{body}");
    let pool = grpc.get_pool(authorized(pb::GetPoolRequest {})).await.unwrap().into_inner();
    assert_eq!(pool.video_ids, [1, 2]);

    // A cold model: no cells, every catalog title with its prior, nothing learned yet.
    let cold = grpc.get_model(authorized(pb::GetModelRequest::default())).await.unwrap().into_inner();
    assert_eq!((cold.model_version.as_str(), cold.learned_at_ms, cold.buckets.len()), ("0", None, 0));
    assert_eq!(cold.titles.iter().map(|t| t.video_id).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(cold.titles.iter().all(|t| t.outcomes == 0 && t.prior_mean > 0.0), "{cold:?}");
    assert_eq!(cold.pick_probability_policy, "linucb");

    // Outcomes learned: the gRPC view is the HTTP view, field for field.
    let t0 = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let records: Vec<OutgoingRecord> = (0..60i64)
        .map(|i| {
            let request_id = nearline_billboard::request_id::mint(i as u128 * 104_729);
            let (video, artwork) = if i % 3 == 0 { (1, "art-1.0") } else { (2, "art-2.1") };
            let o = outcome(&request_id, video, artwork, i % 4 == 0, t0 + i * 1000);
            OutgoingRecord {
                topic: server.topic.clone(),
                key: Bytes::from(o.request_id.clone().into_bytes()),
                payload: o.encode_to_vec().into(),
                timestamp_ms: Some(o.impression_time_ms),
            }
        })
        .collect();
    server.log.publish(records).await.unwrap();
    let grpc_ref = &grpc;
    let view = wait_for("the outcomes learned", Duration::from_secs(30), || async move {
        let mut grpc = grpc_ref.clone();
        let view = grpc.get_model(authorized(filter("US", "tv"))).await.ok()?.into_inner();
        let impressions: u64 = view.buckets.iter().flat_map(|b| &b.arms).map(|a| a.impressions).sum();
        (impressions == 60).then_some(view)
    })
    .await;
    let (status, http) =
        server.call(reqwest::Method::GET, "/v1/billboard/model?country=US&device=tv", None).await;
    assert_eq!(status, 200, "{http}");
    assert_eq!(http["model_version"], view.model_version);
    assert_eq!(millis(&http["learned_at"]), view.learned_at_ms);
    assert_eq!(millis(&http["last_outcome_event_time"]), view.last_outcome_event_time_ms);
    assert!(view.learned_at_ms.is_some() && view.last_outcome_event_time_ms.is_some(), "{view:?}");
    assert_eq!(http["pick_probability_policy"], view.pick_probability_policy);
    let cells = http["buckets"].as_array().expect("buckets");
    assert_eq!(cells.len(), view.buckets.len());
    assert_eq!(view.buckets[0].daypart, "evening", "{view:?}");
    for (json, cell) in cells.iter().zip(&view.buckets) {
        assert_eq!(
            (&json["country"], &json["device"], &json["daypart"]),
            (&json!(cell.country), &json!(cell.device), &json!(cell.daypart))
        );
        let arms = json["arms"].as_array().expect("arms");
        assert_eq!(arms.len(), cell.arms.len());
        for (a, arm) in arms.iter().zip(&cell.arms) {
            let counts = json!({"video_id": arm.video_id, "artwork_id": arm.artwork_id,
                                "impressions": arm.impressions, "plays": arm.plays});
            for key in ["video_id", "artwork_id", "impressions", "plays"] {
                assert_eq!(a[key], counts[key], "{key}: {a} vs {arm:?}");
            }
            // The model may be rebuilt between the two reads (a catalog refresh), from the
            // same statistics but summed in another order: equal up to rounding.
            for (key, value) in [
                ("posterior_mean", Some(arm.posterior_mean)),
                ("linear_mean", Some(arm.linear_mean)),
                ("pick_probability", arm.pick_probability),
            ] {
                close(&a[key], value, &format!("{key} of {a}"));
            }
        }
    }
    let titles = http["titles"].as_array().expect("titles");
    assert_eq!(titles.len(), view.titles.len());
    for (json, t) in titles.iter().zip(&view.titles) {
        assert_eq!((&json["video_id"], &json["outcomes"]), (&json!(t.video_id), &json!(t.outcomes)));
        let read = t.early_read.map(|r| json!({"impressions": r.impressions, "plays": r.plays}));
        assert_eq!(json["early_read"], json!(read));
        close(&json["prior_mean"], Some(t.prior_mean), &format!("prior_mean of {json}"));
    }
    assert_eq!(view.titles.iter().map(|t| t.outcomes).sum::<u64>(), 60);

    // Filters: another device has no cells; a bad value names its field on both sides.
    let mobile = grpc.get_model(authorized(filter("US", "mobile"))).await.unwrap().into_inner();
    assert!(mobile.buckets.is_empty(), "{mobile:?}");
    for (country, device, fields) in
        [("usa", "", vec!["country"]), ("", "TV!", vec!["device"]), ("us", "TV!", vec!["country", "device"])]
    {
        let status = grpc.get_model(authorized(filter(country, device))).await.unwrap_err();
        assert_eq!(
            (status.code(), violations(&status)),
            (tonic::Code::InvalidArgument, fields.iter().map(|f| f.to_string()).collect()),
            "{country:?} {device:?}: {status:?}"
        );
        let query = format!("/v1/billboard/model?country={country}&device={}", device.replace('!', "%21"));
        let (code, body) = server.call(reqwest::Method::GET, &query, None).await;
        assert_eq!((code, invalid_fields(&body)), (400, fields.iter().map(|f| f.to_string()).collect()));
    }
}

#[tokio::test]
async fn pool_and_model_over_grpc_postgres() {
    pool_and_model_over_grpc(Backend::Postgres).await;
}

#[tokio::test]
async fn pool_and_model_over_grpc_sqlite() {
    pool_and_model_over_grpc(Backend::Sqlite).await;
}

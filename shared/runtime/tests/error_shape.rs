//! Every error answer of the shared HTTP runtime has the one JSON shape, also those the
//! layers make themselves (body limit, method not allowed), and an answer sent before
//! the body was read says `connection: close`.

#[path = "common/serve.rs"]
mod common;

use axum::routing::post;

#[tokio::test]
async fn layer_answers_are_json_and_a_413_closes_the_connection() {
    let config = common::config(|c| c.body_limit_bytes = 1024);
    let echo = axum::Router::new().route("/echo", post(|body: axum::body::Bytes| async move { body }));
    let served = common::serve(config, echo, Vec::new()).await;
    let http = served.http;
    let client = reqwest::Client::new();

    let big =
        client.post(format!("http://{http}/echo")).body(vec![b'x'; 4096]).send().await.expect("answers");
    assert_eq!(big.status(), 413);
    assert_eq!(big.headers()["connection"], "close");
    let body: serde_json::Value = big.json().await.expect("a JSON body");
    assert_eq!((body["error"].as_str(), body["limit_bytes"].as_u64()), (Some("body_too_large"), Some(1024)));

    let wrong_method = client.get(format!("http://{http}/echo")).send().await.expect("answers");
    assert_eq!(wrong_method.status(), 405);
    assert!(wrong_method.headers().contains_key("allow"), "405 still names the allowed methods");
    let body: serde_json::Value = wrong_method.json().await.expect("a JSON body");
    assert_eq!(body["error"], "method_not_allowed");

    let fine = client.post(format!("http://{http}/echo")).body("small").send().await.expect("answers");
    assert_eq!(fine.text().await.unwrap(), "small");
    served.stop().await;
}

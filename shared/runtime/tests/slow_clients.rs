//! Slow and stalled clients against the shared server runtime: they cannot hold
//! connections past the header deadline, connections beyond the cap are refused with a
//! clear answer, and none of it holds up shutdown.

use std::time::{Duration, Instant};

#[path = "common/serve.rs"]
mod common;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const CAP: usize = 40;
const HEADER_DEADLINE: Duration = Duration::from_millis(800);

/// Reads what the server sends until it closes the connection (bounded).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut text)).await;
    String::from_utf8_lossy(&text).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_cut_off_refused_beyond_the_cap_and_do_not_hold_up_shutdown() {
    let config = common::config(|c| {
        c.max_connections = CAP;
        c.header_read_timeout = HEADER_DEADLINE;
        c.grace_period = Duration::from_secs(10);
    });
    let served = common::serve(config, axum::Router::new(), Vec::new()).await;
    let http = served.http;

    // Fill the cap with clients that send half a request head and then nothing.
    let mut stalled = Vec::new();
    for _ in 0..CAP {
        let mut stream = TcpStream::connect(http).await.expect("connects");
        stream.write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // One more is told why and closed, rather than left hanging.
    let mut extra = TcpStream::connect(http).await.expect("connects");
    let refusal = read_to_close(&mut extra).await;
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal:?}");
    assert!(refusal.contains("too_many_connections") && refusal.contains("connection: close"), "{refusal:?}");

    // The stalled ones are cut off at the header deadline...
    let started = Instant::now();
    for stream in &mut stalled {
        read_to_close(stream).await;
    }
    assert!(started.elapsed() < HEADER_DEADLINE + Duration::from_secs(4), "cut off at the deadline");
    // ...after which the port serves again.
    let ready = reqwest::get(format!("http://{http}/readyz")).await.expect("answers");
    assert_eq!(ready.status(), 200);

    // A stalled client open at shutdown does not hold it up.
    let mut stalled = TcpStream::connect(http).await.expect("connects");
    stalled.write_all(b"GET /readyz HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    served.stop().await;
    assert!(started.elapsed() < HEADER_DEADLINE + Duration::from_secs(2), "took {:?}", started.elapsed());
}

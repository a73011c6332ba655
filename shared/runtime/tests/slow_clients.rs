//! Slow and stalled clients against the shared server runtime: they cannot hold
//! connections past the header deadline, connections beyond the cap are refused with a
//! clear answer, and none of it holds up shutdown.

use std::time::{Duration, Instant};

use nearline_runtime::Readiness;
use nearline_runtime::config::IngestConfig;
use nearline_runtime::server::{self, Listeners, ServiceApis};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

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
    let mut config = IngestConfig { http_port: 0, grpc_port: 0, ..IngestConfig::default() }.server();
    config.max_connections = CAP;
    config.header_read_timeout = HEADER_DEADLINE;
    config.grace_period = Duration::from_secs(10);
    let listeners = Listeners::bind(&config).await.expect("bound");
    let http = listeners.http_addr();
    let apis = ServiceApis {
        name: "slow-client-test",
        grpc: tonic::service::Routes::default(),
        grpc_service_names: Vec::new(),
        http: axum::Router::new(),
    };
    let readiness = Readiness::new();
    readiness.set_ready();
    let shutdown = CancellationToken::new();
    let serving = {
        let (config, shutdown) = (config.clone(), shutdown.clone());
        tokio::spawn(async move { server::serve(apis, listeners, &config, readiness, shutdown).await })
    };

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
    shutdown.cancel();
    serving.await.expect("joined").expect("clean stop within the grace period");
    assert!(started.elapsed() < HEADER_DEADLINE + Duration::from_secs(2), "took {:?}", started.elapsed());
}

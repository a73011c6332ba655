//! The driver's HTTP client: the public APIs exactly as a client app, the homepage and
//! a catalog tool would call them.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// Base URLs of the running services, and the token when auth is on.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    pub(crate) ingest: String,
    pub(crate) insights: String,
    pub(crate) billboard: String,
    token: Option<String>,
}

impl Client {
    pub(crate) fn new(ingest: String, insights: String, billboard: String, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()
            .expect("a plain HTTP client builds");
        Self { http, ingest, insights, billboard, token }
    }

    fn auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let response = self.auth(request).send().await.with_context(|| format!("{what}: no answer"))?;
        let status = response.status();
        let body = response.text().await.with_context(|| format!("{what}: reading the answer"))?;
        if !status.is_success() {
            bail!("{what}: {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("{what}: not JSON: {body}"))
    }

    /// `PUT` a JSON body.
    pub(crate) async fn put(&self, url: String, body: &Value) -> anyhow::Result<Value> {
        let what = format!("PUT {url}");
        self.send(self.http.put(&url).json(body), &what).await
    }

    /// `POST` a JSON body.
    pub(crate) async fn post(&self, url: String, body: &Value) -> anyhow::Result<Value> {
        let what = format!("POST {url}");
        self.send(self.http.post(&url).json(body), &what).await
    }

    /// `GET` JSON.
    pub(crate) async fn get(&self, url: String) -> anyhow::Result<Value> {
        let what = format!("GET {url}");
        self.send(self.http.get(&url), &what).await
    }

    /// Posts a batch of events to ingest, waiting out backpressure (429 with
    /// `Retry-After`): the batch is either acknowledged whole or this fails.
    pub(crate) async fn post_events(&self, events: &[Value]) -> anyhow::Result<()> {
        let url = format!("{}/v1/events", self.ingest);
        let body = json!({ "events": events });
        for _ in 0..120 {
            let response = self
                .auth(self.http.post(&url).json(&body))
                .send()
                .await
                .with_context(|| format!("POST {url}: no answer"))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::SERVICE_UNAVAILABLE
            {
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_millis(250 * wait.clamp(1, 8))).await;
                continue;
            }
            bail!("POST {url}: {status}: {}", response.text().await.unwrap_or_default());
        }
        bail!("POST {url}: ingest stayed overloaded for a minute")
    }
}

//! Logs, traces and metrics.
//!
//! Logs are readable text on a terminal or JSON lines for a log pipeline. Traces are
//! exported over OTLP/gRPC when an endpoint is configured (or `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set). Metrics go to one process-wide Prometheus recorder that every service's
//! `/metrics` renders.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryConfig};

/// Errors setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log filter did not parse.
    #[error("invalid log filter {filter:?}: {reason}")]
    Filter {
        /// The filter text.
        filter: String,
        /// Why it did not parse.
        reason: String,
    },
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP trace exporter: {0}")]
    Otlp(String),
    /// A global subscriber was already installed.
    #[error("tracing was already initialised: {0}")]
    AlreadyInitialised(String),
}

/// Keeps the trace pipeline alive; dropping it flushes spans still buffered.
#[derive(Debug)]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {error}");
        }
    }
}

/// Installs the global tracing subscriber: logs to stderr in the configured format,
/// plus OTLP trace export when an endpoint is known. Call once, inside the runtime.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, Error> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => from_env,
        _ => config.log_filter.clone(),
    };
    let env_filter = EnvFilter::try_new(&filter)
        .map_err(|e| Error::Filter { filter: filter.clone(), reason: e.to_string() })?;

    let logs = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };

    let endpoint_from_env = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|e| !e.is_empty());
    let tracer_provider = if !config.otlp_endpoint.is_empty() || endpoint_from_env.is_some() {
        Some(tracer_provider(config)?)
    } else {
        None
    };
    let traces = tracer_provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("nearline")));

    tracing_subscriber::registry()
        .with(env_filter)
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|e| Error::AlreadyInitialised(e.to_string()))?;
    if let Some(endpoint) =
        (!config.otlp_endpoint.is_empty()).then_some(&config.otlp_endpoint).or(endpoint_from_env.as_ref())
    {
        tracing::info!(%endpoint, "exporting traces over OTLP");
    }
    Ok(TelemetryGuard { tracer_provider })
}

fn tracer_provider(config: &TelemetryConfig) -> Result<SdkTracerProvider, Error> {
    use opentelemetry_otlp::WithExportConfig as _;

    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if !config.otlp_endpoint.is_empty() {
        exporter = exporter.with_endpoint(config.otlp_endpoint.clone());
    }
    let exporter = exporter.build().map_err(|e| Error::Otlp(e.to_string()))?;
    let resource =
        opentelemetry_sdk::Resource::builder().with_service_name(config.service_name.clone()).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// The process-wide Prometheus recorder, installed on first use.
///
/// Installing is idempotent so that tests running several services in one process
/// share one registry, as the services of `serve all` do.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(&[
                0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .expect("static bucket list is non-empty")
            // A billboard decision takes microseconds: from 0.5 ms on, the common buckets
            // would put every decision in the first one.
            .set_buckets_for_metric(
                Matcher::Full("nearline_billboard_decision_seconds".into()),
                &[
                    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1,
                    1.0,
                ],
            )
            .expect("static bucket list is non-empty")
            .install_recorder()
            .expect("no other metrics recorder is installed in a nearline process");
        describe_common_metrics();
        metrics::gauge!("nearline_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

fn describe_common_metrics() {
    use metrics::Unit;
    metrics::describe_gauge!("nearline_build_info", "Always 1; labelled with the nearline version.");
    metrics::describe_gauge!("nearline_ready", "1 when the service is ready to take traffic.");
    metrics::describe_counter!(
        "nearline_http_requests_total",
        Unit::Count,
        "HTTP requests answered, by service, route template, method and status."
    );
    metrics::describe_histogram!(
        "nearline_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by service and route template."
    );
}

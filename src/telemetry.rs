//! Logging (tracing) and the small ops HTTP server every worker runs (`/health`, `/metrics`).

use anyhow::Context as _;
use axum::{Router, extract::State, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::readiness::Readiness;

/// Crates capped at a level whatever `RUST_LOG` says, because below it they log what must not
/// reach a log line: bollard's debug lines print whole Engine API answers (an inspect's
/// `Config.Env`, passwords included) before the gateway redacts them.
const CAPPED_TARGETS: &[&str] = &["bollard=info"];

/// Initializes logging for `service`: JSON lines when `WINGMAN_LOG_FORMAT=json` (production),
/// compact text otherwise. `RUST_LOG` filters (default `default_filter`, e.g. `info`; the CLI
/// uses `warn` so its output stays its own), within [`CAPPED_TARGETS`]. Safe to call twice.
pub fn init(service: &str, default_filter: &str) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    for capped in CAPPED_TARGETS {
        if let Ok(directive) = capped.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let json = crate::config::log_json();
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().compact().with_writer(std::io::stderr))
            .try_init()
    };
    if result.is_ok() {
        tracing::debug!(service, "logging initialized");
    }
}

/// Serves `/metrics` and `/health` on `listener` (bound at start, so a port already in use
/// stops the worker instead of leaving its health to whichever process holds the port) until
/// `shutdown`.
pub async fn serve_ops(
    listener: tokio::net::TcpListener,
    metrics: PrometheusHandle,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "serving /metrics and /health");
    axum::serve(listener, ops_router(metrics, readiness))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("ops server")
}

/// `/metrics`, and `/health`: ready only when every dependency in `readiness` answers (see
/// [`crate::readiness`]).
pub fn ops_router(metrics: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics)
        .route(
            "/health",
            get(move || {
                let readiness = readiness.clone();
                async move { readiness.check().await.response() }
            }),
        )
}

async fn render_metrics(State(metrics): State<PrometheusHandle>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(&metrics),
    )
}

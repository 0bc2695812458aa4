//! The HTTP API (axum): submit and read requests, health, metrics.
//!
//! It never holds the Docker socket and never writes Postgres: it publishes to NATS like any
//! publisher and reads what the recorder wrote.

pub mod error;
pub mod health;
pub mod requests;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::bus::Bus;

/// What every handler may use.
#[derive(Clone)]
pub struct ApiState {
    /// Submissions are published to the bus, as any publisher would.
    pub bus: Bus,
    /// Read-only use: the recorder owns the writes.
    pub pool: PgPool,
    pub metrics: PrometheusHandle,
    /// Who we are in audit events.
    pub actor: String,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/requests", get(requests::list).post(requests::submit))
        .route("/requests/{request_id}", get(requests::get))
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

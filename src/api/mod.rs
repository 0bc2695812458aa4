//! The HTTP API (axum): submit and read requests, health, metrics.
//!
//! Every route but `/health` needs an API key of its role (see [`crate::access`]):
//! `POST /requests` submit; `GET /requests…` (the list, one request, its live events as
//! Server-Sent Events) and `GET /metrics` read; `POST /requests/{id}/approve|reject` decide
//! ([`decide`]); `GET /openapi.json` (no key) describes them. The web console (`/console`,
//! [`crate::console`]) is merged in, behind its own login with the same keys.
//!
//! It never holds the Docker socket and never writes Postgres: it publishes to NATS like any
//! publisher and reads what the recorder wrote.

pub mod decide;
pub mod error;
pub mod events;
pub mod health;
pub mod openapi;
pub mod requests;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::access::Role;
use crate::access::guard::{Guard, check};
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
    /// The API keys and their roles; also audits refused calls.
    pub guard: Guard,
    /// The web console's settings (`crate::console`).
    pub console: crate::config::ConsoleSettings,
}

pub fn router(state: ApiState) -> Router {
    let guard = state.guard.clone();
    let needs = |role: Role| from_fn_with_state(guard.with(role), check);
    Router::new()
        .route(
            "/requests",
            get(requests::list)
                .route_layer(needs(Role::Read))
                .merge(post(requests::submit).route_layer(needs(Role::Submit))),
        )
        .route(
            "/requests/{request_id}",
            get(requests::get).route_layer(needs(Role::Read)),
        )
        .route(
            "/requests/{request_id}/events",
            get(events::events).route_layer(needs(Role::Read)),
        )
        .route(
            "/requests/{request_id}/output",
            get(requests::output).route_layer(needs(Role::Submit)),
        )
        .route(
            "/requests/{request_id}/approve",
            post(decide::approve).route_layer(needs(Role::Decide)),
        )
        .route(
            "/requests/{request_id}/reject",
            post(decide::reject).route_layer(needs(Role::Decide)),
        )
        .route(
            "/metrics",
            get(health::metrics).route_layer(needs(Role::Read)),
        )
        .route("/health", get(health::health))
        .route("/openapi.json", get(openapi::document))
        .merge(crate::console::router(state.clone()))
        .with_state(state)
}

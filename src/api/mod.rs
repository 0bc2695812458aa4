//! The HTTP API (axum): submit and read requests, health, metrics.
//!
//! Every route but `/health` needs an API key of its role (see [`crate::access`]):
//! `POST /requests` submit; `GET /requests…` (the list, one request, its live events as
//! Server-Sent Events) and `GET /metrics` read; `POST /requests/{id}/cancel` submit (the key that
//! submitted withdraws it, [`cancel`]); `POST /requests/{id}/approve|reject` decide
//! ([`decide`]); `GET /openapi.json` (no key) describes them. The web console (`/console`,
//! [`crate::console`]) is served beside it ([`crate::web`]), behind its own login with the
//! same keys.
//!
//! It never holds the Docker socket and never writes Postgres: it publishes to NATS like any
//! publisher and reads what the recorder wrote.

pub mod cancel;
pub mod decide;
pub mod error;
pub mod events;
pub mod health;
pub mod openapi;
pub mod requests;
pub mod schema;
pub mod state;

pub use state::ApiState;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::access::Role;
use crate::access::guard::check;

/// The API's routes, each behind the key role it needs; [`crate::web::router`] serves them
/// with the web console's.
pub fn routes(state: &ApiState) -> Router<ApiState> {
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
            "/requests/{request_id}/cancel",
            post(cancel::cancel).route_layer(needs(Role::Submit)),
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
}

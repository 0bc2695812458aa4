//! `GET /health` (NATS and Postgres reachable) and `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::api::state::ApiState;

/// Ready when NATS and Postgres answer; 503 names the one that does not.
#[utoipa::path(
    get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "ready", body = Object),
        (status = 503, description = "NATS or Postgres unreachable", body = Object),
    )
)]
pub async fn health(State(state): State<ApiState>) -> impl IntoResponse {
    let nats = state.bus.client.connection_state() == async_nats::connection::State::Connected;
    let postgres = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.pool)
        .await
        .is_ok();
    let status = if nats && postgres {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    (
        status,
        Json(
            json!({ "status": word(nats && postgres), "nats": word(nats), "postgres": word(postgres) }),
        ),
    )
}

pub async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(&state.metrics),
    )
}

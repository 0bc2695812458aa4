//! The gateway's HTTP face (`GATEWAY_PORT`, default 5001), as the seed's runbook knows it:
//! `GET /health` (Docker and NATS reachable), `POST /gateway/token` (asks the authority for
//! the token of an approved request), `POST /gateway/execute` (token in `X-Capability-Token`,
//! body `{request_id, command, environment}`), `GET /metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::guard::{Guard, check};
use crate::access::{KeyName, Role};
use crate::bus::consume::StageError;
use crate::bus::publish::publish_all;
use crate::docker::parse_command_line;
use crate::envelope::RequestId;
use crate::events::ExecJob;
use crate::identity::Principal;
use crate::request::{Command, Environment, Request};
use crate::stages::authority::TokenRequest;
use crate::stages::gateway::{GatewayDeps, execute};

#[derive(Clone)]
pub struct GatewayHttp {
    pub deps: Arc<GatewayDeps>,
    pub metrics: PrometheusHandle,
    /// The API keys and their roles; also audits refused calls.
    pub guard: Guard,
}

pub fn router(state: GatewayHttp) -> Router {
    let guard = state.guard.clone();
    let needs = |role: Role| from_fn_with_state(guard.with(role), check);
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics).route_layer(needs(Role::Read)))
        .route(
            "/gateway/token",
            post(token).route_layer(needs(Role::Submit)),
        )
        .route(
            "/gateway/execute",
            post(execute_now).route_layer(needs(Role::Submit)),
        )
        .with_state(state)
}

async fn health(State(state): State<GatewayHttp>) -> (StatusCode, Json<Value>) {
    let docker = state.deps.engine.ping().await.is_ok();
    let nats = state.deps.bus.client.connection_state() == async_nats::connection::State::Connected;
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    let status = if docker && nats {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "status": word(docker && nats), "docker": word(docker), "nats": word(nats) })),
    )
}

async fn metrics(State(state): State<GatewayHttp>) -> String {
    crate::metrics::render(&state.metrics)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({ "error": message.into(), "code": code })),
    )
}

async fn token(
    State(state): State<GatewayHttp>,
    Json(asked): Json<TokenRequest>,
) -> (StatusCode, Json<Value>) {
    let subject = state.deps.bus.subjects.token_requests();
    let payload = serde_json::to_vec(&asked).unwrap_or_default();
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        state.deps.bus.client.request(subject, payload.into()),
    )
    .await;
    match reply {
        Ok(Ok(message)) => {
            let answer: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
            if answer.get("token").is_some() {
                (StatusCode::OK, Json(answer))
            } else {
                let message = answer["error"].as_str().unwrap_or("no token").to_string();
                error(StatusCode::CONFLICT, "no_token", message)
            }
        }
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "authority_unavailable",
            "the authority did not answer",
        ),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteBody {
    pub request_id: RequestId,
    pub command: String,
    pub environment: Environment,
}

async fn execute_now(
    State(state): State<GatewayHttp>,
    Extension(KeyName(key_name)): Extension<KeyName>,
    headers: HeaderMap,
    Json(body): Json<ExecuteBody>,
) -> (StatusCode, Json<Value>) {
    let Some(token) = headers
        .get("x-capability-token")
        .and_then(|value| value.to_str().ok())
    else {
        crate::metrics::token_rejected("missing_token");
        return error(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "the X-Capability-Token header is required",
        );
    };
    let operation = match parse_command_line(&body.command) {
        Ok(operation) => operation,
        Err(refusal) => {
            crate::metrics::token_rejected("unparseable_command");
            return error(
                StatusCode::BAD_REQUEST,
                refusal.code(),
                format!("field `command`: {refusal}"),
            );
        }
    };
    let request = Request {
        request_id: body.request_id,
        requester: "gateway-http".into(),
        submitted_by: Principal::ApiKey(key_name),
        environment: body.environment,
        command: Some(Command {
            line: body.command.clone(),
            operation,
        }),
        title: String::new(),
        description: String::new(),
        risk_level: None,
    };
    let job = ExecJob {
        request,
        token: token.to_string(),
        token_id: uuid::Uuid::nil(),
        expires_at: chrono::Utc::now(),
    };
    // Each HTTP call is its own delivery: a second call with the same token is a replay.
    let call_id = uuid::Uuid::now_v7().to_string();
    let outgoing = match execute(&state.deps, &job, &call_id, chrono::Utc::now()).await {
        Ok(outgoing) => outgoing,
        Err(StageError::Transient(cause)) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("{cause:#}"),
            );
        }
        Err(StageError::Permanent(rejection)) => {
            return error(StatusCode::BAD_REQUEST, rejection.code, rejection.reason);
        }
    };
    if let Err(cause) = publish_all(&state.deps.bus.js, &outgoing).await {
        tracing::error!(error = %format!("{cause:#}"), "could not publish the execution events");
    }
    let status_event = outgoing
        .iter()
        .rev()
        .find(|message| message.subject.contains(".status."))
        .and_then(|message| serde_json::from_slice::<Value>(&message.payload).ok())
        .unwrap_or(Value::Null);
    let code = if status_event["status"] == crate::events::REFUSED {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    (code, Json(status_event))
}

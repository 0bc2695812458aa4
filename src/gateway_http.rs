//! The gateway's HTTP face (`GATEWAY_PORT`, default 5001), as the seed's runbook knows it:
//! `GET /health` (Docker and NATS reachable), `POST /gateway/token` (asks the authority for
//! the token of an approved request), `POST /gateway/execute` (token in `X-Capability-Token`,
//! body `{request_id, command, environment}`), `GET /metrics`.
//!
//! This is manual execution: a request submitted with `"execution": "manual"` through the API
//! is minted a token bound to the API key that submitted it and is never enqueued; that key
//! (and no other) fetches the token and runs it here, once. An automatic request's token is
//! handed to nobody: the pipeline runs it, so no client can race it. A refusal here is
//! answered to the caller and audited (`token_refused`), but is not published as the
//! request's status: a caller who is refused has not moved the request.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
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
use crate::bus::step::publish_audit;
use crate::docker::parse_command_line;
use crate::envelope::RequestId;
use crate::events::{AuditKind, ExecJob, PublicStatus, Stage};
use crate::principal::Principal;
use crate::request::{Command, Environment, Execution, Request};
use crate::stages::authority::TokenRequest;
use crate::stages::gateway::{GatewayDeps, execute};
use crate::token::Presenter;

#[derive(Clone)]
pub struct GatewayHttp {
    pub deps: Arc<GatewayDeps>,
    pub metrics: PrometheusHandle,
    /// The API keys and their roles; also audits refused calls.
    pub guard: Guard,
}

/// Serves [`router`] on `listener` until `shutdown`; the peer address names the source of
/// refused calls (their audit is rate-limited).
///
/// # Errors
/// When serving fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: GatewayHttp,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    crate::access::guard::serve(listener, router(state), shutdown, "the gateway's HTTP").await
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

/// Reads a JSON body whatever its `Content-Type` (the runbook's `curl -d` sends none), like
/// the API's `POST /requests`; serde's message names the missing or unknown field.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, (StatusCode, Json<Value>)> {
    serde_json::from_slice(body).map_err(|cause| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("invalid body: {cause}"),
        )
    })
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({ "error": message.into(), "code": code })),
    )
}

/// The body of `POST /gateway/token`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub request_id: RequestId,
}

async fn token(
    State(state): State<GatewayHttp>,
    Extension(KeyName(key_name)): Extension<KeyName>,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let body: TokenBody = match parse_body(&body) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let caller = Principal::ApiKey(key_name);
    let asked = TokenRequest {
        request_id: body.request_id,
        principal: caller.clone(),
    };
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
                return (StatusCode::OK, Json(answer));
            }
            let message = answer["error"].as_str().unwrap_or("no token").to_string();
            let code = answer["code"].as_str().unwrap_or("no_token").to_string();
            let status = match code.as_str() {
                "not_the_submitter" => StatusCode::FORBIDDEN,
                "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CONFLICT,
            };
            // Asking for another principal's token, or for one the pipeline runs, is audited.
            if matches!(code.as_str(), "not_the_submitter" | "automatic_execution") {
                audit_refusal(
                    &state,
                    body.request_id,
                    &caller,
                    "/gateway/token",
                    &code,
                    &message,
                )
                .await;
            }
            (status, Json(json!({ "error": message, "code": code })))
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
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let body: ExecuteBody = match parse_body(&body) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
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
    let caller = Principal::ApiKey(key_name);
    let request = Request {
        request_id: body.request_id,
        requester: "gateway-http".into(),
        submitted_by: caller.clone(),
        environment: body.environment,
        command: Some(Command {
            line: body.command.clone(),
            operation,
        }),
        title: String::new(),
        description: String::new(),
        risk_level: None,
        execution: Execution::Manual,
    };
    let job = ExecJob {
        request,
        token: token.to_string(),
        token_id: uuid::Uuid::nil(),
        expires_at: chrono::Utc::now(),
    };
    // Each HTTP call is its own delivery: a second call with the same token is a replay.
    let call_id = uuid::Uuid::now_v7().to_string();
    let presenter = Presenter::Client(&caller);
    let outgoing = match execute(&state.deps, &job, &call_id, presenter, chrono::Utc::now()).await {
        Ok(outgoing) => outgoing,
        Err(StageError::Transient(cause) | StageError::Later { error: cause, .. }) => {
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
    let status_subject = state.deps.bus.subjects.status(body.request_id);
    let status_event = outgoing
        .iter()
        .rev()
        .find(|message| message.subject == status_subject)
        .and_then(|message| serde_json::from_slice::<Value>(&message.payload).ok())
        .unwrap_or(Value::Null);
    let refused = PublicStatus::deserialize(&status_event["status"])
        .is_ok_and(|status| status == PublicStatus::Refused);
    // A refused call has not moved the request: its audit event is published, not a REFUSED
    // status that would end the submitter's `wingman status --wait`.
    let to_publish: Vec<_> = outgoing
        .into_iter()
        .filter(|message| !(refused && message.subject == status_subject))
        .collect();
    if let Err(cause) = publish_all(&state.deps.bus.js, &to_publish).await {
        tracing::error!(error = %format!("{cause:#}"), "could not publish the execution events");
    }
    let code = if refused {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    (code, Json(status_event))
}

/// Audits a refused token fetch: who asked for which request's token, and why not.
async fn audit_refusal(
    state: &GatewayHttp,
    request_id: RequestId,
    caller: &Principal,
    route: &str,
    code: &str,
    reason: &str,
) {
    let data = json!({ "route": route, "caller": caller, "code": code, "reason": reason });
    if let Err(cause) = publish_audit(
        &state.deps.bus,
        Some(request_id),
        AuditKind::TokenRefused,
        Stage::Gateway,
        &state.deps.actor,
        data,
    )
    .await
    {
        tracing::error!(error = %format!("{cause:#}"), "could not audit a refused token fetch");
    }
}

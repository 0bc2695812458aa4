//! `POST /requests/{id}/approve` and `POST /requests/{id}/reject` (role `decide`): a vote in
//! the name of the key that called, through the approvals worker's rules.
//!
//! The body is `{"reason": "..."}` (optional to approve, required to reject and to override an
//! auto-rejection). The answer says what happened: `applied` (200), `counted` (202: prd needs
//! another approver), or `refused` with the rule (`already_decided` 409 with `decided_by`,
//! `own_request` / `not_authorized` / `same_approver` 403, `reason_required` 400,
//! `unknown_request` 404, `expired` 409). The web console's forms go through [`cast`] too.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::KeyName;
use crate::api::error::ApiError;
use crate::api::state::ApiState;
use crate::approval::Verdict;
use crate::bus::Bus;
use crate::envelope::RequestId;
use crate::identity::api_vote::{ApiVote, Outcome, VoteAnswer, check_note};

/// How long the approvals worker has to answer a vote.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecideBody {
    pub(crate) reason: Option<String>,
}

#[utoipa::path(
    post, path = "/requests/{request_id}/approve", tag = "decisions",
    params(("request_id" = String, Path, format = Uuid, description = "the request's id")),
    request_body(content = crate::api::schema::DecideBody, description = "the reason (optional; required to override an auto-rejection)"),
    responses(
        (status = 200, description = "applied: the decision is taken", body = Object),
        (status = 202, description = "counted: prd needs another approver", body = Object),
        (status = 400, description = "a reason is required, or the body is invalid", body = Object),
        (status = 401, description = "no key, or not a decide key", body = crate::api::schema::ErrorBody),
        (status = 403, description = "refused by a rule: own_request, not_authorized, same_approver", body = Object),
        (status = 404, description = "no such request", body = Object),
        (status = 409, description = "already decided (by whom) or expired", body = Object),
        (status = 503, description = "the approvals worker did not answer", body = Object),
    ),
    security(("api_key" = []))
)]
pub async fn approve(
    state: State<ApiState>,
    key: Extension<KeyName>,
    request_id: Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    decide(state, key, request_id, body, Verdict::Approve).await
}

#[utoipa::path(
    post, path = "/requests/{request_id}/reject", tag = "decisions",
    params(("request_id" = String, Path, format = Uuid, description = "the request's id")),
    request_body(content = crate::api::schema::DecideBody, description = "the reason (required)"),
    responses(
        (status = 200, description = "applied: the decision is taken", body = Object),
        (status = 202, description = "counted: prd needs another approver", body = Object),
        (status = 400, description = "a reason is required, or the body is invalid", body = Object),
        (status = 401, description = "no key, or not a decide key", body = crate::api::schema::ErrorBody),
        (status = 403, description = "refused by a rule: own_request, not_authorized, same_approver", body = Object),
        (status = 404, description = "no such request", body = Object),
        (status = 409, description = "already decided (by whom) or expired", body = Object),
        (status = 503, description = "the approvals worker did not answer", body = Object),
    ),
    security(("api_key" = []))
)]
pub async fn reject(
    state: State<ApiState>,
    key: Extension<KeyName>,
    request_id: Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    decide(state, key, request_id, body, Verdict::Reject).await
}

async fn decide(
    State(state): State<ApiState>,
    Extension(KeyName(key_name)): Extension<KeyName>,
    Path(request_id): Path<String>,
    body: Bytes,
    verdict: Verdict,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request_id = crate::api::error::request_id(&request_id)?;
    let body = reason_body("decide", &state, request_id, &key_name, &body).await?;
    let answer = match cast(
        &state.bus,
        &key_name,
        request_id,
        verdict,
        body.reason.as_deref(),
    )
    .await
    {
        Ok(answer) => answer,
        Err(error @ ApiError::Invalid { .. }) => {
            return Err(audited("decide", &state, request_id, &key_name, error).await);
        }
        Err(error) => return Err(error),
    };
    respond("decide", request_id, &answer)
}

/// The `{"reason": "..."}` body of a vote or a withdrawal (empty: no reason); an invalid one
/// is refused naming the field, and audited.
pub(crate) async fn reason_body(
    route: &'static str,
    state: &ApiState,
    request_id: RequestId,
    key_name: &str,
    body: &[u8],
) -> Result<DecideBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecideBody::default());
    }
    match serde_json::from_slice(body) {
        Ok(body) => Ok(body),
        Err(error) => {
            let invalid = ApiError::Invalid {
                field: Some("body".into()),
                code: "invalid_json",
                message: format!("body: expected {{\"reason\": \"...\"}}: {error}"),
            };
            Err(audited(route, state, request_id, key_name, invalid).await)
        }
    }
}

/// Audits a vote or a withdrawal refused for bad input (`message_rejected`, best effort) and
/// returns the error.
pub(crate) async fn audited(
    route: &'static str,
    state: &ApiState,
    request_id: RequestId,
    key_name: &str,
    error: ApiError,
) -> ApiError {
    if matches!(error, ApiError::Invalid { .. }) {
        crate::metrics::api_request(route, 400);
        audit_invalid(state, "api", request_id, key_name, &error).await;
    }
    error
}

/// Publishes the `message_rejected` audit event of a vote or a withdrawal refused for bad
/// input (an [`ApiError::Invalid`]; other errors are not audited here), best effort: `source`
/// says which door it came through (`api`, or `console` for the web console's forms).
pub(crate) async fn audit_invalid(
    state: &ApiState,
    source: &'static str,
    request_id: RequestId,
    key_name: &str,
    error: &ApiError,
) {
    let ApiError::Invalid {
        field,
        code,
        message,
    } = error
    else {
        return;
    };
    let data = json!({
        "code": code, "field": field, "reason": message, "source": source, "key_name": key_name,
    });
    let published = crate::bus::step::publish_audit(
        &state.bus,
        Some(request_id),
        crate::events::AuditKind::MessageRejected,
        crate::events::Stage::Api,
        &state.actor,
        data,
    )
    .await;
    if let Err(problem) = published {
        tracing::warn!(error = %format!("{problem:#}"), "could not audit an invalid vote");
    }
}

/// Asks the approvals worker to apply a vote in the name of `key_name` (a `decide` key the
/// caller authenticated).
///
/// # Errors
/// A bad reason (400, field `reason`), or the approvals worker not answering (503).
pub async fn cast(
    bus: &Bus,
    key_name: &str,
    request_id: RequestId,
    verdict: Verdict,
    reason: Option<&str>,
) -> Result<VoteAnswer, ApiError> {
    let note = check_note(reason).map_err(|message| ApiError::Invalid {
        field: Some("reason".into()),
        code: "invalid_value",
        message,
    })?;
    let vote = ApiVote {
        key_name: key_name.to_string(),
        request_id,
        verdict,
        note,
    };
    ask_approvals(bus, bus.subjects.api_decisions(), &vote).await
}

/// Asks the approvals worker on `subject` (core request-reply) and reads its answer: 503 when
/// it does not answer within [`ANSWER_TIMEOUT`]. Votes and withdrawals both go through here.
pub(crate) async fn ask_approvals(
    bus: &Bus,
    subject: String,
    question: &impl serde::Serialize,
) -> Result<VoteAnswer, ApiError> {
    let payload = serde_json::to_vec(question).map_err(anyhow::Error::from)?;
    let reply = tokio::time::timeout(ANSWER_TIMEOUT, bus.client.request(subject, payload.into()))
        .await
        .map_err(|_| ApiError::Unavailable("the approvals worker did not answer in time".into()))?
        .map_err(|error| ApiError::Unavailable(format!("ask the approvals worker: {error}")))?;
    serde_json::from_slice(&reply.payload).map_err(|error| {
        ApiError::Internal(anyhow::anyhow!("the approvals worker's answer: {error}"))
    })
}

/// The approvals worker's answer as the route's response: its HTTP status, counted under
/// `route`, and the answer with the request id.
pub(crate) fn respond(
    route: &'static str,
    request_id: RequestId,
    answer: &VoteAnswer,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let status = http_status(answer);
    crate::metrics::api_request(route, status.as_u16());
    let mut value = serde_json::to_value(answer).map_err(anyhow::Error::from)?;
    value["request_id"] = json!(request_id);
    Ok((status, Json(value)))
}

/// The HTTP status of an answer.
pub fn http_status(answer: &VoteAnswer) -> StatusCode {
    match answer.outcome {
        Outcome::Applied => StatusCode::OK,
        Outcome::Counted => StatusCode::ACCEPTED,
        Outcome::Refused => match answer.code.as_deref() {
            Some("already_decided" | "expired") => StatusCode::CONFLICT,
            Some("reason_required" | "invalid_vote") => StatusCode::BAD_REQUEST,
            Some("unknown_request") => StatusCode::NOT_FOUND,
            Some("unavailable") => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::FORBIDDEN,
        },
    }
}

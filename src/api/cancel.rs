//! `POST /requests/{id}/cancel` (role `submit`): the key that submitted a request withdraws
//! it while it waits for a decision.
//!
//! The API asks the approvals worker on `<prefix>.requests.cancel.api.<key name>`, which only
//! the API's NATS user may publish: the subject names the key the API checked, never a name
//! the caller typed. The body is `{"reason": "..."}` (optional). The answer: `applied` (200,
//! the request is CANCELLED), or `refused` with the rule (`not_requester` 403: another key
//! submitted it; `already_decided` 409 with `decided_by`; `expired` 409; `unknown_request`
//! 404: nothing waits under that id).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::access::KeyName;
use crate::api::decide::{audited, http_status, reason_body};
use crate::api::error::ApiError;
use crate::api::state::ApiState;
use crate::approval::Withdrawal;
use crate::identity::api_vote::{VoteAnswer, check_note};
use crate::principal::Principal;

#[utoipa::path(
    post, path = "/requests/{request_id}/cancel", tag = "requests",
    params(("request_id" = String, Path, format = Uuid, description = "the request's id")),
    request_body(content = crate::api::schema::DecideBody, description = "why (optional)"),
    responses(
        (status = 200, description = "applied: the request is CANCELLED", body = Object),
        (status = 400, description = "the body or the reason is invalid", body = crate::api::schema::ErrorBody),
        (status = 401, description = "no key, or not a submit key", body = crate::api::schema::ErrorBody),
        (status = 403, description = "refused: another key submitted it (not_requester)", body = Object),
        (status = 404, description = "no request waits under that id", body = Object),
        (status = 409, description = "already decided (by whom) or expired", body = Object),
        (status = 503, description = "the approvals worker did not answer", body = Object),
    ),
    security(("api_key" = []))
)]
pub async fn cancel(
    State(state): State<ApiState>,
    Extension(KeyName(key_name)): Extension<KeyName>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request_id = crate::api::error::request_id(&request_id)?;
    let body = reason_body("cancel", &state, request_id, &key_name, &body).await?;
    let note = match check_note(body.reason.as_deref()) {
        Ok(note) => note,
        Err(message) => {
            let invalid = ApiError::Invalid {
                field: Some("reason".into()),
                code: "invalid_value",
                message,
            };
            return Err(audited("cancel", &state, request_id, &key_name, invalid).await);
        }
    };
    let withdrawal = Withdrawal { request_id, note };
    let answer = ask(&state, &key_name, &withdrawal).await?;
    let status = http_status(&answer);
    crate::metrics::api_request("cancel", status.as_u16());
    let mut value = serde_json::to_value(&answer).map_err(anyhow::Error::from)?;
    value["request_id"] = json!(request_id);
    Ok((status, Json(value)))
}

/// Asks the approvals worker in the name of `key_name` (a `submit` key the caller
/// authenticated).
async fn ask(
    state: &ApiState,
    key_name: &str,
    withdrawal: &Withdrawal,
) -> Result<VoteAnswer, ApiError> {
    let subject = state
        .bus
        .subjects
        .cancel(&Principal::ApiKey(key_name.to_string()));
    let payload = serde_json::to_vec(withdrawal).map_err(anyhow::Error::from)?;
    let reply = tokio::time::timeout(
        crate::api::decide::ANSWER_TIMEOUT,
        state.bus.client.request(subject, payload.into()),
    )
    .await
    .map_err(|_| ApiError::Unavailable("the approvals worker did not answer in time".into()))?
    .map_err(|error| ApiError::Unavailable(format!("ask the approvals worker: {error}")))?;
    serde_json::from_slice(&reply.payload).map_err(|error| {
        ApiError::Internal(anyhow::anyhow!("the approvals worker's answer: {error}"))
    })
}

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
use serde_json::Value;

use crate::access::KeyName;
use crate::api::decide::{ask_approvals, audited, reason_body, respond};
use crate::api::error::ApiError;
use crate::api::state::ApiState;
use crate::approval::Withdrawal;
use crate::identity::api_vote::check_note;
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
    // Asked on the key's own cancel subject, which only the API's NATS user may publish.
    let subject = state
        .bus
        .subjects
        .cancel(&Principal::ApiKey(key_name.clone()));
    let answer = ask_approvals(&state.bus, subject, &withdrawal).await?;
    respond("cancel", request_id, &answer)
}

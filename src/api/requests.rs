//! `POST /requests`, `GET /requests/{id}`, `GET /requests?status=&since=&limit=`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::KeyName;
use crate::api::error::ApiError;
use crate::api::state::ApiState;
use crate::bus::publish::{Outgoing, publish_all};
use crate::bus::step::publish_audit;
use crate::envelope::RequestId;
use crate::events::{AuditKind, Stage};
use crate::principal::Principal;
use crate::request::parse_request;
use crate::status::Status;
use crate::store::requests::{self, ListFilter};

/// Validates like intake does (so a client hears of a mistake at once), then publishes the
/// request to `wingman.requests.submitted.api.<key name>` (the key is who submitted) and
/// answers 202 with its id.
#[utoipa::path(
    post, path = "/requests", tag = "requests",
    request_body = crate::api::schema::SubmitBody,
    responses(
        (status = 202, description = "submitted: the pipeline decides next", body = crate::api::schema::Submitted),
        (status = 400, description = "invalid: the field and the problem", body = crate::api::schema::ErrorBody),
        (status = 401, description = "no key, or not a submit key", body = crate::api::schema::ErrorBody),
        (status = 503, description = "NATS unreachable", body = crate::api::schema::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn submit(
    State(state): State<ApiState>,
    Extension(KeyName(key_name)): Extension<KeyName>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request = match parse_request(&body, RequestId::generate) {
        Ok(request) => request,
        Err(invalid) => {
            crate::metrics::api_request("submit", 400);
            audit_invalid(
                &state,
                invalid.request_id,
                invalid.code,
                &invalid.to_string(),
            )
            .await;
            return Err(ApiError::Invalid {
                field: invalid.field.clone(),
                code: invalid.code,
                message: invalid.to_string(),
            });
        }
    };
    let outgoing = Outgoing::json(
        state.bus.subjects.submitted(&Principal::ApiKey(key_name)),
        request.request_id.to_string(),
        &request.to_public_json(),
    );
    publish_all(&state.bus.js, &[outgoing])
        .await
        .map_err(|error| ApiError::Unavailable(format!("{error:#}")))?;
    crate::metrics::api_request("submit", 202);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "request_id": request.request_id,
            "status": "SUBMITTED",
            "status_subject": state.bus.subjects.status(request.request_id),
            "status_url": format!("/requests/{}", request.request_id),
        })),
    ))
}

/// The stored request, or (before the recorder has it, or when intake refused it) the last
/// status event published for it.
#[utoipa::path(
    get, path = "/requests/{request_id}", tag = "requests",
    params(("request_id" = String, Path, format = Uuid, description = "the request's id")),
    responses(
        (status = 200, description = "the stored request (or its last status event)", body = Object),
        (status = 400, description = "not a UUID", body = crate::api::schema::ErrorBody),
        (status = 401, description = "no key, or not a read key", body = crate::api::schema::ErrorBody),
        (status = 404, description = "no such request", body = crate::api::schema::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get(
    State(state): State<ApiState>,
    Path(request_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let request_id = crate::api::error::request_id(&request_id)?;
    crate::metrics::api_request("get", 200);
    if let Some(row) = requests::get(&state.pool, request_id.as_uuid()).await? {
        return Ok(Json(
            serde_json::to_value(row).map_err(anyhow::Error::from)?,
        ));
    }
    match crate::bus::status_feed::last_status(&state.bus, request_id)
        .await
        .map_err(ApiError::Internal)?
    {
        Some(event) => Ok(Json(
            serde_json::to_value(event).map_err(anyhow::Error::from)?,
        )),
        None => Err(ApiError::NotFound(format!("no request {request_id}"))),
    }
}

/// `GET /requests/{id}/output`: what the request printed when it ran, for the key that
/// submitted it only (another key's request is a 404, as if it did not exist).
#[utoipa::path(
    get, path = "/requests/{request_id}/output", tag = "requests",
    params(("request_id" = String, Path, format = Uuid, description = "the request's id")),
    responses(
        (status = 200, description = "what it printed", body = crate::api::schema::Output),
        (status = 400, description = "not a UUID", body = crate::api::schema::ErrorBody),
        (status = 401, description = "no key, or not a submit key", body = crate::api::schema::ErrorBody),
        (status = 404, description = "no output for this key", body = crate::api::schema::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn output(
    State(state): State<ApiState>,
    Extension(KeyName(key_name)): Extension<KeyName>,
    Path(request_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let request_id = crate::api::error::request_id(&request_id)?;
    let output = state
        .bus
        .output(&Principal::ApiKey(key_name), request_id)
        .await
        .map_err(ApiError::Internal)?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no output of {request_id} for this key (only the key that submitted a request reads \
                 its output, for a day)"
            ))
        })?;
    crate::metrics::api_request("output", 200);
    Ok(Json(json!({ "request_id": request_id, "output": output })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A decision (AUTO_APPROVED, PENDING, …) or an execution word (SUCCEEDED, …).
    status: Option<String>,
    /// A duration ago (24h, 7d; a bare number is seconds) or an RFC 3339 time.
    since: Option<String>,
    /// At most this many rows (1–1000; default 50).
    limit: Option<i64>,
}

/// Recent requests, newest first.
#[utoipa::path(
    get, path = "/requests", tag = "requests",
    params(ListQuery),
    responses(
        (status = 200, description = "the matching requests", body = crate::api::schema::RequestList),
        (status = 400, description = "a filter is invalid: the field and the problem", body = crate::api::schema::ErrorBody),
        (status = 401, description = "no key, or not a read key", body = crate::api::schema::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    State(state): State<ApiState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let invalid = |field: &str, message: String| ApiError::Invalid {
        field: Some(field.into()),
        code: "invalid_value",
        message,
    };
    let status = match &query.status {
        None => None,
        Some(text) => Some(
            text.parse::<Status>()
                .map_err(|error| invalid("status", error.to_string()))?,
        ),
    };
    let since = match &query.since {
        None => None,
        Some(text) => Some(crate::duration::since(text).map_err(|error| invalid("since", error))?),
    };
    let filter = ListFilter {
        status,
        since,
        limit: query.limit.unwrap_or(50),
    };
    let rows = requests::list(&state.pool, &filter).await?;
    crate::metrics::api_request("list", 200);
    Ok(Json(json!({ "requests": rows, "count": rows.len() })))
}

/// Bad input is audited too (best effort: the client gets its answer either way).
async fn audit_invalid(state: &ApiState, request_id: Option<RequestId>, code: &str, reason: &str) {
    let data = json!({ "code": code, "reason": reason, "source": "api" });
    let audited = publish_audit(
        &state.bus,
        request_id,
        AuditKind::MessageRejected,
        Stage::Api,
        &state.actor,
        data,
    )
    .await;
    if let Err(error) = audited {
        tracing::warn!(error = %format!("{error:#}"), "could not audit an invalid API request");
    }
}

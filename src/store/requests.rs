//! `approval_requests`: one row per request, moved along the state machine by the recorder.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool, types::Json};
use uuid::Uuid;

use crate::request::Request;
use crate::status::Status;

/// A request as stored: what `GET /requests/{id}` and `wingman status` show.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RequestRow {
    pub request_id: Uuid,
    pub status: String,
    pub requester: String,
    pub environment: String,
    pub command: Option<String>,
    pub operation: Option<Json<Value>>,
    pub title: String,
    pub description: String,
    pub risk_level: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub validator_scores: Option<Json<Value>>,
    pub profile: Option<String>,
    pub composite_score: Option<i32>,
    pub validation_applied: Option<bool>,
    pub rollout_bucket: Option<i16>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    pub false_positive: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub validation_decision: Option<String>,
    pub validation_error: bool,
}

const COLUMNS: &str = "request_id, status, requester, environment, command, operation, title, description, \
    risk_level, created_at, updated_at, validator_scores, profile, composite_score, validation_applied, \
    rollout_bucket, decided_by, decided_at, decision_note, false_positive, expires_at, validation_decision, \
    validation_error";

/// The fields a status move may set, taken from the audit event's data (absent = unchanged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusFields {
    pub validator_scores: Option<Value>,
    pub profile: Option<String>,
    pub composite_score: Option<i32>,
    pub validation_applied: Option<bool>,
    pub rollout_bucket: Option<i16>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    pub false_positive: Option<bool>,
    pub expires_at: Option<DateTime<Utc>>,
    pub validation_decision: Option<String>,
    pub validation_error: Option<bool>,
}

impl StatusFields {
    /// Reads the well-known keys of an audit event's `data`.
    pub fn from_data(data: &Value) -> Self {
        let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_string);
        let time = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|at| at.with_timezone(&Utc))
        };
        Self {
            validator_scores: data.get("validator_scores").cloned(),
            profile: text("profile"),
            composite_score: data
                .get("composite_score")
                .and_then(Value::as_i64)
                .and_then(|v| i32::try_from(v).ok()),
            validation_applied: data.get("validation_applied").and_then(Value::as_bool),
            rollout_bucket: data
                .get("rollout_bucket")
                .and_then(Value::as_i64)
                .and_then(|v| i16::try_from(v).ok()),
            decided_by: text("decided_by"),
            decided_at: time("decided_at"),
            decision_note: text("note"),
            false_positive: data.get("false_positive").and_then(Value::as_bool),
            expires_at: time("expires_at"),
            validation_decision: text("validation_decision"),
            validation_error: data.get("validation_error").and_then(Value::as_bool),
        }
    }
}

/// What a status move did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    Applied,
    /// The row is elsewhere in the state machine (a late or repeated event); left unchanged.
    Refused {
        current: Status,
    },
    /// No row yet: the event overtook the request's `request_received`.
    Missing,
}

/// Inserts a newly received request (a no-op if it is already there).
pub async fn insert_received(
    connection: &mut PgConnection,
    request: &Request,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let operation = request
        .command
        .as_ref()
        .map(|command| Json(serde_json::to_value(&command.operation).unwrap_or(Value::Null)));
    let result = sqlx::query(
        "INSERT INTO approval_requests
            (request_id, requester, environment, command, operation, title, description, risk_level,
             status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'RECEIVED', $9, $9)
         ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request.request_id.as_uuid())
    .bind(&request.requester)
    .bind(request.environment.as_str())
    .bind(
        request
            .command
            .as_ref()
            .map(|command| command.line.as_str()),
    )
    .bind(operation)
    .bind(&request.title)
    .bind(&request.description)
    .bind(request.risk_level.map(|risk| risk.as_str()))
    .bind(at)
    .execute(connection)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Moves a request to `status` if the state machine allows it from where it is.
pub async fn move_status(
    connection: &mut PgConnection,
    request_id: Uuid,
    status: Status,
    at: DateTime<Utc>,
    fields: &StatusFields,
) -> sqlx::Result<Moved> {
    let predecessors: Vec<&str> = status
        .predecessors()
        .iter()
        .map(|status| status.as_str())
        .collect();
    let updated = sqlx::query(
        "UPDATE approval_requests SET
            status = $2, updated_at = $3,
            validator_scores = COALESCE($4, validator_scores),
            profile = COALESCE($5, profile),
            composite_score = COALESCE($6, composite_score),
            validation_applied = COALESCE($7, validation_applied),
            rollout_bucket = COALESCE($8, rollout_bucket),
            decided_by = COALESCE($9, decided_by),
            decided_at = COALESCE($10, decided_at),
            decision_note = COALESCE($11, decision_note),
            false_positive = COALESCE($12, false_positive),
            expires_at = COALESCE($13, expires_at),
            validation_decision = COALESCE($15, validation_decision),
            validation_error = COALESCE($16, validation_error)
         WHERE request_id = $1 AND status = ANY($14)",
    )
    .bind(request_id)
    .bind(status.as_str())
    .bind(at)
    .bind(fields.validator_scores.clone().map(Json))
    .bind(&fields.profile)
    .bind(fields.composite_score)
    .bind(fields.validation_applied)
    .bind(fields.rollout_bucket)
    .bind(&fields.decided_by)
    .bind(fields.decided_at)
    .bind(&fields.decision_note)
    .bind(fields.false_positive)
    .bind(fields.expires_at)
    .bind(&predecessors)
    .bind(&fields.validation_decision)
    .bind(fields.validation_error)
    .execute(&mut *connection)
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(Moved::Applied);
    }
    let current: Option<String> =
        sqlx::query_scalar("SELECT status FROM approval_requests WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(connection)
            .await?;
    Ok(match current.and_then(|text| text.parse::<Status>().ok()) {
        Some(current) => Moved::Refused { current },
        None => Moved::Missing,
    })
}

pub async fn get(pool: &PgPool, request_id: Uuid) -> sqlx::Result<Option<RequestRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approval_requests WHERE request_id = $1"
    )))
    .bind(request_id)
    .fetch_optional(pool)
    .await
}

/// Filters of `GET /requests` and `wingman list`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// Newest first.
pub async fn list(pool: &PgPool, filter: &ListFilter) -> sqlx::Result<Vec<RequestRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approval_requests
         WHERE ($1::text IS NULL OR status = $1) AND ($2::timestamptz IS NULL OR created_at >= $2)
         ORDER BY created_at DESC LIMIT $3"
    )))
    .bind(filter.status.map(|status| status.as_str()))
    .bind(filter.since)
    .bind(filter.limit.clamp(1, 1000))
    .fetch_all(pool)
    .await
}

//! What the web console reads (`crate::console`), read-only: the requests waiting for a human,
//! recent executions, the seed's rates per day, the rollout changes, and the links a
//! request's audit rows hang from.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::events::payload::Payload as _;
use crate::report::Counts;
use crate::rollout::change::Attribution;
use crate::store::requests::RequestRow;

/// Requests waiting for a decision (PENDING), oldest first: the `limit` that have waited
/// longest, so a long backlog never hides its oldest requests ([`backlog`] counts them all).
pub async fn waiting(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<RequestRow>> {
    let filter = crate::store::requests::ListFilter {
        status: Some(crate::status::Status::Pending),
        since: None,
        limit,
    };
    crate::store::requests::list_oldest_first(pool, &filter).await
}

/// How many requests wait for a human, and since when the oldest does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Backlog {
    pub waiting: i64,
    pub oldest: Option<DateTime<Utc>>,
}

pub async fn backlog(pool: &PgPool) -> sqlx::Result<Backlog> {
    sqlx::query_as(
        "SELECT count(*) AS waiting, min(created_at) AS oldest
         FROM approval_requests WHERE status = 'PENDING'",
    )
    .fetch_one(pool)
    .await
}

/// One execution, newest first, with its request's environment and title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ExecutionRow {
    pub request_id: Uuid,
    pub environment: String,
    pub title: String,
    pub operation: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

pub async fn recent_executions(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<ExecutionRow>> {
    sqlx::query_as(
        "SELECT e.request_id, r.environment, r.title, e.operation, e.status, e.started_at,
                e.finished_at, e.exit_code, e.error
         FROM executions e JOIN approval_requests r USING (request_id)
         ORDER BY e.started_at DESC LIMIT $1",
    )
    .bind(limit.clamp(1, 200))
    .fetch_all(pool)
    .await
}

/// The seed's counts over one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DayCounts {
    pub day: DateTime<Utc>,
    #[sqlx(flatten)]
    pub counts: Counts,
}

/// The counts of `crate::report` per UTC day since `since` (days without requests are absent).
pub async fn daily_counts(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Vec<DayCounts>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT date_trunc('day', created_at) AS day, {}
         FROM approval_requests WHERE created_at > $1
         GROUP BY 1 ORDER BY 1",
        crate::report::COUNT_COLUMNS
    )))
    .bind(since)
    .fetch_all(pool)
    .await
}

/// One audited change of the rollout flags (`rollout_changed`): when, and the percentage after
/// (with validation off, 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutChange {
    pub at: DateTime<Utc>,
    pub percent: Option<i64>,
    pub by: String,
}

pub async fn rollout_changes(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<RolloutChange>> {
    let rows: Vec<(DateTime<Utc>, Json<Value>)> = sqlx::query_as(
        "SELECT at, data FROM audit_events WHERE kind = 'rollout_changed' AND at > $1 ORDER BY seq",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, Json(data))| {
            // A row that does not read as the watcher writes it shows no percent and no author.
            let change = Attribution::from_data(&data).unwrap_or_default();
            RolloutChange {
                at,
                percent: change.new.map(|new| i64::from(new.effective_percent())),
                by: change.by,
            }
        })
        .collect())
}

/// The hashes of the rows at `seqs` (the predecessors of a request's audit rows), by seq.
pub async fn hashes_at(pool: &PgPool, seqs: &[i64]) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as("SELECT seq, hash FROM audit_events WHERE seq = ANY($1)")
        .bind(seqs)
        .fetch_all(pool)
        .await
}

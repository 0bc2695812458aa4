//! `approval_requests`: one row per request, moved along the state machine by the recorder.
//!
//! The decision lives in `status` and never moves on when the request runs; the execution's
//! state lives in `execution_status` (see `status`). `move_statuses` moves decisions,
//! `move_executions` moves executions, each only from where the state machine allows; a move
//! carries the [`StatusFields`] its audit record's typed payload sets (`fields`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool, types::Json};
use uuid::Uuid;

use crate::docker::DockerOperation;
use crate::request::Request;
use crate::status::Status;

mod fields;

pub use fields::StatusFields;

/// A request as stored: what `GET /requests/{id}` and `wingman status` show.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RequestRow {
    pub request_id: Uuid,
    /// The decision: RECEIVED, AUTO_APPROVED, AUTO_REJECTED, PENDING, APPROVED, REJECTED or
    /// EXPIRED. It stays when the request runs.
    pub status: String,
    /// How the execution goes: NULL until the gateway starts, then EXECUTING, SUCCEEDED,
    /// FAILED or INDETERMINATE.
    pub execution_status: Option<String>,
    pub requester: String,
    /// Who submitted, as authenticated (`nats:<user>`, `api:<key>`, `anonymous`).
    pub submitted_by: String,
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

const COLUMNS: &str = "request_id, status, execution_status, requester, submitted_by, environment, command, operation, title, description, \
    risk_level, created_at, updated_at, validator_scores, profile, composite_score, validation_applied, \
    rollout_bucket, decided_by, decided_at, decision_note, false_positive, expires_at, validation_decision, \
    validation_error";

/// What a status move did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    Applied,
    /// The row is elsewhere in the state machine (a late or repeated event); left unchanged.
    /// `current` is the row's state (its execution word when it has one, else its decision).
    Refused {
        current: Status,
    },
    /// No row yet: the event overtook the request's `request_received`.
    Missing,
}

/// One column of the received requests' first moves (`None` where a request has none).
fn of_first_moves<'a, T>(
    received: &'a [Received],
    field: impl Fn(&'a StatusFields) -> Option<T>,
) -> Vec<Option<T>> {
    received
        .iter()
        .map(|item| item.first_move.as_ref().and_then(|m| field(&m.fields)))
        .collect()
}

/// A newly received request, with the decision recorded in the same batch when there is
/// one: the row is then inserted with it (one INSERT instead of an INSERT and an UPDATE).
#[derive(Debug, Clone)]
pub struct Received {
    pub request: Request,
    pub at: DateTime<Utc>,
    /// The first move of the request, when the recorder holds it already and the state
    /// machine allows it from RECEIVED.
    pub first_move: Option<Move>,
}

/// Inserts newly received requests in one statement (a request already there is left as
/// it is), each at its first move when it has one. `wingman_record_received` (migration
/// `20261207000001`) carries the same insert for the recorder's one-statement batch: a column
/// added here must be added there (tests compare the rows the two write).
pub async fn insert_received(
    connection: &mut PgConnection,
    received: &[Received],
) -> sqlx::Result<()> {
    if received.is_empty() {
        return Ok(());
    }
    bind_received(
        sqlx::query(
            "INSERT INTO approval_requests
                (request_id, requester, environment, command, operation, title, description, risk_level,
                 status, created_at, updated_at, submitted_by, validator_scores, profile,
                 composite_score, validation_applied, rollout_bucket, expires_at, validation_decision,
                 validation_error, shadow_decision)
             SELECT r.request_id, r.requester, r.environment, r.command, r.operation, r.title,
                    r.description, r.risk_level, r.status, r.at, r.updated_at, r.submitted_by,
                    r.validator_scores, r.profile, r.composite_score, r.validation_applied,
                    r.rollout_bucket, r.expires_at, r.validation_decision,
                    COALESCE(r.validation_error, false), r.shadow_decision
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[],
                         $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::text[],
                         $12::timestamptz[], $13::jsonb[], $14::text[], $15::int[], $16::bool[],
                         $17::smallint[], $18::timestamptz[], $19::text[], $20::bool[], $21::text[])
                  AS r(request_id, requester, environment, command, operation, title, description,
                       risk_level, at, submitted_by, status, updated_at, validator_scores, profile,
                       composite_score, validation_applied, rollout_bucket, expires_at,
                       validation_decision, validation_error, shadow_decision)
             ON CONFLICT (request_id) DO NOTHING",
        ),
        received,
        scores_of(received),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// The decision's validator scores of each received request, as [`bind_received`] takes them.
pub(crate) fn scores_of(received: &[Received]) -> Vec<Option<Json<&Value>>> {
    of_first_moves(received, |f| f.validator_scores.as_ref().map(Json))
}

/// Binds the received requests as 21 arrays, a column each, in the order
/// [`insert_received`] reads them (and the recorder's one-round-trip batch,
/// `wingman_record_received`, after its audit arrays), the validator scores as `scores`
/// ([`scores_of`], or fewer: that batch takes them from its audit rows where it can).
pub(crate) fn bind_received<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    received: &'q [Received],
    scores: Vec<Option<Json<&'q Value>>>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    // Borrowed, never cloned: the decision's scores are the largest value a batch binds.
    let column = |f: fn(&'q Received) -> Option<&'q str>| -> Vec<Option<&'q str>> {
        received.iter().map(f).collect()
    };
    let ids: Vec<Uuid> = received
        .iter()
        .map(|item| item.request.request_id.as_uuid())
        .collect();
    let operations: Vec<Option<Json<&DockerOperation>>> = received
        .iter()
        .map(|item| {
            item.request
                .command
                .as_ref()
                .map(|command| Json(&command.operation))
        })
        .collect();
    let ats: Vec<DateTime<Utc>> = received.iter().map(|item| item.at).collect();
    let updated: Vec<DateTime<Utc>> = received
        .iter()
        .map(|item| item.first_move.as_ref().map_or(item.at, |m| m.at))
        .collect();
    let submitted_by: Vec<Option<String>> = received
        .iter()
        .map(|item| Some(item.request.submitted_by.to_string()))
        .collect();
    query
        .bind(&ids)
        .bind(column(|item| Some(item.request.requester.as_str())))
        .bind(column(|item| Some(item.request.environment.as_str())))
        .bind(column(|item| {
            item.request
                .command
                .as_ref()
                .map(|command| command.line.as_str())
        }))
        .bind(&operations)
        .bind(column(|item| Some(item.request.title.as_str())))
        .bind(column(|item| Some(item.request.description.as_str())))
        .bind(column(|item| {
            item.request.risk_level.map(|risk| risk.as_str())
        }))
        .bind(&ats)
        .bind(&submitted_by)
        .bind(column(|item| {
            Some(
                item.first_move
                    .as_ref()
                    .map_or(Status::Received, |m| m.status)
                    .as_str(),
            )
        }))
        .bind(&updated)
        .bind(scores)
        .bind(of_first_moves(received, |f| f.profile.as_deref()))
        .bind(of_first_moves(received, |f| f.composite_score))
        .bind(of_first_moves(received, |f| f.validation_applied))
        .bind(of_first_moves(received, |f| f.rollout_bucket))
        .bind(of_first_moves(received, |f| f.expires_at))
        .bind(of_first_moves(received, |f| {
            f.validation_decision.as_deref()
        }))
        .bind(of_first_moves(received, |f| f.validation_error))
        .bind(of_first_moves(received, |f| f.shadow_decision.as_deref()))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub request_id: Uuid,
    pub status: Status,
    pub at: DateTime<Utc>,
    pub fields: StatusFields,
    /// The audit event the move comes from, when the recorder holds it: a request's first
    /// move takes its validator scores from that event's row when the row is new in the same
    /// batch (`audit::Append::with_received`).
    pub event_id: Option<Uuid>,
}

/// Applies decision moves of distinct requests in one statement (the `status` column); each
/// request moves only if the state machine allows it from where it is. Returns what happened
/// to each, in order. Two moves of one request in one call would have no defined order: the
/// caller gives each request at most one move per call. Execution words go to
/// `move_executions`.
pub async fn move_statuses(
    connection: &mut PgConnection,
    moves: &[Move],
) -> sqlx::Result<Vec<Moved>> {
    if moves.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = moves.iter().map(|m| m.request_id).collect();
    debug_assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        ids.len(),
        "one move per request per call"
    );
    debug_assert!(
        moves.iter().all(|m| !m.status.is_execution()),
        "execution words move with move_executions"
    );
    let texts =
        |f: fn(&Move) -> Option<String>| -> Vec<Option<String>> { moves.iter().map(f).collect() };
    let flags = |f: fn(&StatusFields) -> Option<bool>| -> Vec<Option<bool>> {
        moves.iter().map(|m| f(&m.fields)).collect()
    };
    let times = |f: fn(&StatusFields) -> Option<DateTime<Utc>>| -> Vec<Option<DateTime<Utc>>> {
        moves.iter().map(|m| f(&m.fields)).collect()
    };
    let applied: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE approval_requests AS r SET
            status = m.status, updated_at = m.at,
            validator_scores = COALESCE(m.validator_scores, r.validator_scores),
            profile = COALESCE(m.profile, r.profile),
            composite_score = COALESCE(m.composite_score, r.composite_score),
            validation_applied = COALESCE(m.validation_applied, r.validation_applied),
            rollout_bucket = COALESCE(m.rollout_bucket, r.rollout_bucket),
            decided_by = COALESCE(m.decided_by, r.decided_by),
            decided_at = COALESCE(m.decided_at, r.decided_at),
            decision_note = COALESCE(m.decision_note, r.decision_note),
            false_positive = COALESCE(m.false_positive, r.false_positive),
            expires_at = COALESCE(m.expires_at, r.expires_at),
            validation_decision = COALESCE(m.validation_decision, r.validation_decision),
            validation_error = COALESCE(m.validation_error, r.validation_error),
            shadow_decision = COALESCE(m.shadow_decision, r.shadow_decision)
         FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[],
                     $6::text[], $7::int[], $8::bool[], $9::smallint[], $10::text[],
                     $11::timestamptz[], $12::text[], $13::bool[], $14::timestamptz[],
                     $15::text[], $16::bool[], $17::text[])
              AS m(request_id, status, at, predecessors, validator_scores, profile,
                   composite_score, validation_applied, rollout_bucket, decided_by, decided_at,
                   decision_note, false_positive, expires_at, validation_decision,
                   validation_error, shadow_decision)
         WHERE r.request_id = m.request_id
           AND r.execution_status IS NULL
           AND r.status = ANY(string_to_array(m.predecessors, ','))
         RETURNING r.request_id",
    )
    .bind(&ids)
    .bind(texts(|m| Some(m.status.as_str().to_string())))
    .bind(moves.iter().map(|m| m.at).collect::<Vec<_>>())
    .bind(texts(|m| {
        Some(
            m.status
                .predecessors()
                .iter()
                .map(|status| status.as_str())
                .collect::<Vec<_>>()
                .join(","),
        )
    }))
    .bind(
        moves
            .iter()
            .map(|m| m.fields.validator_scores.clone().map(Json))
            .collect::<Vec<_>>(),
    )
    .bind(texts(|m| m.fields.profile.clone()))
    .bind(
        moves
            .iter()
            .map(|m| m.fields.composite_score)
            .collect::<Vec<_>>(),
    )
    .bind(flags(|fields| fields.validation_applied))
    .bind(
        moves
            .iter()
            .map(|m| m.fields.rollout_bucket)
            .collect::<Vec<_>>(),
    )
    .bind(texts(|m| m.fields.decided_by.clone()))
    .bind(times(|fields| fields.decided_at))
    .bind(texts(|m| m.fields.decision_note.clone()))
    .bind(flags(|fields| fields.false_positive))
    .bind(times(|fields| fields.expires_at))
    .bind(texts(|m| m.fields.validation_decision.clone()))
    .bind(flags(|fields| fields.validation_error))
    .bind(texts(|m| m.fields.shadow_decision.clone()))
    .fetch_all(&mut *connection)
    .await?;
    outcomes(connection, &ids, applied).await
}

/// Applies execution moves of distinct requests in one statement (the `execution_status`
/// column): EXECUTING only on an APPROVED or AUTO_APPROVED row that has not started, SUCCEEDED,
/// FAILED or INDETERMINATE only on an EXECUTING one. The decision in `status` is left as it is.
/// One move per request per call, as for `move_statuses`.
pub async fn move_executions(
    connection: &mut PgConnection,
    moves: &[Move],
) -> sqlx::Result<Vec<Moved>> {
    if moves.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = moves.iter().map(|m| m.request_id).collect();
    debug_assert!(
        moves.iter().all(|m| m.status.is_execution()),
        "decision words move with move_statuses"
    );
    // The state is the execution word once there is one, else the decision: EXECUTING's
    // predecessors are decisions (APPROVED, AUTO_APPROVED), the others' are EXECUTING.
    let applied: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE approval_requests AS r SET execution_status = m.status, updated_at = m.at
         FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[])
              AS m(request_id, status, at, predecessors)
         WHERE r.request_id = m.request_id
           AND COALESCE(r.execution_status, r.status) = ANY(string_to_array(m.predecessors, ','))
         RETURNING r.request_id",
    )
    .bind(&ids)
    .bind(
        moves
            .iter()
            .map(|m| m.status.as_str().to_string())
            .collect::<Vec<_>>(),
    )
    .bind(moves.iter().map(|m| m.at).collect::<Vec<_>>())
    .bind(
        moves
            .iter()
            .map(|m| {
                m.status
                    .predecessors()
                    .iter()
                    .map(|status| status.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *connection)
    .await?;
    outcomes(connection, &ids, applied).await
}

/// What happened to each wanted move, in order: applied, refused (with the row's state), or
/// missing (no row yet).
async fn outcomes(
    connection: &mut PgConnection,
    ids: &[Uuid],
    applied: Vec<Uuid>,
) -> sqlx::Result<Vec<Moved>> {
    let applied: std::collections::HashSet<Uuid> = applied.into_iter().collect();
    let others: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| !applied.contains(id))
        .collect();
    let current: std::collections::HashMap<Uuid, String> = if others.is_empty() {
        Default::default()
    } else {
        sqlx::query_as::<_, (Uuid, String)>(
            "SELECT request_id, COALESCE(execution_status, status) FROM approval_requests
             WHERE request_id = ANY($1)",
        )
        .bind(&others)
        .fetch_all(connection)
        .await?
        .into_iter()
        .collect()
    };
    Ok(ids
        .iter()
        .map(|id| {
            if applied.contains(id) {
                return Moved::Applied;
            }
            match current.get(id).and_then(|text| text.parse::<Status>().ok()) {
                Some(current) => Moved::Refused { current },
                None => Moved::Missing,
            }
        })
        .collect())
}

pub async fn get(pool: &PgPool, request_id: Uuid) -> sqlx::Result<Option<RequestRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approval_requests WHERE request_id = $1"
    )))
    .bind(request_id)
    .fetch_optional(pool)
    .await
}

/// Up to `limit` request ids between `low` and `high` (a short id's range; the primary key's
/// index answers it).
pub async fn ids_between(
    pool: &PgPool,
    low: Uuid,
    high: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT request_id FROM approval_requests WHERE request_id BETWEEN $1 AND $2 \
         ORDER BY request_id LIMIT $3",
    )
    .bind(low)
    .bind(high)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Filters of `GET /requests` and `wingman list`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// A decision word filters `status` (AUTO_APPROVED lists auto-approved requests whether
    /// or not they ran); an execution word filters `execution_status`.
    pub status: Option<Status>,
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// Newest first.
pub async fn list(pool: &PgPool, filter: &ListFilter) -> sqlx::Result<Vec<RequestRow>> {
    list_in_order(pool, filter, "DESC").await
}

/// Oldest first: the `limit` that have waited longest (the web console's pending list, where
/// a long backlog must never hide its oldest requests).
pub async fn list_oldest_first(
    pool: &PgPool,
    filter: &ListFilter,
) -> sqlx::Result<Vec<RequestRow>> {
    list_in_order(pool, filter, "ASC").await
}

/// `order` is `ASC` or `DESC`, spliced from the two callers above (never from input).
async fn list_in_order(
    pool: &PgPool,
    filter: &ListFilter,
    order: &'static str,
) -> sqlx::Result<Vec<RequestRow>> {
    // The status filter is spliced as a column name from `Status::column` (a fixed set), so
    // each family uses its own index.
    let column = filter.status.map_or("status", Status::column);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approval_requests
         WHERE ($1::text IS NULL OR {column} = $1) AND ($2::timestamptz IS NULL OR created_at >= $2)
         ORDER BY created_at {order}, request_id {order} LIMIT $3"
    )))
    .bind(filter.status.map(|status| status.as_str()))
    .bind(filter.since)
    .bind(filter.limit.clamp(1, 1000))
    .fetch_all(pool)
    .await
}

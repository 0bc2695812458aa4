//! `executions`: one row per capability token the gateway claimed (written by the recorder),
//! from the typed payloads of the gateway's `execution_started` and `execution_finished`
//! records (`events::payload`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use crate::events::payload::{ExecutionEnd, ExecutionStarted};
use crate::status::Status;

/// Records an execution that started (from an `execution_started` audit event); nothing
/// without a token id.
pub async fn started(
    connection: &mut PgConnection,
    request_id: Uuid,
    started: &ExecutionStarted,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let Some(token_id) = started.token_id else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO executions (token_id, request_id, environment, operation, argv, status, started_at)
         VALUES ($1, $2, $3, $4, $5, 'EXECUTING', $6) ON CONFLICT (token_id) DO NOTHING",
    )
    .bind(token_id)
    .bind(request_id)
    .bind(started.environment.map_or("", |environment| environment.as_str()))
    .bind(&started.operation)
    .bind(Json(&started.argv))
    .bind(at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Records how an execution ended (from an `execution_finished` audit event that set
/// `status`); nothing without a token id.
pub async fn finished(
    connection: &mut PgConnection,
    status: Status,
    end: &ExecutionEnd,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let Some(token_id) = end.token_id() else {
        return Ok(());
    };
    let (duration_ms, exit_code, output, error) = match end {
        ExecutionEnd::Ran(finished) => (
            finished.duration_ms.and_then(|ms| i64::try_from(ms).ok()),
            finished.exit_code,
            finished.output.as_deref(),
            None,
        ),
        ExecutionEnd::Indeterminate(indeterminate) => {
            (None, None, None, indeterminate.error.as_deref())
        }
    };
    sqlx::query(
        "UPDATE executions SET status = $2, finished_at = $3, duration_ms = $4, exit_code = $5,
            output_excerpt = $6, error = $7
         WHERE token_id = $1 AND status = 'EXECUTING'",
    )
    .bind(token_id)
    .bind(status.as_str())
    .bind(at)
    .bind(duration_ms)
    .bind(exit_code)
    .bind(output)
    .bind(error)
    .execute(connection)
    .await?;
    Ok(())
}

//! `executions`: one row per capability token the gateway claimed (written by the recorder).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

/// Records an execution that started (from an `execution_started` audit event).
pub async fn started(
    connection: &mut PgConnection,
    request_id: Uuid,
    data: &Value,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let Some(token_id) = data["token_id"]
        .as_str()
        .and_then(|text| text.parse::<Uuid>().ok())
    else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO executions (token_id, request_id, environment, operation, argv, status, started_at)
         VALUES ($1, $2, $3, $4, $5, 'EXECUTING', $6) ON CONFLICT (token_id) DO NOTHING",
    )
    .bind(token_id)
    .bind(request_id)
    .bind(data["environment"].as_str().unwrap_or_default())
    .bind(data["operation"].as_str().unwrap_or_default())
    .bind(Json(data["argv"].clone()))
    .bind(at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Records how an execution ended (from an `execution_finished` audit event).
pub async fn finished(
    connection: &mut PgConnection,
    status: &str,
    data: &Value,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let Some(token_id) = data["token_id"]
        .as_str()
        .and_then(|text| text.parse::<Uuid>().ok())
    else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE executions SET status = $2, finished_at = $3, duration_ms = $4, exit_code = $5,
            output_excerpt = $6, error = $7
         WHERE token_id = $1 AND status = 'EXECUTING'",
    )
    .bind(token_id)
    .bind(status)
    .bind(at)
    .bind(data["duration_ms"].as_i64())
    .bind(
        data["exit_code"]
            .as_i64()
            .and_then(|code| i32::try_from(code).ok()),
    )
    .bind(data["output"].as_str())
    .bind(data["error"].as_str())
    .execute(connection)
    .await?;
    Ok(())
}

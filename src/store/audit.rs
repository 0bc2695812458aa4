//! `audit_events`: the append-only, hash-chained log (written by the recorder only).
//!
//! Each row's `hash` is the SHA-256 of its canonical content, which includes `prev_hash`,
//! the hash of the row before it. Appends are serialized by a transaction-scoped advisory
//! lock, and idempotent on (`event_id`, `stage`): the stage is the one the recorder proved
//! from the subject, so another stage's planted copy of an id never suppresses the real event.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use crate::envelope::Envelope;
use crate::events::AuditRecord;

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const CHAIN_LOCK: i64 = 0x5749_4e47_4155_4454; // "WINGAUDT"

/// One stored audit row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub event_id: Uuid,
    pub request_id: Option<Uuid>,
    pub kind: String,
    pub stage: String,
    pub status: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub data: Json<Value>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    /// The hash this row should have, from its content and `prev_hash`.
    pub fn expected_hash(&self) -> String {
        content_hash(self)
    }
}

/// Appends the events not yet recorded (by id and stage), in order; returns which of them
/// were new. The caller has admitted each event: its body's stage is the subject's.
pub async fn append(
    connection: &mut PgConnection,
    events: &[Envelope<AuditRecord>],
) -> sqlx::Result<Vec<bool>> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *connection)
        .await?;
    let ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
    let existing: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT event_id, stage FROM audit_events WHERE event_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *connection)
            .await?;
    let mut seen: HashSet<(Uuid, String)> = existing.into_iter().collect();
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *connection)
            .await?;
    let (mut seq, mut prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_string()));
    let mut rows = Vec::new();
    let mut fresh = Vec::with_capacity(events.len());
    for event in events {
        if !seen.insert((event.event_id, event.body.stage.as_str().to_string())) {
            fresh.push(false);
            continue;
        }
        fresh.push(true);
        seq += 1;
        let mut row = AuditRow {
            seq,
            event_id: event.event_id,
            request_id: Some(event.request_id.as_uuid()).filter(|id| !id.is_nil()),
            kind: event.body.kind.as_str().to_string(),
            stage: event.body.stage.as_str().to_string(),
            status: event.body.status.map(|status| status.as_str().to_string()),
            actor: event.body.actor.clone(),
            at: crate::envelope::truncate_to_micros(event.at),
            data: Json(event.body.data.clone()),
            prev_hash: prev_hash.clone(),
            hash: String::new(),
        };
        row.hash = content_hash(&row);
        prev_hash = row.hash.clone();
        rows.push(row);
    }
    if !rows.is_empty() {
        insert_rows(connection, &rows).await?;
    }
    Ok(fresh)
}

async fn insert_rows(connection: &mut PgConnection, rows: &[AuditRow]) -> sqlx::Result<()> {
    let seqs: Vec<i64> = rows.iter().map(|row| row.seq).collect();
    let event_ids: Vec<Uuid> = rows.iter().map(|row| row.event_id).collect();
    let request_ids: Vec<Option<Uuid>> = rows.iter().map(|row| row.request_id).collect();
    let kinds: Vec<String> = rows.iter().map(|row| row.kind.clone()).collect();
    let stages: Vec<String> = rows.iter().map(|row| row.stage.clone()).collect();
    let statuses: Vec<Option<String>> = rows.iter().map(|row| row.status.clone()).collect();
    let actors: Vec<String> = rows.iter().map(|row| row.actor.clone()).collect();
    let ats: Vec<DateTime<Utc>> = rows.iter().map(|row| row.at).collect();
    let datas: Vec<Json<Value>> = rows.iter().map(|row| row.data.clone()).collect();
    let prev_hashes: Vec<String> = rows.iter().map(|row| row.prev_hash.clone()).collect();
    let hashes: Vec<String> = rows.iter().map(|row| row.hash.clone()).collect();
    sqlx::query(
        "INSERT INTO audit_events (seq, event_id, request_id, kind, stage, status, actor, at, data, prev_hash, hash)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                              $7::text[], $8::timestamptz[], $9::jsonb[], $10::text[], $11::text[])",
    )
    .bind(&seqs)
    .bind(&event_ids)
    .bind(&request_ids)
    .bind(&kinds)
    .bind(&stages)
    .bind(&statuses)
    .bind(&actors)
    .bind(&ats)
    .bind(&datas)
    .bind(&prev_hashes)
    .bind(&hashes)
    .execute(connection)
    .await?;
    Ok(())
}

/// Every audit row of one request, in order.
pub async fn for_request(pool: &sqlx::PgPool, request_id: Uuid) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as(
        "SELECT seq, event_id, request_id, kind, stage, status, actor, at, data, prev_hash, hash
         FROM audit_events WHERE request_id = $1 ORDER BY seq",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await
}

fn content_hash(row: &AuditRow) -> String {
    let content = json!({
        "seq": row.seq,
        "event_id": row.event_id,
        "request_id": row.request_id,
        "kind": row.kind,
        "stage": row.stage,
        "status": row.status,
        "actor": row.actor,
        "at": row.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "data": row.data.0,
        "prev_hash": row.prev_hash,
    });
    hex::encode(Sha256::digest(canonical_json(&content).as_bytes()))
}

/// JSON with object keys sorted at every level, so the hash does not depend on map order
/// (Postgres JSONB reorders keys).
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|key| {
                    format!(
                        "{}:{}",
                        Value::String(key.clone()),
                        canonical_json(&map[key])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"q":2,"p":1}],"x":"s"}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":"s","y":[1,{"p":1,"q":2}]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":"s","y":[1,{"p":1,"q":2}]},"b":1}"#
        );
    }
}

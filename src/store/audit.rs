//! `audit_events`: the append-only, hash-chained log (written by the recorder only).
//!
//! Each row's `hash` is the SHA-256 of its canonical content, which includes `prev_hash`,
//! the hash of the row before it. Appends are serialized by a transaction-scoped advisory
//! lock, and idempotent on (`event_id`, `stage`): the stage is the one the recorder proved
//! from the subject, so another stage's planted copy of an id never suppresses the real event.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row as _, types::Json};
use uuid::Uuid;

use crate::envelope::Envelope;
use crate::events::{AuditKind, AuditRecord, Stage};

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

/// Takes the chain's lock for the rest of the transaction and reads the chain's head, in one
/// round trip: the two statements travel as one simple query, each with its own snapshot, so
/// the head is read after the lock was granted and sees every append committed before it.
/// Appends are serialized by the lock; one round trip less inside it is a shorter wait for the
/// appends queued behind.
pub async fn lock_chain(connection: &mut PgConnection) -> sqlx::Result<Head> {
    let rows = sqlx::raw_sql(LOCK_AND_READ_HEAD)
        .fetch_all(&mut *connection)
        .await?;
    // The lock's row has one (void) column; the head's row has two.
    let head = rows.iter().find(|row| row.len() == 2);
    Ok(match head {
        Some(row) => Head {
            seq: row.try_get(0)?,
            hash: row.try_get(1)?,
        },
        None => Head::genesis(),
    })
}

/// The chain's advisory lock, then the head: a constant, as simple queries carry no
/// parameters. The lock's key is the bytes of "WINGAUDT" (a test reads them back): every
/// recorder version must take the same key, or two of them side by side during an upgrade
/// would append to the chain at once.
const LOCK_AND_READ_HEAD: &str = "SELECT pg_advisory_xact_lock(6289644422545359956); \
     SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1";

/// The last row of the chain: what the next row follows, and what a verification ends on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl Head {
    /// Before the first row.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_string(),
        }
    }
}

/// Which of these events are recorded already, by (`event_id`, `stage`). Read before the
/// chain's lock is taken, so it overlaps the append before it: an event that append commits
/// meanwhile is not seen here, and this batch's insert then fails on the unique key (the
/// caller retries each message alone, and then sees it). The lookup joins on the whole unique
/// key, one index probe per event: `event_id = ANY($1)` alone let the planner, without fresh
/// statistics, estimate hundreds of rows per id and switch to a parallel scan of the whole
/// table once it held ~1.8 M rows — seconds per batch, bigger batches behind it, and the
/// 30-minute soak collapsed after 15 minutes.
pub async fn recorded(
    connection: &mut PgConnection,
    events: &[Envelope<AuditRecord>],
) -> sqlx::Result<HashSet<(Uuid, String)>> {
    let ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
    let stages: Vec<&str> = events
        .iter()
        .map(|event| event.body.stage.as_str())
        .collect();
    let found: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT a.event_id, a.stage
         FROM UNNEST($1::uuid[], $2::text[]) AS k(event_id, stage)
         JOIN audit_events a ON a.event_id = k.event_id AND a.stage = k.stage",
    )
    .bind(&ids)
    .bind(&stages)
    .fetch_all(&mut *connection)
    .await?;
    Ok(found.into_iter().collect())
}

/// Appends the events not in `recorded` ([`recorded`]), in order, after `head`; returns which
/// of them were new. The caller holds the chain lock ([`lock_chain`], which read `head`, this
/// transaction) and has admitted each event: its body's stage is the subject's.
pub async fn append(
    connection: &mut PgConnection,
    events: &[Envelope<AuditRecord>],
    mut recorded: HashSet<(Uuid, String)>,
    head: Head,
) -> sqlx::Result<Vec<bool>> {
    let Head {
        mut seq,
        hash: mut prev_hash,
    } = head;
    let mut rows = Rows::default();
    let mut fresh = Vec::with_capacity(events.len());
    for event in events {
        if !recorded.insert((event.event_id, event.body.stage.as_str().to_string())) {
            fresh.push(false);
            continue;
        }
        fresh.push(true);
        seq += 1;
        let at = crate::envelope::truncate_to_micros(event.at);
        let request_id = Some(event.request_id.as_uuid()).filter(|id| !id.is_nil());
        let hash = hash_of(&HashedContent {
            actor: &event.body.actor,
            at: at.to_rfc3339_opts(SecondsFormat::Micros, true),
            data: &event.body.data,
            event_id: event.event_id,
            kind: event.body.kind.as_str(),
            prev_hash: &prev_hash,
            request_id,
            seq,
            stage: event.body.stage.as_str(),
            status: event.body.status.map(|status| status.as_str()),
        });
        rows.seqs.push(seq);
        rows.event_ids.push(event.event_id);
        rows.request_ids.push(request_id);
        rows.kinds.push(event.body.kind.as_str());
        rows.stages.push(event.body.stage.as_str());
        rows.statuses
            .push(event.body.status.map(|status| status.as_str()));
        rows.actors.push(&event.body.actor);
        rows.ats.push(at);
        rows.datas.push(Json(&event.body.data));
        rows.prev_hashes
            .push(std::mem::replace(&mut prev_hash, hash.clone()));
        rows.hashes.push(hash);
    }
    if !rows.seqs.is_empty() {
        insert_rows(connection, &rows).await?;
    }
    Ok(fresh)
}

/// New rows, column by column, borrowing from the events they record.
#[derive(Default)]
struct Rows<'a> {
    seqs: Vec<i64>,
    event_ids: Vec<Uuid>,
    request_ids: Vec<Option<Uuid>>,
    kinds: Vec<&'a str>,
    stages: Vec<&'a str>,
    statuses: Vec<Option<&'a str>>,
    actors: Vec<&'a str>,
    ats: Vec<DateTime<Utc>>,
    datas: Vec<Json<&'a Value>>,
    prev_hashes: Vec<String>,
    hashes: Vec<String>,
}

async fn insert_rows(connection: &mut PgConnection, rows: &Rows<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (seq, event_id, request_id, kind, stage, status, actor, at, data, prev_hash, hash)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                              $7::text[], $8::timestamptz[], $9::jsonb[], $10::text[], $11::text[])",
    )
    .bind(&rows.seqs)
    .bind(&rows.event_ids)
    .bind(&rows.request_ids)
    .bind(&rows.kinds)
    .bind(&rows.stages)
    .bind(&rows.statuses)
    .bind(&rows.actors)
    .bind(&rows.ats)
    .bind(&rows.datas)
    .bind(&rows.prev_hashes)
    .bind(&rows.hashes)
    .execute(connection)
    .await?;
    Ok(())
}

/// The gateway's rows of `kind` (`execution_started` or `execution_finished`) already
/// recorded for these requests, in order, leaving out the events named in `pending` (recorded
/// in this batch, still to be applied). A start recorded before its approval, or a finish
/// before its start (the earlier event redelivered after the later one, when the database
/// failed under a batch), was audited but could not move the row; the recorder applies it
/// once the move it follows has.
pub async fn gateway_rows(
    connection: &mut PgConnection,
    kind: AuditKind,
    request_ids: &[Uuid],
    pending: &[Uuid],
) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as(
        "SELECT seq, event_id, request_id, kind, stage, status, actor, at, data, prev_hash, hash
         FROM audit_events
         WHERE request_id = ANY($1) AND kind = $3 AND stage = $4 AND event_id <> ALL($2)
         ORDER BY seq",
    )
    .bind(request_ids)
    .bind(pending)
    .bind(kind.as_str())
    .bind(Stage::Gateway.as_str())
    .fetch_all(connection)
    .await
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

/// The hashed content of a row: its fields but the hash, with keys in sorted order (serde
/// writes a struct's fields in declaration order, and `serde_json`'s maps keep their keys
/// sorted), so this is [`canonical_json`] of the row without building or cloning a JSON tree
/// (`content_hash_is_the_canonical_json_of_the_row` holds it to that).
#[derive(serde::Serialize)]
struct HashedContent<'a> {
    actor: &'a str,
    at: String,
    data: &'a Value,
    event_id: Uuid,
    kind: &'a str,
    prev_hash: &'a str,
    request_id: Option<Uuid>,
    seq: i64,
    stage: &'a str,
    status: Option<&'a str>,
}

fn content_hash(row: &AuditRow) -> String {
    let content = HashedContent {
        actor: &row.actor,
        at: row.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        data: &row.data.0,
        event_id: row.event_id,
        kind: &row.kind,
        prev_hash: &row.prev_hash,
        request_id: row.request_id,
        seq: row.seq,
        stage: &row.stage,
        status: row.status.as_deref(),
    };
    hash_of(&content)
}

fn hash_of(content: &HashedContent<'_>) -> String {
    let bytes = serde_json::to_vec(content).expect("a row serializes to JSON");
    hex::encode(Sha256::digest(&bytes))
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
    use serde_json::json;

    use super::*;

    #[test]
    fn the_chain_lock_key_is_the_one_every_recorder_version_takes() {
        let key: i64 = LOCK_AND_READ_HEAD
            .strip_prefix("SELECT pg_advisory_xact_lock(")
            .and_then(|rest| rest.split(')').next())
            .and_then(|key| key.parse().ok())
            .expect("the statement starts by taking the advisory lock");
        assert_eq!(&key.to_be_bytes(), b"WINGAUDT");
    }

    #[test]
    fn content_hash_is_the_canonical_json_of_the_row() {
        let row = AuditRow {
            seq: 7,
            event_id: Uuid::now_v7(),
            request_id: Some(Uuid::new_v4()),
            kind: "request_validated".into(),
            stage: "intake".into(),
            status: Some("PENDING".into()),
            actor: "intake@host:1 \"quoted\" é".into(),
            at: crate::envelope::now(),
            data: Json(
                serde_json::from_str(r#"{"z":[3,{"b":null,"a":"x\ny"}],"a":1.5,"m":{"k":true}}"#)
                    .unwrap(),
            ),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        let reference = json!({
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
        assert_eq!(
            content_hash(&row),
            hex::encode(Sha256::digest(canonical_json(&reference).as_bytes()))
        );
        let anonymous = AuditRow {
            request_id: None,
            status: None,
            ..row
        };
        let reference = json!({
            "seq": anonymous.seq, "event_id": anonymous.event_id, "request_id": null,
            "kind": anonymous.kind, "stage": anonymous.stage, "status": null,
            "actor": anonymous.actor,
            "at": anonymous.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "data": anonymous.data.0, "prev_hash": anonymous.prev_hash,
        });
        assert_eq!(
            content_hash(&anonymous),
            hex::encode(Sha256::digest(canonical_json(&reference).as_bytes()))
        );
    }

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

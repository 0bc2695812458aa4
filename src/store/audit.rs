//! `audit_events`: the append-only, hash-chained log (written by the recorder only).
//!
//! Each row's `hash` is the SHA-256 of its canonical content, which includes `prev_hash`,
//! the hash of the row before it. Appends are serialized by a transaction-scoped advisory
//! lock, and idempotent on (`event_id`, `stage`): the stage is the one the recorder proved
//! from the subject, so another stage's planted copy of an id never suppresses the real event.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, types::Json};
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

/// Begins a transaction that holds the chain's lock until it ends, in one round trip (the
/// `BEGIN` and the lock travel as one simple query). Appends are serialized by the lock; the
/// statements after it each take a snapshot of their own, so they see every append committed
/// before the lock was granted.
///
/// The transaction starts with generic plans (`plan_cache_mode = force_generic_plan`, local
/// to it): the recorder's append and insert of the received requests are then planned once
/// per connection instead of once per batch (the
/// connections' default is to plan each statement with its parameters,
/// [`DatabaseSettings::pool`](crate::config::DatabaseSettings::pool)). Their plans cannot
/// go stale as the tables grow: both read their rows from `UNNEST`, the append checks the
/// head through the primary key's last entry, and the insert's conflicts go through the key
/// (`recorder::the_recorders_cached_plans_do_not_scan_the_tables_they_were_made_on_when_small`).
/// Whatever the transaction looks up after them goes back to planning with its parameters
/// first ([`plan_with_parameters`]).
pub async fn begin_locked(
    connection: &mut PgConnection,
) -> sqlx::Result<sqlx::Transaction<'_, sqlx::Postgres>> {
    sqlx::Connection::begin_with(connection, BEGIN_AND_LOCK).await
}

/// The chain's head, read under its lock ([`begin_locked`]) when the recorder does not know
/// it (first batch, or after [`Appended::NotAtHead`]).
pub async fn head(connection: &mut PgConnection) -> sqlx::Result<Head> {
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(connection)
            .await?;
    Ok(head.map_or_else(Head::genesis, |(seq, hash)| Head { seq, hash }))
}

/// The key of the chain's advisory lock: the bytes of "WINGAUDT". Every recorder version must
/// take the same key, or two of them side by side during an upgrade would append to the chain
/// at once; whoever else must hold the chain still (the bench's preload, tests) takes this.
pub const CHAIN_LOCK: i64 = i64::from_be_bytes(*b"WINGAUDT");

/// `BEGIN`, generic plans for the appends ([`begin_locked`]), then the chain's advisory lock
/// ([`CHAIN_LOCK`], written out: simple queries carry no parameters; a test reads the key
/// back).
const BEGIN_AND_LOCK: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; \
                              SELECT pg_advisory_xact_lock(6289644422545359956)";

/// Ends the generic plans [`begin_locked`] starts: the rest of the transaction plans each
/// statement with its parameters, as every connection does by default. A status move or a
/// lookup by request joins its `UNNEST` to a table through a key; planned once while the
/// table was small (or empty, at a new installation) and never again (autovacuum off, or not
/// yet run), its plan scanned the whole table at every batch.
pub async fn plan_with_parameters(connection: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::raw_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        .execute(connection)
        .await?;
    Ok(())
}

/// Whether an append failed because one of its events is recorded already: the unique key
/// (`event_id`, `stage`). The transaction is spoiled; the caller asks [`recorded`] which and
/// appends the others in a new one.
pub fn is_recorded_already(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|error| {
        error.is_unique_violation() && error.constraint() == Some("audit_events_event_id_stage_key")
    })
}

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

/// Which of these events are recorded already, by (`event_id`, `stage`): asked only after an
/// append failed on that key ([`is_recorded_already`]: a redelivery, or a stage republishing
/// an event), so the common batch, whose events are all new, pays no lookup. The lookup joins on the whole unique
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

/// What an append did.
#[derive(Debug)]
pub enum Appended {
    /// The rows follow `head`: the chain's head after them.
    Done { head: Head },
    /// The chain's head is not the one given: nothing was written. The caller reads the head
    /// ([`head`]) and appends again.
    NotAtHead,
}

/// Appends the [`fresh`] of `events`, in order, after `head`, if `head` is
/// still the chain's head: the insert checks it in the same statement, so a head the caller
/// remembered from its last append (and no other recorder moved since) costs no read. The
/// caller holds the chain lock ([`begin_locked`]) and has admitted each event: its body's
/// stage is the subject's.
pub async fn append(
    connection: &mut PgConnection,
    events: &[Envelope<AuditRecord>],
    fresh: &[bool],
    head: &Head,
) -> sqlx::Result<Appended> {
    let append = Append::after(events, fresh, head);
    if !append.rows.seqs.is_empty() && insert_rows(connection, &append.rows, head).await? == 0 {
        return Ok(Appended::NotAtHead);
    }
    Ok(append.done())
}

/// Which of `events` are new: not in `recorded` ([`recorded`]; empty until an append found
/// one recorded already), and not a later copy of one earlier in the batch (by `event_id` and
/// stage, the unique key). Computed once a batch: the recorder projects, appends and counts
/// the same ones.
pub fn fresh(events: &[Envelope<AuditRecord>], recorded: &HashSet<(Uuid, String)>) -> Vec<bool> {
    let mut seen = recorded.clone();
    events
        .iter()
        .map(|event| seen.insert((event.event_id, event.body.stage.as_str().to_string())))
        .collect()
}

/// The rows that append the [`fresh`] of `events` after `head`, hashed, before anything is
/// written.
pub struct Append<'a> {
    rows: Rows<'a>,
    after: Head,
    head: Head,
}

impl<'a> Append<'a> {
    pub fn after(events: &'a [Envelope<AuditRecord>], fresh: &[bool], head: &Head) -> Self {
        let mut seq = head.seq;
        let mut prev_hash = head.hash.clone();
        let mut rows = Rows::default();
        for (event, _) in events.iter().zip(fresh).filter(|(_, is_new)| **is_new) {
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
        Self {
            rows,
            after: head.clone(),
            head: Head {
                seq,
                hash: prev_hash,
            },
        }
    }

    /// The chain's head once these rows are appended.
    pub fn head_after(&self) -> &Head {
        &self.head
    }

    fn done(&self) -> Appended {
        Appended::Done {
            head: self.head.clone(),
        }
    }

    /// The recorder's common batch in one round trip: these rows and the `received` requests
    /// they project to (nothing else moves) in one statement outside any transaction, so the
    /// batch commits with it. `wingman_record_received` (migration `20261207000001`) takes the
    /// chain's lock, appends after `head` if it is still the chain's head — checked with a
    /// snapshot taken under the lock, as [`append`] checks it — and inserts the requests as
    /// [`insert_received`](crate::store::requests::insert_received) does; its statements keep
    /// one plan per connection (the function sets `plan_cache_mode = force_generic_plan` for
    /// itself, as [`begin_locked`] does for the same two statements). Its arguments are the
    /// rows' 11 arrays, the head, the requests' 21 arrays, then where each request's validator
    /// scores are among the rows ([`Append::scores_from`]: those are not sent twice).
    /// [`Appended::NotAtHead`] when the head was another: nothing was written.
    pub async fn with_received(
        &self,
        connection: &mut PgConnection,
        received: &[crate::store::requests::Received],
    ) -> sqlx::Result<Appended> {
        if self.rows.seqs.is_empty() {
            return Ok(self.done());
        }
        let query = sqlx::query(
            "SELECT wingman_record_received($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                 $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28,
                 $29, $30, $31, $32, $33, $34, $35)",
        );
        let query = bind_rows(query, &self.rows)
            .bind(self.after.seq)
            .bind(&self.after.hash);
        let scores_from = self.scores_from(received);
        let scores = crate::store::requests::scores_of(received)
            .into_iter()
            .zip(&scores_from)
            .map(|(scores, from)| scores.filter(|_| from.is_none()))
            .collect();
        let row = crate::store::requests::bind_received(query, received, scores)
            .bind(scores_from)
            .fetch_one(connection)
            .await?;
        if sqlx::Row::try_get::<bool, _>(&row, 0)? {
            Ok(self.done())
        } else {
            Ok(Appended::NotAtHead)
        }
    }

    /// Where each received request's validator scores are among these rows, as Postgres
    /// counts (from 1): the new `request_validated` row its first move was made from (found by
    /// that event's id, [`Move::event_id`](crate::store::requests::Move::event_id), and checked
    /// to be the same request's). `None` when no new row is it (the decision was recorded in
    /// an earlier batch) or there are no scores: the scores then travel on their own.
    fn scores_from(&self, received: &[crate::store::requests::Received]) -> Vec<Option<i32>> {
        let validated: HashMap<Uuid, usize> = self
            .rows
            .event_ids
            .iter()
            .zip(&self.rows.kinds)
            .enumerate()
            .filter(|(_, (_, kind))| **kind == AuditKind::RequestValidated.as_str())
            .map(|(index, (event_id, _))| (*event_id, index))
            .collect();
        received
            .iter()
            .map(|item| {
                let first = item.first_move.as_ref()?;
                first.fields.validator_scores.as_ref()?;
                let index = *validated.get(&first.event_id?)?;
                if self.rows.request_ids[index] != Some(item.request.request_id.as_uuid()) {
                    return None;
                }
                i32::try_from(index + 1).ok()
            })
            .collect()
    }
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

/// Inserts the rows if the chain's head is `head` (an empty chain's is [`Head::genesis`]);
/// how many it inserted: all of them, or none.
async fn insert_rows(
    connection: &mut PgConnection,
    rows: &Rows<'_>,
    head: &Head,
) -> sqlx::Result<u64> {
    let query = sqlx::query(
        "INSERT INTO audit_events (seq, event_id, request_id, kind, stage, status, actor, at, data, prev_hash, hash)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                              $7::text[], $8::timestamptz[], $9::jsonb[], $10::text[], $11::text[])
         WHERE COALESCE((SELECT seq = $12 AND hash = $13 FROM audit_events ORDER BY seq DESC LIMIT 1),
                        $12 = 0)",
    );
    let inserted = bind_rows(query, rows)
        .bind(head.seq)
        .bind(&head.hash)
        .execute(connection)
        .await?;
    Ok(inserted.rows_affected())
}

/// Binds the rows as 11 arrays, a column each, in the order of `audit_events`' columns (as
/// [`insert_rows`] and `wingman_record_received` read them).
fn bind_rows<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    rows: &Rows<'_>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
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
}

/// The gateway's rows of `kind` (`execution_started` or `execution_finished`) already
/// recorded for these requests, in order, leaving out the events named in `pending` (recorded
/// in this batch, still to be applied). A start recorded before its approval, or a finish
/// before its start (the earlier event redelivered after the later one, when the database
/// failed under a batch), was audited but could not move the row; the recorder applies it
/// once the move it follows has.
///
/// The requests' rows are read first (a few each, by `audit_events_request_id`), then
/// filtered: left to choose, the planner without statistics (autovacuum off, or not yet run)
/// ANDed that index with a scan of the whole (`event_id`, `stage`) index for `stage`, 4–11 ms
/// a lookup while the recorder held the chain's lock, on every approval and start (seen with
/// `auto_explain` in the bench's command mix, after some 90 000 requests).
pub async fn gateway_rows(
    connection: &mut PgConnection,
    kind: AuditKind,
    request_ids: &[Uuid],
    pending: &[Uuid],
) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as(
        "WITH of_requests AS MATERIALIZED (
             SELECT seq, event_id, request_id, kind, stage, status, actor, at, data, prev_hash, hash
             FROM audit_events WHERE request_id = ANY($1)
         )
         SELECT seq, event_id, request_id, kind, stage, status, actor, at, data, prev_hash, hash
         FROM of_requests
         WHERE kind = $3 AND stage = $4 AND event_id <> ALL($2)
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

    /// A request's first move names the `request_validated` event it was made from; the
    /// scores are taken from that event's row, found by its id — never from another row of
    /// the batch, nor from another request's row with the same id.
    #[test]
    fn a_first_move_takes_its_scores_from_the_row_of_its_own_event() {
        use crate::envelope::RequestId;
        use crate::events::{AuditRecord, Stage};
        use crate::store::requests::{Move, Received, StatusFields};

        let at = Utc::now();
        let validated = |id: RequestId, score: i64| {
            Envelope::derived(
                id,
                at,
                &format!("{id}:intake:validated"),
                AuditRecord {
                    kind: AuditKind::RequestValidated,
                    stage: Stage::Intake,
                    status: Some(crate::status::Status::AutoApproved),
                    actor: "intake@test".into(),
                    data: json!({"validator_scores": {"composite": {"score": score}}}),
                    then: Vec::new(),
                },
            )
        };
        let received = |id: RequestId, event_id: Option<Uuid>| Received {
            request: crate::request::parse_request(
                json!({"request_id": id.to_string(), "requester": "agent-7",
                       "environment": "dev", "title": "t", "description": "d"})
                .to_string()
                .as_bytes(),
                || unreachable!("the request names its id"),
            )
            .unwrap(),
            at,
            first_move: Some(Move {
                request_id: id.as_uuid(),
                status: crate::status::Status::AutoApproved,
                at,
                fields: StatusFields {
                    validator_scores: Some(json!({"composite": {"score": 1}})),
                    ..StatusFields::default()
                },
                event_id,
            }),
        };
        let (one, two) = (RequestId::generate(), RequestId::generate());
        let events = [validated(two, 2), validated(one, 1)];
        let append = Append::after(&events, &[true, true], &Head::genesis());
        assert_eq!(
            append.scores_from(&[
                received(one, Some(events[1].event_id)),
                received(two, Some(events[0].event_id)),
                // Its decision was recorded in an earlier batch: no row of this one.
                received(RequestId::generate(), Some(Uuid::now_v7())),
                // Another request's event: not its row.
                received(RequestId::generate(), Some(events[0].event_id)),
                received(one, None),
            ]),
            vec![Some(2), Some(1), None, None, None]
        );
    }

    #[test]
    fn the_chain_lock_key_is_the_one_every_recorder_version_takes() {
        let key: i64 = BEGIN_AND_LOCK
            .strip_prefix("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; ")
            .and_then(|rest| {
                rest.trim_start()
                    .strip_prefix("SELECT pg_advisory_xact_lock(")
            })
            .and_then(|rest| rest.split(')').next())
            .and_then(|key| key.parse().ok())
            .expect("the statement begins, turns to generic plans, then takes the advisory lock");
        assert_eq!(key, CHAIN_LOCK);
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

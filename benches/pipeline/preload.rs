//! `--preload N`: N requests and their audit rows in the bench's database before the run, so
//! the figures can be compared with an empty database ("flat as the tables grow").
//!
//! The rows are copies of real ones: a few requests go through the running pipeline first,
//! then each preloaded request copies one of them with a new id, its times moved back by
//! 1 ms per row (older than the run's rows, as history is). `approval_requests` rows are
//! written by `INSERT … SELECT` from the templates over `UNNEST` of the new ids, so every
//! column the migrations define is filled as the recorder fills it. Audit rows are written
//! in chunks through `UNNEST`, **with the hash chain**: each copied row gets a new event id,
//! its request id replaced in its data, the next `seq` and the hash of its content over the
//! previous row's hash (computed here with the recorder's own function), under the
//! recorder's chain lock, so `wingman audit verify` passes over the preloaded rows too.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;
use wingman::store::audit::{AuditRow, CHAIN_LOCK};

use crate::harness::Pipeline;
use crate::openloop::Mix;

const TEMPLATES: usize = 30;
const CHUNK: usize = 20_000;

#[derive(Debug, Clone, Serialize)]
pub struct Preloaded {
    pub requests: usize,
    pub audit_rows: usize,
    pub seconds: f64,
    /// The hash chain is computed for the preloaded rows (so verification covers them).
    pub chained: bool,
    /// Seconds it took Postgres to write the preloaded pages (`CHECKPOINT`) and the machine
    /// to flush them to disk (`sync`) before the run, so the run measures tables that hold
    /// the rows, not the write-back of rows just loaded.
    pub settle_seconds: f64,
}

pub async fn run(run: &Pipeline, count: usize) -> anyhow::Result<Preloaded> {
    let started = Instant::now();
    let templates = templates(run).await?;
    let mut tx = run.pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE wb_templates ON COMMIT DROP AS
         SELECT (row_number() OVER (ORDER BY request_id) - 1)::int AS wb_n, *
         FROM approval_requests WHERE request_id = ANY($1)",
    )
    .bind(&templates)
    .execute(&mut *tx)
    .await?;
    let template_ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT request_id FROM wb_templates ORDER BY wb_n")
            .fetch_all(&mut *tx)
            .await?;
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT seq, event_id, request_id, kind, stage, status, actor, at, data, prev_hash, hash
         FROM audit_events WHERE request_id = ANY($1) ORDER BY seq",
    )
    .bind(&template_ids)
    .fetch_all(&mut *tx)
    .await?;
    let per_template: Vec<Vec<(AuditRow, String)>> = template_ids
        .iter()
        .map(|id| {
            rows.iter()
                .filter(|row| row.request_id == Some(*id))
                .map(|row| (row.clone(), row.data.0.to_string()))
                .collect()
        })
        .collect();
    let insert_requests = requests_insert(&mut tx).await?;
    let (mut seq, mut prev_hash): (i64, String) =
        sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_one(&mut *tx)
            .await?;
    let mut audit_rows = 0;
    let mut first = 0;
    while first < count {
        let last = (first + CHUNK / 4).min(count);
        let ids: Vec<Uuid> = (first..last).map(|_| Uuid::now_v7()).collect();
        let which: Vec<i32> = (first..last)
            .map(|index| (index % template_ids.len()) as i32)
            .collect();
        let back: Vec<f64> = (first..last)
            .map(|index| (count - index) as f64 / 1000.0)
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(insert_requests.clone()))
            .bind(&ids)
            .bind(&which)
            .bind(&back)
            .execute(&mut *tx)
            .await?;
        let mut chunk = Vec::new();
        for ((id, template), seconds_back) in ids.iter().zip(&which).zip(&back) {
            let template_id = template_ids[*template as usize].to_string();
            for (row, data) in &per_template[*template as usize] {
                seq += 1;
                let mut copy = AuditRow {
                    seq,
                    event_id: Uuid::now_v7(),
                    request_id: Some(*id),
                    at: row.at - TimeDelta::microseconds((*seconds_back * 1e6).round() as i64),
                    data: Json(serde_json::from_str(
                        &data.replace(&template_id, &id.to_string()),
                    )?),
                    prev_hash: prev_hash.clone(),
                    hash: String::new(),
                    ..row.clone()
                };
                copy.hash = copy.expected_hash();
                prev_hash = copy.hash.clone();
                chunk.push(copy);
            }
        }
        audit_rows += chunk.len();
        insert_audit(&mut tx, &chunk).await?;
        first = last;
        if first % 100_000 < CHUNK / 4 {
            println!("  {first} of {count} requests preloaded ({audit_rows} audit rows)");
        }
    }
    tx.commit().await?;
    sqlx::query("ANALYZE approval_requests")
        .execute(&run.pool)
        .await?;
    sqlx::query("ANALYZE audit_events")
        .execute(&run.pool)
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    // A database that has held these rows for a while has written them out; one that loaded
    // them a moment ago still writes them back (checkpoints, the kernel's write-back) through
    // the run, competing for the cores and the disk.
    let settling = Instant::now();
    sqlx::query("CHECKPOINT").execute(&run.pool).await?;
    crate::sweep::flush().await;
    let preloaded = Preloaded {
        requests: count,
        audit_rows,
        seconds,
        chained: true,
        settle_seconds: settling.elapsed().as_secs_f64(),
    };
    println!(
        "preloaded {} requests and {} audit rows (hash chain included) in {:.1} s; written out \
         (CHECKPOINT, sync) in {:.1} s",
        preloaded.requests, preloaded.audit_rows, preloaded.seconds, preloaded.settle_seconds
    );
    Ok(preloaded)
}

/// Sends a few requests through the pipeline and waits until they are recorded and every
/// consumer is drained; their ids.
async fn templates(run: &Pipeline) -> anyhow::Result<Vec<Uuid>> {
    let mix = Mix::default();
    let subject = format!("{}.requests.submitted.bench", run.prefix);
    let mut ids = Vec::new();
    for index in 0..TEMPLATES as u64 {
        let id = Uuid::now_v7();
        let (body, _) = mix.body(id, index);
        run.js
            .publish_with_headers(subject.clone(), message_id(id), body.to_string().into())
            .await?
            .await?;
        ids.push(id);
    }
    let started = Instant::now();
    while run.recorded_of(&ids).await? < TEMPLATES {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the preload's template requests were not recorded within a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.drain(Duration::from_secs(60)).await?;
    Ok(ids)
}

fn message_id(id: Uuid) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id.to_string().as_str());
    headers
}

/// `INSERT INTO approval_requests (every column) SELECT …` from the templates: the new id,
/// every timestamp moved back, every other column copied.
async fn requests_insert(tx: &mut sqlx::PgConnection) -> anyhow::Result<String> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'approval_requests'
         ORDER BY ordinal_position",
    )
    .fetch_all(tx)
    .await?;
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let values: Vec<String> = columns
        .iter()
        .map(|(name, kind)| match (name.as_str(), kind.as_str()) {
            ("request_id", _) => "new.id".to_string(),
            (_, "timestamp with time zone") => {
                format!("t.{name} - make_interval(secs => new.back)")
            }
            _ => format!("t.{name}"),
        })
        .collect();
    Ok(format!(
        "INSERT INTO approval_requests ({}) SELECT {} FROM UNNEST($1::uuid[], $2::int[], $3::float8[])
         AS new(id, template, back) JOIN wb_templates t ON t.wb_n = new.template",
        names.join(", "),
        values.join(", ")
    ))
}

async fn insert_audit(tx: &mut sqlx::PgConnection, rows: &[AuditRow]) -> anyhow::Result<()> {
    let column = |get: fn(&AuditRow) -> String| rows.iter().map(get).collect::<Vec<_>>();
    let statuses: Vec<Option<String>> = rows.iter().map(|row| row.status.clone()).collect();
    let ats: Vec<DateTime<Utc>> = rows.iter().map(|row| row.at).collect();
    let datas: Vec<Json<Value>> = rows.iter().map(|row| row.data.clone()).collect();
    sqlx::query(
        "INSERT INTO audit_events (seq, event_id, request_id, kind, stage, status, actor, at, data, prev_hash, hash)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                              $7::text[], $8::timestamptz[], $9::jsonb[], $10::text[], $11::text[])",
    )
    .bind(rows.iter().map(|row| row.seq).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.event_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.request_id).collect::<Vec<_>>())
    .bind(column(|row| row.kind.clone()))
    .bind(column(|row| row.stage.clone()))
    .bind(&statuses)
    .bind(column(|row| row.actor.clone()))
    .bind(&ats)
    .bind(&datas)
    .bind(column(|row| row.prev_hash.clone()))
    .bind(column(|row| row.hash.clone()))
    .execute(tx)
    .await?;
    Ok(())
}

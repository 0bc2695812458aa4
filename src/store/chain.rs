//! Verifying the audit chain (`wingman audit verify`) and its signed checkpoints.
//!
//! The walk reads rows in pages, in `seq` order, and names the first row whose sequence has a
//! gap, whose `prev_hash` is not the previous row's hash, or whose own hash does not match its
//! content. A checkpoint (the head's seq and hash, signed) kept off-box detects truncation:
//! rows deleted after it leave the chain self-consistent but shorter than the checkpoint.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::store::audit::{AuditRow, GENESIS_HASH};
use crate::token::{SigningKey, VerifyKey, open_document, sign_document};

const PAGE: i64 = 5000;
const PURPOSE: &str = "wingman-audit-checkpoint";

/// The last row of the chain as verified.
pub use crate::store::audit::Head;

/// A signed statement "the log had this head at this time".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
}

/// What the walk found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub rows: i64,
    pub head: Option<Head>,
    /// The first problem: (seq of the row, what is wrong).
    pub broken: Option<(i64, String)>,
}

/// Walks the whole chain.
pub async fn verify(pool: &PgPool) -> sqlx::Result<Verification> {
    let mut previous: Option<AuditRow> = None;
    let mut rows = 0;
    loop {
        let after = previous.as_ref().map_or(0, |row| row.seq);
        let page: Vec<AuditRow> = sqlx::query_as(
            "SELECT seq, event_id, request_id, kind, stage, status, actor, at, data, prev_hash, hash
             FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
        if page.is_empty() {
            break;
        }
        for row in page {
            rows += 1;
            let (expected_seq, expected_prev) = match &previous {
                None => (1, GENESIS_HASH.to_string()),
                Some(before) => (before.seq + 1, before.hash.clone()),
            };
            let problem = if row.seq != expected_seq {
                Some(format!(
                    "missing link: row {} follows row {}; rows in between were deleted",
                    row.seq,
                    expected_seq - 1
                ))
            } else if row.prev_hash != expected_prev {
                Some(format!(
                    "broken link: prev_hash of row {} is not the hash of row {}",
                    row.seq,
                    row.seq - 1
                ))
            } else if row.hash != row.expected_hash() {
                Some(format!(
                    "row {} ({}, event {}) was edited: its content does not match its hash",
                    row.seq, row.kind, row.event_id
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Ok(Verification {
                    rows,
                    head: None,
                    broken: Some((row.seq, problem)),
                });
            }
            previous = Some(row);
        }
    }
    let head = previous.map(|row| Head {
        seq: row.seq,
        hash: row.hash,
    });
    Ok(Verification {
        rows,
        head,
        broken: None,
    })
}

/// Checks a verified chain against a checkpoint taken earlier.
pub async fn check_against(
    pool: &PgPool,
    verification: &Verification,
    checkpoint: &Checkpoint,
) -> sqlx::Result<Option<String>> {
    let head_seq = verification.head.as_ref().map_or(0, |head| head.seq);
    if head_seq < checkpoint.seq {
        return Ok(Some(format!(
            "truncated: the checkpoint of {} saw row {}, the log now ends at row {head_seq}",
            checkpoint.at.format("%Y-%m-%d %H:%M:%S UTC"),
            checkpoint.seq
        )));
    }
    let hash: Option<String> = sqlx::query_scalar("SELECT hash FROM audit_events WHERE seq = $1")
        .bind(checkpoint.seq)
        .fetch_optional(pool)
        .await?;
    if hash.as_deref() != Some(checkpoint.hash.as_str()) {
        return Ok(Some(format!(
            "rewritten: row {} no longer has the hash the checkpoint recorded",
            checkpoint.seq
        )));
    }
    Ok(None)
}

pub fn sign_checkpoint(key: &SigningKey, head: &Head) -> anyhow::Result<String> {
    let checkpoint = Checkpoint {
        seq: head.seq,
        hash: head.hash.clone(),
        at: crate::envelope::now(),
    };
    Ok(sign_document(
        key,
        PURPOSE,
        &serde_json::to_vec(&checkpoint)?,
    )?)
}

pub fn open_checkpoint(key: &VerifyKey, document: &str) -> anyhow::Result<Checkpoint> {
    let payload = open_document(key, PURPOSE, document)
        .map_err(|error| anyhow::anyhow!("checkpoint: {error}"))?;
    Ok(serde_json::from_str(&payload)?)
}

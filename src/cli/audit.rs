//! `wingman audit verify | checkpoint | show`: the tamper-evident log, as an auditor uses it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::ExitCode;
use crate::cli::ids::IdArg;
use crate::config::Settings;
use crate::envelope::RequestId;
use crate::events::AuditKind;
use crate::events::payload::{ExecutionStarted, Payload as _, RequestReceived};
use crate::store::{audit, chain};

/// `wingman audit`'s subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditAction {
    /// Walk the hash chain and name the first broken or missing link.
    Verify {
        /// A checkpoint file from `wingman audit checkpoint`: also detects truncation after it.
        #[arg(long)]
        against: Option<PathBuf>,
        /// The checkpoint verification key (from `wingman keygen --name audit`).
        #[arg(long, env = "WINGMAN_AUDIT_VERIFY_KEY_FILE")]
        key: Option<PathBuf>,
        /// Print {"ok", "rows", "head", "checkpoint"} (or {"ok": false, "broken_at",
        /// "problem"}) as JSON; the exit code is the same (0 holds, 4 broken).
        #[arg(long)]
        json: bool,
    },
    /// Print a signed checkpoint of the chain's head, to keep off this machine.
    Checkpoint {
        /// The checkpoint signing key (from `wingman keygen --name audit`).
        #[arg(long, env = "WINGMAN_AUDIT_KEY_FILE")]
        key: PathBuf,
        /// Print {"checkpoint": SIGNED, "seq", "hash"} as JSON (the file `verify --against`
        /// reads is the "checkpoint" value).
        #[arg(long)]
        json: bool,
    },
    /// One request's whole story: submitted, validated, decided, token minted, executed.
    Show {
        /// The request's id, or a unique prefix of it (at least 4 hex digits; needs
        /// DATABASE_URL to look it up).
        request_id: IdArg,
        /// Print the events as a JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `wingman audit` subcommand against the log in `DATABASE_URL`.
pub async fn run(action: AuditAction) -> anyhow::Result<ExitCode> {
    let pool = Settings::from_env()?.database.pool()?;
    match action {
        AuditAction::Verify { against, key, json } => {
            let pair = match (&against, &key) {
                (Some(checkpoint), Some(key)) => Some((checkpoint.as_path(), key.as_path())),
                (Some(_), None) => {
                    anyhow::bail!("--against needs --key (or WINGMAN_AUDIT_VERIFY_KEY_FILE)")
                }
                _ => None,
            };
            verify(&pool, pair, json).await
        }
        AuditAction::Checkpoint { key, json } => checkpoint(&pool, &key, json).await,
        AuditAction::Show { request_id, json } => {
            let request_id = request_id.resolve(|| Ok(pool.clone())).await?;
            show(&pool, request_id, json).await
        }
    }
}

/// Walks the chain; with `against` (a checkpoint and its verification key), also checks that
/// nothing after the checkpoint was cut off.
pub async fn verify(
    pool: &sqlx::PgPool,
    against: Option<(&Path, &Path)>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let verification = chain::verify(pool).await?;
    let head = verification
        .head
        .as_ref()
        .map(|head| serde_json::json!({"seq": head.seq, "hash": head.hash}));
    let broken = |at: Value, problem: &str| {
        if json {
            println!(
                "{}",
                serde_json::json!({"ok": false, "rows": verification.rows, "broken_at": at, "problem": problem})
            );
        }
    };
    if let Some((seq, problem)) = &verification.broken {
        broken(serde_json::json!(seq), problem);
        if !json {
            println!("audit chain BROKEN at row {seq}: {problem}");
        }
        return Ok(ExitCode::Failed);
    }
    let mut checkpoint_held = Value::Null;
    if let Some((checkpoint_file, key_file)) = against {
        let key = crate::token::read_verify_key(key_file)?;
        let document = std::fs::read_to_string(checkpoint_file).map_err(|error| {
            anyhow::anyhow!("read the checkpoint {}: {error}", checkpoint_file.display())
        })?;
        let checkpoint = chain::open_checkpoint(&key, &document)?;
        if let Some(problem) = chain::check_against(pool, &verification, &checkpoint).await? {
            broken(Value::String("checkpoint".into()), &problem);
            if !json {
                println!("audit chain BROKEN against the checkpoint: {problem}");
            }
            return Ok(ExitCode::Failed);
        }
        checkpoint_held = serde_json::json!({"at": checkpoint.at, "seq": checkpoint.seq});
        if !json {
            println!(
                "checkpoint of {} (row {}) holds",
                checkpoint.at.format("%Y-%m-%d %H:%M:%S UTC"),
                checkpoint.seq
            );
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "rows": verification.rows, "head": head, "checkpoint": checkpoint_held})
        );
        return Ok(ExitCode::Ok);
    }
    match &verification.head {
        Some(head) => println!(
            "audit chain OK: {} rows, head row {} hash {}",
            verification.rows, head.seq, head.hash
        ),
        None => println!("audit chain OK: empty"),
    }
    Ok(ExitCode::Ok)
}

pub async fn checkpoint(
    pool: &sqlx::PgPool,
    key_file: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let key = crate::token::read_signing_key(key_file)?;
    let verification = chain::verify(pool).await?;
    if let Some((seq, problem)) = verification.broken {
        anyhow::bail!("refusing to checkpoint a broken chain (row {seq}: {problem})");
    }
    let head = verification
        .head
        .ok_or_else(|| anyhow::anyhow!("the audit log is empty: nothing to checkpoint"))?;
    let signed = chain::sign_checkpoint(&key, &head)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"checkpoint": signed, "seq": head.seq, "hash": head.hash})
        );
        return Ok(ExitCode::Ok);
    }
    println!("{signed}");
    eprintln!(
        "checkpoint of row {} — store it off this machine; check later with `wingman audit verify --against FILE`",
        head.seq
    );
    Ok(ExitCode::Ok)
}

pub async fn show(
    pool: &sqlx::PgPool,
    request_id: RequestId,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let rows = audit::for_request(pool, request_id.as_uuid()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::Ok);
    }
    if rows.is_empty() {
        println!("no audit events for {request_id}");
        return Ok(ExitCode::Ok);
    }
    for row in rows {
        println!(
            "{:>6}  {}  {:<18} {:<10} {:<14} {}",
            row.seq,
            row.at.format("%Y-%m-%d %H:%M:%S"),
            row.kind,
            row.stage,
            row.status.unwrap_or_default(),
            summary(&row.kind, &row.data.0)
        );
        for line in file_digests(&row.kind, &row.data.0) {
            println!("{:>6}  {line}", "");
        }
    }
    Ok(ExitCode::Ok)
}

/// The files a `compose up` / `pull` ran with, one line each under its `execution_started`
/// row, as `sha256sum` prints them (`<sha256>  <path>`), so `sha256sum -c` can check them.
fn file_digests(kind: &str, data: &Value) -> Vec<String> {
    if kind != AuditKind::ExecutionStarted.as_str() {
        return Vec::new();
    }
    let Ok(started) = ExecutionStarted::from_data(data) else {
        return Vec::new();
    };
    started
        .compose_files
        .iter()
        .chain(started.env_file.as_ref())
        .map(|file| match (&file.sha256, &file.error) {
            (Some(sha256), _) => format!("{sha256}  {}", file.path),
            (None, error) => format!(
                "{:<64}  {} ({})",
                "unreadable",
                file.path,
                error.as_deref().unwrap_or("no digest")
            ),
        })
        .collect()
}

/// The most telling fields of an event, on one line: who asked what (a `request_received`
/// row's typed payload), then whichever of a few common keys the row's data has, whatever its
/// kind (a display of free-form data: refusals are not typed).
fn summary(kind: &str, data: &Value) -> String {
    let mut parts = Vec::new();
    if kind == AuditKind::RequestReceived.as_str()
        && let Ok(RequestReceived { request }) = RequestReceived::from_data(data)
    {
        parts.push(format!("{} in {}", request.requester, request.environment));
        if let Some(command) = &request.command {
            parts.push(command.line.clone());
        }
    }
    for key in [
        "composite_score",
        "profile",
        "decided_by",
        "approver",
        "have",
        "need",
        "note",
        "code",
        "reason",
        "summary",
        "error",
        "token_id",
        "by",
    ] {
        match data.get(key) {
            Some(Value::String(text)) => parts.push(format!("{key}={text}")),
            Some(Value::Number(number)) => parts.push(format!("{key}={number}")),
            _ => {}
        }
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_compose_ups_files_are_listed_under_its_execution_started_row_as_sha256sum_prints_them() {
        let data = json!({
            "operation": "compose_up",
            "compose_files": [
                {"path": "/srv/shop/docker-compose.yml", "sha256": "ab".repeat(32)},
                {"path": "/srv/shop/prd.yml", "sha256": null, "error": "No such file or directory (os error 2)"},
            ],
            "env_file": {"path": "/srv/shop/.env.prd", "sha256": "cd".repeat(32)},
        });
        assert_eq!(
            file_digests("execution_started", &data),
            [
                format!("{}  /srv/shop/docker-compose.yml", "ab".repeat(32)),
                format!(
                    "{:<64}  /srv/shop/prd.yml (No such file or directory (os error 2))",
                    "unreadable"
                ),
                format!("{}  /srv/shop/.env.prd", "cd".repeat(32)),
            ]
        );
        assert!(file_digests("execution_finished", &data).is_empty());
        assert!(
            file_digests("execution_started", &json!({"operation": "container_stop"})).is_empty()
        );
    }
}

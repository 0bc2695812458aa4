//! The console approver: `wingman pending`, `wingman approve`, `wingman reject`. A vote is
//! signed with the approver's own key (`WINGMAN_APPROVER_KEY_FILE`, default
//! `~/.config/wingman/approver.key`, made by `wingman approvers keygen`) and sent to the
//! approvals worker (`wingman.console.decisions`), which checks the signature against the
//! roster and applies the same rules as on Telegram: a listed approver, never the principal
//! that submitted, first decision wins.

use std::path::PathBuf;

use anyhow::Context as _;
use chrono::Utc;
use serde_json::Value;

use crate::approval::Verdict;
use crate::bus::Bus;
use crate::cli::ExitCode;
use crate::cli::ids::IdArg;
use crate::config::Settings;
use crate::envelope::RequestId;
use crate::identity::console_vote;
use crate::status::Status;
use crate::store::requests::{self, ListFilter};

/// `wingman pending`'s arguments.
#[derive(Debug, clap::Args)]
pub struct PendingArgs {
    /// Print the rows as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `wingman approve`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The request's id, or a unique prefix of it (at least 4 hex digits; needs
    /// DATABASE_URL to look it up).
    pub request_id: IdArg,
    /// Why (required to override an auto-rejection); shown in the audit trail.
    #[arg(long)]
    pub note: Option<String>,
    /// Print {"request_id", "applied", "message"|"error"} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `wingman reject`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RejectArgs {
    /// The request's id, or a unique prefix of it (at least 4 hex digits; needs
    /// DATABASE_URL to look it up).
    pub request_id: IdArg,
    /// Why; shown to the requester and in the audit trail.
    #[arg(long)]
    pub reason: String,
    /// Print {"request_id", "applied", "message"|"error"} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Lists what waits for a human, from `DATABASE_URL`.
pub async fn run_pending(args: PendingArgs) -> anyhow::Result<ExitCode> {
    pending(&Settings::from_env()?.database.pool()?, args.json).await?;
    Ok(ExitCode::Ok)
}

/// Votes to approve, as the console approver.
pub async fn run_approve(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let request_id = args
        .request_id
        .resolve(|| Settings::from_env()?.database.pool())
        .await?;
    let bus = crate::cli::connect(&Settings::from_env()?).await?;
    vote(&bus, request_id, Verdict::Approve, args.note, args.json).await
}

/// Votes to reject, as the console approver; the reason is the vote's note.
pub async fn run_reject(args: RejectArgs) -> anyhow::Result<ExitCode> {
    let request_id = args
        .request_id
        .resolve(|| Settings::from_env()?.database.pool())
        .await?;
    let bus = crate::cli::connect(&Settings::from_env()?).await?;
    vote(
        &bus,
        request_id,
        Verdict::Reject,
        Some(args.reason),
        args.json,
    )
    .await
}

/// Who the console approver is: `WINGMAN_APPROVER`, else `$USER` — the name the roster
/// lists for the key; the key is what proves it.
pub fn approver_name() -> anyhow::Result<String> {
    crate::config::var("WINGMAN_APPROVER")
        .or_else(crate::config::login_name)
        .context("set WINGMAN_APPROVER to your approver name")
}

/// The approver's key file: `WINGMAN_APPROVER_KEY_FILE`, else `~/.config/wingman/approver.key`.
pub fn key_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = crate::config::var("WINGMAN_APPROVER_KEY_FILE") {
        return Ok(PathBuf::from(path));
    }
    Ok(config_dir()?.join("approver.key"))
}

/// `$XDG_CONFIG_HOME/wingman`, else `~/.config/wingman`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    let base = match crate::config::var("XDG_CONFIG_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            crate::config::var("HOME").context("set HOME or WINGMAN_APPROVER_KEY_FILE")?,
        )
        .join(".config"),
    };
    Ok(base.join("wingman"))
}

pub async fn vote(
    bus: &Bus,
    request_id: RequestId,
    verdict: Verdict,
    note: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let name = approver_name()?;
    let path = key_path()?;
    let key = crate::token::read_signing_key(&path).with_context(|| {
        format!(
            "read your approver key {} (make one with `wingman approvers keygen`, then have an \
             admin register its public key: `wingman approvers add {name} --console-key …`)",
            path.display()
        )
    })?;
    let vote = console_vote::sign(&key, &name, request_id, verdict, note, Utc::now())?;
    let payload = serde_json::to_vec(&vote)?;
    let reply =
        crate::bus::reply::ask(bus, bus.subjects.console_decisions(), payload, "approvals").await?;
    let answer: Value =
        serde_json::from_slice(&reply).context("decode the approvals worker's answer")?;
    let applied = answer["ok"].as_bool() == Some(true);
    if json {
        let mut shown = serde_json::json!({"request_id": request_id, "applied": applied});
        if let Value::Object(fields) = &answer {
            for key in ["message", "error", "code"] {
                if let Some(value) = fields.get(key) {
                    shown[key] = value.clone();
                }
            }
        }
        println!("{shown}");
        return Ok(if applied {
            ExitCode::Ok
        } else {
            ExitCode::Denied
        });
    }
    if applied {
        println!(
            "{request_id}: {}",
            answer["message"].as_str().unwrap_or("done")
        );
        Ok(ExitCode::Ok)
    } else {
        eprintln!(
            "refused: {}",
            answer["error"].as_str().unwrap_or("unknown error")
        );
        Ok(ExitCode::Denied)
    }
}

/// Requests waiting for a human (and auto-rejections a human may override), newest first.
pub async fn pending(pool: &sqlx::PgPool, json: bool) -> anyhow::Result<()> {
    let mut rows = requests::list(
        pool,
        &ListFilter {
            status: Some(Status::Pending),
            since: None,
            limit: 100,
        },
    )
    .await?;
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    rows.extend(
        requests::list(
            pool,
            &ListFilter {
                status: Some(Status::AutoRejected),
                since: Some(since),
                limit: 100,
            },
        )
        .await?,
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("nothing is waiting for a decision");
        return Ok(());
    }
    println!(
        "{:<36}  {:<14} {:<4} {:>5}  {:<16}  TITLE",
        "REQUEST", "STATUS", "ENV", "SCORE", "EXPIRES (UTC)"
    );
    for row in rows {
        let expires = row
            .expires_at
            .map(|at| at.format("%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into());
        let score = row
            .composite_score
            .map(|score| score.to_string())
            .unwrap_or_else(|| "-".into());
        let title: String = row.title.chars().take(50).collect();
        println!(
            "{:<36}  {:<14} {:<4} {score:>5}  {expires:<16}  {title}",
            row.request_id, row.status, row.environment
        );
        if let Some(command) = &row.command {
            println!("{:<38}$ {command}", "");
        }
    }
    Ok(())
}

//! `wingman cancel <id>`: the requester withdraws a request that waits for a decision.
//!
//! The CLI asks the approvals worker on `<prefix>.requests.cancel.<its NATS user>`; NATS lets
//! each user publish only on its own suffix, so the subject, not anything the CLI says, proves
//! who asks. The worker applies the rule (`approval::judge_cancel`: only the principal that
//! submitted it, only while nobody decided and before its deadline), claims the decision
//! CANCELLED — the first of a vote, the expiry and a withdrawal wins — and audits both the
//! withdrawal and every refusal.

use anyhow::Context as _;
use serde_json::json;

use crate::approval::Withdrawal;
use crate::bus::Bus;
use crate::cli::ExitCode;
use crate::cli::ids::IdArg;
use crate::config::Settings;
use crate::identity::api_vote::{Outcome, VoteAnswer};

/// `wingman cancel`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The request's id, or a unique prefix of it (at least 4 hex digits; needs DATABASE_URL
    /// to look it up).
    pub request_id: IdArg,
    /// Why; shown to the approvers under the prompt and in the audit trail.
    #[arg(long)]
    pub reason: Option<String>,
    /// Print {"request_id", "applied", "status", "decided_by", "message", "code"} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit 0 when the request is withdrawn (CANCELLED), 3 when the withdrawal was refused (not
/// yours, already decided, expired, unknown), 1 when the approvals worker cannot be asked.
pub async fn run(args: CancelArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let reason = crate::identity::api_vote::check_note(args.reason.as_deref())
        .map_err(|problem| anyhow::anyhow!("--{problem}"))?;
    let request_id = args.request_id.resolve(|| settings.database.pool()).await?;
    let bus = crate::cli::connect(settings).await?;
    let withdrawal = Withdrawal {
        request_id,
        note: reason,
    };
    let answer = ask(&bus, &withdrawal).await?;
    let applied = answer.outcome == Outcome::Applied;
    if args.json {
        let mut shown = serde_json::to_value(&answer)?;
        shown["request_id"] = json!(request_id);
        shown["applied"] = json!(applied);
        println!("{shown}");
    } else if applied {
        println!("{request_id}: {}", answer.message);
    } else {
        eprintln!("refused: {}", answer.message);
    }
    Ok(if applied {
        ExitCode::Ok
    } else {
        ExitCode::Denied
    })
}

/// Asks the approvals worker, on this connection's own cancel subject.
pub async fn ask(bus: &Bus, withdrawal: &Withdrawal) -> anyhow::Result<VoteAnswer> {
    let subject = bus.subjects.cancel(&bus.principal);
    let payload = serde_json::to_vec(withdrawal)?;
    let reply = crate::bus::reply::ask(bus, subject, payload, "approvals").await?;
    serde_json::from_slice(&reply).context("decode the approvals worker's answer")
}

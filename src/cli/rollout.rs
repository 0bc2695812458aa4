//! `wingman rollout show | set <pct> | enable | disable | promote | report`: the live
//! validation rollout. A change is a request to the watcher on
//! `wingman.rollout.change.<author>`, the author being the NATS user (`NATS_USER`; only that
//! user may publish there), or `--by` where the bus has no auth (local dev). The watcher
//! writes the flags and audits every change: who, when, old → new, why; a raise passes its
//! promote gate or is forced with a reason. The report judges a phase (default: the current
//! one) and exits 0 GO, 1 NO-GO, 2 HOLD or INSUFFICIENT DATA; a change exits 1 when the
//! watcher refuses it. Any other error exits 4 ([`error_exit_code`]): a script that reads 1 as
//! "roll back" must never roll back because the database or the bus was unreachable.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::bus::Bus;
use crate::cli::ExitCode;
use crate::config::Settings;
use crate::report::{self, Basis, PhaseReport, Verdict};
use crate::rollout::{ChangeRequest, Rollout, RolloutStore};

/// `wingman rollout`'s subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RolloutAction {
    /// The current flags.
    #[command(after_help = EXIT_CODES)]
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Validate this percent of requests (0, 10, 50, 100 …). A raise of the enforced percent
    /// passes the promote gate (see `promote`) or needs --force with --reason.
    #[command(after_help = EXIT_CODES)]
    Set {
        percent: u8,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Turn validation on (at the current percent); a raise, so it passes the promote gate.
    #[command(after_help = EXIT_CODES)]
    Enable {
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Turn validation off: every request goes to a human (and is still scored: shadow mode).
    #[command(after_help = EXIT_CODES)]
    Disable {
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Move to the next phase (shadow → 10 → 50 → 100 %) — only when the current phase's
    /// verdict is GO after its minimum duration (72 h at 10 %, 96 h at 50 %, 24 h of shadow;
    /// WINGMAN_ROLLOUT_MIN_DURATION) on at least 30 requests (WINGMAN_ROLLOUT_MIN_SAMPLES).
    /// The watcher judges it. --force --reason "…" promotes anyway, audited.
    #[command(after_help = EXIT_CODES)]
    Promote {
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// The seed's rates, the verdict and the promote gate of the current phase (or --phase N,
    /// --all, or a --since window). Exit code: 0 GO, 1 NO-GO, 2 HOLD or INSUFFICIENT DATA,
    /// 4 no verdict (an error: the database unreachable, no such phase).
    #[command(after_help = EXIT_CODES)]
    Report {
        /// Report on phase N (1 = the first recorded; see --all).
        #[arg(long, conflicts_with_all = ["all", "since"])]
        phase: Option<usize>,
        /// Report on every phase, oldest first; exits with the current phase's verdict.
        #[arg(long, conflicts_with = "since")]
        all: bool,
        /// A window instead of a phase: a duration ago (24h, 72h, 7d) or an RFC 3339 time
        /// (it may mix phases).
        #[arg(long, value_parser = crate::duration::since)]
        since: Option<DateTime<Utc>>,
        #[arg(long)]
        json: bool,
    },
}

/// The flags every rollout change takes.
#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    /// Who makes the change where the bus has no authentication (default: $USER); the NATS
    /// user otherwise.
    #[arg(long)]
    pub by: Option<String>,
    /// Why (kept in the audit and the phase history; required with --force).
    #[arg(long)]
    pub reason: Option<String>,
    /// Raise the rollout although the promote gate refuses (audited with --reason).
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Print the watcher's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Shown under `wingman rollout --help` and each of its subcommands' help.
pub const EXIT_CODES: &str = "\
Exit codes of `wingman rollout`:
  0  report: GO; show, a change: done
  1  report: NO-GO; a change: refused (the watcher's promote gate, or an invalid change)
  2  report: HOLD or INSUFFICIENT DATA (2 is also a usage error: an unknown flag, a bad value)
  4  an error: no verdict, no change (the database, NATS or the watcher unreachable or failing,
     no such phase); never a NO-GO, try again";

/// A change refused: by the watcher (its promote gate, or a change it does not take), or an
/// invalid one refused before it is sent. The one error of `wingman rollout` that exits 1 (the
/// change's "no", like a NO-GO report).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The exit code of a `wingman rollout` error: 1 for a change the watcher refused
/// ([`Refused`]), 4 (`ExitCode::Failed`) for every other error, so no error reads as a
/// verdict (the report's 1 is NO-GO, its 2 HOLD).
pub fn error_exit_code(error: &anyhow::Error) -> ExitCode {
    if error.downcast_ref::<Refused>().is_some() {
        ExitCode::Error
    } else {
        ExitCode::Failed
    }
}

/// Runs one `wingman rollout` subcommand; `report` exits with its verdict (0 GO, 1 NO-GO,
/// 2 HOLD or INSUFFICIENT DATA); an error's exit code is [`error_exit_code`]'s.
pub async fn run(action: RolloutAction) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_env()?;
    match action {
        RolloutAction::Show { json } => {
            show(&crate::cli::connect(&settings).await?, json).await?;
        }
        RolloutAction::Set { percent, change } => {
            run_change(&settings, Change::Percent(percent), change).await?;
        }
        RolloutAction::Enable { change } => {
            run_change(&settings, Change::Enable, change).await?;
        }
        RolloutAction::Disable { change } => {
            run_change(&settings, Change::Disable, change).await?;
        }
        RolloutAction::Promote { change } => {
            run_change(&settings, Change::Promote, change).await?;
        }
        RolloutAction::Report {
            phase,
            all,
            since,
            json,
        } => {
            let which = match (phase, all) {
                (Some(number), _) => Which::Number(number),
                (None, true) => Which::All,
                (None, false) => Which::Current,
            };
            let bus = crate::cli::connect(&settings).await.ok();
            let verdict =
                report(&settings.database.pool()?, bus.as_ref(), which, since, json).await?;
            return Ok(match verdict.exit_code() {
                0 => ExitCode::Ok,
                1 => ExitCode::Error,
                _ => ExitCode::Hold,
            });
        }
    }
    Ok(ExitCode::Ok)
}

/// What a change asks for.
pub enum Change {
    Percent(u8),
    Enable,
    Disable,
    /// To the next phase (shadow → 10 → 50 → 100 %), through the promote gate.
    Promote,
}

/// Why, and whether to raise past a refusing promote gate.
#[derive(Debug, Clone, Default)]
pub struct Why {
    pub reason: Option<String>,
    pub force: bool,
}

pub async fn show(bus: &Bus, json_output: bool) -> anyhow::Result<Rollout> {
    let (rollout, _) = RolloutStore::open(bus).await?.current().await?;
    if json_output {
        println!("{}", serde_json::to_string_pretty(&rollout)?);
    } else {
        println!(
            "validation {} (set by {} at {})",
            rollout.describe(),
            rollout.updated_by,
            rollout.updated_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    Ok(rollout)
}

/// Asks the watcher for `what` with the change flags, as `--by` (default: the login name).
async fn run_change(settings: &Settings, what: Change, args: ChangeArgs) -> anyhow::Result<()> {
    let who = args
        .by
        .or_else(crate::config::login_name)
        .unwrap_or_else(|| "unknown".into());
    let why = Why {
        reason: args.reason,
        force: args.force,
    };
    change(
        &crate::cli::connect(settings).await?,
        &who,
        what,
        why,
        args.json,
    )
    .await?;
    Ok(())
}

/// Asks the watcher for `change` as `who` (or as the NATS user, when connected as one).
pub async fn change(
    bus: &Bus,
    who: &str,
    change: Change,
    why: Why,
    json_output: bool,
) -> anyhow::Result<(Rollout, Rollout)> {
    if let Change::Percent(percent) = change
        && percent > 100
    {
        return Err(Refused(format!(
            "the rollout percent must be between 0 and 100, got {percent}"
        ))
        .into());
    }
    let base = ChangeRequest {
        reason: why.reason,
        force: why.force,
        ..ChangeRequest::default()
    };
    let request = match change {
        Change::Percent(percent) => ChangeRequest {
            percent: Some(percent),
            ..base
        },
        Change::Enable => ChangeRequest {
            enabled: Some(true),
            ..base
        },
        Change::Disable => ChangeRequest {
            enabled: Some(false),
            ..base
        },
        Change::Promote => ChangeRequest {
            promote: true,
            ..base
        },
    };
    request
        .validate()
        .map_err(|error| Refused(format!("invalid rollout change: {error}")))?;
    let author = crate::config::var("NATS_USER").unwrap_or_else(|| who.to_string());
    let subject = bus.subjects.rollout_change(&author)?;
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        bus.client
            .request(subject, serde_json::to_vec(&request)?.into()),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!("the watcher did not answer within 10 s (is wingman-watcher running?)")
    })?
    .map_err(|error| anyhow::anyhow!("ask the watcher: {error} (is wingman-watcher running?)"))?;
    let answer: Value =
        serde_json::from_slice(&reply.payload).context("decode the watcher's answer")?;
    if answer["ok"].as_bool() != Some(true) {
        let error = answer["error"].as_str().unwrap_or("unknown error");
        // A watcher from before `refused` was answered only refused.
        if answer["refused"].as_bool() == Some(false) {
            anyhow::bail!("the watcher could not make the rollout change: {error}");
        }
        return Err(Refused(format!("the watcher refused the rollout change: {error}")).into());
    }
    let old: Rollout =
        serde_json::from_value(answer["old"].clone()).context("decode the old flags")?;
    let new: Rollout =
        serde_json::from_value(answer["new"].clone()).context("decode the new flags")?;
    if json_output {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("validation: {} → {}", old.describe(), new.describe());
    }
    Ok((old, new))
}

/// Which phase(s) a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The current phase (the default).
    Current,
    /// Phase number N (1 = the first recorded).
    Number(usize),
    /// Every phase, oldest first; the verdict is the current one's.
    All,
}

/// The report on one phase, every phase, or (`since`) a window that may mix phases; returns
/// the verdict the command exits with (the current phase's for `All`).
pub async fn report(
    pool: &sqlx::PgPool,
    bus: Option<&Bus>,
    which: Which,
    since: Option<chrono::DateTime<chrono::Utc>>,
    json_output: bool,
) -> anyhow::Result<Verdict> {
    let (flags, guard) = match bus {
        Some(bus) => {
            let store = RolloutStore::open(bus).await?;
            (
                store.current().await.ok().map(|(flags, _)| flags),
                store.last_guard().await?,
            )
        }
        None => (None, None),
    };
    if let Some(since) = since {
        return window_report(pool, since, guard, json_output).await;
    }
    let minimums = crate::settings::phase_minimums()?;
    let phases = report::phases(pool, flags.as_ref()).await?;
    let chosen: Vec<report::Phase> = match which {
        Which::Current => phases.last().cloned().into_iter().collect(),
        Which::All => phases.clone(),
        Which::Number(number) => {
            let phase = phases
                .iter()
                .find(|phase| phase.number == number)
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--phase: there is no phase {number} (phases 1 to {} are recorded)",
                        phases.len()
                    )
                })?;
            vec![phase]
        }
    };
    let now = chrono::Utc::now();
    let mut judged = Vec::with_capacity(chosen.len());
    for phase in chosen {
        judged.push(report::phase_report(pool, phase, &minimums, now).await?);
    }
    let verdict = judged
        .last()
        .map(|last| last.report.verdict.clone())
        .ok_or_else(|| anyhow::anyhow!("no rollout phase to report on"))?;
    if json_output {
        let mut value = if which == Which::All {
            serde_json::json!({ "phases": judged, "verdict": verdict.word() })
        } else {
            serde_json::to_value(&judged[0])?
        };
        value["rollout_guard"] = serde_json::to_value(&guard)?;
        value["minimums"] = serde_json::to_value(minimums)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(verdict);
    }
    for (index, phase) in judged.iter().enumerate() {
        if index > 0 {
            println!();
        }
        print_phase(phase);
    }
    print_guard(guard.as_ref());
    Ok(verdict)
}

async fn window_report(
    pool: &sqlx::PgPool,
    since: chrono::DateTime<chrono::Utc>,
    guard: Option<crate::rollout::GuardAction>,
    json_output: bool,
) -> anyhow::Result<Verdict> {
    let minimums = crate::settings::phase_minimums()?;
    let report = report::report(pool, since, &minimums.criteria()).await?;
    if json_output {
        let mut value = serde_json::to_value(&report)?;
        value["rollout_guard"] = serde_json::to_value(&guard)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(report.verdict);
    }
    println!(
        "since {} (a window; it may mix phases) — {} requests, {} validated",
        since.format("%Y-%m-%d %H:%M UTC"),
        report.counts.total,
        report.counts.validated
    );
    print_rates(&report);
    print_guard(guard.as_ref());
    Ok(report.verdict)
}

fn print_phase(judged: &PhaseReport) {
    let phase = &judged.phase;
    let report = &judged.report;
    let started = phase.started_at.map_or_else(
        || "the beginning (no rollout change recorded)".to_string(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let ended = phase.ended_at.map_or_else(
        || "now (current)".to_string(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    println!(
        "phase {}: {} — {started} → {ended}",
        phase.number,
        phase.name()
    );
    if let Some(by) = &phase.by {
        let from = phase
            .from_percent
            .map_or_else(String::new, |from| format!(" from {} %", from));
        println!(
            "  started by {by}{from}{}{}",
            phase
                .reason
                .as_ref()
                .map_or_else(String::new, |reason| format!(": {reason}")),
            if phase.forced {
                " (FORCED past the gate)"
            } else {
                ""
            }
        );
    }
    let basis = match report.basis {
        Basis::Cohort => "validated (the cohort's enforced decisions)",
        Basis::Shadow => "scored (shadow decisions, not enforced)",
    };
    println!(
        "  {} requests, the rates over {} {basis}",
        report.counts.total,
        report.counts.samples(report.basis)
    );
    print_rates(report);
    let gate = &judged.gate;
    match (phase.ended_at, gate.next_percent) {
        (Some(_), _) => {}
        (None, None) => println!("promote: nothing after 100 %"),
        (None, Some(next)) if gate.open => {
            println!("promote: open — `wingman rollout promote` moves to {next} %")
        }
        (None, Some(next)) => {
            println!("promote to {next} %: refused");
            for refusal in &gate.refusals {
                println!("  - {refusal}");
            }
        }
    }
}

fn print_rates(report: &report::Report) {
    let counts = &report.counts;
    let rates = &report.rates;
    let (rejected, approved, manual, false_positives) = match report.basis {
        Basis::Cohort => (
            counts.auto_rejected,
            counts.auto_approved,
            counts.manual_review,
            counts.false_positives,
        ),
        Basis::Shadow => (
            counts.shadow_auto_rejected,
            counts.shadow_auto_approved,
            counts.shadow_manual_review,
            counts.shadow_false_positives,
        ),
    };
    println!(
        "  auto-reject    {:>5.1} %  ({rejected:>4})   expected 5–10 %",
        rates.auto_reject
    );
    println!(
        "  auto-approve   {:>5.1} %  ({approved:>4})   expected 15–30 %",
        rates.auto_approve
    );
    println!(
        "  manual review  {:>5.1} %  ({manual:>4})   expected 60–80 %",
        rates.manual_review
    );
    println!(
        "  false positive {:>5.1} %  ({false_positives:>4})   target < 5 %, critical > 10 %",
        rates.false_positive
    );
    println!(
        "  validation errors      ({:>4})   expected 0",
        counts.validation_errors
    );
    println!(
        "  shadow (outside the cohort): {} scored; would auto-approve, human rejected: {}; would auto-reject, human approved: {}",
        counts.shadow_scored, counts.shadow_false_approvals, counts.shadow_false_positives
    );
    println!("verdict: {}", report.verdict.word());
    for reason in report.verdict.reasons() {
        println!("  - {reason}");
    }
}

fn print_guard(guard: Option<&crate::rollout::GuardAction>) {
    if let Some(guard) = guard {
        println!(
            "rollout guard, last look at {}: {} — {}",
            guard.at.format("%Y-%m-%d %H:%M UTC"),
            guard.action,
            guard.detail
        );
    }
}

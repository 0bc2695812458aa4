//! `wingman rollout show | set <pct> | enable | disable | report`: the live validation rollout.
//! Every change is audited: who, when, old → new.

use serde_json::json;

use crate::bus::Bus;
use crate::events::{AuditKind, Stage};
use crate::report::{self, Criteria, Verdict};
use crate::rollout::{BUCKET, Rollout, RolloutStore};
use crate::stages::publish_audit;

pub enum Change {
    Percent(u8),
    Enable,
    Disable,
}

pub async fn store(bus: &Bus) -> anyhow::Result<RolloutStore> {
    let kv =
        crate::bus::topology::open_bucket(&bus.js, &bus.subjects.localize_name(BUCKET)).await?;
    Ok(RolloutStore::new(kv))
}

pub async fn show(bus: &Bus, json_output: bool) -> anyhow::Result<Rollout> {
    let (rollout, _) = store(bus).await?.current().await?;
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

pub async fn change(bus: &Bus, who: &str, change: Change) -> anyhow::Result<(Rollout, Rollout)> {
    if let Change::Percent(percent) = change {
        anyhow::ensure!(
            percent <= 100,
            "the rollout percent must be between 0 and 100, got {percent}"
        );
    }
    let (old, new) = store(bus)
        .await?
        .change(who, |current| match change {
            Change::Percent(percent) => Rollout {
                percent,
                ..current.clone()
            },
            Change::Enable => Rollout {
                enabled: true,
                ..current.clone()
            },
            Change::Disable => Rollout {
                enabled: false,
                ..current.clone()
            },
        })
        .await?;
    audit(bus, who, &old, &new).await?;
    println!("validation: {} → {}", old.describe(), new.describe());
    Ok((old, new))
}

async fn audit(bus: &Bus, who: &str, old: &Rollout, new: &Rollout) -> anyhow::Result<()> {
    let data = json!({ "by": who, "old": old, "new": new });
    publish_audit(bus, None, AuditKind::RolloutChanged, Stage::Cli, who, data).await
}

pub async fn report(
    pool: &sqlx::PgPool,
    bus: Option<&Bus>,
    since: chrono::DateTime<chrono::Utc>,
    json_output: bool,
) -> anyhow::Result<Verdict> {
    let report = report::report(pool, since, &Criteria::default()).await?;
    let guard = match bus {
        Some(bus) => store(bus).await?.last_guard().await?,
        None => None,
    };
    if json_output {
        let mut value = serde_json::to_value(&report)?;
        value["rollout_guard"] = serde_json::to_value(&guard)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(report.verdict);
    }
    let counts = &report.counts;
    let rates = &report.rates;
    println!(
        "since {} — {} requests, {} validated",
        since.format("%Y-%m-%d %H:%M UTC"),
        counts.total,
        counts.validated
    );
    println!(
        "  auto-reject    {:>5.1} %  ({:>4})   expected 5–10 %",
        rates.auto_reject, counts.auto_rejected
    );
    println!(
        "  auto-approve   {:>5.1} %  ({:>4})   expected 15–30 %",
        rates.auto_approve, counts.auto_approved
    );
    println!(
        "  manual review  {:>5.1} %  ({:>4})   expected 60–80 %",
        rates.manual_review, counts.manual_review
    );
    println!(
        "  false positive {:>5.1} %  ({:>4})   target < 5 %, critical > 10 %",
        rates.false_positive, counts.false_positives
    );
    println!(
        "  validation errors      ({:>4})   expected 0",
        counts.validation_errors
    );
    let (word, reasons) = match &report.verdict {
        Verdict::Go(reasons) => ("GO", reasons),
        Verdict::NoGo(reasons) => ("NO-GO", reasons),
        Verdict::Hold(reasons) => ("HOLD", reasons),
        Verdict::InsufficientData(reasons) => ("INSUFFICIENT DATA", reasons),
    };
    println!("verdict: {word}");
    for reason in reasons {
        println!("  - {reason}");
    }
    if let Some(guard) = guard {
        println!(
            "rollout guard, last look at {}: {} — {}",
            guard.at.format("%Y-%m-%d %H:%M UTC"),
            guard.action,
            guard.detail
        );
    }
    Ok(report.verdict)
}

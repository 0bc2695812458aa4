//! `wingman rollout show | set <pct> | enable | disable | report`: the live validation rollout.
//! A change is a request to the watcher on `wingman.rollout.change.<author>`, the author being
//! the NATS user (`NATS_USER`; only that user may publish there), or `--by` where the bus has
//! no auth (local dev). The watcher writes the flags and audits every change: who, when,
//! old → new.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::bus::Bus;
use crate::report::{self, Criteria, Verdict};
use crate::rollout::{BUCKET, ChangeRequest, Rollout, RolloutStore};

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

/// Asks the watcher for `change` as `who` (or as the NATS user, when connected as one).
pub async fn change(bus: &Bus, who: &str, change: Change) -> anyhow::Result<(Rollout, Rollout)> {
    if let Change::Percent(percent) = change {
        anyhow::ensure!(
            percent <= 100,
            "the rollout percent must be between 0 and 100, got {percent}"
        );
    }
    let request = match change {
        Change::Percent(percent) => ChangeRequest {
            percent: Some(percent),
            enabled: None,
        },
        Change::Enable => ChangeRequest {
            percent: None,
            enabled: Some(true),
        },
        Change::Disable => ChangeRequest {
            percent: None,
            enabled: Some(false),
        },
    };
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
        anyhow::bail!(
            "the watcher refused the rollout change: {}",
            answer["error"].as_str().unwrap_or("unknown error")
        );
    }
    let old: Rollout =
        serde_json::from_value(answer["old"].clone()).context("decode the old flags")?;
    let new: Rollout =
        serde_json::from_value(answer["new"].clone()).context("decode the new flags")?;
    println!("validation: {} → {}", old.describe(), new.describe());
    Ok((old, new))
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

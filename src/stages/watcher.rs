//! Watcher: the clock of the pipeline.
//!
//! 1. Expires PENDING requests past their `expires_at` (default deny), guards the validation
//!    rollout, reports each consumer's backlog and the human backlog ([`human_backlog`]) as
//!    gauges, writes the rollout flags for
//!    operators and audits every revision of them ([`rollout_changes`]).
//! 2. Reads Postgres (read-only) and the consumers' state, answers
//!    `wingman.rollout.change.<operator>`, watches the rollout bucket; publishes
//!    `request_expired` and `rollout_changed` audit events and EXPIRED status events.
//! 3. An expiry claims `decision.<request_id>` like a human decision would (KV `create`): the
//!    first of "expired" and "approved" wins, a late vote changes nothing. A rollout change is
//!    a compare-and-set on the flags, marked with its proven author.
//! 4. It never approves anything, never takes a rollout author from a message body, and its
//!    guard only ever lowers the rollout (refused where the flags are written).

pub mod human_backlog;
pub mod rollout_changes;

use std::time::Duration;

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use serde_json::{Map, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::Bus;
use crate::bus::publish::publish_all;
use crate::bus::step::Step;
use crate::claims::{self, Created, DecisionClaim, Key};
use crate::envelope::RequestId;
use crate::events::Stage;
use crate::events::payload::RequestExpired;
use crate::metrics;
use crate::report;
use crate::rollout::{GuardAction, RolloutStore};
use crate::settings::WatcherSettings;
use crate::status::Status;
use crate::telegram::TelegramClient;

pub struct WatcherDeps {
    pub bus: Bus,
    pub pool: PgPool,
    /// `decision.<request_id>` claims, shared with the approvals stage.
    pub claims: kv::Store,
    pub rollout: RolloutStore,
    /// Where the guard tells approvers it acted (optional).
    pub telegram: Option<TelegramClient>,
    pub guard: GuardSettings,
    /// Each phase's minimum duration and sample size, for the promote gate
    /// (`WINGMAN_ROLLOUT_MIN_*`).
    pub phases: report::PhaseMinimums,
    /// How often to look (`WINGMAN_WATCH_INTERVAL`, default 5 s).
    pub interval: Duration,
    pub actor: String,
}

pub use crate::settings::GuardSettings;

impl WatcherDeps {
    /// The watcher on `bus`, as `actor`: the claims and rollout buckets, the guard, bot,
    /// phase minimums and interval of `settings`, `pool` to read.
    ///
    /// # Errors
    /// When a bucket cannot be opened or the bot's API address is invalid.
    pub async fn open(
        bus: Bus,
        actor: String,
        settings: WatcherSettings,
        pool: PgPool,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            claims: claims::open(&bus).await?,
            rollout: RolloutStore::open(&bus).await?,
            telegram: settings
                .telegram
                .as_ref()
                .map(TelegramClient::from_settings)
                .transpose()?,
            guard: settings.guard,
            phases: settings.phases,
            interval: settings.interval,
            pool,
            bus,
            actor,
        })
    }
}

/// The author the guard's rollout changes carry.
pub const GUARD_AUTHOR: &str = "watcher (rollout guard)";

/// Runs the clock, the rollout change desk and the rollout audit until `shutdown`.
pub async fn run(deps: WatcherDeps, shutdown: CancellationToken) -> anyhow::Result<()> {
    tokio::try_join!(
        clock(&deps, shutdown.clone()),
        rollout_changes::serve(&deps, shutdown.clone()),
        rollout_changes::audit(&deps, shutdown.clone()),
    )?;
    Ok(())
}

async fn clock(deps: &WatcherDeps, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut last_guard = tokio::time::Instant::now() - deps.guard.every;
    loop {
        if let Err(error) = expire_due(deps).await {
            tracing::warn!(error = %format!("{error:#}"), "expiry pass failed; will retry");
        }
        report_backlog(deps).await;
        human_backlog::report(&deps.pool).await;
        // The phase gauges and the guard look at the guard's pace: both read Postgres.
        if last_guard.elapsed() >= deps.guard.every {
            last_guard = tokio::time::Instant::now();
            report_phase(deps).await;
            if deps.guard.enabled
                && let Err(error) = guard(deps).await
            {
                tracing::warn!(error = %format!("{error:#}"), "rollout guard pass failed; will retry");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(deps.interval) => {}
        }
    }
}

/// Expires every PENDING request past its deadline; returns how many.
pub async fn expire_due(deps: &WatcherDeps) -> anyhow::Result<usize> {
    let due: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT request_id, environment, expires_at FROM approval_requests
         WHERE status = 'PENDING' AND expires_at <= now() ORDER BY expires_at LIMIT 500",
    )
    .fetch_all(&deps.pool)
    .await?;
    let mut expired = 0;
    for (request_id, environment, expires_at) in due {
        let request_id = RequestId::from_uuid(request_id);
        let claim = DecisionClaim {
            decision: Status::Expired,
            approvers: vec!["watcher".into()],
            at: expires_at,
        };
        let key = Key::Decision(request_id).to_string();
        match claims::create_once(&deps.claims, &key, &claim, "the expiry").await? {
            Created::Ours(_) => {}
            // Decided in time by a human (the recorder will catch up), or expired by us
            // before a crash: only the latter is (re)announced.
            Created::Theirs(existing, _) if existing.decision != Status::Expired => continue,
            Created::Theirs(..) => {}
        }
        let step = Step {
            subjects: &deps.bus.subjects,
            stage: Stage::Watcher,
            actor: &deps.actor,
            request_id,
            origin: expires_at,
        };
        let mut details = Map::new();
        details.insert(
            "error".into(),
            json!("no decision before the deadline: default deny"),
        );
        details.insert("expires_at".into(), json!(expires_at));
        publish_all(
            &deps.bus.js,
            &[
                step.record(
                    Some(Status::Expired),
                    &RequestExpired {
                        expires_at: Some(expires_at),
                    },
                ),
                step.status(Status::Expired, details),
            ],
        )
        .await?;
        metrics::request_expired(match environment.as_str() {
            "prd" => "prd",
            "test" => "test",
            _ => "dev",
        });
        expired += 1;
    }
    Ok(expired)
}

async fn report_backlog(deps: &WatcherDeps) {
    for def in &deps.bus.topology.consumers {
        let Some(name) = def.config.durable_name.as_deref() else {
            continue;
        };
        // Without Telegram nobody reads the prompt updates (the approvals worker does not
        // start that consumer), so its backlog is by design, not a stalled stage.
        if name == crate::bus::topology::PROMPT_UPDATES && deps.telegram.is_none() {
            continue;
        }
        let Ok(stream) = deps.bus.js.get_stream(&def.stream).await else {
            continue;
        };
        let Ok(mut consumer) = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(name)
            .await
        else {
            continue;
        };
        if let Ok(info) = consumer.info().await {
            metrics::consumer_pending(name, info.num_pending);
        }
    }
}

/// The current phase's rates, verdict and shadow divergence as gauges (the rollout
/// dashboard's per-phase panels), and the minimum sample size they are trusted on.
async fn report_phase(deps: &WatcherDeps) {
    metrics::rollout_min_samples(deps.phases.samples);
    let current = deps.rollout.current().await.ok().map(|(flags, _)| flags);
    match report::current_phase(&deps.pool, current.as_ref(), &deps.phases).await {
        Ok(phase) => metrics::rollout_phase(&phase.gauges()),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "could not judge the rollout phase");
        }
    }
}

/// One look of the rollout guard: lowers the rollout one step when the false-positive rate is
/// critical over enough samples; otherwise says why it did nothing. In shadow mode (nothing
/// enforced) it judges the shadow decisions and tells approvers when they are critical.
pub async fn guard(deps: &WatcherDeps) -> anyhow::Result<GuardAction> {
    let window = chrono::Duration::from_std(deps.guard.window)?;
    let counts = report::counts(&deps.pool, Utc::now() - window, None).await?;
    let (rollout, _) = deps.rollout.current().await?;
    if rollout.effective_percent() == 0 {
        // Approvers are told when the shadow run turns critical, not again on every pass
        // while it stays so (the last action is kept with the flags).
        let already_said = deps
            .rollout
            .last_guard()
            .await
            .ok()
            .flatten()
            .is_some_and(|last| last.action == "shadow_no_go");
        let action = shadow_guard(deps, &counts, already_said).await;
        deps.rollout.record_guard(&action).await?;
        return Ok(action);
    }
    let rates = report::rates(&counts, report::Basis::Cohort);
    let action = if counts.auto_rejected < deps.guard.min_auto_rejected {
        metrics::rollout_guard("insufficient_data");
        GuardAction {
            at: crate::envelope::now(),
            action: "insufficient_data".into(),
            detail: format!(
                "insufficient data: {} auto-rejection(s) in the window, {} needed to judge the false-positive rate",
                counts.auto_rejected, deps.guard.min_auto_rejected
            ),
        }
    } else if rates.false_positive > deps.guard.critical_rate
        && rollout.enabled
        && rollout.percent > 0
    {
        let lower = previous_step(rollout.percent);
        let reason = format!(
            "false positives {:.1} % > {:.0} % over {} auto-rejections: rollout lowered {} % → {} %",
            rates.false_positive,
            deps.guard.critical_rate,
            counts.auto_rejected,
            rollout.percent,
            lower
        );
        // Audited by the watch on the bucket, with this reason (`rollout_changes`).
        deps.rollout
            .lower_as(GUARD_AUTHOR, &reason, |current| crate::rollout::Rollout {
                percent: lower,
                ..current.clone()
            })
            .await?;
        metrics::rollout_guard("lowered");
        tracing::warn!(%reason, "rollout guard acted");
        if let Some(telegram) = &deps.telegram {
            for chat in &telegram.chats {
                let _ = telegram
                    .say(
                        *chat,
                        &format!(
                            "⚠️ <b>Rollout guard</b>: {}",
                            crate::telegram::escape(&reason)
                        ),
                    )
                    .await;
            }
        }
        GuardAction {
            at: crate::envelope::now(),
            action: "lowered".into(),
            detail: reason,
        }
    } else {
        metrics::rollout_guard("ok");
        GuardAction {
            at: crate::envelope::now(),
            action: "ok".into(),
            detail: format!(
                "false positives {:.1} % over {} auto-rejections",
                rates.false_positive, counts.auto_rejected
            ),
        }
    };
    deps.rollout.record_guard(&action).await?;
    Ok(action)
}

/// The guard's look in shadow mode: the shadow's false positives (would have auto-rejected,
/// a human approved) over the same minimum as the live guard, and its false approvals (would
/// have auto-approved, a human rejected) on any decided sample.
async fn shadow_guard(
    deps: &WatcherDeps,
    counts: &report::Counts,
    already_said: bool,
) -> GuardAction {
    let rates = report::rates(counts, report::Basis::Shadow);
    let criteria = report::Criteria::default();
    let mut critical = Vec::new();
    if counts.shadow_auto_rejected >= deps.guard.min_auto_rejected
        && rates.false_positive > deps.guard.critical_rate
    {
        critical.push(format!(
            "validation would have auto-rejected {} request(s) humans approved ({:.1} % of {} > {:.0} %)",
            counts.shadow_false_positives,
            rates.false_positive,
            counts.shadow_auto_rejected,
            deps.guard.critical_rate
        ));
    }
    if counts.shadow_false_approvals > 0 && rates.false_approval > criteria.false_approval_critical
    {
        critical.push(format!(
            "validation would have auto-approved {} request(s) humans rejected ({:.1} % of {} decided > {:.0} %)",
            counts.shadow_false_approvals,
            rates.false_approval,
            counts.shadow_auto_approved_decided,
            criteria.false_approval_critical
        ));
    }
    let detail = format!(
        "shadow mode: {} scored, {} would-be auto-approvals rejected by a human, {} would-be auto-rejections approved",
        counts.shadow_scored, counts.shadow_false_approvals, counts.shadow_false_positives
    );
    if critical.is_empty() {
        metrics::rollout_guard("shadow_ok");
        return GuardAction {
            at: crate::envelope::now(),
            action: "shadow_ok".into(),
            detail,
        };
    }
    metrics::rollout_guard("shadow_no_go");
    let reason = format!("{detail}: {} — do not promote", critical.join("; "));
    tracing::warn!(%reason, "rollout guard: the shadow run says no");
    if let Some(telegram) = deps.telegram.as_ref().filter(|_| !already_said) {
        for chat in &telegram.chats {
            let _ = telegram
                .say(
                    *chat,
                    &format!(
                        "⚠️ <b>Rollout guard (shadow)</b>: {}",
                        crate::telegram::escape(&reason)
                    ),
                )
                .await;
        }
    }
    GuardAction {
        at: crate::envelope::now(),
        action: "shadow_no_go".into(),
        detail: reason,
    }
}

/// 100 → 50 → 10 → 0.
pub fn previous_step(percent: u8) -> u8 {
    match percent {
        51..=100 => 50,
        11..=50 => 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_steps_down_one_rollout_stage_at_a_time() {
        assert_eq!(previous_step(100), 50);
        assert_eq!(previous_step(50), 10);
        assert_eq!(previous_step(10), 0);
        assert_eq!(previous_step(30), 10);
    }
}

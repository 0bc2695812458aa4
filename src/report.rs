//! `wingman rollout report` and the promote gate: the seed's rollout rates per phase, the
//! go/no-go verdict against its criteria, and whether the phase may move on. Too few samples
//! give "insufficient data", never GO.
//!
//! A phase is the time the enforced percent stayed the same (0 %: shadow mode), read from the
//! audit log's `rollout_changed` rows (time, author, old → new, reason). In an enforcing phase
//! the rates are over the validated cohort (`validation_applied`), using the decision the
//! validator took (`validation_decision`): `status` keeps the decision when the request runs,
//! but a human may still move it on (PENDING → APPROVED, an override of AUTO_REJECTED). In the
//! shadow phase they are over every scored request, using what validation would have decided
//! (`shadow_decision`). The false-positive rate is auto-rejections a human approved over
//! auto-rejections; the shadow's false approvals — would have auto-approved, a human rejected —
//! are the number that matters before validation decides anything.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use crate::events::payload::Payload as _;
use crate::rollout::Rollout;
use crate::rollout::change::{Attribution, next_step};

/// Counts over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Counts {
    pub total: i64,
    pub validated: i64,
    pub auto_rejected: i64,
    pub auto_approved: i64,
    pub manual_review: i64,
    pub false_positives: i64,
    pub validation_errors: i64,
    /// Requests outside the cohort that were scored (shadow mode).
    pub shadow_scored: i64,
    pub shadow_auto_rejected: i64,
    pub shadow_auto_approved: i64,
    pub shadow_manual_review: i64,
    /// Would have auto-rejected; a human approved.
    pub shadow_false_positives: i64,
    /// Would have auto-approved; a human rejected.
    pub shadow_false_approvals: i64,
    /// Would have auto-approved; a human decided (approved or rejected).
    pub shadow_auto_approved_decided: i64,
}

/// What a phase's rates are over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The validated cohort and its enforced decisions.
    Cohort,
    /// Every scored request outside the cohort and what validation would have decided.
    Shadow,
}

/// Percentages of the judged requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    pub auto_reject: f64,
    pub auto_approve: f64,
    pub manual_review: f64,
    pub false_positive: f64,
    /// Shadow auto-approvals a human rejected, over shadow auto-approvals a human decided.
    pub false_approval: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "verdict",
    content = "reasons",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum Verdict {
    /// Every success criterion of the seed is met.
    Go(Vec<String>),
    /// A rollback trigger fired (false positives > 10 %, validation errors, false approvals).
    NoGo(Vec<String>),
    /// Nothing critical, but some rate is outside the seed's expected band.
    Hold(Vec<String>),
    /// Too few samples to judge.
    InsufficientData(Vec<String>),
}

impl Verdict {
    /// How `wingman rollout report` exits: 0 GO, 1 NO-GO, 2 HOLD or INSUFFICIENT DATA.
    pub fn exit_code(&self) -> u8 {
        match self {
            Verdict::Go(_) => 0,
            Verdict::NoGo(_) => 1,
            Verdict::Hold(_) | Verdict::InsufficientData(_) => 2,
        }
    }

    /// The word the report prints: GO, NO-GO, HOLD, INSUFFICIENT DATA.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Go(_) => "GO",
            Verdict::NoGo(_) => "NO-GO",
            Verdict::Hold(_) => "HOLD",
            Verdict::InsufficientData(_) => "INSUFFICIENT DATA",
        }
    }

    pub fn reasons(&self) -> &[String] {
        match self {
            Verdict::Go(reasons)
            | Verdict::NoGo(reasons)
            | Verdict::Hold(reasons)
            | Verdict::InsufficientData(reasons) => reasons,
        }
    }
}

/// The seed's criteria; the sample size is the seed's 30-sample minimum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Criteria {
    pub min_validated: i64,
    pub auto_reject_band: (f64, f64),
    pub auto_approve_band: (f64, f64),
    pub manual_review_band: (f64, f64),
    pub false_positive_target: f64,
    pub false_positive_critical: f64,
    /// Above this share of decided shadow auto-approvals rejected by a human: NO-GO (any at
    /// all holds the rollout).
    pub false_approval_critical: f64,
}

impl Default for Criteria {
    fn default() -> Self {
        Self {
            min_validated: 30,
            auto_reject_band: (5.0, 10.0),
            auto_approve_band: (15.0, 30.0),
            manual_review_band: (60.0, 80.0),
            false_positive_target: 5.0,
            false_positive_critical: 10.0,
            false_approval_critical: 5.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub since: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    pub basis: Basis,
    pub counts: Counts,
    pub rates: Rates,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The select list of [`Counts`] over `approval_requests` (one source for the report and
/// the console's per-day chart).
pub const COUNT_COLUMNS: &str = "
            count(*) AS total,
            count(*) FILTER (WHERE validation_applied) AS validated,
            count(*) FILTER (WHERE validation_applied AND validation_decision = 'AUTO_REJECTED') AS auto_rejected,
            count(*) FILTER (WHERE validation_applied AND validation_decision = 'AUTO_APPROVED') AS auto_approved,
            count(*) FILTER (WHERE validation_applied AND validation_decision = 'PENDING') AS manual_review,
            count(*) FILTER (WHERE validation_applied AND validation_decision = 'AUTO_REJECTED' AND false_positive)
                AS false_positives,
            count(*) FILTER (WHERE validation_error) AS validation_errors,
            count(*) FILTER (WHERE shadow_decision IS NOT NULL) AS shadow_scored,
            count(*) FILTER (WHERE shadow_decision = 'AUTO_REJECTED') AS shadow_auto_rejected,
            count(*) FILTER (WHERE shadow_decision = 'AUTO_APPROVED') AS shadow_auto_approved,
            count(*) FILTER (WHERE shadow_decision = 'PENDING') AS shadow_manual_review,
            count(*) FILTER (WHERE shadow_decision = 'AUTO_REJECTED' AND status = 'APPROVED')
                AS shadow_false_positives,
            count(*) FILTER (WHERE shadow_decision = 'AUTO_APPROVED' AND status = 'REJECTED')
                AS shadow_false_approvals,
            count(*) FILTER (WHERE shadow_decision = 'AUTO_APPROVED' AND status IN ('APPROVED', 'REJECTED'))
                AS shadow_auto_approved_decided";

/// Counts of requests created in `[since, until)` (`until` open: up to now).
pub async fn counts(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> sqlx::Result<Counts> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COUNT_COLUMNS} FROM approval_requests
         WHERE created_at >= $1 AND ($2::timestamptz IS NULL OR created_at < $2)"
    )))
    .bind(since)
    .bind(until)
    .fetch_one(pool)
    .await
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

impl Counts {
    /// How many requests a verdict on `basis` rests on.
    pub fn samples(&self, basis: Basis) -> i64 {
        match basis {
            Basis::Cohort => self.validated,
            Basis::Shadow => self.shadow_scored,
        }
    }
}

pub fn rates(counts: &Counts, basis: Basis) -> Rates {
    let false_approval = percent(
        counts.shadow_false_approvals,
        counts.shadow_auto_approved_decided,
    );
    match basis {
        Basis::Cohort => Rates {
            auto_reject: percent(counts.auto_rejected, counts.validated),
            auto_approve: percent(counts.auto_approved, counts.validated),
            manual_review: percent(counts.manual_review, counts.validated),
            false_positive: percent(counts.false_positives, counts.auto_rejected),
            false_approval,
        },
        Basis::Shadow => Rates {
            auto_reject: percent(counts.shadow_auto_rejected, counts.shadow_scored),
            auto_approve: percent(counts.shadow_auto_approved, counts.shadow_scored),
            manual_review: percent(counts.shadow_manual_review, counts.shadow_scored),
            false_positive: percent(counts.shadow_false_positives, counts.shadow_auto_rejected),
            false_approval,
        },
    }
}

pub fn verdict(counts: &Counts, criteria: &Criteria, basis: Basis) -> Verdict {
    let rates = rates(counts, basis);
    let (rejected, word) = match basis {
        Basis::Cohort => (counts.auto_rejected, "validated"),
        Basis::Shadow => (counts.shadow_auto_rejected, "shadow-scored"),
    };
    let mut critical = Vec::new();
    if counts.validation_errors > 0 {
        critical.push(format!(
            "{} validation error(s): any error is a rollback trigger",
            counts.validation_errors
        ));
    }
    if rejected > 0 && rates.false_positive > criteria.false_positive_critical {
        critical.push(format!(
            "false positives {:.1} % > {:.0} % (critical)",
            rates.false_positive, criteria.false_positive_critical
        ));
    }
    if counts.shadow_false_approvals > 0 && rates.false_approval > criteria.false_approval_critical
    {
        critical.push(format!(
            "{} request(s) validation would have auto-approved were rejected by a human ({:.1} % of those decided > {:.0} %)",
            counts.shadow_false_approvals, rates.false_approval, criteria.false_approval_critical
        ));
    }
    if !critical.is_empty() {
        return Verdict::NoGo(critical);
    }
    let samples = counts.samples(basis);
    if samples < criteria.min_validated {
        return Verdict::InsufficientData(vec![format!(
            "{samples} {word} request(s); at least {} are needed to judge",
            criteria.min_validated
        )]);
    }
    let mut outside = Vec::new();
    let mut check = |name: &str, value: f64, (low, high): (f64, f64)| {
        if value < low || value > high {
            outside.push(format!(
                "{name} {value:.1} % outside the expected {low:.0}–{high:.0} %"
            ));
        }
    };
    check("auto-reject", rates.auto_reject, criteria.auto_reject_band);
    check(
        "auto-approve",
        rates.auto_approve,
        criteria.auto_approve_band,
    );
    check(
        "manual review",
        rates.manual_review,
        criteria.manual_review_band,
    );
    if rates.false_positive >= criteria.false_positive_target {
        outside.push(format!(
            "false positives {:.1} % not below the {:.0} % target",
            rates.false_positive, criteria.false_positive_target
        ));
    }
    if counts.shadow_false_approvals > 0 {
        outside.push(format!(
            "{} request(s) validation would have auto-approved were rejected by a human",
            counts.shadow_false_approvals
        ));
    }
    if outside.is_empty() {
        Verdict::Go(vec![
            "every rate is inside the seed's expected band, no validation errors".into(),
        ])
    } else {
        Verdict::Hold(outside)
    }
}

/// The report over an explicit window (`--since`), which may mix phases: judged on the cohort.
pub async fn report(
    pool: &PgPool,
    since: DateTime<Utc>,
    criteria: &Criteria,
) -> sqlx::Result<Report> {
    let counts = counts(pool, since, None).await?;
    Ok(judge(since, None, Basis::Cohort, counts, criteria))
}

fn judge(
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    basis: Basis,
    counts: Counts,
    criteria: &Criteria,
) -> Report {
    Report {
        since,
        until,
        basis,
        rates: rates(&counts, basis),
        verdict: verdict(&counts, criteria, basis),
        counts,
    }
}

/// How long each phase runs at least before it may be promoted, and on how many samples:
/// the seed's 72 h at 10 %, 96 h at 50 %, 7 days at 100 % and its 30-sample minimum by
/// default; 24 h of shadow mode before the first phase (ours: the seed asks for "baseline
/// metrics collected"). `WINGMAN_ROLLOUT_MIN_SAMPLES` and `WINGMAN_ROLLOUT_MIN_DURATION`
/// (`shadow=24h,10=72h,50=96h,100=7d`, any subset) change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PhaseMinimums {
    pub samples: i64,
    #[serde(with = "seconds")]
    pub shadow: Duration,
    #[serde(with = "seconds")]
    pub ten: Duration,
    #[serde(with = "seconds")]
    pub fifty: Duration,
    #[serde(with = "seconds")]
    pub full: Duration,
}

mod seconds {
    pub fn serialize<S: serde::Serializer>(
        duration: &std::time::Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_secs())
    }
}

impl Default for PhaseMinimums {
    fn default() -> Self {
        Self {
            samples: 30,
            shadow: Duration::from_secs(24 * 3600),
            ten: Duration::from_secs(72 * 3600),
            fifty: Duration::from_secs(96 * 3600),
            full: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl PhaseMinimums {
    /// Applies `shadow=24h,10=72h,50=96h,100=7d` (any subset).
    ///
    /// # Errors
    /// An unknown phase or a duration that does not parse.
    pub fn apply_durations(&mut self, text: &str) -> anyhow::Result<()> {
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (phase, duration) = item.split_once('=').ok_or_else(|| {
                anyhow::anyhow!(
                    "WINGMAN_ROLLOUT_MIN_DURATION: `{item}` is not <phase>=<duration> (e.g. 10=72h)"
                )
            })?;
            let duration = crate::duration::parse(duration)
                .map_err(anyhow::Error::msg)
                .map_err(|error| {
                    anyhow::anyhow!("WINGMAN_ROLLOUT_MIN_DURATION: phase {phase}: {error:#}")
                })?;
            match phase.trim() {
                "shadow" | "0" => self.shadow = duration,
                "10" => self.ten = duration,
                "50" => self.fifty = duration,
                "100" => self.full = duration,
                other => anyhow::bail!(
                    "WINGMAN_ROLLOUT_MIN_DURATION: unknown phase `{other}` (shadow, 10, 50 or 100)"
                ),
            }
        }
        Ok(())
    }

    /// The minimum duration of the phase enforcing `effective` %.
    pub fn duration_for(&self, effective: u8) -> Duration {
        match effective {
            0 => self.shadow,
            1..=10 => self.ten,
            11..=50 => self.fifty,
            _ => self.full,
        }
    }

    pub fn criteria(&self) -> Criteria {
        Criteria {
            min_validated: self.samples,
            ..Criteria::default()
        }
    }
}

/// One phase of the rollout: from one rollout change that moved the enforced percent to the
/// next (the audit's `rollout_changed` rows).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// 1 for the first recorded phase.
    pub number: usize,
    /// `None`: no rollout change was ever recorded; the phase is "since the beginning".
    pub started_at: Option<DateTime<Utc>>,
    /// `None` for the current phase.
    pub ended_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub percent: u8,
    /// The percent validation is enforced for (0: shadow mode).
    pub effective_percent: u8,
    /// Who started it (the audit's proven author, or "direct write, author unproven").
    pub by: Option<String>,
    pub reason: Option<String>,
    /// Started by a forced promotion.
    pub forced: bool,
    /// What the promote gate said when it started (when it was a raise).
    pub gate: Option<String>,
    /// The enforced percent before it.
    pub from_percent: Option<u8>,
}

impl Phase {
    pub fn basis(&self) -> Basis {
        if self.effective_percent == 0 {
            Basis::Shadow
        } else {
            Basis::Cohort
        }
    }

    /// `shadow` or `10 %`.
    pub fn name(&self) -> String {
        if self.effective_percent == 0 {
            "shadow".into()
        } else {
            format!("{} %", self.effective_percent)
        }
    }

    /// The phase when nothing is recorded: since the beginning, with the flags as they are
    /// (when known).
    fn unrecorded(current: Option<&Rollout>) -> Self {
        let (enabled, percent) =
            current.map_or((true, 100), |flags| (flags.enabled, flags.percent));
        Self {
            number: 1,
            started_at: None,
            ended_at: None,
            enabled,
            percent,
            effective_percent: if enabled { percent } else { 0 },
            by: None,
            reason: None,
            forced: false,
            gate: None,
            from_percent: None,
        }
    }
}

/// One `rollout_changed` row: when, and its data (an [`Attribution`]).
pub type ChangeRow = (DateTime<Utc>, Value);

/// Phases from the rollout changes, oldest first: a change starts a phase when it moves the
/// enforced percent (a percent changed while validation is off does not). A deleted or
/// unreadable value enforces nothing (intake stops deciding until the flags are back).
pub fn phases_of(rows: &[ChangeRow]) -> Vec<Phase> {
    let mut phases: Vec<Phase> = Vec::new();
    for (at, data) in rows {
        let change = Attribution::from_data(data).unwrap_or_else(|error| {
            tracing::warn!(%error, "a rollout_changed row not as the watcher writes it; read as enforcing nothing");
            Attribution::default()
        });
        let (enabled, percent) = change
            .new
            .as_ref()
            .map_or((false, 0), |new| (new.enabled, new.percent));
        let effective = if enabled { percent } else { 0 };
        // The server's time of the revision; the audit's own time for rows from before it
        // was recorded (a watcher that was down audits late).
        let at = change.written_at.map_or(*at, |written| written.min(*at));
        let at = &at;
        if let Some(last) = phases.last_mut() {
            if last.effective_percent == effective {
                // Same enforced percent: the phase goes on; keep the flags current.
                last.enabled = enabled;
                last.percent = percent;
                continue;
            }
            last.ended_at = Some(*at);
        }
        phases.push(Phase {
            number: phases.len() + 1,
            started_at: Some(*at),
            ended_at: None,
            enabled,
            percent,
            effective_percent: effective,
            // Rows from before `by` was written have none.
            by: Some(change.by).filter(|by| !by.is_empty()),
            reason: change.reason,
            forced: change.forced,
            gate: change.gate,
            from_percent: phases.last().map(|phase| phase.effective_percent),
        });
    }
    phases
}

/// Every phase, from the audit log; one "since the beginning" phase with `current`'s flags
/// when no rollout change was recorded.
pub async fn phases(pool: &PgPool, current: Option<&Rollout>) -> sqlx::Result<Vec<Phase>> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT at, data FROM audit_events
         WHERE kind = 'rollout_changed' AND stage = 'watcher' ORDER BY seq",
    )
    .fetch_all(pool)
    .await?;
    let phases = phases_of(&rows);
    Ok(if phases.is_empty() {
        vec![Phase::unrecorded(current)]
    } else {
        phases
    })
}

/// May the phase be promoted, and to what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    /// The phase a promotion moves to (`None`: at 100 % already).
    pub next_percent: Option<u8>,
    pub open: bool,
    /// Why it is closed (empty when open).
    pub refusals: Vec<String>,
    pub minimum_duration_secs: u64,
    /// How long the phase has run (`None`: its start is not recorded).
    pub lasted_secs: Option<u64>,
    pub minimum_samples: i64,
    pub samples: i64,
}

impl Gate {
    /// One line for the audit: what the gate said.
    pub fn summary(&self) -> String {
        let lasted = self
            .lasted_secs
            .map_or_else(|| "an unrecorded time".to_string(), human_duration);
        if self.open {
            format!("GO after {lasted} on {} request(s)", self.samples)
        } else {
            format!("refused: {}", self.refusals.join("; "))
        }
    }
}

/// `3 d 2 h`, `5 h 12 min`, `40 s`.
pub fn human_duration(seconds: u64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else if minutes > 0 {
        format!("{minutes} min {} s", seconds % 60)
    } else {
        format!("{seconds} s")
    }
}

/// The gate on promoting `phase` (judged by `report`) at `now`: only the current phase, only
/// on GO, only after the phase's minimum duration on at least the minimum sample size.
pub fn gate(phase: &Phase, report: &Report, minimums: &PhaseMinimums, now: DateTime<Utc>) -> Gate {
    let next_percent = next_step(phase.effective_percent);
    let minimum = minimums.duration_for(phase.effective_percent);
    let lasted = phase
        .started_at
        .map(|started| (now - started).num_seconds().max(0) as u64);
    let samples = report.counts.samples(phase.basis());
    let mut refusals = Vec::new();
    if phase.ended_at.is_some() {
        refusals.push(format!("phase {} is over", phase.number));
    }
    if next_percent.is_none() {
        refusals.push("validation is enforced for 100 % already: nothing to promote to".into());
    }
    if !matches!(report.verdict, Verdict::Go(_)) {
        refusals.push(format!(
            "the {} phase's verdict is {}: {}",
            phase.name(),
            report.verdict.word(),
            report.verdict.reasons().join("; ")
        ));
    }
    match lasted {
        Some(lasted) if lasted < minimum.as_secs() => refusals.push(format!(
            "the {} phase has run {}; its minimum is {}",
            phase.name(),
            human_duration(lasted),
            human_duration(minimum.as_secs())
        )),
        Some(_) => {}
        None => refusals.push(format!(
            "the {} phase's start is not recorded (no rollout change in the audit log)",
            phase.name()
        )),
    }
    if samples < minimums.samples && !matches!(report.verdict, Verdict::InsufficientData(_)) {
        refusals.push(format!(
            "{samples} request(s) judged; the minimum is {}",
            minimums.samples
        ));
    }
    Gate {
        next_percent,
        open: refusals.is_empty(),
        refusals,
        minimum_duration_secs: minimum.as_secs(),
        lasted_secs: lasted,
        minimum_samples: minimums.samples,
        samples,
    }
}

/// A phase with its report and its promote gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseReport {
    pub phase: Phase,
    #[serde(flatten)]
    pub report: Report,
    pub gate: Gate,
}

impl PhaseReport {
    /// The numbers the watcher sets as the phase gauges.
    pub fn gauges(&self) -> crate::metrics::PhaseGauges {
        let counts = &self.report.counts;
        let rates = &self.report.rates;
        crate::metrics::PhaseGauges {
            effective_percent: self.phase.effective_percent,
            started_at: self
                .phase
                .started_at
                .map_or(0.0, |at| at.timestamp_millis() as f64 / 1000.0),
            cohort_samples: counts.validated,
            shadow_samples: counts.shadow_scored,
            judged_samples: counts.samples(self.report.basis),
            auto_reject: rates.auto_reject,
            auto_approve: rates.auto_approve,
            manual_review: rates.manual_review,
            false_positive: rates.false_positive,
            verdict_exit_code: self.report.verdict.exit_code(),
            shadow_false_approvals: counts.shadow_false_approvals,
            shadow_false_positives: counts.shadow_false_positives,
        }
    }
}

/// Judges `phase` at `now`.
pub async fn phase_report(
    pool: &PgPool,
    phase: Phase,
    minimums: &PhaseMinimums,
    now: DateTime<Utc>,
) -> sqlx::Result<PhaseReport> {
    let since = phase.started_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let counts = counts(pool, since, phase.ended_at).await?;
    let report = judge(
        since,
        phase.ended_at,
        phase.basis(),
        counts,
        &minimums.criteria(),
    );
    let gate = gate(&phase, &report, minimums, now);
    Ok(PhaseReport {
        phase,
        report,
        gate,
    })
}

/// The current phase, judged now.
pub async fn current_phase(
    pool: &PgPool,
    current: Option<&Rollout>,
    minimums: &PhaseMinimums,
) -> anyhow::Result<PhaseReport> {
    let phase = phases(pool, current)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no rollout phase"))?;
    Ok(phase_report(pool, phase, minimums, Utc::now()).await?)
}

#[cfg(test)]
mod tests;

//! `wingman rollout report`: the seed's rollout rates over the validated cohort and the
//! go/no-go verdict against its criteria. Too few samples give "insufficient data", never GO.
//!
//! Rates are over requests that were validated (`validation_applied`), using the decision the
//! validator took (`validation_decision`): `status` keeps the decision when the request runs
//! (the execution has its own column), but a human may still move it on (PENDING → APPROVED,
//! an override of AUTO_REJECTED), and the rates are about what the validator decided. The
//! false-positive rate is overridden auto-rejections over auto-rejections.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

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
}

/// Percentages of the validated cohort.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    pub auto_reject: f64,
    pub auto_approve: f64,
    pub manual_review: f64,
    pub false_positive: f64,
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
    /// A rollback trigger fired (false positives > 10 %, validation errors).
    NoGo(Vec<String>),
    /// Nothing critical, but some rate is outside the seed's expected band.
    Hold(Vec<String>),
    /// Too few samples to judge.
    InsufficientData(Vec<String>),
}

/// The seed's criteria; the sample sizes are ours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Criteria {
    pub min_validated: i64,
    pub auto_reject_band: (f64, f64),
    pub auto_approve_band: (f64, f64),
    pub manual_review_band: (f64, f64),
    pub false_positive_target: f64,
    pub false_positive_critical: f64,
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub since: DateTime<Utc>,
    pub counts: Counts,
    pub rates: Rates,
    #[serde(flatten)]
    pub verdict: Verdict,
}

pub async fn counts(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Counts> {
    sqlx::query_as(
        "SELECT
            count(*) AS total,
            count(*) FILTER (WHERE validation_applied) AS validated,
            count(*) FILTER (WHERE validation_applied AND validation_decision = 'AUTO_REJECTED') AS auto_rejected,
            count(*) FILTER (WHERE validation_applied AND validation_decision = 'AUTO_APPROVED') AS auto_approved,
            count(*) FILTER (WHERE validation_applied AND validation_decision = 'PENDING') AS manual_review,
            count(*) FILTER (WHERE validation_applied AND validation_decision = 'AUTO_REJECTED' AND false_positive)
                AS false_positives,
            count(*) FILTER (WHERE validation_error) AS validation_errors
         FROM approval_requests WHERE created_at > $1",
    )
    .bind(since)
    .fetch_one(pool)
    .await
}

pub fn rates(counts: &Counts) -> Rates {
    let percent = |part: i64, whole: i64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    Rates {
        auto_reject: percent(counts.auto_rejected, counts.validated),
        auto_approve: percent(counts.auto_approved, counts.validated),
        manual_review: percent(counts.manual_review, counts.validated),
        false_positive: percent(counts.false_positives, counts.auto_rejected),
    }
}

pub fn verdict(counts: &Counts, criteria: &Criteria) -> Verdict {
    let rates = rates(counts);
    let mut critical = Vec::new();
    if counts.validation_errors > 0 {
        critical.push(format!(
            "{} validation error(s): any error is a rollback trigger",
            counts.validation_errors
        ));
    }
    if counts.auto_rejected > 0 && rates.false_positive > criteria.false_positive_critical {
        critical.push(format!(
            "false positives {:.1} % > {:.0} % (critical)",
            rates.false_positive, criteria.false_positive_critical
        ));
    }
    if !critical.is_empty() {
        return Verdict::NoGo(critical);
    }
    if counts.validated < criteria.min_validated {
        return Verdict::InsufficientData(vec![format!(
            "{} validated request(s); at least {} are needed to judge",
            counts.validated, criteria.min_validated
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
    if outside.is_empty() {
        Verdict::Go(vec![
            "every rate is inside the seed's expected band, no validation errors".into(),
        ])
    } else {
        Verdict::Hold(outside)
    }
}

pub async fn report(
    pool: &PgPool,
    since: DateTime<Utc>,
    criteria: &Criteria,
) -> sqlx::Result<Report> {
    let counts = counts(pool, since).await?;
    Ok(Report {
        since,
        rates: rates(&counts),
        verdict: verdict(&counts, criteria),
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(
        validated: i64,
        rejected: i64,
        approved: i64,
        false_positives: i64,
        errors: i64,
    ) -> Counts {
        Counts {
            total: validated,
            validated,
            auto_rejected: rejected,
            auto_approved: approved,
            manual_review: validated - rejected - approved,
            false_positives,
            validation_errors: errors,
        }
    }

    #[test]
    fn healthy_rates_over_enough_requests_are_a_go() {
        let verdict = verdict(&counts(100, 8, 20, 0, 0), &Criteria::default());
        assert!(matches!(verdict, Verdict::Go(_)), "{verdict:?}");
    }

    #[test]
    fn too_few_requests_are_insufficient_data_never_a_go() {
        let verdict = verdict(&counts(10, 1, 2, 0, 0), &Criteria::default());
        assert!(
            matches!(verdict, Verdict::InsufficientData(_)),
            "{verdict:?}"
        );
    }

    #[test]
    fn critical_false_positives_or_any_error_are_a_no_go_even_on_few_samples() {
        assert!(matches!(
            verdict(&counts(10, 5, 1, 1, 0), &Criteria::default()),
            Verdict::NoGo(_)
        ));
        assert!(matches!(
            verdict(&counts(100, 8, 20, 0, 1), &Criteria::default()),
            Verdict::NoGo(_)
        ));
    }

    #[test]
    fn rates_outside_the_bands_hold_the_rollout_and_say_which() {
        let Verdict::Hold(reasons) = verdict(&counts(100, 30, 20, 0, 0), &Criteria::default())
        else {
            panic!("expected a hold");
        };
        assert!(
            reasons
                .iter()
                .any(|reason| reason.starts_with("auto-reject 30.0 %")),
            "{reasons:?}"
        );
    }

    #[test]
    fn rates_are_over_the_validated_cohort_and_false_positives_over_rejections() {
        let rates = rates(&counts(200, 20, 40, 1, 0));
        assert_eq!(rates.auto_reject, 10.0);
        assert_eq!(rates.auto_approve, 20.0);
        assert_eq!(rates.manual_review, 70.0);
        assert_eq!(rates.false_positive, 5.0);
    }
}

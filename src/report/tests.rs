//! The verdict, the phases read from the rollout audit, and the promote gate, on counts and
//! rows written out by hand.

use chrono::{Duration as ChronoDuration, TimeZone};
use serde_json::json;

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
        ..Counts::default()
    }
}

/// Shadow counts: `scored` requests, of which validation would have rejected `rejected` and
/// approved `approved`; humans approved `false_positives` of the rejections and rejected
/// `false_approvals` of `decided` approvals.
fn shadow(
    scored: i64,
    rejected: i64,
    approved: i64,
    false_positives: i64,
    false_approvals: i64,
    decided: i64,
) -> Counts {
    Counts {
        total: scored,
        shadow_scored: scored,
        shadow_auto_rejected: rejected,
        shadow_auto_approved: approved,
        shadow_manual_review: scored - rejected - approved,
        shadow_false_positives: false_positives,
        shadow_false_approvals: false_approvals,
        shadow_auto_approved_decided: decided,
        ..Counts::default()
    }
}

#[test]
fn healthy_rates_over_enough_requests_are_a_go() {
    let verdict = verdict(
        &counts(100, 8, 20, 0, 0),
        &Criteria::default(),
        Basis::Cohort,
    );
    assert!(matches!(verdict, Verdict::Go(_)), "{verdict:?}");
    assert_eq!(verdict.exit_code(), 0);
}

#[test]
fn too_few_requests_are_insufficient_data_never_a_go() {
    let verdict = verdict(&counts(10, 1, 2, 0, 0), &Criteria::default(), Basis::Cohort);
    assert!(
        matches!(verdict, Verdict::InsufficientData(_)),
        "{verdict:?}"
    );
    assert_eq!(verdict.exit_code(), 2);
}

#[test]
fn critical_false_positives_or_any_error_are_a_no_go_even_on_few_samples() {
    let no_go = verdict(&counts(10, 5, 1, 1, 0), &Criteria::default(), Basis::Cohort);
    assert!(matches!(no_go, Verdict::NoGo(_)));
    assert_eq!(no_go.exit_code(), 1);
    assert!(matches!(
        verdict(
            &counts(100, 8, 20, 0, 1),
            &Criteria::default(),
            Basis::Cohort
        ),
        Verdict::NoGo(_)
    ));
}

#[test]
fn rates_outside_the_bands_hold_the_rollout_and_say_which() {
    let Verdict::Hold(reasons) = verdict(
        &counts(100, 30, 20, 0, 0),
        &Criteria::default(),
        Basis::Cohort,
    ) else {
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
    let rates = rates(&counts(200, 20, 40, 1, 0), Basis::Cohort);
    assert_eq!(rates.auto_reject, 10.0);
    assert_eq!(rates.auto_approve, 20.0);
    assert_eq!(rates.manual_review, 70.0);
    assert_eq!(rates.false_positive, 5.0);
}

#[test]
fn the_shadow_phase_is_judged_on_what_validation_would_have_decided() {
    let healthy = shadow(40, 3, 8, 0, 0, 5);
    assert_eq!(rates(&healthy, Basis::Shadow).auto_approve, 20.0);
    assert!(matches!(
        verdict(&healthy, &Criteria::default(), Basis::Shadow),
        Verdict::Go(_)
    ));
    // The same counts judged on the (empty) cohort are not enough for anything.
    assert!(matches!(
        verdict(&healthy, &Criteria::default(), Basis::Cohort),
        Verdict::InsufficientData(_)
    ));
}

#[test]
fn a_shadow_auto_approval_a_human_rejected_holds_and_many_are_a_no_go() {
    let Verdict::Hold(reasons) = verdict(
        &shadow(40, 3, 8, 0, 1, 40),
        &Criteria::default(),
        Basis::Shadow,
    ) else {
        panic!("one false approval in 40 decided holds the rollout");
    };
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("would have auto-approved were rejected by a human")),
        "{reasons:?}"
    );
    // 1 of 8 decided (12.5 %) is above the 5 % critical line, even on few samples.
    let Verdict::NoGo(reasons) = verdict(
        &shadow(12, 0, 8, 0, 1, 8),
        &Criteria::default(),
        Basis::Shadow,
    ) else {
        panic!("a critical false-approval rate is a no-go");
    };
    assert!(reasons[0].contains("12.5 %"), "{reasons:?}");
}

fn at(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + ChronoDuration::hours(hours)
}

fn change(hours: i64, old: Option<(bool, u8)>, new: (bool, u8), by: &str) -> ChangeRow {
    let flags = |(enabled, percent): (bool, u8)| json!({ "enabled": enabled, "percent": percent });
    (
        at(hours),
        json!({ "by": by, "old": old.map(flags), "new": flags(new), "reason": format!("{by}'s reason") }),
    )
}

/// A phase as (number, enforced percent, start, end, percent before).
type PhaseLine = (
    usize,
    u8,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<u8>,
);

#[test]
fn phases_start_where_the_enforced_percent_moves_and_keep_author_and_reason() {
    let rows = vec![
        change(0, None, (false, 100), "deployment"),
        // A percent changed while validation is off enforces nothing new: still shadow.
        change(5, Some((false, 100)), (false, 10), "ops-carol"),
        change(30, Some((false, 10)), (true, 10), "ops-carol"),
        change(110, Some((true, 10)), (true, 50), "ops-dave"),
        change(120, Some((true, 50)), (true, 10), "watcher (rollout guard)"),
    ];
    let phases = phases_of(&rows);
    let summary: Vec<PhaseLine> = phases
        .iter()
        .map(|phase| {
            (
                phase.number,
                phase.effective_percent,
                phase.started_at,
                phase.ended_at,
                phase.from_percent,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 0, Some(at(0)), Some(at(30)), None),
            (2, 10, Some(at(30)), Some(at(110)), Some(0)),
            (3, 50, Some(at(110)), Some(at(120)), Some(10)),
            (4, 10, Some(at(120)), None, Some(50)),
        ]
    );
    assert_eq!(phases[0].name(), "shadow");
    assert_eq!(phases[0].basis(), Basis::Shadow);
    assert_eq!(
        phases[0].percent, 10,
        "the flags follow the changes inside a phase"
    );
    assert_eq!(phases[2].by.as_deref(), Some("ops-dave"));
    assert_eq!(phases[2].reason.as_deref(), Some("ops-dave's reason"));
    assert_eq!(phases[3].basis(), Basis::Cohort);
}

fn judged(phase: &Phase, counts: Counts) -> Report {
    judge(
        phase.started_at.unwrap(),
        phase.ended_at,
        phase.basis(),
        counts,
        &Criteria::default(),
    )
}

#[test]
fn the_gate_opens_only_on_go_after_the_phases_minimum_duration() {
    let phases = phases_of(&[
        change(0, None, (false, 100), "deployment"),
        change(30, Some((false, 100)), (true, 10), "ops-carol"),
    ]);
    let ten = &phases[1];
    let minimums = PhaseMinimums::default();
    let healthy = judged(ten, counts(100, 8, 20, 0, 0));

    // Two hours into the 10 % phase, on 3 requests: refused, for both reasons.
    let early = gate(ten, &judged(ten, counts(3, 0, 1, 0, 0)), &minimums, at(32));
    assert!(!early.open);
    assert!(
        early
            .refusals
            .iter()
            .any(|refusal| refusal == "the 10 % phase has run 2 h 0 min; its minimum is 3 d 0 h"),
        "{:?}",
        early.refusals
    );
    assert!(
        early
            .refusals
            .iter()
            .any(|refusal| refusal.contains("verdict is INSUFFICIENT DATA")),
        "{:?}",
        early.refusals
    );
    // GO, but a minute short of 72 h: refused.
    let short = gate(
        ten,
        &healthy,
        &minimums,
        at(30 + 72) - ChronoDuration::minutes(1),
    );
    assert_eq!(short.refusals.len(), 1, "{:?}", short.refusals);
    // GO after 72 h: open, to 50 %.
    let open = gate(ten, &healthy, &minimums, at(30 + 72));
    assert!(open.open, "{:?}", open.refusals);
    assert_eq!(open.next_percent, Some(50));
    assert_eq!(open.summary(), "GO after 3 d 0 h on 100 request(s)");
    // A phase that is over is never promoted.
    let over = gate(
        &phases[0],
        &judged(&phases[0], shadow(100, 8, 20, 0, 0, 0)),
        &minimums,
        at(200),
    );
    assert!(over.refusals.contains(&"phase 1 is over".to_string()));
}

#[test]
fn phase_minimums_are_configurable_and_a_bad_value_names_the_phase() {
    let mut minimums = PhaseMinimums::default();
    assert_eq!(minimums.duration_for(10).as_secs(), 72 * 3600);
    assert_eq!(minimums.duration_for(50).as_secs(), 96 * 3600);
    assert_eq!(minimums.duration_for(100).as_secs(), 7 * 24 * 3600);
    minimums.apply_durations("shadow=1h, 10=90s").unwrap();
    assert_eq!(minimums.duration_for(0).as_secs(), 3600);
    assert_eq!(minimums.duration_for(10).as_secs(), 90);
    let error = minimums.apply_durations("25=1h").unwrap_err().to_string();
    assert!(error.contains("unknown phase `25`"), "{error}");
    let error = minimums.apply_durations("50=soon").unwrap_err().to_string();
    assert!(
        error.starts_with("WINGMAN_ROLLOUT_MIN_DURATION: phase 50:"),
        "{error}"
    );
}

#[test]
fn a_phase_starts_when_the_server_stored_the_change_not_when_it_was_audited() {
    // The watcher was down for 10 hours: it audits the change late, with the server's time.
    let (audited, mut data) = change(10, Some((false, 100)), (true, 10), "ops-carol");
    data["written_at"] = json!(at(0));
    let phases = phases_of(&[
        change(-5, None, (false, 100), "deployment"),
        (audited, data),
    ]);
    assert_eq!(phases[1].started_at, Some(at(0)));
    assert_eq!(phases[0].ended_at, Some(at(0)));
    // A written_at later than the audit cannot push a phase's start forward.
    let (audited, mut data) = change(10, Some((false, 100)), (true, 10), "ops-carol");
    data["written_at"] = json!(at(50));
    assert_eq!(phases_of(&[(audited, data)])[0].started_at, Some(at(10)));
}

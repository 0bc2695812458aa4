//! The approval rules as a pure function: every refusal, and who counts as whom.

use chrono::{Duration, Utc};
use serde_json::json;

use super::*;
use crate::identity::api_vote::Outcome;
use crate::identity::roster::Approver;

fn approver(name: &str) -> Approver {
    Approver {
        name: name.into(),
        console_keys: Vec::new(),
        telegram_ids: Vec::new(),
        api_keys: Vec::new(),
        publishers: Vec::new(),
        added_at: Utc::now(),
    }
}

fn record(environment: &str, status: Status, submitted_by: Principal) -> ApprovalRecord {
    let mut request = crate::request::parse_request(
        json!({
            "requester": "agent-7", "environment": environment, "title": "Stop api",
            "description": "Stage A. Rollback: start it. Verify: ps.",
        })
        .to_string()
        .as_bytes(),
        RequestId::generate,
    )
    .unwrap();
    request.submitted_by = submitted_by;
    ApprovalRecord {
        request,
        status,
        composite_score: None,
        profile: None,
        reasons: Vec::new(),
        findings: Vec::new(),
        expires_at: Some(Utc::now() + Duration::hours(1)),
        pending_since: Utc::now(),
        nonce: "n".into(),
        messages: Vec::new(),
        votes: Vec::new(),
        needed: None,
        outcomes: Vec::new(),
    }
}

fn ballot<'a>(approver: &'a Approver, verdict: Verdict, note: Option<&str>) -> Ballot<'a> {
    Ballot {
        approver,
        credential: format!("console:{}", approver.name),
        channel: Channel::Console,
        request_id: RequestId::generate(),
        verdict,
        note: note.map(str::to_string),
    }
}

fn rules(prd_approvals: usize) -> Rules {
    Rules {
        telegram_ids: Vec::new(),
        prd_approvals,
    }
}

fn pending(environment: &str) -> ApprovalRecord {
    record(environment, Status::Pending, Principal::Nats("ci".into()))
}

#[test]
fn one_approval_decides_outside_prd() {
    let anna = approver("anna");
    let judgement = judge(
        &pending("dev"),
        None,
        &ballot(&anna, Verdict::Approve, None),
        &rules(2),
        Utc::now(),
    );
    assert_eq!(
        judgement,
        Ok(Judgement::Decide {
            status: Status::Approved,
            approvers: vec!["anna".into()],
            overriding: false
        })
    );
}

#[test]
fn prd_with_two_approvals_counts_the_first_and_decides_on_a_second_person() {
    let (anna, bob) = (approver("anna"), approver("bob"));
    let mut record = pending("prd");
    let first = judge(
        &record,
        None,
        &ballot(&anna, Verdict::Approve, None),
        &rules(2),
        Utc::now(),
    );
    assert_eq!(
        first,
        Ok(Judgement::Count {
            votes: vec!["anna".into()],
            need: 2
        })
    );
    record.votes = vec!["anna".into()];
    assert_eq!(
        judge(
            &record,
            None,
            &ballot(&anna, Verdict::Approve, None),
            &rules(2),
            Utc::now()
        ),
        Err(Refusal::SameApprover("anna".into()))
    );
    assert!(matches!(
        judge(&record, None, &ballot(&bob, Verdict::Approve, None), &rules(2), Utc::now()),
        Ok(Judgement::Decide { status: Status::Approved, ref approvers, .. }) if approvers == &["anna", "bob"]
    ));
}

#[test]
fn the_principal_that_submitted_is_refused_whatever_the_label_says() {
    let mut alice = approver("alice");
    alice.publishers = vec![Principal::ApiKey("alice-laptop".into())];
    for submitted_by in [
        Principal::Nats("alice".into()),
        Principal::ApiKey("alice".into()),
        Principal::ApiKey("alice-laptop".into()),
    ] {
        let record = record("dev", Status::Pending, submitted_by.clone());
        assert_eq!(record.request.requester, "agent-7");
        assert_eq!(
            judge(
                &record,
                None,
                &ballot(&alice, Verdict::Approve, None),
                &rules(1),
                Utc::now()
            ),
            Err(Refusal::OwnRequest),
            "{submitted_by}"
        );
    }
    // A label naming the approver proves nothing when the submitter is authenticated.
    let mut labelled = record("dev", Status::Pending, Principal::Nats("ci".into()));
    labelled.request.requester = "alice".into();
    assert!(
        judge(
            &labelled,
            None,
            &ballot(&alice, Verdict::Approve, None),
            &rules(1),
            Utc::now()
        )
        .is_ok()
    );
}

#[test]
fn without_authentication_the_label_is_all_there_is() {
    let alice = approver("alice");
    let mut record = record("dev", Status::Pending, Principal::Anonymous);
    record.request.requester = "alice".into();
    assert_eq!(
        judge(
            &record,
            None,
            &ballot(&alice, Verdict::Approve, None),
            &rules(1),
            Utc::now()
        ),
        Err(Refusal::OwnRequest)
    );
}

#[test]
fn a_rejection_and_an_override_need_a_reason() {
    let anna = approver("anna");
    assert_eq!(
        judge(
            &pending("dev"),
            None,
            &ballot(&anna, Verdict::Reject, Some("  ")),
            &rules(1),
            Utc::now()
        ),
        Err(Refusal::ReasonRequired("reject"))
    );
    let rejected = record("dev", Status::AutoRejected, Principal::Nats("ci".into()));
    assert_eq!(
        judge(
            &rejected,
            None,
            &ballot(&anna, Verdict::Approve, None),
            &rules(1),
            Utc::now()
        ),
        Err(Refusal::ReasonRequired("override an auto-rejection"))
    );
    assert!(matches!(
        judge(
            &rejected,
            None,
            &ballot(&anna, Verdict::Reject, Some("agree")),
            &rules(1),
            Utc::now()
        ),
        Err(Refusal::AlreadyDecided {
            status: Status::AutoRejected,
            ..
        })
    ));
    assert!(matches!(
        judge(
            &rejected,
            None,
            &ballot(&anna, Verdict::Approve, Some("false positive")),
            &rules(1),
            Utc::now()
        ),
        Ok(Judgement::Decide {
            overriding: true,
            ..
        })
    ));
}

#[test]
fn a_late_vote_is_refused_an_override_included() {
    let anna = approver("anna");
    let later = Utc::now() + Duration::hours(2);
    assert!(matches!(
        judge(
            &pending("dev"),
            None,
            &ballot(&anna, Verdict::Approve, None),
            &rules(1),
            later
        ),
        Err(Refusal::Expired(_))
    ));
    let rejected = record("dev", Status::AutoRejected, Principal::Nats("ci".into()));
    assert!(matches!(
        judge(
            &rejected,
            None,
            &ballot(&anna, Verdict::Approve, Some("fp")),
            &rules(1),
            later
        ),
        Err(Refusal::Expired(_))
    ));
}

#[test]
fn the_first_decision_wins() {
    let anna = approver("anna");
    let claim = DecisionClaim {
        decision: Status::Rejected,
        approvers: vec!["bob".into()],
        at: Utc::now(),
    };
    assert!(matches!(
        judge(&pending("dev"), Some(&claim), &ballot(&anna, Verdict::Approve, None), &rules(1), Utc::now()),
        Err(Refusal::AlreadyDecided { status: Status::Rejected, ref by, .. }) if by == "bob"
    ));
}

#[test]
fn every_refusal_has_its_own_code() {
    let codes: std::collections::HashSet<&str> = [
        Refusal::NotAuthorized("x".into()),
        Refusal::OwnRequest,
        Refusal::ReasonRequired("reject"),
        Refusal::Unknown(RequestId::generate()),
        already_rejected_by_validators(),
        Refusal::Expired("t".into()),
        Refusal::SameApprover("x".into()),
        Refusal::NotRequester("x".into()),
    ]
    .iter()
    .map(Refusal::code)
    .collect();
    assert_eq!(codes.len(), 8);
}

#[test]
fn a_refusal_by_someone_elses_decision_names_them() {
    let answer = answer(&Err(Refusal::AlreadyDecided {
        status: Status::Approved,
        by: "alice".into(),
        at: "2026-12-04 17:00:00 UTC".into(),
    }));
    assert_eq!(answer.outcome, Outcome::Refused);
    assert_eq!(answer.code.as_deref(), Some("already_decided"));
    assert_eq!(answer.decided_by.as_deref(), Some("alice"));
    assert!(answer.message.contains("already APPROVED by alice"));
}

/// The withdrawal rule: only the principal that submitted it, only while nobody decided,
/// before its deadline, and never an auto-rejection.
#[test]
fn only_the_requester_withdraws_a_request_that_still_waits() {
    let ci = Principal::Nats("ci".into());
    let now = Utc::now();
    let waiting = record("prd", Status::Pending, ci.clone());
    assert_eq!(judge_cancel(&waiting, None, &ci, now), Ok(()));

    let other = Principal::ApiKey("ci".into());
    assert_eq!(
        judge_cancel(&waiting, None, &other, now),
        Err(Refusal::NotRequester("nats:ci".into())),
        "the same name under another kind of credential is another principal"
    );
    assert!(matches!(
        judge_cancel(&waiting, None, &Principal::Anonymous, now),
        Err(Refusal::NotRequester(_))
    ));

    let claim = DecisionClaim {
        decision: Status::Approved,
        approvers: vec!["anna".into()],
        at: now,
    };
    assert!(matches!(
        judge_cancel(&waiting, Some(&claim), &ci, now),
        Err(Refusal::AlreadyDecided { status: Status::Approved, ref by, .. }) if by == "anna"
    ));
    assert_eq!(
        judge_cancel(
            &record("dev", Status::AutoRejected, ci.clone()),
            None,
            &ci,
            now
        ),
        Err(already_rejected_by_validators())
    );
    let mut late = waiting.clone();
    late.expires_at = Some(now - Duration::minutes(1));
    assert!(matches!(
        judge_cancel(&late, None, &ci, now),
        Err(Refusal::Expired(_))
    ));
    // Where nothing is authenticated (no NATS users), an anonymous request is anonymous's.
    let local = record("dev", Status::Pending, Principal::Anonymous);
    assert_eq!(
        judge_cancel(&local, None, &Principal::Anonymous, now),
        Ok(())
    );
}

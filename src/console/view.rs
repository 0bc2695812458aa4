//! What the console's pages show, as plain values computed from the stored rows: the
//! templates only lay them out (and escape every string). Pure functions, tested here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::bus::status_feed::{Goal, is_settled};
use crate::events::StatusEvent;
use crate::identity::roster::{Approver, Roster};
use crate::principal::Principal;
use crate::store::audit::AuditRow;
use crate::store::requests::RequestRow;

/// "in 14 min", "in 2 h 05 min", "expired 3 min ago".
pub fn countdown(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(expires_at) = expires_at else {
        return "no deadline".to_string();
    };
    let seconds = (expires_at - now).num_seconds();
    let span = |seconds: i64| {
        let minutes = seconds / 60;
        if minutes >= 60 {
            format!("{} h {:02} min", minutes / 60, minutes % 60)
        } else if minutes >= 1 {
            format!("{minutes} min")
        } else {
            format!("{seconds} s")
        }
    };
    if seconds > 0 {
        format!("in {}", span(seconds))
    } else {
        format!("expired {} ago", span(-seconds))
    }
}

/// What the visitor may do about a request, and why not when they may not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DecisionPanel {
    /// Approve / Reject forms; only Reject for an approver whose approval is counted already
    /// (prd waiting for another approver).
    Vote {
        approver: String,
        approved_already: bool,
    },
    /// Decided already: by whom, when.
    Decided {
        status: String,
        by: String,
        at: String,
        note: String,
    },
    /// Waiting, but this visitor cannot vote (the reason says why).
    Cannot { reason: String },
}

/// Whether `approver` submitted the request (the rule of `crate::approval::own_request`, on
/// the stored row).
pub fn submitted_by_approver(approver: &Approver, row: &RequestRow) -> bool {
    match row.submitted_by.parse::<Principal>() {
        Ok(Principal::Anonymous) | Err(_) => {
            approver.name == row.requester
                || approver.name.ends_with(&format!(":{}", row.requester))
        }
        Ok(principal) => approver.submitted(&principal),
    }
}

/// Whether a human may still decide the request: it waits (PENDING), or the validators
/// rejected it and nobody overrode them yet.
pub fn waits_for_a_human(row: &RequestRow) -> bool {
    row.status == "PENDING" || (row.status == "AUTO_REJECTED" && row.decided_by.is_none())
}

/// The approvals counted so far, where more than one is needed or one is counted: "1 of 2
/// approvals: alice" (`votes`: the approvers counted, `needed`: how many the request needs,
/// unknown in an approval record from before the field).
pub fn approvals_so_far(votes: &[String], needed: Option<usize>) -> Option<String> {
    match (votes, needed) {
        ([], None | Some(0 | 1)) => None,
        ([], Some(needed)) => Some(format!(
            "0 of {needed} approvals: {needed} different approvers must approve"
        )),
        (votes, Some(needed)) => Some(format!(
            "{} of {needed} approvals: {}",
            votes.len(),
            votes.join(", ")
        )),
        (votes, None) => Some(format!(
            "{} approval(s) counted so far: {}",
            votes.len(),
            votes.join(", ")
        )),
    }
}

/// The decision panel of `row` for a visitor logged in with key `key_name`
/// (`can_decide`: the key has the `decide` role); `votes`: the approvers whose approval is
/// counted already.
pub fn decision_panel(
    row: &RequestRow,
    roster: &Roster,
    votes: &[String],
    key_name: &str,
    can_decide: bool,
) -> DecisionPanel {
    if !waits_for_a_human(row) {
        return DecisionPanel::Decided {
            status: row.status.clone(),
            by: row
                .decided_by
                .clone()
                .unwrap_or_else(|| "the validators".to_string()),
            at: row
                .decided_at
                .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
            note: row.decision_note.clone().unwrap_or_default(),
        };
    }
    if !can_decide {
        return DecisionPanel::Cannot {
            reason: format!(
                "Your key `{key_name}` may read but not decide (it lacks the decide role)."
            ),
        };
    }
    let Some(approver) = roster.by_api_key(key_name) else {
        return DecisionPanel::Cannot {
            reason: format!("Your key `{key_name}` belongs to no approver on the roster."),
        };
    };
    if submitted_by_approver(approver, row) {
        return DecisionPanel::Cannot {
            reason: format!(
                "You ({}) submitted this request: someone else must decide it.",
                approver.name
            ),
        };
    }
    DecisionPanel::Vote {
        approver: approver.name.clone(),
        approved_already: votes.contains(&approver.name),
    }
}

/// Whether a request's timeline is over for its kind, so the page stops following it: an
/// instruction (no command) at its decision, a manual command at its minted token (its holder
/// runs it whenever they choose), an automatic command at the end of its execution; a
/// refusal, a rejection, an expiry or a withdrawal ends any. The kind is read from the events
/// as `GET /requests/{id}/events` reads it ([`Goal::learn`]); the token's event says whether
/// the command is manual.
pub fn timeline_settled(events: &[StatusEvent]) -> bool {
    let goal = events.iter().fold(Goal::FromEvents, |goal, event| {
        let goal = goal.learn(event);
        let manual = event.details.get("execution").and_then(Value::as_str) == Some("manual");
        if goal == Goal::Execution && manual && event.details.contains_key("token_expires_at") {
            Goal::Token
        } else {
            goal
        }
    });
    events.last().is_some_and(|event| is_settled(event, goal))
}

/// One validator's verdict on the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidatorView {
    pub name: String,
    pub score: String,
    pub findings: Vec<FindingView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingView {
    pub severity: String,
    pub code: String,
    pub reason: String,
}

/// Every validator's score and findings, from `validator_scores` (the composite is shown
/// apart).
pub fn validators(scores: Option<&Value>) -> Vec<ValidatorView> {
    let Some(Value::Object(scores)) = scores else {
        return Vec::new();
    };
    scores
        .iter()
        .filter(|(name, _)| name.as_str() != "composite")
        .map(|(name, value)| ValidatorView {
            name: name.clone(),
            score: value
                .get("score")
                .map(|score| score.to_string())
                .unwrap_or_else(|| "–".to_string()),
            findings: value
                .get("findings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|finding| FindingView {
                    severity: text_of(finding, "severity"),
                    code: text_of(finding, "code"),
                    reason: text_of(finding, "reason"),
                })
                .collect(),
        })
        .collect()
}

fn text_of(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The composite's reasons.
pub fn composite_reasons(scores: Option<&Value>) -> Vec<String> {
    scores
        .and_then(|scores| scores.get("composite"))
        .and_then(|composite| composite.get("reasons"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|reason| reason.as_str().map(str::to_string))
        .collect()
}

/// The rollout cohort: whether the validators' decision applied to this request, and what it
/// was. Outside the cohort (`validation_applied` false, at any percent, and with validation
/// off) a human decides; its shadow decision is not in the row and never shown here, so the
/// approver's decision it is measured against stays their own (README "Shadow mode").
pub fn cohort(row: &RequestRow) -> String {
    let bucket = row.rollout_bucket.map_or_else(
        || "no bucket".to_string(),
        |bucket| format!("bucket {bucket}"),
    );
    match (row.validation_applied, row.validation_decision.as_deref()) {
        (None, _) => "not validated yet".to_string(),
        (Some(false), _) => format!(
            "outside the validated cohort ({bucket}): the validators' decision does not apply — a human decides (what they would have decided is kept for the rollout report, not shown)"
        ),
        (Some(true), Some(decision)) => {
            format!("in the validated cohort ({bucket}): the validators decided {decision}")
        }
        (Some(true), None) => format!(
            "in the validated cohort ({bucket}): validation failed, no decision — a human decides"
        ),
    }
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditLine {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub stage: String,
    pub status: String,
    pub actor: String,
    pub data: String,
}

/// The chain check of a request's rows: each row's hash is its content's, and each row's
/// `prev_hash` is the hash of the row before it in the whole chain (`predecessors`: seq →
/// hash of the rows at `seq - 1`).
pub fn chain_check(rows: &[AuditRow], predecessors: &[(i64, String)]) -> Result<String, String> {
    for row in rows {
        if row.hash != row.expected_hash() {
            return Err(format!(
                "row {} ({}) was edited: its content does not match its hash",
                row.seq, row.kind
            ));
        }
        let expected_prev = if row.seq == 1 {
            Some(crate::store::audit::GENESIS_HASH)
        } else {
            predecessors
                .iter()
                .find(|(seq, _)| *seq == row.seq - 1)
                .map(|(_, hash)| hash.as_str())
        };
        match expected_prev {
            None => {
                return Err(format!(
                    "row {} follows a missing row {}: rows were deleted",
                    row.seq,
                    row.seq - 1
                ));
            }
            Some(hash) if hash != row.prev_hash => {
                return Err(format!(
                    "row {} does not link to row {}: the chain is broken",
                    row.seq,
                    row.seq - 1
                ));
            }
            Some(_) => {}
        }
    }
    Ok(format!(
        "{} row(s): each hash matches its content and links to the row before it",
        rows.len()
    ))
}

pub fn audit_lines(rows: &[AuditRow]) -> Vec<AuditLine> {
    rows.iter()
        .map(|row| AuditLine {
            seq: row.seq,
            at: row.at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
            kind: row.kind.clone(),
            stage: row.stage.clone(),
            status: row.status.clone().unwrap_or_default(),
            actor: row.actor.clone(),
            data: serde_json::to_string_pretty(&row.data.0).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use serde_json::json;
    use sqlx::types::Json;

    fn row(status: &str, submitted_by: &str) -> RequestRow {
        let now = Utc::now();
        RequestRow {
            request_id: uuid::Uuid::new_v4(),
            status: status.into(),
            execution_status: None,
            requester: "agent".into(),
            submitted_by: submitted_by.into(),
            environment: "prd".into(),
            command: Some("docker stop api".into()),
            operation: None,
            title: "t".into(),
            description: "d".into(),
            risk_level: None,
            created_at: now,
            updated_at: now,
            validator_scores: None,
            profile: None,
            composite_score: None,
            // In the cohort, sent to a human: a row the validator writes (outside the cohort
            // `validation_decision` is NULL).
            validation_applied: Some(true),
            rollout_bucket: Some(42),
            decided_by: None,
            decided_at: None,
            decision_note: None,
            false_positive: false,
            expires_at: None,
            validation_decision: Some("PENDING".into()),
            validation_error: false,
        }
    }

    fn roster() -> Roster {
        let approver = |name: &str, key: &str| Approver {
            name: name.into(),
            console_keys: Vec::new(),
            telegram_ids: Vec::new(),
            api_keys: vec![key.into()],
            publishers: Vec::new(),
            added_at: Utc::now(),
        };
        Roster {
            approvers: vec![
                approver("alice", "alice-key"),
                approver("carol", "carol-key"),
            ],
        }
    }

    #[test]
    fn the_countdown_says_how_long_is_left_or_how_long_ago_it_expired() {
        let now = Utc::now();
        assert_eq!(
            countdown(Some(now + Duration::seconds(14 * 60 + 5)), now),
            "in 14 min"
        );
        assert_eq!(
            countdown(Some(now + Duration::minutes(125)), now),
            "in 2 h 05 min"
        );
        assert_eq!(
            countdown(Some(now - Duration::minutes(3)), now),
            "expired 3 min ago"
        );
        assert_eq!(countdown(None, now), "no deadline");
    }

    #[test]
    fn only_an_approver_who_did_not_submit_gets_the_vote_forms() {
        let roster = roster();
        let pending = row("PENDING", "api:carol");
        assert_eq!(
            decision_panel(&pending, &roster, &[], "alice-key", true),
            DecisionPanel::Vote {
                approver: "alice".into(),
                approved_already: false,
            }
        );
        assert!(matches!(
            decision_panel(&pending, &roster, &[], "carol-key", true),
            DecisionPanel::Cannot { reason } if reason.contains("submitted this request")
        ));
        assert!(matches!(
            decision_panel(&pending, &roster, &[], "alice-key", false),
            DecisionPanel::Cannot { reason } if reason.contains("lacks the decide role")
        ));
        assert!(matches!(
            decision_panel(&pending, &roster, &[], "stranger", true),
            DecisionPanel::Cannot { reason } if reason.contains("no approver")
        ));
        let mut decided = row("APPROVED", "api:carol");
        decided.decided_by = Some("alice".into());
        assert!(matches!(
            decision_panel(&decided, &roster, &[], "alice-key", true),
            DecisionPanel::Decided { by, .. } if by == "alice"
        ));
    }

    #[test]
    fn an_approver_whose_approval_is_counted_may_only_reject_and_everyone_sees_the_count() {
        let roster = roster();
        let pending = row("PENDING", "api:carol");
        let votes = ["alice".to_string()];
        assert_eq!(
            decision_panel(&pending, &roster, &votes, "alice-key", true),
            DecisionPanel::Vote {
                approver: "alice".into(),
                approved_already: true,
            }
        );
        assert_eq!(
            approvals_so_far(&votes, Some(2)).as_deref(),
            Some("1 of 2 approvals: alice")
        );
        assert_eq!(
            approvals_so_far(&[], Some(2)).as_deref(),
            Some("0 of 2 approvals: 2 different approvers must approve")
        );
        assert_eq!(approvals_so_far(&[], Some(1)), None);
        assert_eq!(approvals_so_far(&[], None), None);
        assert_eq!(
            approvals_so_far(&votes, None).as_deref(),
            Some("1 approval(s) counted so far: alice")
        );
    }

    #[test]
    fn in_the_cohort_the_cohort_line_names_the_validators_decision() {
        let line = cohort(&row("PENDING", "anonymous"));
        assert_eq!(
            line,
            "in the validated cohort (bucket 42): the validators decided PENDING"
        );
        let mut failed = row("PENDING", "anonymous");
        failed.validation_decision = None;
        failed.validation_error = true;
        let line = cohort(&failed);
        assert!(line.contains("validation failed"), "{line}");
    }

    /// Outside the cohort the validator writes `validation_applied` false and no
    /// `validation_decision` (its shadow decision is in another column, never read here), at
    /// 50 % as with validation off: the line says a human decides, not that validation was off.
    #[test]
    fn outside_the_cohort_the_cohort_line_says_a_human_decides_and_shows_no_shadow_decision() {
        let mut outside = row("PENDING", "anonymous");
        outside.validation_applied = Some(false);
        outside.validation_decision = None;
        let line = cohort(&outside);
        assert!(
            line.starts_with("outside the validated cohort (bucket 42)")
                && line.contains("a human decides"),
            "{line}"
        );
        assert!(
            !line.contains("validation was off") && !line.contains("no shadow decision"),
            "{line}"
        );
        for decision in ["AUTO_APPROVED", "AUTO_REJECTED", "PENDING"] {
            assert!(!line.contains(decision), "{line}");
        }
        let mut unvalidated = row("RECEIVED", "anonymous");
        unvalidated.validation_applied = None;
        unvalidated.validation_decision = None;
        assert_eq!(cohort(&unvalidated), "not validated yet");
    }

    #[test]
    fn validators_list_their_scores_and_findings_but_not_the_composite() {
        let scores = json!({
            "composite": {"score": 40, "reasons": ["r"]},
            "code_scanner": {"score": 90, "findings": [{"severity": "high", "code": "C1", "reason": "<b>x</b>"}]},
        });
        let views = validators(Some(&scores));
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].name, "code_scanner");
        assert_eq!(views[0].findings[0].reason, "<b>x</b>");
        assert_eq!(composite_reasons(Some(&scores)), vec!["r".to_string()]);
    }

    fn status(status: &str, stage: crate::events::Stage, details: Value) -> StatusEvent {
        let Value::Object(details) = details else {
            unreachable!("details are an object")
        };
        StatusEvent {
            event_id: uuid::Uuid::now_v7(),
            request_id: crate::envelope::RequestId::generate(),
            status: crate::events::PublicStatus::parse(status).expect("a status word"),
            at: Utc::now(),
            stage,
            details,
        }
    }

    #[test]
    fn a_timeline_is_followed_until_the_request_is_over_for_its_kind() {
        use crate::events::Stage::{Approvals, Authority, Gateway, Intake};
        let settled_after = |story: &[StatusEvent]| {
            (1..=story.len())
                .find(|&end| timeline_settled(&story[..end]))
                .map(|end| story[end - 1].status.to_string())
        };
        assert!(!timeline_settled(&[]));
        // An instruction: its decision ends it (it has nothing to execute).
        let instruction = [
            status("PENDING", Intake, json!({"title": "t"})),
            status("APPROVED", Approvals, json!({"decided_by": "alice"})),
        ];
        assert_eq!(settled_after(&instruction).as_deref(), Some("APPROVED"));
        // An automatic command: the end of its execution.
        let command = [
            status("PENDING", Intake, json!({"command": "docker restart api"})),
            status("APPROVED", Approvals, json!({"decided_by": "alice"})),
            status(
                "APPROVED",
                Authority,
                json!({"token_expires_at": "2026-12-04T14:00:00Z", "execution": "automatic"}),
            ),
            status("EXECUTING", Gateway, json!({})),
            status("SUCCEEDED", Gateway, json!({"exit_code": 0})),
        ];
        assert_eq!(settled_after(&command).as_deref(), Some("SUCCEEDED"));
        // A manual command: its token (its holder runs it later).
        let manual = [
            status("PENDING", Intake, json!({"command": "docker restart api"})),
            status("APPROVED", Approvals, json!({"decided_by": "alice"})),
            status(
                "APPROVED",
                Authority,
                json!({"token_expires_at": "2026-12-04T14:00:00Z", "execution": "manual"}),
            ),
        ];
        assert_eq!(settled_after(&manual).as_deref(), Some("APPROVED"));
        assert!(!timeline_settled(&manual[..2]));
        // A rejection or an expiry ends either kind.
        for end in ["REJECTED", "EXPIRED", "CANCELLED"] {
            let story = [
                status("PENDING", Intake, json!({"command": "docker restart api"})),
                status(end, Approvals, json!({})),
            ];
            assert!(timeline_settled(&story), "{end}");
        }
    }

    fn audit_row(seq: i64, prev_hash: &str) -> AuditRow {
        let mut row = AuditRow {
            seq,
            event_id: uuid::Uuid::new_v4(),
            request_id: None,
            kind: "request_received".into(),
            stage: "intake".into(),
            status: None,
            actor: "intake@test".into(),
            at: Utc::now(),
            data: Json(json!({"a": 1})),
            prev_hash: prev_hash.into(),
            hash: String::new(),
        };
        row.hash = row.expected_hash();
        row
    }

    #[test]
    fn the_chain_check_finds_an_edited_row_and_a_missing_link() {
        let first = audit_row(1, crate::store::audit::GENESIS_HASH);
        let third = audit_row(3, "feed");
        assert!(chain_check(std::slice::from_ref(&first), &[]).is_ok());
        let mut edited = first.clone();
        edited.actor = "mallory".into();
        assert!(chain_check(&[edited], &[]).unwrap_err().contains("edited"));
        assert!(
            chain_check(std::slice::from_ref(&third), &[])
                .unwrap_err()
                .contains("missing")
        );
        assert!(
            chain_check(std::slice::from_ref(&third), &[(2, "beef".into())])
                .unwrap_err()
                .contains("does not link")
        );
        assert!(chain_check(&[third], &[(2, "feed".into())]).is_ok());
    }
}

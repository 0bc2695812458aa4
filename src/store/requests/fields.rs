//! What a status move sets in `approval_requests` besides the status: [`StatusFields`], read
//! from the typed payload of the audit record that moves the request (`events::payload`), so
//! a column is fed by the very field its stage wrote. The recorder builds them; `requests`
//! writes them.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::events::AuditKind;
use crate::events::payload::{
    ApprovalDecided, Payload, RequestCancelled, RequestExpired, RequestValidated,
};

/// The fields a status move may set (absent = unchanged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusFields {
    pub validator_scores: Option<Value>,
    pub profile: Option<String>,
    pub composite_score: Option<i32>,
    pub validation_applied: Option<bool>,
    pub rollout_bucket: Option<i16>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    pub false_positive: Option<bool>,
    pub expires_at: Option<DateTime<Utc>>,
    pub validation_decision: Option<String>,
    pub validation_error: Option<bool>,
    /// Outside the cohort: what validation would have decided (shadow mode).
    pub shadow_decision: Option<String>,
}

impl StatusFields {
    /// The fields an audit record of `kind` sets, from its `data`: the kinds that move a
    /// decision carry them (validated, decided, cancelled, expired); the others set none.
    ///
    /// # Errors
    /// When the data does not read as the kind's payload (a key holds a value of another
    /// type); an absent key is only a field left unchanged.
    pub fn of(kind: AuditKind, data: &Value) -> Result<Self, serde_json::Error> {
        Ok(match kind {
            AuditKind::RequestValidated => RequestValidated::from_data(data)?.into(),
            AuditKind::ApprovalDecided => ApprovalDecided::from_data(data)?.into(),
            AuditKind::RequestCancelled => RequestCancelled::from_data(data)?.into(),
            AuditKind::RequestExpired => RequestExpired::from_data(data)?.into(),
            AuditKind::RequestReceived
            | AuditKind::MessageRejected
            | AuditKind::VoteCounted
            | AuditKind::DecisionRefused
            | AuditKind::TokenMinted
            | AuditKind::TokenRefused
            | AuditKind::ExecutionStarted
            | AuditKind::ExecutionFinished
            | AuditKind::RolloutChanged
            | AuditKind::AccessDenied => StatusFields::default(),
        })
    }
}

impl From<RequestValidated> for StatusFields {
    fn from(validated: RequestValidated) -> Self {
        Self {
            validator_scores: validated.validator_scores,
            profile: validated
                .profile
                .map(|profile| profile.as_str().to_string()),
            composite_score: validated.composite_score.map(i32::from),
            validation_applied: validated.validation_applied,
            rollout_bucket: validated.rollout_bucket.map(i16::from),
            expires_at: validated.expires_at,
            validation_decision: validated
                .validation_decision
                .map(|status| status.as_str().to_string()),
            validation_error: validated.validation_error,
            shadow_decision: validated
                .shadow
                .and_then(|shadow| shadow.shadow_decision)
                .map(|status| status.as_str().to_string()),
            ..Self::default()
        }
    }
}

impl From<ApprovalDecided> for StatusFields {
    fn from(decided: ApprovalDecided) -> Self {
        Self {
            decided_by: decided.decided_by,
            decided_at: decided.decided_at,
            decision_note: decided.note,
            false_positive: decided.false_positive,
            ..Self::default()
        }
    }
}

impl From<RequestCancelled> for StatusFields {
    fn from(cancelled: RequestCancelled) -> Self {
        Self {
            decided_by: cancelled.decided_by,
            decided_at: cancelled.decided_at,
            decision_note: cancelled.note,
            ..Self::default()
        }
    }
}

impl From<RequestExpired> for StatusFields {
    fn from(expired: RequestExpired) -> Self {
        Self {
            expires_at: expired.expires_at,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The records as the stages wrote them before their payloads were typed, and the
    /// columns `StatusFields::from_data` read from them by key.
    #[test]
    fn the_old_records_set_the_same_columns() {
        let validated = json!({
            "validator_scores": null, "profile": null, "composite_score": null, "reasons": null,
            "validation_applied": false, "validation_decision": null, "validation_error": false,
            "error": null, "rollout_bucket": 42, "rollout": "enabled, 10 %",
            "expires_at": "2026-12-04T15:00:00Z",
            "shadow_decision": "AUTO_APPROVED", "shadow_score": 91,
            "shadow_profile": "operational", "shadow_reasons": ["score 91 ≥ 85 (operational)"],
        });
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        assert_eq!(
            StatusFields::of(AuditKind::RequestValidated, &validated).unwrap(),
            StatusFields {
                // A JSON null in the record was stored as JSON null, not as SQL NULL.
                validator_scores: Some(Value::Null),
                validation_applied: Some(false),
                rollout_bucket: Some(42),
                expires_at: Some(at("2026-12-04T15:00:00Z")),
                validation_error: Some(false),
                shadow_decision: Some("AUTO_APPROVED".into()),
                ..StatusFields::default()
            }
        );
        let in_cohort = json!({
            "validator_scores": {"composite": {"score": 61}}, "profile": "operational",
            "composite_score": 61, "reasons": ["score 61 < 85 (operational)"],
            "validation_applied": true, "validation_decision": "PENDING",
            "validation_error": false, "error": null, "rollout_bucket": 3,
            "rollout": "enabled, 100 %", "expires_at": null,
        });
        assert_eq!(
            StatusFields::of(AuditKind::RequestValidated, &in_cohort).unwrap(),
            StatusFields {
                validator_scores: Some(json!({"composite": {"score": 61}})),
                profile: Some("operational".into()),
                composite_score: Some(61),
                validation_applied: Some(true),
                rollout_bucket: Some(3),
                validation_decision: Some("PENDING".into()),
                validation_error: Some(false),
                ..StatusFields::default()
            }
        );
        let decided = json!({
            "decided_by": "anna, ben", "decided_at": "2026-12-04T14:00:00.123456Z",
            "note": "checked the runbook", "false_positive": true,
            "overrides_auto_reject": true, "approvers": ["anna", "ben"],
        });
        assert_eq!(
            StatusFields::of(AuditKind::ApprovalDecided, &decided).unwrap(),
            StatusFields {
                decided_by: Some("anna, ben".into()),
                decided_at: Some(at("2026-12-04T14:00:00.123456Z")),
                decision_note: Some("checked the runbook".into()),
                false_positive: Some(true),
                ..StatusFields::default()
            }
        );
        let cancelled = json!({
            "cancelled_by": "nats:ops", "decided_by": "nats:ops",
            "decided_at": "2026-12-04T14:00:00Z", "note": null, "environment": "prd",
        });
        assert_eq!(
            StatusFields::of(AuditKind::RequestCancelled, &cancelled).unwrap(),
            StatusFields {
                decided_by: Some("nats:ops".into()),
                decided_at: Some(at("2026-12-04T14:00:00Z")),
                ..StatusFields::default()
            }
        );
        let expired = json!({"expires_at": "2026-12-04T14:00:00Z"});
        assert_eq!(
            StatusFields::of(AuditKind::RequestExpired, &expired).unwrap(),
            StatusFields {
                expires_at: Some(at("2026-12-04T14:00:00Z")),
                ..StatusFields::default()
            }
        );
    }

    /// Hand-made records (the recorder's tests publish some) carry a few keys: the others
    /// leave their columns as they are.
    #[test]
    fn a_record_with_a_few_keys_sets_only_those() {
        let validated = json!({"profile": "operational", "composite_score": 61});
        assert_eq!(
            StatusFields::of(AuditKind::RequestValidated, &validated).unwrap(),
            StatusFields {
                profile: Some("operational".into()),
                composite_score: Some(61),
                ..StatusFields::default()
            }
        );
        let decided = json!({"decided_by": "alice", "note": "checked"});
        assert_eq!(
            StatusFields::of(AuditKind::ApprovalDecided, &decided).unwrap(),
            StatusFields {
                decided_by: Some("alice".into()),
                decision_note: Some("checked".into()),
                ..StatusFields::default()
            }
        );
        for kind in [AuditKind::RequestExpired, AuditKind::RequestCancelled] {
            assert_eq!(
                StatusFields::of(kind, &json!({})).unwrap(),
                StatusFields::default()
            );
        }
        assert!(
            StatusFields::of(
                AuditKind::RequestValidated,
                &json!({"composite_score": "x"})
            )
            .is_err()
        );
    }
}

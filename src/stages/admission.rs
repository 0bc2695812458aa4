//! Which audit events the recorder admits: the pure decision behind "each audit kind is
//! accepted only from the subject and the stage that own it".
//!
//! The subject (`wingman.audit.<stage>.<kind>`) is the proof of origin: NATS lets each stage's
//! user publish only under its own stage. The body is a claim. An event is admitted when its
//! subject parses, the subject's stage owns the kind ([`AUDIT_OWNERS`]), the body names the
//! same stage and kind, and the status it sets (if any) is one its kind may set. Anything else
//! is a forgery: the recorder dead-letters it, audits the refusal and counts it.

use std::fmt;

use crate::events::{AUDIT_OWNERS, AuditKind, AuditRecord, Stage};
use crate::status::Status;

/// Why an audit event was refused. `code` is a metric label (a small fixed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    /// The subject is not `<prefix>.audit.<stage>.<kind>` with a known stage and kind.
    UnparsableSubject,
    /// The subject's stage does not own the kind (an api user writing `request_received`).
    KindNotOwned { stage: Stage, kind: AuditKind },
    /// The body claims another stage than the subject proves.
    StageMismatch { subject: Stage, body: Stage },
    /// The body claims another kind than its subject.
    KindMismatch { subject: AuditKind, body: AuditKind },
    /// The body moves the request to a status its kind never sets.
    StatusNotOwned { kind: AuditKind, status: Status },
}

impl Forgery {
    pub const CODES: [&'static str; 5] = [
        "audit_subject_unparsable",
        "audit_kind_not_owned",
        "audit_stage_mismatch",
        "audit_kind_mismatch",
        "audit_status_not_owned",
    ];

    pub fn code(self) -> &'static str {
        match self {
            Forgery::UnparsableSubject => Self::CODES[0],
            Forgery::KindNotOwned { .. } => Self::CODES[1],
            Forgery::StageMismatch { .. } => Self::CODES[2],
            Forgery::KindMismatch { .. } => Self::CODES[3],
            Forgery::StatusNotOwned { .. } => Self::CODES[4],
        }
    }
}

impl fmt::Display for Forgery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Forgery::UnparsableSubject => {
                write!(f, "audit subject is not <prefix>.audit.<stage>.<kind>")
            }
            Forgery::KindNotOwned { stage, kind } => write!(
                f,
                "stage {} does not own audit kind {}",
                stage.as_str(),
                kind.as_str()
            ),
            Forgery::StageMismatch { subject, body } => write!(
                f,
                "body stage {} differs from the subject's stage {}",
                body.as_str(),
                subject.as_str()
            ),
            Forgery::KindMismatch { subject, body } => write!(
                f,
                "body kind {} differs from the subject's kind {}",
                body.as_str(),
                subject.as_str()
            ),
            Forgery::StatusNotOwned { kind, status } => write!(
                f,
                "audit kind {} never sets status {}",
                kind.as_str(),
                status.as_str()
            ),
        }
    }
}

/// Admits `record` arriving on a subject that parsed to `source` (`None`: it did not parse);
/// returns the proven stage.
pub fn admit(source: Option<(Stage, AuditKind)>, record: &AuditRecord) -> Result<Stage, Forgery> {
    let (stage, kind) = source.ok_or(Forgery::UnparsableSubject)?;
    if !owns(stage, kind) {
        return Err(Forgery::KindNotOwned { stage, kind });
    }
    if record.stage != stage {
        return Err(Forgery::StageMismatch {
            subject: stage,
            body: record.stage,
        });
    }
    if record.kind != kind {
        return Err(Forgery::KindMismatch {
            subject: kind,
            body: record.kind,
        });
    }
    if let Some(status) = record.status
        && !kind.moves().contains(&status)
    {
        return Err(Forgery::StatusNotOwned { kind, status });
    }
    // The records carried in the same message are the same stage's: each kind must be one
    // that stage owns, each status one its kind may set.
    for chained in &record.then {
        if !owns(stage, chained.kind) {
            return Err(Forgery::KindNotOwned {
                stage,
                kind: chained.kind,
            });
        }
        if let Some(status) = chained.status
            && !chained.kind.moves().contains(&status)
        {
            return Err(Forgery::StatusNotOwned {
                kind: chained.kind,
                status,
            });
        }
    }
    Ok(stage)
}

/// Whether `stage` owns `kind` in [`AUDIT_OWNERS`].
pub fn owns(stage: Stage, kind: AuditKind) -> bool {
    AUDIT_OWNERS
        .iter()
        .any(|(owner, kinds)| *owner == stage && kinds.contains(&kind))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(stage: Stage, kind: AuditKind, status: Option<Status>) -> AuditRecord {
        AuditRecord {
            kind,
            stage,
            status,
            actor: "test".into(),
            data: json!({}),
            then: Vec::new(),
        }
    }

    fn chained(kind: AuditKind, status: Option<Status>) -> crate::events::ChainedRecord {
        crate::events::ChainedRecord {
            event_id: uuid::Uuid::now_v7(),
            kind,
            status,
            data: json!({}),
        }
    }

    #[test]
    fn a_record_carried_in_another_stages_message_is_refused() {
        let mut step = record(
            Stage::Intake,
            AuditKind::RequestReceived,
            Some(Status::Received),
        );
        step.then
            .push(chained(AuditKind::RequestValidated, Some(Status::Pending)));
        assert_eq!(
            admit(Some((Stage::Intake, AuditKind::RequestReceived)), &step),
            Ok(Stage::Intake)
        );
        // The API may record access_denied, but cannot slip an approval into its message.
        let mut planted = record(Stage::Api, AuditKind::AccessDenied, None);
        planted
            .then
            .push(chained(AuditKind::ApprovalDecided, Some(Status::Approved)));
        assert_eq!(
            admit(Some((Stage::Api, AuditKind::AccessDenied)), &planted),
            Err(Forgery::KindNotOwned {
                stage: Stage::Api,
                kind: AuditKind::ApprovalDecided
            })
        );
        // Nor can intake carry a status its kind never sets.
        step.then
            .push(chained(AuditKind::RequestValidated, Some(Status::Approved)));
        assert_eq!(
            admit(Some((Stage::Intake, AuditKind::RequestReceived)), &step),
            Err(Forgery::StatusNotOwned {
                kind: AuditKind::RequestValidated,
                status: Status::Approved
            })
        );
    }

    #[test]
    fn an_event_from_the_stage_that_owns_its_kind_is_admitted() {
        for (stage, kinds) in AUDIT_OWNERS {
            for kind in *kinds {
                let status = kind.moves().first().copied();
                assert_eq!(
                    admit(Some((*stage, *kind)), &record(*stage, *kind, status)),
                    Ok(*stage)
                );
            }
        }
    }

    #[test]
    fn an_unparsable_subject_is_refused() {
        let planted = record(Stage::Intake, AuditKind::RequestReceived, None);
        assert_eq!(admit(None, &planted), Err(Forgery::UnparsableSubject));
    }

    #[test]
    fn a_kind_its_stage_does_not_own_is_refused() {
        let planted = record(
            Stage::Api,
            AuditKind::RequestReceived,
            Some(Status::Received),
        );
        let refused = admit(Some((Stage::Api, AuditKind::RequestReceived)), &planted);
        assert_eq!(
            refused,
            Err(Forgery::KindNotOwned {
                stage: Stage::Api,
                kind: AuditKind::RequestReceived
            })
        );
        assert_eq!(refused.unwrap_err().code(), "audit_kind_not_owned");
        let cli = record(Stage::Cli, AuditKind::RolloutChanged, None);
        assert!(admit(Some((Stage::Cli, AuditKind::RolloutChanged)), &cli).is_err());
    }

    #[test]
    fn a_body_that_lies_about_its_stage_is_refused() {
        let planted = record(Stage::Intake, AuditKind::MessageRejected, None);
        assert_eq!(
            admit(Some((Stage::Api, AuditKind::MessageRejected)), &planted),
            Err(Forgery::StageMismatch {
                subject: Stage::Api,
                body: Stage::Intake
            })
        );
    }

    #[test]
    fn a_body_that_lies_about_its_kind_is_refused() {
        let planted = record(Stage::Api, AuditKind::RequestReceived, None);
        assert_eq!(
            admit(Some((Stage::Api, AuditKind::AccessDenied)), &planted),
            Err(Forgery::KindMismatch {
                subject: AuditKind::AccessDenied,
                body: AuditKind::RequestReceived
            })
        );
    }

    #[test]
    fn a_status_its_kind_never_sets_is_refused() {
        let planted = record(
            Stage::Api,
            AuditKind::MessageRejected,
            Some(Status::Approved),
        );
        assert_eq!(
            admit(Some((Stage::Api, AuditKind::MessageRejected)), &planted),
            Err(Forgery::StatusNotOwned {
                kind: AuditKind::MessageRejected,
                status: Status::Approved
            })
        );
        let validator = record(
            Stage::Intake,
            AuditKind::RequestValidated,
            Some(Status::Approved),
        );
        assert!(
            admit(
                Some((Stage::Intake, AuditKind::RequestValidated)),
                &validator
            )
            .is_err()
        );
    }

    #[test]
    fn every_refusal_has_its_own_code() {
        let mut codes = Forgery::CODES.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Forgery::CODES.len());
    }

    /// The user that publishes as `stage`: each worker's user is named after its stage.
    fn user_of(stage: Stage) -> &'static str {
        stage.as_str()
    }

    /// `"wingman.audit.…"` entries of each `<NAME>_PERMISSIONS` block of `nats/auth.conf`,
    /// by the user that block belongs to.
    fn audit_permissions_by_user(conf: &str) -> Vec<(String, Vec<String>)> {
        let mut users = Vec::new();
        for line in conf.lines() {
            let line = line.trim();
            let (Some(user), Some(block)) = (
                line.split("user: ")
                    .nth(1)
                    .and_then(|rest| rest.split(',').next()),
                line.split("permissions: $").nth(1),
            ) else {
                continue;
            };
            let block = block.trim_end_matches(['}', ' ']);
            let start = conf
                .find(&format!("{block} = {{"))
                .unwrap_or_else(|| panic!("{block} is not defined in auth.conf"));
            let body = &conf[start..];
            let end = body.find("\n}").expect("a permissions block ends with `}`");
            let audit = body[..end]
                .lines()
                .map(str::trim)
                .filter(|entry| !entry.starts_with('#'))
                .filter_map(|entry| entry.split('"').nth(1))
                .filter(|subject| subject.starts_with("wingman.audit"))
                .map(str::to_string)
                .collect();
            users.push((user.trim().to_string(), audit));
        }
        users
    }

    #[test]
    fn auth_conf_lets_each_stage_publish_audit_only_under_its_own_stage() {
        let conf = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/nats/auth.conf"));
        let users = audit_permissions_by_user(conf);
        assert!(users.len() >= 9, "read the users of auth.conf: {users:?}");
        for (user, audit) in &users {
            let stage = Stage::ALL.into_iter().find(|stage| user_of(*stage) == user);
            let expected: Vec<String> = match stage {
                Some(stage) if !stage.audit_kinds().is_empty() => {
                    vec![format!("wingman.audit.{}.>", stage.as_str())]
                }
                _ => Vec::new(),
            };
            assert_eq!(
                audit, &expected,
                "user {user} may publish these audit subjects"
            );
        }
        for (stage, kinds) in AUDIT_OWNERS {
            if kinds.is_empty() {
                continue;
            }
            assert!(
                users.iter().any(|(user, _)| user == user_of(*stage)),
                "no user of auth.conf publishes the audit of {}",
                stage.as_str()
            );
        }
    }
}

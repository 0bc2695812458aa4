//! The typed events on the bus, one per subject family.
//!
//! | subject | payload |
//! | --- | --- |
//! | `wingman.requests.submitted.<principal>` | the public request JSON ([`crate::request`]), no envelope; the suffix is who submitted ([`crate::identity`]) |
//! | `wingman.requests.validated.<route>` | `Envelope<Validated>` (`human`: PENDING or AUTO_REJECTED, for approvals; `auto`: AUTO_APPROVED with a command, for the authority) |
//! | `wingman.approvals.decided` | `Envelope<Decided>` |
//! | `wingman.exec.jobs` | `Envelope<ExecJob>` |
//! | `wingman.audit.<stage>.<kind>` | `Envelope<AuditRecord>` (the stage that owns the kind, [`AUDIT_OWNERS`]) |
//! | `wingman.status.<request_id>` | [`StatusEvent`] (flat, for publishers; its word a [`PublicStatus`]) |
//! | `wingman.output.<principal>.<request_id>` | `Envelope<ExecutionOutput>` (the requester only) |
//! | `wingman.dlq.<stage>` | [`DeadLetter`] |

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::envelope::RequestId;
use crate::request::Request;
use crate::status::Status;

pub mod payload;
mod status_event;

pub use status_event::{PublicStatus, StatusEvent};

/// The stages of the pipeline; each word is used for its module, worker, consumer and label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Intake,
    Approvals,
    Authority,
    Gateway,
    Recorder,
    Watcher,
    Api,
    Cli,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Intake,
        Stage::Approvals,
        Stage::Authority,
        Stage::Gateway,
        Stage::Recorder,
        Stage::Watcher,
        Stage::Api,
        Stage::Cli,
    ];

    /// The stage named `word` (`intake`, …), as in a subject.
    pub fn parse(word: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.as_str() == word)
    }

    /// The audit kinds this stage may record ([`AUDIT_OWNERS`]).
    pub fn audit_kinds(self) -> &'static [AuditKind] {
        AUDIT_OWNERS
            .iter()
            .find(|(stage, _)| *stage == self)
            .map_or(&[], |(_, kinds)| *kinds)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Intake => "intake",
            Stage::Approvals => "approvals",
            Stage::Authority => "authority",
            Stage::Gateway => "gateway",
            Stage::Recorder => "recorder",
            Stage::Watcher => "watcher",
            Stage::Api => "api",
            Stage::Cli => "cli",
        }
    }
}

/// `wingman.requests.validated.<route>`: intake's decision (or PENDING for a human when the
/// request is outside the validated cohort or validation failed). Published only where
/// somebody acts on it: `human` (PENDING, AUTO_REJECTED) for approvals, `auto` (AUTO_APPROVED
/// with a command) for the authority; an auto-approved instruction ends at the audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validated {
    pub request: Request,
    /// AUTO_APPROVED, AUTO_REJECTED or PENDING.
    pub status: Status,
    pub validation_applied: bool,
    pub rollout_bucket: u8,
    /// Per-validator scores and findings (absent when validation was not applied or failed).
    pub validator_scores: Option<Value>,
    /// Why validation failed, when it did (the request then waits for a human).
    pub validation_error: Option<String>,
    /// When a PENDING request expires without a decision.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Where a decision goes next: the last token of `wingman.requests.validated.<route>`, so
/// each consumer receives only what it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// PENDING or AUTO_REJECTED: approvals asks a human.
    Human,
    /// AUTO_APPROVED with a command: the authority mints its token.
    Auto,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Human => "human",
            Route::Auto => "auto",
        }
    }
}

/// `wingman.approvals.decided`: a human decision (Telegram or the console approver).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    pub request: Request,
    /// APPROVED or REJECTED.
    pub decision: Status,
    /// Who decided (`telegram:<user id>`, `cli:<name>`); two for prd when so configured.
    pub approvers: Vec<String>,
    pub note: Option<String>,
    /// An approval of an AUTO_REJECTED request: a false positive of the validators.
    pub overrides_auto_reject: bool,
    pub decided_at: DateTime<Utc>,
}

/// `wingman.exec.jobs`: an approved request with its capability token, for the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecJob {
    pub request: Request,
    /// PASETO v4.public, minted by the authority for exactly this request and command.
    pub token: String,
    pub token_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// `wingman.output.<principal>.<request_id>`: what an executed operation printed (bounded and
/// redacted by the engine), for the principal that submitted the request only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionOutput {
    pub output: String,
}

/// What an audit event records. The set is small and fixed: it is a metric label too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A valid request entered the pipeline (`data.request` holds it).
    RequestReceived,
    /// A message was refused as invalid or unprocessable and dead-lettered.
    MessageRejected,
    RequestValidated,
    ApprovalDecided,
    /// An approval that counted but did not decide yet (prd needs two distinct approvers):
    /// who approved, through which credential and channel, with their note.
    VoteCounted,
    DecisionRefused,
    RequestExpired,
    /// The principal that submitted a request withdrew it before a decision (`wingman cancel`).
    RequestCancelled,
    TokenMinted,
    TokenRefused,
    ExecutionStarted,
    ExecutionFinished,
    RolloutChanged,
    AccessDenied,
}

impl AuditKind {
    pub const ALL: [AuditKind; 14] = [
        AuditKind::RequestReceived,
        AuditKind::MessageRejected,
        AuditKind::RequestValidated,
        AuditKind::ApprovalDecided,
        AuditKind::VoteCounted,
        AuditKind::DecisionRefused,
        AuditKind::RequestExpired,
        AuditKind::RequestCancelled,
        AuditKind::TokenMinted,
        AuditKind::TokenRefused,
        AuditKind::ExecutionStarted,
        AuditKind::ExecutionFinished,
        AuditKind::RolloutChanged,
        AuditKind::AccessDenied,
    ];

    /// The kind named `word` (`request_received`, …), as in a subject.
    pub fn parse(word: &str) -> Option<AuditKind> {
        AuditKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == word)
    }

    /// The statuses an event of this kind may move a request to; an event that claims any
    /// other status is a forgery.
    pub fn moves(self) -> &'static [Status] {
        match self {
            AuditKind::RequestReceived => &[Status::Received],
            AuditKind::RequestValidated => {
                &[Status::AutoApproved, Status::AutoRejected, Status::Pending]
            }
            AuditKind::ApprovalDecided => &[Status::Approved, Status::Rejected],
            AuditKind::RequestExpired => &[Status::Expired],
            AuditKind::RequestCancelled => &[Status::Cancelled],
            AuditKind::ExecutionStarted => &[Status::Executing],
            AuditKind::ExecutionFinished => {
                &[Status::Succeeded, Status::Failed, Status::Indeterminate]
            }
            AuditKind::MessageRejected
            | AuditKind::VoteCounted
            | AuditKind::DecisionRefused
            | AuditKind::TokenMinted
            | AuditKind::TokenRefused
            | AuditKind::RolloutChanged
            | AuditKind::AccessDenied => &[],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::RequestReceived => "request_received",
            AuditKind::MessageRejected => "message_rejected",
            AuditKind::RequestValidated => "request_validated",
            AuditKind::ApprovalDecided => "approval_decided",
            AuditKind::VoteCounted => "vote_counted",
            AuditKind::DecisionRefused => "decision_refused",
            AuditKind::RequestExpired => "request_expired",
            AuditKind::RequestCancelled => "request_cancelled",
            AuditKind::TokenMinted => "token_minted",
            AuditKind::TokenRefused => "token_refused",
            AuditKind::ExecutionStarted => "execution_started",
            AuditKind::ExecutionFinished => "execution_finished",
            AuditKind::RolloutChanged => "rollout_changed",
            AuditKind::AccessDenied => "access_denied",
        }
    }
}

/// Which stage owns which audit kinds: the one list everything else derives from. An audit
/// event travels on `wingman.audit.<stage>.<kind>`; in `nats/auth.conf` each stage's user may
/// publish only under `wingman.audit.<its stage>.>` (a test reads the file against this
/// table), and the recorder admits an event only when the stage of its subject owns its kind
/// and its body says the same stage and kind (`stages::admission`). Every stage may record
/// the `message_rejected` of a message it dead-letters; the watcher does not consume, the
/// CLI owns nothing (rollout changes are audited by the watcher).
pub const AUDIT_OWNERS: &[(Stage, &[AuditKind])] = &[
    (
        Stage::Intake,
        &[
            AuditKind::RequestReceived,
            AuditKind::RequestValidated,
            AuditKind::MessageRejected,
        ],
    ),
    (
        Stage::Approvals,
        &[
            AuditKind::ApprovalDecided,
            AuditKind::VoteCounted,
            AuditKind::RequestCancelled,
            AuditKind::DecisionRefused,
            AuditKind::AccessDenied,
            AuditKind::MessageRejected,
        ],
    ),
    (
        Stage::Authority,
        &[AuditKind::TokenMinted, AuditKind::MessageRejected],
    ),
    (
        Stage::Gateway,
        &[
            AuditKind::ExecutionStarted,
            AuditKind::ExecutionFinished,
            AuditKind::TokenRefused,
            AuditKind::AccessDenied,
            AuditKind::MessageRejected,
        ],
    ),
    (Stage::Recorder, &[AuditKind::MessageRejected]),
    (
        Stage::Watcher,
        &[AuditKind::RequestExpired, AuditKind::RolloutChanged],
    ),
    (
        Stage::Api,
        &[AuditKind::AccessDenied, AuditKind::MessageRejected],
    ),
    (Stage::Cli, &[]),
];

/// `wingman.audit.<stage>.<kind>`: one step of one request's story, persisted by the recorder.
/// Audit events about no particular request (a message without a readable id) carry the
/// nil request id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub kind: AuditKind,
    pub stage: Stage,
    /// The request's status after this step, when the step moves it (one of `kind.moves()`).
    pub status: Option<Status>,
    /// Which worker process did it (`intake@host:pid`), for forensics.
    pub actor: String,
    /// What the step records, as stored and hashed: a [`payload`] struct's JSON for the kinds
    /// someone reads back, free-form for the others.
    pub data: Value,
    /// Later records of the same step, carried in the same message so a step stores one
    /// audit message: the recorder appends each right after this one, in order, as a row of
    /// its own with its own (derived) id, admitted like this one (its kind owned by the
    /// subject's stage, its status one its kind may set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<ChainedRecord>,
}

/// A later record of the same step as the [`AuditRecord`] that carries it: same request,
/// stage, actor and time; its own id, kind, status and data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainedRecord {
    pub event_id: Uuid,
    pub kind: AuditKind,
    pub status: Option<Status>,
    pub data: Value,
}

impl crate::envelope::Envelope<AuditRecord> {
    /// This event and the records it carries, each as an event of its own, in order.
    pub fn into_records(mut self) -> Vec<crate::envelope::Envelope<AuditRecord>> {
        let chained = std::mem::take(&mut self.body.then);
        let mut records = Vec::with_capacity(1 + chained.len());
        let (request_id, at, version) = (self.request_id, self.at, self.version);
        let (stage, actor) = (self.body.stage, self.body.actor.clone());
        records.push(self);
        for record in chained {
            records.push(crate::envelope::Envelope {
                version,
                event_id: record.event_id,
                request_id,
                at,
                body: AuditRecord {
                    kind: record.kind,
                    stage,
                    status: record.status,
                    actor: actor.clone(),
                    data: record.data,
                    then: Vec::new(),
                },
            });
        }
        records
    }
}

/// `wingman.dlq.<stage>`: a message a stage refused for good, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub event_id: Uuid,
    pub stage: Stage,
    pub code: String,
    pub reason: String,
    pub subject: String,
    pub stream_sequence: u64,
    pub delivered: u64,
    pub request_id: Option<RequestId>,
    pub at: DateTime<Utc>,
    /// The message as received (lossy UTF-8, cut at 8 KiB).
    pub payload: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_and_kind_parses_back_from_its_word() {
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        }
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Stage::parse("Intake"), None);
        assert_eq!(AuditKind::parse("request"), None);
    }

    #[test]
    fn every_audit_kind_has_an_owner_and_every_stage_one_row() {
        for kind in AuditKind::ALL {
            assert!(
                Stage::ALL
                    .iter()
                    .any(|stage| stage.audit_kinds().contains(&kind)),
                "{} has no owning stage",
                kind.as_str()
            );
        }
        for stage in Stage::ALL {
            let rows = AUDIT_OWNERS.iter().filter(|(owner, _)| *owner == stage);
            assert_eq!(rows.count(), 1, "{} must have one row", stage.as_str());
        }
        assert!(
            Stage::Intake
                .audit_kinds()
                .contains(&AuditKind::RequestReceived)
        );
        assert!(
            !Stage::Api
                .audit_kinds()
                .contains(&AuditKind::RequestReceived)
        );
        assert!(Stage::Cli.audit_kinds().is_empty());
    }
}

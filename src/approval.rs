//! Human decisions: the rules every approver goes through, on Telegram or at the console.
//!
//! A request waiting for a human has an [`ApprovalRecord`] in the `approvals` KV bucket
//! (written by the approvals stage). A decision is taken once: the first approve/reject
//! creates `decision.<request_id>` in the claims bucket (a KV `create`, atomic); a second
//! click, a second approver, a replay or a late vote changes nothing and is told who won.
//! Only allow-listed approvers decide, never the requester, and in prd optionally two.

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};

use crate::bus::Bus;
use crate::bus::publish::publish_all;
use crate::envelope::RequestId;
use crate::events::{AuditKind, Decided, Stage};
use crate::request::{Environment, Request};
use crate::stages::Step;
use crate::stages::authority::DecisionClaim;
use crate::status::Status;

pub const BUCKET: &str = "wingman_approvals";

/// A request waiting for a human, as the approvals stage recorded it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub request: Request,
    /// PENDING, or AUTO_REJECTED (which a human may override).
    pub status: Status,
    pub composite_score: Option<i64>,
    pub profile: Option<String>,
    /// The validators' reasons and top findings, for the prompt.
    pub reasons: Vec<String>,
    pub findings: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When it started waiting for a human (approval latency is measured from here).
    pub pending_since: DateTime<Utc>,
    /// The single-use nonce in the buttons of this request's prompts.
    pub nonce: String,
    /// Telegram messages showing this request (chat id, message id).
    #[serde(default)]
    pub messages: Vec<(i64, i32)>,
    /// Approvals so far (prd may need two distinct ones).
    #[serde(default)]
    pub votes: Vec<String>,
    /// What happened since the prompt (decision, expiry, execution), shown under it.
    #[serde(default)]
    pub outcomes: Vec<String>,
}

/// Who may decide and how many must agree.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Approver ids allowed to decide (`telegram:<user id>`, `cli:<name>`). Empty: nobody.
    pub approvers: Vec<String>,
    /// Distinct approvals a prd request needs (`WINGMAN_PRD_APPROVALS`, default 1).
    pub prd_approvals: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

/// One approver's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vote {
    pub request_id: RequestId,
    pub approver: String,
    /// A display name for messages ("Anna (telegram:42)").
    pub display: String,
    pub verdict: Verdict,
    /// Required to reject and to override an auto-rejection; optional to approve.
    pub note: Option<String>,
}

/// What a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The request is now APPROVED or REJECTED.
    Decided {
        status: Status,
        approvers: Vec<String>,
        false_positive: bool,
    },
    /// Recorded; more approvals are needed (prd with two approvers).
    Counted { have: usize, need: usize },
}

/// Why a vote changed nothing. Every refusal is audited by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not authorized: {0} is not on the approver list")]
    NotAuthorized(String),
    #[error("a requester cannot approve their own request")]
    OwnRequest,
    #[error("a reason is required to {0}")]
    ReasonRequired(&'static str),
    #[error("unknown request {0} (not waiting for a decision)")]
    Unknown(RequestId),
    #[error("already {status} by {by} at {at}")]
    AlreadyDecided {
        status: Status,
        by: String,
        at: String,
    },
    #[error("expired at {0}: default deny")]
    Expired(String),
    #[error("{0} already approved; a different approver is needed")]
    SameApprover(String),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotAuthorized(_) => "not_authorized",
            Refusal::OwnRequest => "own_request",
            Refusal::ReasonRequired(_) => "reason_required",
            Refusal::Unknown(_) => "unknown_request",
            Refusal::AlreadyDecided { .. } => "already_decided",
            Refusal::Expired(_) => "expired",
            Refusal::SameApprover(_) => "same_approver",
        }
    }
}

/// The stores a decision needs.
#[derive(Clone)]
pub struct Desk {
    pub bus: Bus,
    /// `decision.<request_id>`: the once-only claim the authority checks.
    pub claims: kv::Store,
    /// `request.<id>` records and `nonce.<nonce>` → request id.
    pub approvals: kv::Store,
    pub rules: Rules,
    pub actor: String,
}

impl Desk {
    pub async fn record(
        &self,
        request_id: RequestId,
    ) -> anyhow::Result<Option<(ApprovalRecord, u64)>> {
        let entry = self
            .approvals
            .entry(format!("request.{request_id}"))
            .await
            .map_err(|error| anyhow::anyhow!("read the approval record: {error}"))?;
        match entry.filter(|entry| entry.operation == kv::Operation::Put) {
            None => Ok(None),
            Some(entry) => Ok(Some((
                serde_json::from_slice(&entry.value)?,
                entry.revision,
            ))),
        }
    }

    pub async fn request_for_nonce(&self, nonce: &str) -> anyhow::Result<Option<RequestId>> {
        let value = self
            .approvals
            .get(format!("nonce.{nonce}"))
            .await
            .map_err(|error| anyhow::anyhow!("read the nonce: {error}"))?;
        Ok(value.and_then(|bytes| String::from_utf8_lossy(&bytes).parse().ok()))
    }

    /// The decision already taken on a request, if any.
    pub async fn decision(&self, request_id: RequestId) -> anyhow::Result<Option<DecisionClaim>> {
        let value = self
            .claims
            .get(format!("decision.{request_id}"))
            .await
            .map_err(|error| anyhow::anyhow!("read the decision: {error}"))?;
        Ok(value.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Applies the rules to one vote; on a decision, publishes it (the authority acts on it)
    /// with its audit and status events. Refusals are audited here too.
    pub async fn vote(&self, vote: &Vote) -> anyhow::Result<Result<Decision, Refusal>> {
        let outcome = self.try_vote(vote).await?;
        if let Err(refusal) = &outcome {
            self.audit_refusal(vote, refusal).await?;
        }
        Ok(outcome)
    }

    async fn try_vote(&self, vote: &Vote) -> anyhow::Result<Result<Decision, Refusal>> {
        if !self
            .rules
            .approvers
            .iter()
            .any(|approver| approver == &vote.approver)
        {
            return Ok(Err(Refusal::NotAuthorized(vote.approver.clone())));
        }
        let Some((mut record, revision)) = self.record(vote.request_id).await? else {
            return Ok(Err(Refusal::Unknown(vote.request_id)));
        };
        if let Some(claim) = self.decision(vote.request_id).await? {
            return Ok(Err(already(&claim)));
        }
        if vote
            .approver
            .ends_with(&format!(":{}", record.request.requester))
            || vote.approver == record.request.requester
        {
            return Ok(Err(Refusal::OwnRequest));
        }
        let overriding = record.status == Status::AutoRejected;
        let note = vote
            .note
            .as_deref()
            .map(str::trim)
            .filter(|note| !note.is_empty());
        match (vote.verdict, overriding) {
            (Verdict::Reject, _) if note.is_none() => {
                return Ok(Err(Refusal::ReasonRequired("reject")));
            }
            (Verdict::Approve, true) if note.is_none() => {
                return Ok(Err(Refusal::ReasonRequired("override an auto-rejection")));
            }
            (Verdict::Reject, true) => return Ok(Err(already_rejected_by_validators())),
            _ => {}
        }
        if let Some(expires_at) = record
            .expires_at
            .filter(|at| *at <= Utc::now() && !overriding)
        {
            return Ok(Err(Refusal::Expired(
                expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            )));
        }
        let mut approvers = record.votes.clone();
        if vote.verdict == Verdict::Approve {
            let need = if record.request.environment == Environment::Prd {
                self.rules.prd_approvals.max(1)
            } else {
                1
            };
            if approvers.contains(&vote.approver) {
                return Ok(Err(Refusal::SameApprover(vote.display.clone())));
            }
            approvers.push(vote.approver.clone());
            if approvers.len() < need {
                record.votes = approvers.clone();
                // A concurrent vote makes this CAS fail: the caller's retry re-reads.
                self.approvals
                    .update(
                        format!("request.{}", vote.request_id),
                        serde_json::to_vec(&record)?.into(),
                        revision,
                    )
                    .await
                    .map_err(|error| anyhow::anyhow!("record the vote: {error}"))?;
                return Ok(Ok(Decision::Counted {
                    have: approvers.len(),
                    need,
                }));
            }
        } else {
            approvers = vec![vote.approver.clone()];
        }
        let status = if vote.verdict == Verdict::Approve {
            Status::Approved
        } else {
            Status::Rejected
        };
        let claim = DecisionClaim {
            decision: status,
            approvers: approvers.clone(),
            at: crate::envelope::now(),
        };
        match self
            .claims
            .create(
                format!("decision.{}", vote.request_id),
                serde_json::to_vec(&claim)?.into(),
            )
            .await
        {
            Ok(_) => {}
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                let winner = self
                    .decision(vote.request_id)
                    .await?
                    .map(|claim| already(&claim));
                return Ok(Err(winner.unwrap_or(Refusal::Unknown(vote.request_id))));
            }
            Err(error) => anyhow::bail!("claim the decision: {error}"),
        }
        self.publish_decision(&record, status, &claim, note, overriding)
            .await?;
        Ok(Ok(Decision::Decided {
            status,
            approvers,
            false_positive: overriding && status == Status::Approved,
        }))
    }

    async fn publish_decision(
        &self,
        record: &ApprovalRecord,
        status: Status,
        claim: &DecisionClaim,
        note: Option<&str>,
        overriding: bool,
    ) -> anyhow::Result<()> {
        let request = &record.request;
        let false_positive = overriding && status == Status::Approved;
        let step = Step {
            subjects: &self.bus.subjects,
            stage: Stage::Approvals,
            actor: &self.actor,
            request_id: request.request_id,
            origin: claim.at,
        };
        let decided = Decided {
            request: request.clone(),
            decision: status,
            approvers: claim.approvers.clone(),
            note: note.map(str::to_string),
            overrides_auto_reject: overriding,
            decided_at: claim.at,
        };
        let by = claim.approvers.join(", ");
        let mut details = Map::new();
        details.insert("decided_by".into(), json!(by));
        if let Some(note) = note {
            details.insert("note".into(), json!(note));
        }
        if false_positive {
            details.insert("false_positive".into(), json!(true));
        }
        publish_all(
            &self.bus.js,
            &[
                step.event(self.bus.subjects.decided(), "decided", decided),
                step.audit(
                    AuditKind::ApprovalDecided,
                    Some(status),
                    json!({
                        "decided_by": by,
                        "decided_at": claim.at,
                        "note": note,
                        "false_positive": false_positive,
                        "overrides_auto_reject": overriding,
                        "approvers": claim.approvers,
                    }),
                ),
                step.status(status.as_str(), details),
            ],
        )
        .await?;
        let via = if claim.approvers.iter().all(|a| a.starts_with("telegram:")) {
            "telegram"
        } else {
            "cli"
        };
        crate::metrics::approval_decided(status.as_str(), via);
        if false_positive {
            crate::metrics::false_positive(request.environment.as_str());
        }
        let waited = claim.at - record.pending_since;
        crate::metrics::approval_latency(
            request.environment.as_str(),
            waited.to_std().unwrap_or_default(),
        );
        Ok(())
    }

    async fn audit_refusal(&self, vote: &Vote, refusal: &Refusal) -> anyhow::Result<()> {
        let kind = if matches!(refusal, Refusal::NotAuthorized(_)) {
            AuditKind::AccessDenied
        } else {
            AuditKind::DecisionRefused
        };
        let data = json!({ "approver": vote.approver, "verdict": vote.verdict, "code": refusal.code(), "reason": refusal.to_string() });
        crate::stages::publish_audit(
            &self.bus,
            Some(vote.request_id),
            kind,
            Stage::Approvals,
            &self.actor,
            data,
        )
        .await
    }
}

fn already(claim: &DecisionClaim) -> Refusal {
    Refusal::AlreadyDecided {
        status: claim.decision,
        by: claim.approvers.join(", "),
        at: claim.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

fn already_rejected_by_validators() -> Refusal {
    Refusal::AlreadyDecided {
        status: Status::AutoRejected,
        by: "the validators".into(),
        at: "validation".into(),
    }
}

impl Rules {
    /// `TELEGRAM_APPROVER_IDS` (Telegram user ids) and `WINGMAN_CONSOLE_APPROVERS` (names for
    /// the console approver), comma-separated; `WINGMAN_PRD_APPROVALS` (default 1).
    pub fn from_env() -> anyhow::Result<Self> {
        let list = |name: &str| -> Vec<String> {
            crate::config::var(name)
                .map(|text| {
                    text.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut approvers = Vec::new();
        for id in list("TELEGRAM_APPROVER_IDS") {
            id.parse::<u64>().map_err(|_| {
                anyhow::anyhow!("TELEGRAM_APPROVER_IDS: `{id}` is not a Telegram user id")
            })?;
            approvers.push(format!("telegram:{id}"));
        }
        approvers.extend(
            list("WINGMAN_CONSOLE_APPROVERS")
                .into_iter()
                .map(|name| format!("cli:{name}")),
        );
        let prd_approvals =
            crate::config::parse_var::<usize>("WINGMAN_PRD_APPROVALS")?.unwrap_or(1);
        anyhow::ensure!(
            (1..=5).contains(&prd_approvals),
            "WINGMAN_PRD_APPROVALS must be 1 to 5, got {prd_approvals}"
        );
        Ok(Self {
            approvers,
            prd_approvals,
        })
    }
}

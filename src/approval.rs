//! Human decisions: the rules every approver goes through, on Telegram, at the console or
//! through the HTTP API (and its web console).
//!
//! A request waiting for a human has an [`ApprovalRecord`] in the `approvals` KV bucket
//! (written by the approvals stage). A decision is taken once: the first approve/reject
//! creates `decision.<request_id>` in the claims bucket (a KV `create`, atomic); a second
//! click, a second approver, a replay or a late vote changes nothing and is told who won.
//! Only allow-listed approvers decide, never the requester, and in prd optionally two.

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::bus::Bus;
use crate::bus::publish::publish_all;
use crate::bus::step::Step;
use crate::claims::{self, Created, DecisionClaim, Key};
use crate::envelope::RequestId;
use crate::events::payload::{ApprovalDecided, RequestCancelled};
use crate::events::{AuditKind, Decided, Stage};
use crate::identity::api_vote::{ApiVote, Outcome, VoteAnswer};
use crate::identity::console_vote::{self, SignedVote};
use crate::identity::roster::{Approver, Roster, RosterStore};
use crate::principal::Principal;
use crate::request::{Environment, Request};
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
    /// Approvers (roster names) who approved so far (prd may need two distinct ones).
    #[serde(default)]
    pub votes: Vec<String>,
    /// How many distinct approvals the request needs ([`Rules::needed`]), as of when it was
    /// recorded or last counted a vote; the web console shows "1 of 2 approvals". Absent in
    /// records written before the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<usize>,
    /// What happened since the prompt (decision, expiry, execution), shown under it.
    #[serde(default)]
    pub outcomes: Vec<String>,
}

/// What the deployment adds to the roster (`crate::identity::roster`), and how many must
/// agree.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// `TELEGRAM_APPROVER_IDS`: Telegram user ids that decide, each as an approver of its own
    /// unless the roster lists the id under a person.
    pub telegram_ids: Vec<i64>,
    /// Distinct approvals a prd request needs (`WINGMAN_PRD_APPROVALS`, default 1).
    pub prd_approvals: usize,
}

pub use crate::identity::Verdict;

/// Where a vote came from, for the metrics and the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Telegram,
    Console,
    /// The HTTP API and the web console, in the name of a `decide` key.
    Api,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Telegram => "telegram",
            Channel::Console => "cli",
            Channel::Api => "api",
        }
    }
}

/// One authenticated approver's answer: `approver` is a roster entry, never a typed name.
#[derive(Debug, Clone)]
pub struct Ballot<'a> {
    pub approver: &'a Approver,
    /// The credential that proved it (`telegram:42`, `console:alice`), for the audit trail.
    pub credential: String,
    pub channel: Channel,
    pub request_id: RequestId,
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

impl Decision {
    /// For a human: "APPROVED by alice", "approval 1 of 2 recorded; …".
    pub fn describe(&self) -> String {
        match self {
            Decision::Decided {
                status,
                approvers,
                false_positive,
            } => {
                let fp = if *false_positive {
                    " (override: recorded as a false positive)"
                } else {
                    ""
                };
                format!("{status} by {}{fp}", approvers.join(", "))
            }
            Decision::Counted { have, need } => {
                format!("approval {have} of {need} recorded; another approver is needed")
            }
        }
    }
}

/// The answer an API vote gets for what the desk made of it.
pub fn answer(result: &Result<Decision, Refusal>) -> VoteAnswer {
    match result {
        Ok(
            decision @ Decision::Decided {
                status, approvers, ..
            },
        ) => VoteAnswer {
            outcome: Outcome::Applied,
            message: decision.describe(),
            code: None,
            status: Some(*status),
            decided_by: Some(approvers.join(", ")),
        },
        Ok(decision @ Decision::Counted { .. }) => VoteAnswer {
            outcome: Outcome::Counted,
            message: decision.describe(),
            code: None,
            status: None,
            decided_by: None,
        },
        Err(refusal) => refused(refusal),
    }
}

/// The answer to a vote or a withdrawal the rules refused: the rule, and who decided first
/// when someone did.
fn refused(refusal: &Refusal) -> VoteAnswer {
    let (status, decided_by) = match refusal {
        Refusal::AlreadyDecided { status, by, .. } => (Some(*status), Some(by.clone())),
        _ => (None, None),
    };
    VoteAnswer {
        outcome: Outcome::Refused,
        message: refusal.to_string(),
        code: Some(refusal.code().to_string()),
        status,
        decided_by,
    }
}

/// Why a vote changed nothing. Every refusal is audited by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The voter is not an approver, or their credential proves nothing (the text says which).
    #[error("not authorized: {0}")]
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
    /// A withdrawal by someone other than the principal that submitted the request.
    #[error("only {0}, who submitted it, may withdraw this request")]
    NotRequester(String),
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
            Refusal::NotRequester(_) => "not_requester",
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
    /// Who may decide, read at every vote (an approver added counts at once).
    pub roster: RosterStore,
    pub rules: Rules,
    pub actor: String,
}

/// What the rules make of a vote ([`judge`]); the desk then performs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// A prd approval short of the number needed: recorded on the request's record.
    Count { votes: Vec<String>, need: usize },
    /// The request is decided: claim the decision, then publish it.
    Decide {
        status: Status,
        approvers: Vec<String>,
        overriding: bool,
    },
}

/// The approval rules, purely: a vote by an authenticated approver on the request `record`
/// (already decided by `decided`, if so) at `now`.
///
/// # Errors
/// The [`Refusal`] that applies: already decided, the approver's own request, a missing
/// reason, a rejection of what the validators rejected, past the deadline, the same approver
/// twice.
pub fn judge(
    record: &ApprovalRecord,
    decided: Option<&DecisionClaim>,
    ballot: &Ballot<'_>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<Judgement, Refusal> {
    if let Some(claim) = decided {
        return Err(already(claim));
    }
    if own_request(ballot.approver, &record.request) {
        return Err(Refusal::OwnRequest);
    }
    let overriding = record.status == Status::AutoRejected;
    let note = ballot
        .note
        .as_deref()
        .map(str::trim)
        .filter(|note| !note.is_empty());
    match (ballot.verdict, overriding) {
        (Verdict::Reject, _) if note.is_none() => return Err(Refusal::ReasonRequired("reject")),
        (Verdict::Approve, true) if note.is_none() => {
            return Err(Refusal::ReasonRequired("override an auto-rejection"));
        }
        (Verdict::Reject, true) => return Err(already_rejected_by_validators()),
        _ => {}
    }
    // Every decision has a deadline, an override of an auto-rejection included.
    if let Some(expires_at) = record.expires_at.filter(|at| *at <= now) {
        return Err(Refusal::Expired(
            expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ));
    }
    let name = &ballot.approver.name;
    if ballot.verdict == Verdict::Reject {
        return Ok(Judgement::Decide {
            status: Status::Rejected,
            approvers: vec![name.clone()],
            overriding,
        });
    }
    if record.votes.contains(name) {
        return Err(Refusal::SameApprover(name.clone()));
    }
    let need = rules.needed(record.request.environment);
    let mut votes = record.votes.clone();
    votes.push(name.clone());
    if votes.len() < need {
        Ok(Judgement::Count { votes, need })
    } else {
        Ok(Judgement::Decide {
            status: Status::Approved,
            approvers: votes,
            overriding,
        })
    }
}

/// A withdrawal, as it travels on `<prefix>.requests.cancel.<principal>` (the subject, not the
/// body, says who asks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdrawal {
    pub request_id: RequestId,
    /// Why, for the audit trail and the approvers' prompt.
    #[serde(default)]
    pub note: Option<String>,
}

/// The answer a withdrawal gets (the same shape as an API vote's).
pub fn withdrawal_answer(result: &Result<DecisionClaim, Refusal>) -> VoteAnswer {
    match result {
        Ok(claim) => VoteAnswer {
            outcome: Outcome::Applied,
            message: format!("{} by {}", claim.decision, claim.approvers.join(", ")),
            code: None,
            status: Some(claim.decision),
            decided_by: Some(claim.approvers.join(", ")),
        },
        Err(refusal) => refused(refusal),
    }
}

/// The withdrawal rule, purely: only the principal that submitted a request withdraws it,
/// and only while it waits for a decision (PENDING, before its deadline, nobody decided). An
/// AUTO_REJECTED request is decided already (only an approver's override would run it).
///
/// # Errors
/// The [`Refusal`] that applies: not the requester, already decided, auto-rejected, expired.
pub fn judge_cancel(
    record: &ApprovalRecord,
    decided: Option<&DecisionClaim>,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if record.request.submitted_by != *principal {
        return Err(Refusal::NotRequester(
            record.request.submitted_by.to_string(),
        ));
    }
    if let Some(claim) = decided {
        return Err(already(claim));
    }
    if record.status == Status::AutoRejected {
        return Err(already_rejected_by_validators());
    }
    if let Some(expires_at) = record.expires_at.filter(|at| *at <= now) {
        return Err(Refusal::Expired(
            expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ));
    }
    Ok(())
}

/// Whether the request is the approver's own: who submitted it, as authenticated. Only where
/// nothing was authenticated (a bus without NATS users) does the `requester` label count.
pub fn own_request(approver: &Approver, request: &Request) -> bool {
    match &request.submitted_by {
        Principal::Anonymous => {
            approver.name == request.requester
                || approver.name.ends_with(&format!(":{}", request.requester))
        }
        principal => approver.submitted(principal),
    }
}

/// The record of a request waiting for a human in the approvals bucket, and its revision
/// (`None` when there is none). The approvals stage writes it; the web console reads it too
/// (the votes counted so far).
pub async fn read_record(
    approvals: &kv::Store,
    request_id: RequestId,
) -> anyhow::Result<Option<(ApprovalRecord, u64)>> {
    let entry = approvals
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

impl Desk {
    pub async fn record(
        &self,
        request_id: RequestId,
    ) -> anyhow::Result<Option<(ApprovalRecord, u64)>> {
        read_record(&self.approvals, request_id).await
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
        let key = Key::Decision(request_id).to_string();
        Ok(claims::read(&self.claims, &key, "the decision")
            .await?
            .map(|(claim, _)| claim))
    }

    /// The roster as it is now, with the deployment's `TELEGRAM_APPROVER_IDS`.
    pub async fn roster(&self) -> anyhow::Result<Roster> {
        let (roster, _) = self.roster.load().await?;
        Ok(roster.with_telegram_ids(&self.rules.telegram_ids))
    }

    /// The approver a Telegram user is, if any.
    pub async fn telegram_approver(&self, user_id: i64) -> anyhow::Result<Option<Approver>> {
        Ok(self.roster().await?.by_telegram(user_id).cloned())
    }

    /// A vote from Telegram, which vouches for the user id.
    /// `roster` is the caller's fresh read of [`Desk::roster`] (the bot has just read it to
    /// decide whether to throttle the sender).
    pub async fn vote_telegram(
        &self,
        roster: &Roster,
        user_id: i64,
        request_id: RequestId,
        verdict: Verdict,
        note: Option<String>,
    ) -> anyhow::Result<Result<Decision, Refusal>> {
        let credential = format!("telegram:{user_id}");
        let Some(approver) = roster.by_telegram(user_id) else {
            let refusal =
                Refusal::NotAuthorized(format!("{credential} is not on the approver list"));
            self.audit_refusal(request_id, &credential, verdict, &refusal)
                .await?;
            return Ok(Err(refusal));
        };
        let ballot = Ballot {
            approver,
            credential,
            channel: Channel::Telegram,
            request_id,
            verdict,
            note,
        };
        self.vote(&ballot).await
    }

    /// A console vote: signed by the approver's own key (see
    /// [`crate::identity::console_vote`]).
    pub async fn vote_console(
        &self,
        signed: &SignedVote,
    ) -> anyhow::Result<Result<Decision, Refusal>> {
        let roster = self.roster().await?;
        let credential = format!("console:{}", signed.approver);
        let (approver, statement) = match console_vote::open(&roster, signed, Utc::now()) {
            Ok(opened) => opened,
            Err(problem) => {
                let refusal = Refusal::NotAuthorized(problem.to_string());
                self.audit_refusal(signed.request_id, &credential, signed.verdict, &refusal)
                    .await?;
                return Ok(Err(refusal));
            }
        };
        let ballot = Ballot {
            approver,
            credential,
            channel: Channel::Console,
            request_id: statement.request_id,
            verdict: statement.verdict,
            note: statement.note,
        };
        self.vote(&ballot).await
    }

    /// A vote through the HTTP API: the API authenticated the `decide` key `vote.key_name`
    /// (only its NATS user publishes on `wingman.api.decisions`); the roster says whose key
    /// it is.
    pub async fn vote_api(&self, vote: &ApiVote) -> anyhow::Result<Result<Decision, Refusal>> {
        let roster = self.roster().await?;
        let credential = format!("api:{}", vote.key_name);
        let Some(approver) = roster.by_api_key(&vote.key_name) else {
            let refusal = Refusal::NotAuthorized(format!(
                "API key `{}` belongs to no approver on the roster",
                vote.key_name
            ));
            self.audit_refusal(vote.request_id, &credential, vote.verdict, &refusal)
                .await?;
            return Ok(Err(refusal));
        };
        let ballot = Ballot {
            approver,
            credential,
            channel: Channel::Api,
            request_id: vote.request_id,
            verdict: vote.verdict,
            note: vote.note.clone(),
        };
        self.vote(&ballot).await
    }

    /// Applies the rules to one authenticated vote; on a decision, publishes it (the
    /// authority acts on it) with its audit and status events. Refusals are audited here too.
    pub async fn vote(&self, ballot: &Ballot<'_>) -> anyhow::Result<Result<Decision, Refusal>> {
        let outcome = self.try_vote(ballot).await?;
        if let Err(refusal) = &outcome {
            self.audit_refusal(
                ballot.request_id,
                &ballot.credential,
                ballot.verdict,
                refusal,
            )
            .await?;
        }
        Ok(outcome)
    }

    async fn try_vote(&self, ballot: &Ballot<'_>) -> anyhow::Result<Result<Decision, Refusal>> {
        let request_id = ballot.request_id;
        let Some((mut record, revision)) = self.record(request_id).await? else {
            return Ok(Err(Refusal::Unknown(request_id)));
        };
        let decided = self.decision(request_id).await?;
        let judgement = match judge(&record, decided.as_ref(), ballot, &self.rules, Utc::now()) {
            Ok(judgement) => judgement,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let (status, approvers, overriding) = match judgement {
            Judgement::Count { votes, need } => {
                let have = votes.len();
                record.votes = votes;
                record.needed = Some(need);
                // A concurrent vote makes this CAS fail: the caller's retry re-reads.
                self.approvals
                    .update(
                        format!("request.{request_id}"),
                        serde_json::to_vec(&record)?.into(),
                        revision,
                    )
                    .await
                    .map_err(|error| anyhow::anyhow!("record the vote: {error}"))?;
                // Every vote is on the record, not only the one that decides: who approved
                // first, when, through what, and with which note.
                crate::bus::step::publish_audit(
                    &self.bus,
                    Some(request_id),
                    AuditKind::VoteCounted,
                    Stage::Approvals,
                    &self.actor,
                    json!({
                        "approver": ballot.approver.name,
                        "credential": ballot.credential,
                        "channel": ballot.channel.as_str(),
                        "have": have,
                        "need": need,
                        "note": ballot.note.as_deref().map(str::trim).filter(|note| !note.is_empty()),
                    }),
                )
                .await?;
                return Ok(Ok(Decision::Counted { have, need }));
            }
            Judgement::Decide {
                status,
                approvers,
                overriding,
            } => (status, approvers, overriding),
        };
        let claim = DecisionClaim {
            decision: status,
            approvers: approvers.clone(),
            at: crate::envelope::now(),
        };
        let key = Key::Decision(request_id).to_string();
        if let Created::Theirs(winner, _) =
            claims::create_once(&self.claims, &key, &claim, "the decision").await?
        {
            return Ok(Err(already(&winner)));
        }
        let note = ballot
            .note
            .as_deref()
            .map(str::trim)
            .filter(|note| !note.is_empty());
        self.publish_decision(&record, status, &claim, note, overriding, ballot.channel)
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
        channel: Channel,
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
                step.record(
                    Some(status),
                    &ApprovalDecided {
                        decided_by: Some(by),
                        decided_at: Some(claim.at),
                        note: note.map(str::to_string),
                        false_positive: Some(false_positive),
                        overrides_auto_reject: overriding,
                        approvers: claim.approvers.clone(),
                    },
                ),
                step.status(status, details),
            ],
        )
        .await?;
        crate::metrics::approval_decided(status.as_str(), channel.as_str());
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

    /// Withdraws a request for `principal`, which the subject it asked on proves (see
    /// [`crate::bus::subjects::Subjects::cancel`]): claims the decision CANCELLED (so it races
    /// votes and the expiry fairly: the first wins), then publishes the `request_cancelled`
    /// audit event and the CANCELLED status event. Refusals are audited.
    pub async fn cancel(
        &self,
        principal: &Principal,
        request_id: RequestId,
        note: Option<String>,
    ) -> anyhow::Result<Result<DecisionClaim, Refusal>> {
        let outcome = self.try_cancel(principal, request_id, note).await?;
        if let Err(refusal) = &outcome {
            let asked = json!({ "principal": principal.to_string(), "action": "cancel" });
            self.publish_refusal(request_id, refusal, asked).await?;
        }
        Ok(outcome)
    }

    async fn try_cancel(
        &self,
        principal: &Principal,
        request_id: RequestId,
        note: Option<String>,
    ) -> anyhow::Result<Result<DecisionClaim, Refusal>> {
        let Some((record, _)) = self.record(request_id).await? else {
            return Ok(Err(Refusal::Unknown(request_id)));
        };
        let decided = self.decision(request_id).await?;
        if let Err(refusal) = judge_cancel(&record, decided.as_ref(), principal, Utc::now()) {
            return Ok(Err(refusal));
        }
        let claim = DecisionClaim {
            decision: Status::Cancelled,
            approvers: vec![principal.to_string()],
            at: crate::envelope::now(),
        };
        let key = Key::Decision(request_id).to_string();
        if let Created::Theirs(winner, _) =
            claims::create_once(&self.claims, &key, &claim, "the withdrawal").await?
        {
            return Ok(Err(already(&winner)));
        }
        let step = Step {
            subjects: &self.bus.subjects,
            stage: Stage::Approvals,
            actor: &self.actor,
            request_id,
            origin: claim.at,
        };
        let by = principal.to_string();
        let note = note
            .as_deref()
            .map(str::trim)
            .filter(|note| !note.is_empty());
        let mut details = Map::new();
        details.insert("decided_by".into(), json!(by));
        if let Some(note) = note {
            details.insert("note".into(), json!(note));
        }
        publish_all(
            &self.bus.js,
            &[
                step.record(
                    Some(Status::Cancelled),
                    &RequestCancelled {
                        cancelled_by: by.clone(),
                        decided_by: Some(by),
                        decided_at: Some(claim.at),
                        note: note.map(str::to_string),
                        environment: Some(record.request.environment),
                    },
                ),
                step.status(Status::Cancelled, details),
            ],
        )
        .await?;
        crate::metrics::request_cancelled(record.request.environment.as_str());
        Ok(Ok(claim))
    }

    async fn audit_refusal(
        &self,
        request_id: RequestId,
        credential: &str,
        verdict: Verdict,
        refusal: &Refusal,
    ) -> anyhow::Result<()> {
        let asked = json!({ "approver": credential, "verdict": verdict });
        self.publish_refusal(request_id, refusal, asked).await
    }

    /// Audits a refusal: `access_denied` when the asker proved no right to ask (not an
    /// approver, not the requester), else `decision_refused`; `asked` says who asked what.
    async fn publish_refusal(
        &self,
        request_id: RequestId,
        refusal: &Refusal,
        mut asked: Value,
    ) -> anyhow::Result<()> {
        let kind = match refusal {
            Refusal::NotAuthorized(_) | Refusal::NotRequester(_) => AuditKind::AccessDenied,
            _ => AuditKind::DecisionRefused,
        };
        asked["code"] = json!(refusal.code());
        asked["reason"] = json!(refusal.to_string());
        crate::bus::step::publish_audit(
            &self.bus,
            Some(request_id),
            kind,
            Stage::Approvals,
            &self.actor,
            asked,
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
    /// Distinct approvals a request in `environment` needs: prd's number, one elsewhere.
    pub fn needed(&self, environment: Environment) -> usize {
        if environment == Environment::Prd {
            self.prd_approvals.max(1)
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests;

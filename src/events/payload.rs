//! The typed `data` of the audit records someone reads back: one struct per shape, written by
//! the stage that owns its kind and read by the recorder (the columns it projects into
//! `approval_requests` and `executions`), `wingman audit show` and the console. Writer and
//! reader share the struct, so a key written under one name and read under another is a
//! compile error, not a NULL column.
//!
//! | payload | kind | written by | read by |
//! | --- | --- | --- | --- |
//! | [`RequestReceived`] | `request_received` | intake | recorder (the row), `wingman audit show` |
//! | [`RequestValidated`] | `request_validated` | intake (`stages::validator`) | recorder (`StatusFields`) |
//! | [`ApprovalDecided`] | `approval_decided` | approvals (`approval::Desk`) | recorder (`StatusFields`) |
//! | [`RequestCancelled`] | `request_cancelled` | approvals (`approval::Desk`) | recorder (`StatusFields`) |
//! | [`RequestExpired`] | `request_expired` | watcher | recorder (`StatusFields`) |
//! | [`ExecutionStarted`] | `execution_started` | gateway | recorder (`executions`) |
//! | [`ExecutionFinished`], [`ExecutionIndeterminate`] | `execution_finished` | gateway | recorder (`executions`) |
//!
//! `rollout_changed` is [`crate::rollout::change::Attribution`], next to the flags it records.
//! The other kinds (refusals, `message_rejected`, `token_minted`, `access_denied`) stay
//! free-form JSON: nobody reads them back by key.
//!
//! On the wire and in `audit_events.data` each payload is the very JSON the stages wrote with
//! `json!` before (the audit chain hashes it): keys the old code always wrote are always
//! written, `null` where it wrote null, and nothing is added — a key added since (the file
//! digests of a `compose up`) is written only where it says something, so every other record
//! keeps its bytes. Reading is lenient: a key a
//! record lacks (a hand-made or older record) reads as `None` or, for what nobody projects,
//! its default, so the column it feeds is left as it is, as when it was read by key.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::AuditKind;
use crate::engine::{FileDigest, TargetResult};
use crate::request::{Environment, Request};
use crate::status::Status;
use crate::validation::Profile;

/// An audit payload someone reads back: the data of the records of one kind.
pub trait Payload: Serialize + DeserializeOwned {
    /// The kind of the records that carry it.
    const KIND: AuditKind;

    /// The record's `data`, as stored and hashed.
    ///
    /// # Panics
    /// Never for the payloads of this module: they hold no map with non-string keys and no
    /// value serde cannot write as JSON (`json!`, which they replace, panicked likewise).
    fn to_data(&self) -> Value {
        serde_json::to_value(self).expect("an audit payload serializes to JSON")
    }

    /// The record's `data` as the JSON text a step publishes: written straight from the
    /// struct, without building the [`Value`] tree [`Payload::to_data`] makes (the recorder
    /// reads it back into the very tree `to_data` would have given, so the row and its hash
    /// are the same: `bus::step`'s tests hold it to that).
    ///
    /// # Panics
    /// Never for the payloads of this module (as [`Payload::to_data`]).
    fn to_raw(&self) -> Box<RawValue> {
        serde_json::value::to_raw_value(self).expect("an audit payload serializes to JSON")
    }

    /// A record of this kind with `status`, for [`crate::bus::step::Step::audits`].
    fn entry(&self, status: Option<Status>) -> Entry {
        Entry {
            kind: Self::KIND,
            status,
            data: self.to_raw(),
        }
    }

    /// Reads a record's `data`.
    ///
    /// # Errors
    /// When a key it has holds a value of another type (an absent key is not an error).
    fn from_data(data: &Value) -> Result<Self, serde_json::Error> {
        Self::deserialize(data)
    }
}

/// One record of a step, its data already written as JSON text
/// ([`crate::bus::step::Step::audits`] publishes several in one message).
#[derive(Debug)]
pub struct Entry {
    pub kind: AuditKind,
    pub status: Option<Status>,
    pub data: Box<RawValue>,
}

/// `request_received`: the request as intake accepted it; the recorder inserts its row from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestReceived {
    pub request: Request,
}

impl Payload for RequestReceived {
    const KIND: AuditKind = AuditKind::RequestReceived;
}

/// `request_validated`: intake's decision and what validation said (CONTRACTS.md, "Validation
/// scores" and "Shadow decisions"). Every key is written, `null` where there is nothing to
/// say; the shadow keys only outside the cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestValidated {
    /// [`crate::validation::ValidatorScores`] as JSON, stored as is in
    /// `approval_requests.validator_scores`; `null` when validation was not applied or failed
    /// (read back as `Some(Value::Null)`: the column holds JSON null, as it always did).
    #[serde(default, deserialize_with = "keep_null")]
    pub validator_scores: Option<Value>,
    pub profile: Option<Profile>,
    pub composite_score: Option<u8>,
    pub reasons: Option<Vec<String>>,
    /// Whether the decision is validation's (the request is in the validated cohort).
    pub validation_applied: Option<bool>,
    /// The decision, when validation took it.
    pub validation_decision: Option<Status>,
    /// True when validation (enforced or shadow) failed; `error` says why.
    pub validation_error: Option<bool>,
    pub error: Option<String>,
    pub rollout_bucket: Option<u8>,
    /// The flags the decision was taken under, in words (`enabled, 10 %`).
    #[serde(default)]
    pub rollout: String,
    /// When a PENDING or AUTO_REJECTED request expires without a decision.
    pub expires_at: Option<DateTime<Utc>>,
    /// Outside the cohort only: what validation would have decided.
    #[serde(flatten)]
    pub shadow: Option<Shadow>,
}

impl Payload for RequestValidated {
    const KIND: AuditKind = AuditKind::RequestValidated;
}

/// What validation would have decided on a request outside the cohort (shadow mode). All four
/// keys are written, `null` when the shadow validation failed; a record without
/// `shadow_decision` has no shadow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shadow {
    /// Required (it may be null): its presence says the request was outside the cohort.
    #[serde(deserialize_with = "required")]
    pub shadow_decision: Option<Status>,
    pub shadow_score: Option<u8>,
    pub shadow_profile: Option<Profile>,
    pub shadow_reasons: Option<Vec<String>>,
}

/// `approval_decided`: a human's decision, as the approval desk took it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalDecided {
    /// The approvers, joined with `, `.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The approver's note (`null` without one): `approval_requests.decision_note`.
    pub note: Option<String>,
    /// An approval of an AUTO_REJECTED request: a false positive of the validators.
    pub false_positive: Option<bool>,
    #[serde(default)]
    pub overrides_auto_reject: bool,
    #[serde(default)]
    pub approvers: Vec<String>,
}

impl Payload for ApprovalDecided {
    const KIND: AuditKind = AuditKind::ApprovalDecided;
}

/// `request_cancelled`: the principal that submitted the request withdrew it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestCancelled {
    /// The principal that withdrew it (the one that submitted it).
    #[serde(default)]
    pub cancelled_by: String,
    /// The same principal, in the column every decision fills.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Why (`null` without a note): `approval_requests.decision_note`.
    pub note: Option<String>,
    pub environment: Option<Environment>,
}

impl Payload for RequestCancelled {
    const KIND: AuditKind = AuditKind::RequestCancelled;
}

/// `request_expired`: no decision before the deadline (default deny).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestExpired {
    pub expires_at: Option<DateTime<Utc>>,
}

impl Payload for RequestExpired {
    const KIND: AuditKind = AuditKind::RequestExpired;
}

/// `execution_started`: the gateway is about to act (written before the token is claimed);
/// the recorder opens the `executions` row of the token from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionStarted {
    /// The capability token, the key of the `executions` row (no row without it).
    pub token_id: Option<Uuid>,
    /// The operation's name (`container_restart`).
    #[serde(default)]
    pub operation: String,
    /// The canonical argv the token is bound to (stored as JSON; `null` when absent).
    pub argv: Option<Vec<String>>,
    pub environment: Option<Environment>,
    #[serde(default)]
    pub approvers: Vec<String>,
    /// What Docker said the targets were ([`crate::docker::Resolved`] as JSON), for forensics:
    /// nobody reads it back.
    #[serde(default)]
    pub resolved: Value,
    /// The declared probe an exec runs ([`crate::engine::Probe`] as JSON, `null` for other
    /// operations), for forensics.
    #[serde(default)]
    pub probe: Value,
    /// The registered project directory a `compose up` / `pull` runs from (`null` otherwise).
    pub compose_project_directory: Option<String>,
    /// The registered compose files a `compose up` / `pull` ran with, in order, each with its
    /// SHA-256 as the gateway read it just before running compose: the approval covers a
    /// command line, this says what it was performed with. Absent for other operations (their
    /// records stay as before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose_files: Vec<FileDigest>,
    /// The registered env file, likewise; absent when none is registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<FileDigest>,
}

impl Payload for ExecutionStarted {
    const KIND: AuditKind = AuditKind::ExecutionStarted;
}

/// `execution_finished` of an operation that ran to an answer (SUCCEEDED or FAILED).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionFinished {
    pub token_id: Option<Uuid>,
    #[serde(default)]
    pub operation: String,
    pub exit_code: Option<i32>,
    /// How long the Docker call took (`null` when the claim did not say).
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub summary: String,
    /// What the operation printed, bounded and redacted: `executions.output_excerpt`.
    pub output: Option<String>,
    #[serde(default)]
    pub targets: Vec<TargetResult>,
}

impl Payload for ExecutionFinished {
    const KIND: AuditKind = AuditKind::ExecutionFinished;
}

/// `execution_finished` of an operation whose outcome is unknown (INDETERMINATE): a human
/// must look; it is never run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionIndeterminate {
    pub token_id: Option<Uuid>,
    /// Why the outcome is unknown: `executions.error`.
    pub error: Option<String>,
}

impl Payload for ExecutionIndeterminate {
    const KIND: AuditKind = AuditKind::ExecutionFinished;
}

/// How an execution ended, as its `execution_finished` record says: the shape follows the
/// record's status.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionEnd {
    Ran(ExecutionFinished),
    Indeterminate(ExecutionIndeterminate),
}

impl ExecutionEnd {
    /// Reads the data of an `execution_finished` record that set `status`.
    ///
    /// # Errors
    /// When a key holds a value of another type.
    pub fn from_record(status: Status, data: &Value) -> Result<Self, serde_json::Error> {
        Ok(if status == Status::Indeterminate {
            ExecutionEnd::Indeterminate(ExecutionIndeterminate::from_data(data)?)
        } else {
            ExecutionEnd::Ran(ExecutionFinished::from_data(data)?)
        })
    }

    pub fn token_id(&self) -> Option<Uuid> {
        match self {
            ExecutionEnd::Ran(finished) => finished.token_id,
            ExecutionEnd::Indeterminate(indeterminate) => indeterminate.token_id,
        }
    }
}

/// Reads a JSON value as is, `null` included (`Some(Value::Null)`); with `default`, an absent
/// key is `None`.
fn keep_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// An `Option` whose key must be present (it may be null): a field with `deserialize_with`
/// and no `default` is required.
fn required<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(deserializer)
}

#[cfg(test)]
mod tests;

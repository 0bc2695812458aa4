//! One builder for every message a step publishes: the pipeline's events, their audit
//! records and status events ([`Step`]), with ids derived from the request, the stage and the
//! output's name, so a redelivery produces the very same messages; and one-off audit events
//! at an edge ([`publish_audit`]). Below the stages: the stages, the approval desk, the API,
//! the console and the access guard all build their audit records here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::publish::Outgoing;
use super::subjects::Subjects;
use crate::envelope::{Envelope, RequestId, derive_uuid_v7};
use crate::events::payload::Payload;
use crate::events::{AuditKind, AuditRecord, ChainedRecord, PublicStatus, Stage, StatusEvent};
use crate::status::Status;

/// The messages one step of one request produces, with ids derived from the request, the
/// stage and the name of the output, so a redelivery produces the very same messages.
pub struct Step<'a> {
    pub subjects: &'a Subjects,
    pub stage: Stage,
    pub actor: &'a str,
    pub request_id: RequestId,
    /// Publish time of the message being handled: the timestamp of derived ids.
    pub origin: DateTime<Utc>,
}

impl Step<'_> {
    fn key(&self, name: &str) -> String {
        format!("{}:{}:{name}", self.request_id, self.stage.as_str())
    }

    /// The next event of the pipeline, on `subject`.
    pub fn event<T: Serialize>(&self, subject: String, name: &str, body: T) -> Outgoing {
        let envelope = Envelope::derived(self.request_id, self.origin, &self.key(name), body);
        Outgoing::json(subject, envelope.event_id.to_string(), &envelope)
    }

    /// The audit event of this step, on `wingman.audit.<stage>.<kind>`; `data` is free-form
    /// (a refusal, a minted token) or a typed payload's ([`Step::record`]). Its id is derived
    /// (a redelivery yields the same one, recorded once).
    pub fn audit(&self, kind: AuditKind, status: Option<Status>, data: Value) -> Outgoing {
        let record = AuditRecord {
            kind,
            stage: self.stage,
            status,
            actor: self.actor.to_string(),
            data,
            then: Vec::new(),
        };
        let envelope = Envelope::derived(
            self.request_id,
            self.origin,
            &self.key(kind.as_str()),
            record,
        );
        Outgoing::audit(self.subjects, &envelope)
    }

    /// Several audit records of this step in one message (on the first one's subject): the
    /// recorder appends them in order, each a row with the id it would have had on its own.
    pub fn audits(&self, records: Vec<(AuditKind, Option<Status>, Value)>) -> Outgoing {
        let mut records = records.into_iter();
        let (kind, status, data) = records.next().expect("a step records at least one event");
        let then = records
            .map(|(kind, status, data)| ChainedRecord {
                event_id: derive_uuid_v7(self.origin, &self.key(kind.as_str())),
                kind,
                status,
                data,
            })
            .collect();
        let record = AuditRecord {
            kind,
            stage: self.stage,
            status,
            actor: self.actor.to_string(),
            data,
            then,
        };
        let envelope = Envelope::derived(
            self.request_id,
            self.origin,
            &self.key(kind.as_str()),
            record,
        );
        Outgoing::audit(self.subjects, &envelope)
    }

    /// The audit event of this step with a typed payload: its kind is the payload's.
    pub fn record<P: Payload>(&self, status: Option<Status>, payload: &P) -> Outgoing {
        self.audit(P::KIND, status, payload.to_data())
    }

    /// The status event publishers wait on.
    pub fn status(&self, status: impl Into<PublicStatus>, details: Map<String, Value>) -> Outgoing {
        let status = status.into();
        let event = StatusEvent {
            event_id: derive_uuid_v7(self.origin, &self.key(&format!("status:{status}"))),
            request_id: self.request_id,
            status,
            at: crate::envelope::now(),
            stage: self.stage,
            details,
        };
        Outgoing::json(
            self.subjects.status(self.request_id),
            event.event_id.to_string(),
            &event,
        )
    }
}

/// Publishes a one-off audit event: a refusal at an edge, a rollout change. Not a pipeline
/// step, so its id is drawn, not derived: each one is its own event. Events about no
/// particular request carry the nil request id.
pub async fn publish_audit(
    bus: &super::Bus,
    request_id: Option<RequestId>,
    kind: AuditKind,
    stage: Stage,
    actor: &str,
    data: Value,
) -> anyhow::Result<()> {
    let envelope = Envelope {
        version: crate::envelope::ENVELOPE_VERSION,
        event_id: uuid::Uuid::now_v7(),
        request_id: request_id.unwrap_or(RequestId::from_uuid(uuid::Uuid::nil())),
        at: crate::envelope::now(),
        body: AuditRecord {
            kind,
            stage,
            status: None,
            actor: actor.to_string(),
            data,
            then: Vec::new(),
        },
    };
    let outgoing = Outgoing::audit(&bus.subjects, &envelope);
    super::publish::publish_all(&bus.js, &[outgoing]).await
}

//! One builder for every message a step publishes: the pipeline's events, their audit
//! records and status events ([`Step`]), with ids derived from the request, the stage and the
//! output's name, so a redelivery produces the very same messages; and one-off audit events
//! at an edge ([`publish_audit`]). Below the stages: the stages, the approval desk, the API,
//! the console and the access guard all build their audit records here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::publish::Outgoing;
use super::subjects::Subjects;
use crate::envelope::{Envelope, RequestId, derive_uuid_v7};
use crate::events::payload::{Entry, Payload};
use crate::events::{AuditKind, AuditRecord, PublicStatus, Stage, StatusEvent};
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
    /// Their data is written as JSON text once ([`Payload::to_raw`]); the message reads back
    /// as the [`AuditRecord`] the recorder decodes (`audits_read_back_as_the_records_they_carry`).
    pub fn audits(&self, records: Vec<Entry>) -> Outgoing {
        let mut records = records.into_iter();
        let first = records.next().expect("a step records at least one event");
        let then: Vec<ChainedOut> = records
            .map(|entry| ChainedOut {
                event_id: derive_uuid_v7(self.origin, &self.key(entry.kind.as_str())),
                kind: entry.kind,
                status: entry.status,
                data: entry.data,
            })
            .collect();
        let record = RecordOut {
            kind: first.kind,
            stage: self.stage,
            status: first.status,
            actor: self.actor,
            data: &first.data,
            then,
        };
        let envelope = Envelope::derived(
            self.request_id,
            self.origin,
            &self.key(first.kind.as_str()),
            record,
        );
        Outgoing::audit_on(self.subjects.audit(self.stage, first.kind), &envelope)
    }

    /// The audit event of this step with a typed payload: its kind is the payload's.
    pub fn record<P: Payload>(&self, status: Option<Status>, payload: &P) -> Outgoing {
        self.audits(vec![payload.entry(status)])
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

/// [`AuditRecord`] as a step writes it: the same keys in the same order, its data JSON text
/// written once.
#[derive(Serialize)]
struct RecordOut<'a> {
    kind: AuditKind,
    stage: Stage,
    status: Option<Status>,
    actor: &'a str,
    data: &'a RawValue,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    then: Vec<ChainedOut>,
}

/// [`crate::events::ChainedRecord`] as a step writes it.
#[derive(Serialize)]
struct ChainedOut {
    event_id: uuid::Uuid,
    kind: AuditKind,
    status: Option<Status>,
    data: Box<RawValue>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::payload::{
        ExecutionIndeterminate, ExecutionStarted, RequestReceived, RequestValidated,
    };
    use crate::validation::test_support::{GOOD_DESCRIPTION, request};
    use crate::validation::{ValidationConfig, Validator};

    /// What the recorder appends (rows, hashes, the request's columns) comes from the
    /// [`AuditRecord`] it decodes: a step's message must decode to the records the step was
    /// given, each payload's data the very tree [`Payload::to_data`] makes, with the ids the
    /// records had when each was its own message.
    #[test]
    fn audits_read_back_as_the_records_they_carry() {
        let subjects = Subjects::new("wingman").unwrap();
        let request = request(
            "prd",
            Some("docker compose -p shop down"),
            "Take the \"shop\" down for the migration ✓",
            GOOD_DESCRIPTION,
        );
        let validator = Validator::new(ValidationConfig::default_config()).unwrap();
        let scores = serde_json::to_value(validator.validate(&request).validator_scores).unwrap();
        let received = RequestReceived {
            request: request.clone(),
        };
        // Outside the cohort, scored: every key, the shadow's four included.
        let validated = RequestValidated::from_data(&serde_json::json!({
            "validator_scores": scores, "profile": null, "composite_score": null,
            "reasons": null, "validation_applied": false, "validation_decision": null,
            "validation_error": false, "error": null, "rollout_bucket": 42,
            "rollout": "enabled, 10 %", "expires_at": "2026-12-07T09:00:00Z",
            "shadow_decision": "AUTO_APPROVED", "shadow_score": 91,
            "shadow_profile": "operational", "shadow_reasons": ["score 91 ≥ 85 (operational)"],
        }))
        .unwrap();
        assert!(validated.shadow.is_some());
        let step = Step {
            subjects: &subjects,
            stage: Stage::Intake,
            actor: "intake@host:1",
            request_id: request.request_id,
            origin: Utc::now(),
        };
        let outgoing = step.audits(vec![
            received.entry(Some(Status::Received)),
            validated.entry(Some(Status::Pending)),
        ]);
        assert_eq!(
            outgoing.subject,
            subjects.audit(Stage::Intake, AuditKind::RequestReceived)
        );
        assert_eq!(outgoing.msg_id, None);
        let decoded: Envelope<AuditRecord> = serde_json::from_slice(&outgoing.payload).unwrap();
        let expected = |kind: AuditKind, status: Status, data: Value| {
            (
                derive_uuid_v7(step.origin, &step.key(kind.as_str())),
                kind,
                Some(status),
                data,
            )
        };
        let records: Vec<_> = decoded
            .clone()
            .into_records()
            .into_iter()
            .map(|event| {
                assert_eq!(event.request_id, request.request_id);
                assert_eq!(event.at, decoded.at);
                assert_eq!(event.body.stage, Stage::Intake);
                assert_eq!(event.body.actor, "intake@host:1");
                (
                    event.event_id,
                    event.body.kind,
                    event.body.status,
                    event.body.data,
                )
            })
            .collect();
        assert_eq!(
            records,
            vec![
                expected(
                    AuditKind::RequestReceived,
                    Status::Received,
                    received.to_data()
                ),
                expected(
                    AuditKind::RequestValidated,
                    Status::Pending,
                    validated.to_data()
                ),
            ]
        );

        // One record: no `then`, as an [`AuditRecord`] of its own writes it.
        let started = ExecutionStarted {
            token_id: Some(uuid::Uuid::now_v7()),
            operation: "container_stop".into(),
            argv: Some(vec!["docker".into(), "stop".into(), "shop-web-1".into()]),
            environment: Some(request.environment),
            approvers: vec!["anna".into()],
            resolved: serde_json::json!({"containers": [{"id": "c0ffee", "name": "shop-web-1"}]}),
            probe: Value::Null,
            compose_project_directory: None,
            compose_files: Vec::new(),
            env_file: None,
        };
        let one = step.record(Some(Status::Executing), &started);
        let decoded: Envelope<AuditRecord> = serde_json::from_slice(&one.payload).unwrap();
        assert_eq!(decoded.body.kind, AuditKind::ExecutionStarted);
        assert_eq!(decoded.body.data, started.to_data());
        assert!(decoded.body.then.is_empty());
        let raw: Value = serde_json::from_slice(&one.payload).unwrap();
        assert!(raw["body"].get("then").is_none());
        let ended = ExecutionIndeterminate {
            token_id: None,
            error: Some("the gateway restarted mid-run".into()),
        };
        let two = step.audits(vec![
            started.entry(Some(Status::Executing)),
            ended.entry(Some(Status::Indeterminate)),
        ]);
        let decoded: Envelope<AuditRecord> = serde_json::from_slice(&two.payload).unwrap();
        assert_eq!(decoded.body.then.len(), 1);
        assert_eq!(decoded.body.then[0].kind, AuditKind::ExecutionFinished);
        assert_eq!(decoded.body.then[0].data, ended.to_data());
    }
}

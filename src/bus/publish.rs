//! Publishing, always awaiting JetStream's ack; pipeline events with a message id, audit
//! events without one.
//!
//! Why audit events carry no `Nats-Msg-Id`: JetStream drops a later message whose id it has
//! seen in the stream's duplicate window, whatever its subject. Several principals may publish
//! into the audit stream (each under its own stage), and our ids are derived from things others
//! can see (a request id, a deadline), so an id on an audit publish would let one principal
//! pre-empt another's real event with a planted one. Without it, JetStream keeps both, and
//! a republish after a crash is made harmless by the recorder instead: `audit_events` is
//! unique on (the stage the subject proves, event id).

use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use futures::future::try_join_all;
use serde::Serialize;

use crate::bus::subjects::Subjects;
use crate::envelope::Envelope;
use crate::events::AuditRecord;

/// One message to publish. With a message id, a republish after a crash is a no-op
/// (JetStream drops a duplicate id inside the stream's duplicate window).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    /// `None` only for audit events (see the module header).
    pub msg_id: Option<String>,
    pub payload: Bytes,
}

impl Outgoing {
    /// # Panics
    /// Never for our event types: they serialize infallibly (no maps with non-string keys).
    pub fn json<T: Serialize>(subject: String, msg_id: impl Into<String>, value: &T) -> Self {
        let payload = serde_json::to_vec(value).expect("events serialize to JSON");
        Self {
            subject,
            msg_id: Some(msg_id.into()),
            payload: Bytes::from(payload),
        }
    }

    /// An audit event, on the subject of the stage and kind its body names, without a
    /// message id (the recorder deduplicates).
    ///
    /// # Panics
    /// Never: an audit record serializes infallibly.
    pub fn audit(subjects: &Subjects, event: &Envelope<AuditRecord>) -> Self {
        Self::audit_on(subjects.audit(event.body.stage, event.body.kind), event)
    }

    /// An audit event whose body is written as an [`AuditRecord`] reads
    /// (`bus::step::Step::audits`), on `subject`, without a message id.
    ///
    /// # Panics
    /// Never for an audit record's shape (string keys only).
    pub fn audit_on<T: Serialize>(subject: String, event: &Envelope<T>) -> Self {
        let payload = serde_json::to_vec(event).expect("audit events serialize to JSON");
        Self {
            subject,
            msg_id: None,
            payload: Bytes::from(payload),
        }
    }
}

/// Publishes all messages concurrently and waits until JetStream has stored every one.
pub async fn publish_all(js: &jetstream::Context, messages: &[Outgoing]) -> anyhow::Result<()> {
    let mut pending = Vec::with_capacity(messages.len());
    for message in messages {
        let mut publish = PublishMessage::build().payload(message.payload.clone());
        if let Some(msg_id) = &message.msg_id {
            publish = publish.message_id(msg_id.as_str());
        }
        let ack = js
            .send_publish(message.subject.clone(), publish)
            .await
            .with_context(|| format!("publish to {}", message.subject))?;
        pending.push(async move {
            ack.await
                .with_context(|| format!("await the JetStream ack for {}", message.subject))
        });
    }
    try_join_all(pending).await?;
    Ok(())
}

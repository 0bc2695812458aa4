//! Publishing with a message id, always awaiting JetStream's ack.

use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use futures::future::try_join_all;
use serde::Serialize;

/// One message to publish: the id makes a republish after a crash a no-op (JetStream drops a
/// duplicate id inside the stream's duplicate window).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub msg_id: String,
    pub payload: Bytes,
}

impl Outgoing {
    /// # Panics
    /// Never for our event types: they serialize infallibly (no maps with non-string keys).
    pub fn json<T: Serialize>(subject: String, msg_id: impl Into<String>, value: &T) -> Self {
        let payload = serde_json::to_vec(value).expect("events serialize to JSON");
        Self {
            subject,
            msg_id: msg_id.into(),
            payload: Bytes::from(payload),
        }
    }
}

/// Publishes all messages concurrently and waits until JetStream has stored every one.
pub async fn publish_all(js: &jetstream::Context, messages: &[Outgoing]) -> anyhow::Result<()> {
    let mut pending = Vec::with_capacity(messages.len());
    for message in messages {
        let ack = js
            .send_publish(
                message.subject.clone(),
                PublishMessage::build()
                    .payload(message.payload.clone())
                    .message_id(message.msg_id.as_str()),
            )
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

//! Core NATS request-reply (not JetStream) for the few questions a worker answers at once:
//! the gateway asking the authority for a token, the console approver asking the approvals
//! worker to decide.

use std::future::Future;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;

/// Answers requests on `subject` (queue group `queue`, so copies share them) with the JSON
/// `answer` gives for each payload, until `shutdown`. Requests without a reply subject are
/// ignored.
pub async fn serve<F, Fut>(
    bus: &Bus,
    subject: String,
    queue: &str,
    shutdown: CancellationToken,
    answer: F,
) -> anyhow::Result<()>
where
    F: Fn(Bytes) -> Fut,
    Fut: Future<Output = Value>,
{
    serve_subjects(bus, subject, queue, shutdown, |_, payload| answer(payload)).await
}

/// [`serve`], for a wildcard `subject` whose matched subject says who asks (the last
/// tokens of `<prefix>.requests.cancel.<principal>`): `answer` gets it with the payload.
pub async fn serve_subjects<F, Fut>(
    bus: &Bus,
    subject: String,
    queue: &str,
    shutdown: CancellationToken,
    answer: F,
) -> anyhow::Result<()>
where
    F: Fn(String, Bytes) -> Fut,
    Fut: Future<Output = Value>,
{
    let mut requests = bus
        .client
        .queue_subscribe(subject.clone(), queue.to_string())
        .await
        .map_err(|error| anyhow::anyhow!("subscribe to {subject}: {error}"))?;
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            message = requests.next() => match message { Some(message) => message, None => return Ok(()) },
        };
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        let answer = answer(message.subject.to_string(), message.payload.clone()).await;
        if let Err(error) = bus.client.publish(reply, answer.to_string().into()).await {
            tracing::warn!(%error, %subject, "could not answer a request");
        }
    }
}

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

/// Asks a worker that answers on `subject` (core request-reply), for a command line: at most
/// 10 s, and an error that names the worker (`wingman-<worker>`) when nothing answers.
pub async fn ask(
    bus: &Bus,
    subject: String,
    payload: Vec<u8>,
    worker: &str,
) -> anyhow::Result<Bytes> {
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        bus.client.request(subject, payload.into()),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "the {worker} worker did not answer within 10 s (is wingman-{worker} running?)"
        )
    })?
    .map_err(|error| {
        anyhow::anyhow!("ask the {worker} worker: {error} (is wingman-{worker} running?)")
    })?;
    Ok(reply.payload)
}

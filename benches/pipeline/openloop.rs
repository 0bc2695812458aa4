//! The open-loop load: request `i` is due at `start + i / rate` whatever happened before it,
//! so a slow pipeline cannot slow the load down (no coordinated omission); latencies are
//! measured from that intended time. A share of the requests can carry a read-only command.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use serde_json::Value;
use uuid::Uuid;

use crate::bodies::instruction;
use crate::harness::Pipeline;

/// What the requests carry.
#[derive(Debug, Clone, Default)]
pub struct Mix {
    /// Percent of requests that carry `docker inspect <container>` (in dev, auto-approved
    /// and executed by the gateway).
    pub command_share: f64,
    pub container: Option<String>,
}

impl Mix {
    /// Whether request `index` carries the command: spread evenly, `share` in every 100.
    fn carries_command(&self, index: u64) -> bool {
        let share = self.command_share / 100.0;
        self.container.is_some()
            && ((index + 1) as f64 * share).floor() > (index as f64 * share).floor()
    }

    pub fn body(&self, id: Uuid, index: u64) -> (Value, bool) {
        match &self.container {
            Some(container) if self.carries_command(index) => {
                let mut body = instruction(id, "bench", "dev", container);
                body["command"] = Value::String(format!("docker inspect {container}"));
                (body, true)
            }
            _ => (
                instruction(
                    id,
                    "bench",
                    ["dev", "test", "prd"][index as usize % 3],
                    "billing-cache",
                ),
                false,
            ),
        }
    }
}

/// One submitted request.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub id: Uuid,
    /// When the schedule said to send it.
    pub intended: Instant,
    /// When its publish left this process's client.
    pub sent: Instant,
    pub command: bool,
    /// Where JetStream stored it in the submissions stream (its ack), when acked.
    pub sequence: Option<u64>,
}

pub struct Sending {
    pub sent: Vec<Sent>,
    /// Publishes refused or not acked by JetStream.
    pub errors: u64,
}

/// Sends requests `first .. first + count` of the schedule `start + i / rate`, each as soon
/// as it is due (at once when the sender is late), without waiting for acks; the acks are
/// checked on the side.
///
/// The schedule is kept by a thread of its own sleeping with the OS's high-resolution timer:
/// tokio's timer ticks in whole milliseconds, so a request due between ticks would leave up to
/// a tick late (1.6 ms at the median at 500/s, measured) and that lag, which is the load's and
/// not the pipeline's, would be counted in every latency.
pub async fn send(
    run: &Pipeline,
    rate: f64,
    start: Instant,
    first: u64,
    count: usize,
    mix: &Mix,
) -> Sending {
    let subject = format!("{}.requests.submitted.bench", run.prefix);
    let errors = Arc::new(AtomicU64::new(0));
    let (to_check, mut acks) =
        tokio::sync::mpsc::unbounded_channel::<(usize, jetstream::context::PublishAckFuture)>();
    let checker = {
        let errors = Arc::clone(&errors);
        tokio::spawn(async move {
            let mut sequences = Vec::new();
            while let Some((position, ack)) = acks.recv().await {
                match ack.await {
                    Ok(ack) => sequences.push((position, ack.sequence)),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            sequences
        })
    };
    let pacer = {
        let (js, mix, errors) = (run.js.clone(), mix.clone(), Arc::clone(&errors));
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let mut sent = Vec::with_capacity(count);
            for index in first..first + count as u64 {
                let intended = start + Duration::from_secs_f64(index as f64 / rate);
                let now = Instant::now();
                if intended > now {
                    std::thread::sleep(intended - now);
                }
                let id = Uuid::now_v7();
                let (body, command) = mix.body(id, index);
                let published = runtime.block_on(
                    js.send_publish(
                        subject.clone(),
                        PublishMessage::build()
                            .payload(body.to_string().into())
                            .message_id(id.to_string()),
                    ),
                );
                match published {
                    Ok(ack) => {
                        let _ = to_check.send((sent.len(), ack));
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                sent.push(Sent {
                    id,
                    intended,
                    sent: Instant::now(),
                    command,
                    sequence: None,
                });
            }
            sent
        })
    };
    let mut sent: Vec<Sent> = tokio::task::spawn_blocking(move || pacer.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    for (position, sequence) in checker.await.unwrap_or_default() {
        if let Some(sent) = sent.get_mut(position) {
            sent.sequence = Some(sequence);
        }
    }
    Sending {
        sent,
        errors: errors.load(Ordering::Relaxed),
    }
}

//! Following a request's status events on `wingman.status.<id>`: the last one, or each one
//! as it comes (the stream keeps them, so a late watcher still sees the whole story).

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt;

use crate::bus::Bus;
use crate::envelope::RequestId;
use crate::events::{INVALID, REFUSED, StatusEvent};
use crate::status::Status;

/// The newest status event of a request, if any.
pub async fn last_status(bus: &Bus, request_id: RequestId) -> anyhow::Result<Option<StatusEvent>> {
    let stream = bus.stream("WINGMAN_STATUS").await?;
    match stream
        .get_last_raw_message_by_subject(&bus.subjects.status(request_id))
        .await
    {
        Ok(message) => {
            let event =
                serde_json::from_slice(&message.payload).context("decode a status event")?;
            Ok(Some(event))
        }
        Err(error)
            if error.kind()
                == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
        {
            Ok(None)
        }
        Err(error) => Err(anyhow::anyhow!(
            "read the last status of {request_id}: {error}"
        )),
    }
}

/// True when a publisher has nothing more to wait for.
pub fn is_settled(event: &StatusEvent, has_command: bool) -> bool {
    if event.status == INVALID || event.status == REFUSED {
        return true;
    }
    match event.status.parse::<Status>() {
        Ok(Status::AutoRejected) => true,
        Ok(status) => status.is_final(has_command),
        Err(_) => false,
    }
}

/// Calls `on_event` for each status event of `request_id`, from the first, until one is
/// settled or `timeout` passes. `on_idle` is called every `tick` without news (progress).
pub async fn follow(
    bus: &Bus,
    request_id: RequestId,
    has_command: bool,
    timeout: Duration,
    tick: Duration,
    mut on_event: impl FnMut(&StatusEvent),
    mut on_idle: impl FnMut(Duration),
) -> anyhow::Result<Option<StatusEvent>> {
    let stream = bus.stream("WINGMAN_STATUS").await?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: bus.subjects.status(request_id),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .context("watch the status subject")?;
    let mut messages = consumer
        .messages()
        .await
        .context("watch the status subject")?;
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            () = tokio::time::sleep(tick) => {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(None);
                }
                on_idle(started.elapsed());
                continue;
            }
            () = tokio::time::sleep_until(deadline) => return Ok(None),
        };
        let Some(message) = next else {
            anyhow::bail!("the status stream closed");
        };
        let message =
            message.map_err(|error| anyhow::anyhow!("watch the status subject: {error}"))?;
        let Ok(event) = serde_json::from_slice::<StatusEvent>(&message.payload) else {
            continue;
        };
        on_event(&event);
        if is_settled(&event, has_command) {
            return Ok(Some(event));
        }
    }
}

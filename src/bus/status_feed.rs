//! Following a request's status events on `wingman.status.<id>`: the last one, or each one
//! as it comes (the stream keeps them, so a late watcher still sees the whole story). The CLI
//! (`wingman status --wait`, `request`) and the API's event stream
//! (`GET /requests/{id}/events`) both read them here.
//!
//! When a follower stops is a [`Goal`]: the decision of an instruction approval, the end of
//! the execution of a command, or (for `wingman request --manual`) the token being ready for
//! its submitter. `wingman status --wait` does not know which the request is, so it learns it
//! from the request's own events ([`Goal::learn`]): intake's event names the command.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt;

use crate::bus::Bus;
use crate::envelope::RequestId;
use crate::events::{PublicStatus, Stage, StatusEvent};
use crate::status::Status;

/// What a follower waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// An instruction approval: its decision ends it.
    Decision,
    /// A command: its execution's end (SUCCEEDED, FAILED, INDETERMINATE) or a refusal.
    Execution,
    /// A manual command: the token minted for its submitter (or a refusal).
    Token,
    /// Not known yet: learnt from the events ([`Goal::learn`]); until then an approval is
    /// not taken as the end.
    FromEvents,
}

impl Goal {
    pub fn for_command(has_command: bool) -> Self {
        if has_command {
            Goal::Execution
        } else {
            Goal::Decision
        }
    }

    /// What the request's events tell: intake's event (the first of a request) carries
    /// `command` when it has one; a minted token or the gateway's step means a command.
    pub fn learn(self, event: &StatusEvent) -> Self {
        if self != Goal::FromEvents {
            return self;
        }
        if event.stage == Stage::Intake && event.status != PublicStatus::Invalid {
            return Goal::for_command(event.details.contains_key("command"));
        }
        if event.details.contains_key("token_expires_at") || event.stage == Stage::Gateway {
            return Goal::Execution;
        }
        self
    }
}

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

/// Every status event of `request_id`, from the first, as they come (an ordered consumer:
/// nothing durable is left behind). Events that do not decode are skipped.
///
/// # Errors
/// When the status stream cannot be opened; later, an item per broken delivery.
pub async fn events(
    bus: &Bus,
    request_id: RequestId,
) -> anyhow::Result<impl futures::Stream<Item = anyhow::Result<StatusEvent>> + Send + use<>> {
    let stream = bus.stream("WINGMAN_STATUS").await?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: bus.subjects.status(request_id),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .context("watch the status subject")?;
    let messages = consumer
        .messages()
        .await
        .context("watch the status subject")?;
    Ok(messages.filter_map(|message| async move {
        match message {
            Err(error) => Some(Err(anyhow::anyhow!("watch the status subject: {error}"))),
            Ok(message) => serde_json::from_slice::<StatusEvent>(&message.payload)
                .ok()
                .map(Ok),
        }
    }))
}

/// True when a follower with `goal` has nothing more to wait for.
pub fn is_settled(event: &StatusEvent, goal: Goal) -> bool {
    let Some(status) = event.status.request() else {
        // INVALID or REFUSED: nothing follows.
        return true;
    };
    match goal {
        Goal::Decision => status == Status::AutoRejected || status.is_final(false),
        Goal::Execution => status == Status::AutoRejected || status.is_final(true),
        Goal::Token => {
            status == Status::AutoRejected
                || status.is_final(true)
                || event.details.contains_key("token_expires_at")
        }
        Goal::FromEvents => status == Status::AutoRejected || status.is_final(true),
    }
}

/// Calls `on_event` for each status event of `request_id`, from the first, until one is
/// settled for `goal` or `timeout` passes. `on_idle` is called every `tick` without news.
pub async fn follow(
    bus: &Bus,
    request_id: RequestId,
    mut goal: Goal,
    timeout: Duration,
    tick: Duration,
    mut on_event: impl FnMut(&StatusEvent),
    mut on_idle: impl FnMut(Duration),
) -> anyhow::Result<Option<StatusEvent>> {
    let mut messages = std::pin::pin!(events(bus, request_id).await?);
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
        let Some(event) = next else {
            anyhow::bail!("the status stream closed");
        };
        let event = event?;
        on_event(&event);
        goal = goal.learn(&event);
        if is_settled(&event, goal) {
            return Ok(Some(event));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;

    fn event(status: &str, stage: Stage, details: Value) -> StatusEvent {
        let status = PublicStatus::parse(status).expect("a status word");
        let Value::Object(details) = details else {
            unreachable!("details are an object")
        };
        StatusEvent {
            event_id: uuid::Uuid::now_v7(),
            request_id: RequestId::generate(),
            status,
            at: chrono::Utc::now(),
            stage,
            details,
        }
    }

    /// Follows `events` as `wingman status --wait` does; the status it stops at.
    fn stops_at(events: &[StatusEvent], mut goal: Goal) -> Option<String> {
        for event in events {
            goal = goal.learn(event);
            if is_settled(event, goal) {
                return Some(event.status.to_string());
            }
        }
        None
    }

    /// Intake's event: what it received (and, where intake decides, the decision).
    fn from_intake(status: &str, command: Option<&str>) -> StatusEvent {
        let mut details = Map::new();
        details.insert("title".into(), json!("t"));
        if let Some(command) = command {
            details.insert("command".into(), json!(command));
        }
        event(status, Stage::Intake, Value::Object(details))
    }

    fn minted(status: &str, execution: &str) -> StatusEvent {
        event(
            status,
            Stage::Authority,
            json!({"token_expires_at": "2026-12-04T14:00:00Z", "execution": execution}),
        )
    }

    #[test]
    fn a_request_with_a_command_is_followed_past_its_approval_to_the_end_of_its_execution() {
        let story = [
            from_intake("RECEIVED", Some("docker restart api")),
            from_intake("AUTO_APPROVED", Some("docker restart api")),
            minted("AUTO_APPROVED", "automatic"),
            event("EXECUTING", Stage::Gateway, json!({})),
            event("SUCCEEDED", Stage::Gateway, json!({"exit_code": 0})),
        ];
        assert_eq!(
            stops_at(&story, Goal::FromEvents).as_deref(),
            Some("SUCCEEDED")
        );
        // Intake deciding in the same event it received with is followed the same way.
        assert_eq!(
            stops_at(&story[1..], Goal::FromEvents).as_deref(),
            Some("SUCCEEDED")
        );
        // Joined late, from the minted token on, it still does not stop at the approval.
        assert_eq!(stops_at(&story[2..3], Goal::FromEvents), None);
        let failed = [
            from_intake("RECEIVED", Some("docker restart api")),
            event("APPROVED", Stage::Approvals, json!({"decided_by": "anna"})),
            event("FAILED", Stage::Gateway, json!({"exit_code": 1})),
        ];
        assert_eq!(stops_at(&failed[..2], Goal::FromEvents), None);
        assert_eq!(
            stops_at(&failed, Goal::FromEvents).as_deref(),
            Some("FAILED")
        );
    }

    #[test]
    fn an_instruction_approval_ends_at_its_decision() {
        let story = [
            from_intake("RECEIVED", None),
            event("PENDING", Stage::Intake, json!({})),
            event("APPROVED", Stage::Approvals, json!({"decided_by": "anna"})),
        ];
        assert_eq!(
            stops_at(&story, Goal::FromEvents).as_deref(),
            Some("APPROVED")
        );
        let decided_at_intake = [from_intake("AUTO_APPROVED", None)];
        assert_eq!(
            stops_at(&decided_at_intake, Goal::FromEvents).as_deref(),
            Some("AUTO_APPROVED")
        );
        let rejected = [from_intake("AUTO_REJECTED", Some("docker stop api"))];
        assert_eq!(
            stops_at(&rejected, Goal::FromEvents).as_deref(),
            Some("AUTO_REJECTED")
        );
    }

    #[test]
    fn a_manual_request_is_ready_for_its_submitter_once_its_token_is_minted() {
        let story = [
            from_intake("RECEIVED", Some("docker restart api")),
            from_intake("AUTO_APPROVED", Some("docker restart api")),
            minted("AUTO_APPROVED", "manual"),
        ];
        assert_eq!(
            stops_at(&story, Goal::Token).as_deref(),
            Some("AUTO_APPROVED")
        );
        assert_eq!(stops_at(&story[..2], Goal::Token), None);
        assert_eq!(stops_at(&story, Goal::Execution), None);
    }
}

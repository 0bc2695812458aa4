//! The watcher's part in rollout changes: it is the one writer of the flags for operators,
//! and the one auditor of every revision, whoever wrote it.
//!
//! 1. Answers `wingman.rollout.change.<author>` (core request-reply): the author is the
//!    subject's last token, which `nats/auth.conf` lets only that NATS user publish; the body
//!    only says what to change ([`ChangeRequest`]). It writes the flags by compare-and-set
//!    with a mark naming the author.
//! 2. Watches the rollout bucket from its first retained revision and publishes one
//!    `rollout_changed` audit event per revision: old → new, and the author when the mark
//!    proves it, else "direct write, author unproven". The event id is derived from the
//!    revision, so a restart (which replays the history) records nothing twice.
//!    A change that raises the enforced percent passes the promote gate first
//!    ([`crate::report::gate`]: the current phase's verdict is GO, it has run its minimum
//!    duration on its minimum sample size, and the raise goes no further than the next phase);
//!    `force` with a reason raises past a refusing gate, and the mark records both.
//! 3. It never takes an author from a message body.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::bus::publish::{Outgoing, publish_all};
use crate::envelope::{Envelope, RequestId};
use crate::events::payload::Payload as _;
use crate::events::{AuditKind, AuditRecord, Stage};
use crate::report;
use crate::rollout::change::{self, Seen};
use crate::rollout::{ChangeNote, ChangeRequest, Stored};

use super::WatcherDeps;

/// Answers operators' change requests until `shutdown`. Copies of the watcher share them
/// (queue group `watcher`).
pub async fn serve(deps: &WatcherDeps, shutdown: CancellationToken) -> anyhow::Result<()> {
    let subject = deps.bus.subjects.rollout_changes();
    let mut requests = deps
        .bus
        .client
        .queue_subscribe(subject.clone(), "watcher".to_string())
        .await
        .map_err(|error| anyhow::anyhow!("subscribe to {subject}: {error}"))?;
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            message = requests.next() => match message {
                Some(message) => message,
                None => return Ok(()),
            },
        };
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        let answer = answer(deps, message.subject.as_str(), &message.payload).await;
        if let Err(error) = deps
            .bus
            .client
            .publish(reply, answer.to_string().into())
            .await
        {
            tracing::warn!(%error, "could not answer a rollout change");
        }
    }
}

/// Applies one change request; the answer is `{ok, old, new}`, or `{ok: false, refused,
/// error}`: `refused` true when the watcher said no (a closed promote gate, an invalid change),
/// false when it could not decide (the database or the bucket failed, the audit log lags), so
/// `wingman rollout promote` exits 1 only on a real "no".
pub async fn answer(deps: &WatcherDeps, subject: &str, payload: &Bytes) -> Value {
    let Some(author) = deps.bus.subjects.rollout_author(subject) else {
        return not_made(NotMade::Refused(format!(
            "subject {subject} names no author"
        )));
    };
    let request: ChangeRequest = match serde_json::from_slice(payload) {
        Ok(request) => request,
        Err(error) => {
            return not_made(NotMade::Refused(format!("invalid rollout change: {error}")));
        }
    };
    if let Err(error) = request.validate() {
        return not_made(NotMade::Refused(format!("invalid rollout change: {error}")));
    }
    let note = match gate(deps, &request).await {
        Ok(note) => note,
        Err(why) => return not_made(why),
    };
    match deps
        .rollout
        .change_noted(author, subject, &note, |current| request.apply(current))
        .await
    {
        Ok((old, new)) => {
            tracing::info!(author, old = %old.describe(), new = %new.describe(), "rollout changed");
            json!({ "ok": true, "old": old, "new": new })
        }
        Err(error) => not_made(NotMade::Failed(format!("{error:#}"))),
    }
}

/// Why a change was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NotMade {
    /// The watcher said no: the promote gate is closed, or the change is invalid.
    Refused(String),
    /// The watcher could not decide: the database or the bucket failed, or the audit log
    /// has not caught up yet. Trying again later may succeed.
    Failed(String),
}

/// The promote gate on `request`: a change that does not raise the enforced percent passes
/// as it is; a raise passes on an open gate, no further than the next phase, or with
/// `force` (and its reason). The error is the refusal, or why the gate could not judge.
async fn gate(deps: &WatcherDeps, request: &ChangeRequest) -> Result<ChangeNote, NotMade> {
    let mut note = ChangeNote {
        reason: request.reason.clone(),
        ..ChangeNote::default()
    };
    let (current, _) = deps
        .rollout
        .current()
        .await
        .map_err(|error| NotMade::Failed(format!("read the rollout flags: {error:#}")))?;
    let wanted = request.apply(&current);
    let (from, to) = (current.effective_percent(), wanted.effective_percent());
    if request.promote && from == to {
        return Err(NotMade::Refused(
            "promote: validation is enforced for 100 % already; nothing to promote to".into(),
        ));
    }
    if to <= from {
        return Ok(note);
    }
    let judged = report::current_phase(&deps.pool, Some(&current), &deps.phases)
        .await
        .map_err(|error| {
            NotMade::Failed(format!(
                "the promote gate could not judge the phase: {error:#}"
            ))
        })?;
    // The phases come from the audit log, which the recorder writes a moment after the flags
    // change: until it holds the last change, the "current" phase would be the one before it
    // (whose GO must not promote twice).
    if judged.phase.effective_percent != from {
        return Err(NotMade::Failed(format!(
            "the audit log has not recorded the last rollout change yet (its phase is {}, the flags enforce {from} %); try again in a moment",
            judged.phase.name()
        )));
    }
    let mut gate = judged.gate;
    if let Some(next) = gate.next_percent
        && to > next
    {
        gate.open = false;
        gate.refusals.push(format!(
            "{to} % skips a phase: the next one after {} is {next} %",
            judged.phase.name()
        ));
    }
    note.gate = Some(gate.summary());
    if gate.open {
        return Ok(note);
    }
    if request.force {
        note.forced = true;
        tracing::warn!(from, to, gate = %gate.summary(), "rollout raised past a refusing promote gate (forced)");
        return Ok(note);
    }
    Err(NotMade::Refused(format!(
        "promotion from {} to {to} % refused: {} (`--force --reason …` overrides, audited)",
        judged.phase.name(),
        gate.refusals.join("; ")
    )))
}

fn not_made(why: NotMade) -> Value {
    let (refused, error) = match why {
        NotMade::Refused(error) => {
            tracing::warn!(%error, "rollout change refused");
            (true, error)
        }
        NotMade::Failed(error) => {
            tracing::warn!(%error, "rollout change not made: the watcher could not decide");
            (false, error)
        }
    };
    json!({ "ok": false, "refused": refused, "error": error })
}

/// Audits every revision of the flags until `shutdown`; reopens the watch after an error,
/// from the revision after the last one it audited.
pub async fn audit(deps: &WatcherDeps, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut previous: Option<Seen> = None;
    loop {
        let from = previous.as_ref().map_or(1, |seen| seen.revision + 1);
        let result = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            result = audit_from(deps, from, &mut previous) => result,
        };
        if let Err(error) = result {
            tracing::warn!(error = %format!("{error:#}"), "rollout watch failed; reopening");
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn audit_from(
    deps: &WatcherDeps,
    from: u64,
    previous: &mut Option<Seen>,
) -> anyhow::Result<()> {
    let mut watch = deps.rollout.watch_from(from).await?;
    while let Some(entry) = watch.next().await {
        let entry = entry.map_err(|error| anyhow::anyhow!("read the rollout watch: {error}"))?;
        let stored = match entry.operation {
            async_nats::jetstream::kv::Operation::Put => {
                serde_json::from_slice::<Stored>(&entry.value).ok()
            }
            _ => None,
        };
        let seen = Seen {
            revision: entry.revision,
            stored,
        };
        let attribution = change::Attribution {
            // When the server stored the revision (not when it is audited: after a restart
            // the watch replays history): the phases start here.
            written_at: Some(crate::envelope::truncate_to_micros(entry.created)),
            ..change::attribute(previous.as_ref(), &seen)
        };
        let event = Envelope::derived(
            RequestId::from_uuid(uuid::Uuid::nil()),
            entry.created,
            &format!("rollout:{}:{}", entry.bucket, entry.revision),
            AuditRecord {
                kind: AuditKind::RolloutChanged,
                stage: Stage::Watcher,
                status: None,
                actor: deps.actor.clone(),
                data: attribution.to_data(),
                then: Vec::new(),
            },
        );
        publish_all(&deps.bus.js, &[Outgoing::audit(&deps.bus.subjects, &event)]).await?;
        *previous = Some(seen);
    }
    anyhow::bail!("the rollout watch ended")
}

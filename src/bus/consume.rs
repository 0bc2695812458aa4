//! The one consume loop: every stage hands its `handle` to [`run`].
//!
//! Per message: decode (the stage does it, through [`Delivery`]), handle, publish what the
//! stage produced with ids and await the acks, and only then ack. Transient errors nak with a
//! growing, jittered delay, an error that names when it can be decided (`Later`) with that
//! delay; permanent ones (and the others past `max_deliver`) go to
//! `wingman.dlq.<stage>` with the reason, are audited, and are termed so the stream keeps
//! flowing. A handler that panics is treated as a transient error. This is the only module
//! that acks.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::bus::publish::{Outgoing, publish_all};
use crate::envelope::{ENVELOPE_VERSION, Envelope, RequestId};
use crate::events::{AuditKind, AuditRecord, DeadLetter, PublicStatus, Stage, StatusEvent};
use crate::metrics;

/// What a stage decided to do with a message.
#[derive(Debug)]
pub enum Outcome {
    /// Publish these (the next event, audit, status) and then ack.
    Forward(Vec<Outgoing>),
    /// Nothing to publish (the effect was a database write, or a duplicate); ack.
    Done,
}

/// Why a stage could not handle a message.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// May succeed later (a database or NATS hiccup): nak and retry with backoff.
    #[error("transient: {0:#}")]
    Transient(#[source] anyhow::Error),
    /// Will never succeed: dead-letter, audit, term.
    #[error("{0}")]
    Permanent(Rejection),
    /// Cannot be decided before `after` has passed (another copy's lease on the work runs
    /// until then): nak with that delay, so the retries are not spent before it can succeed.
    #[error("not before {}: {error:#}", crate::duration::show(*after))]
    Later {
        after: Duration,
        #[source]
        error: anyhow::Error,
    },
}

/// A permanent refusal: a short fixed `code` (a metric label) and a sentence for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    pub code: &'static str,
    pub reason: String,
    pub request_id: Option<RequestId>,
}

impl StageError {
    pub fn permanent(
        code: &'static str,
        reason: impl Into<String>,
        request_id: Option<RequestId>,
    ) -> Self {
        StageError::Permanent(Rejection {
            code,
            reason: reason.into(),
            request_id,
        })
    }
}

impl From<sqlx::Error> for StageError {
    fn from(error: sqlx::Error) -> Self {
        StageError::Transient(error.into())
    }
}

/// A message as a stage sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subject: String,
    pub payload: Bytes,
    pub stream_sequence: u64,
    /// How many times this message has been delivered (1 on the first try).
    pub delivered: u64,
    /// When JetStream stored the message: the origin time of derived event ids.
    pub published: DateTime<Utc>,
}

impl Delivery {
    /// Decodes an internal event, refusing other envelope versions.
    pub fn envelope<T: DeserializeOwned>(&self) -> Result<Envelope<T>, StageError> {
        let envelope: Envelope<T> = serde_json::from_slice(&self.payload).map_err(|error| {
            StageError::permanent(
                "undecodable",
                format!("cannot decode the event: {error}"),
                None,
            )
        })?;
        if envelope.version != ENVELOPE_VERSION {
            return Err(StageError::permanent(
                "unknown_version",
                format!(
                    "unsupported envelope version {} (this worker reads {ENVELOPE_VERSION})",
                    envelope.version
                ),
                Some(envelope.request_id),
            ));
        }
        Ok(envelope)
    }
}

/// A pipeline stage. `handle` decides and performs the effect; it does not ack or publish.
pub trait Handler: Send + Sync + 'static {
    const STAGE: Stage;

    fn handle(
        &self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<Outcome, StageError>> + Send;

    /// Handles a batch of messages that arrived together, concurrently: messages are
    /// independent, and what must happen once is claimed in KV, so two copies of one request
    /// in a batch still act once. Stages that gain from batching otherwise (the recorder
    /// commits one transaction) override it; results are in input order.
    fn handle_batch(
        &self,
        deliveries: &[Delivery],
    ) -> impl Future<Output = Vec<Result<Outcome, StageError>>> + Send {
        futures::future::join_all(deliveries.iter().map(|delivery| self.handle(delivery)))
    }

    /// [`Handler::handle_batch`] with the batch's [`Turn`] among the batches in flight. A
    /// stage whose batches must reach some point in stream order (the recorder: the chain
    /// lock) overrides it; the default lets the next batch go at once.
    fn handle_batch_in_turn(
        &self,
        deliveries: &[Delivery],
        turn: Turn,
    ) -> impl Future<Output = Vec<Result<Outcome, StageError>>> + Send {
        drop(turn);
        self.handle_batch(deliveries)
    }
}

/// Where a batch stands among the batches in flight, in the order the loop took them: the
/// handler waits for the batch before it to reach a point ([`Turn::wait_previous`]) and says
/// when it has reached it ([`Turn::reached`], or by dropping the turn), so the rest of their
/// work overlaps while that point is passed in stream order. A second, later point says the
/// batch's effect has ended, done or failed ([`Turn::settled`], [`Turn::wait_previous_settled`]):
/// the recorder sends a batch once the one before it has reached the point where its rows are
/// known, and waits for it to settle only when its own append found the chain not yet where
/// the one before it leaves it.
#[derive(Debug)]
pub struct Turn {
    previous: Option<tokio::sync::oneshot::Receiver<()>>,
    reached: Option<tokio::sync::oneshot::Sender<()>>,
    previous_settled: Option<tokio::sync::oneshot::Receiver<()>>,
    settled: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Turn {
    /// A turn with nobody before it.
    pub fn first() -> Self {
        Self {
            previous: None,
            reached: None,
            previous_settled: None,
            settled: None,
        }
    }

    /// Waits until the batch taken before this one reached the point, or gave up.
    pub async fn wait_previous(&mut self) {
        if let Some(previous) = self.previous.take() {
            let _ = previous.await;
        }
    }

    /// Lets the next batch pass the point.
    pub fn reached(&mut self) {
        if let Some(reached) = self.reached.take() {
            let _ = reached.send(());
        }
    }

    /// Waits until the batch taken before this one settled (or gave up).
    pub async fn wait_previous_settled(&mut self) {
        self.wait_previous().await;
        if let Some(previous) = self.previous_settled.take() {
            let _ = previous.await;
        }
    }

    /// Says that this batch's effect has ended; it has passed the point too.
    pub fn settled(&mut self) {
        self.reached();
        if let Some(settled) = self.settled.take() {
            let _ = settled.send(());
        }
    }
}

/// How the loop treats one stage's messages.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    /// At most this many messages are handed to `handle_batch` at once.
    pub batch: usize,
    /// Wait for the server to confirm each ack (the gateway: a lost ack is expensive).
    pub double_ack: bool,
    /// Who is doing the work, recorded in audit events (`intake@host:pid`).
    pub actor: String,
    /// After a batch's first message, wait up to this long for more before handling a batch
    /// that is not full. Zero (every stage today) hands over what has arrived at once.
    pub linger: Duration,
    /// How many batches may be in flight at once (handled or being settled). 1 keeps the
    /// stream's order (the gateway); stages whose effects are claimed in KV overlap batches so
    /// one batch's publish round trips do not idle the next; the recorder overlaps two and
    /// orders their appends with [`Turn`].
    pub in_flight: usize,
    /// How long the claims this stage's effects rest on live ([`crate::claims::life`]);
    /// `None` for a stage without claims (the recorder is idempotent in Postgres). A message
    /// older than [`claims_horizon`] of it is refused, never handled: a claim made when it
    /// was handled before may have expired, and a second handling could repeat the effect
    /// (mint a second token, run a command twice).
    pub claims_life: Option<Duration>,
}

/// The age (since JetStream stored it) past which a message may have outlived the claim an
/// earlier handling of it made: nine tenths of the claims' life. A claim is made at a handling,
/// never before the message was stored, so it lives at least until `published + life`; the last
/// tenth covers the handling itself and the clocks of worker and server.
pub fn claims_horizon(claims_life: Duration) -> Duration {
    claims_life - claims_life / 10
}

/// Why `delivery` must not be handled: stored longer ago than the horizon of `claims_life`.
/// Its delivery count cannot tell a first handling: nats-server 2.9 was seen handing a worker
/// that restarted a message another worker had handled (and claimed) as delivery 1 —
/// `processes::a_message_redelivered_after_its_claim_expired_is_refused_not_handled_again`.
fn outlived_claims(
    delivery: &Delivery,
    claims_life: Option<Duration>,
    now: DateTime<Utc>,
) -> Option<Rejection> {
    let life = claims_life?;
    let age = (now - delivery.published).to_std().unwrap_or_default();
    let horizon = claims_horizon(life);
    if age < horizon {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Ids {
        request_id: Option<RequestId>,
    }
    let request = serde_json::from_slice::<Ids>(&delivery.payload)
        .ok()
        .and_then(|ids| ids.request_id)
        .map_or_else(String::new, |id| format!(" of request {id}"));
    Some(Rejection {
        code: "outlived_claims",
        reason: format!(
            "this message{request} was stored {} ago (delivery {}), past {} (nine tenths of \
             the {} a claim lives): a claim made when it was handled before may be gone, so it \
             is not handled again; the request's audit trail shows how far it got (submit it \
             anew if it never got anywhere)",
            crate::duration::show(age),
            delivery.delivered,
            crate::duration::show(horizon),
            crate::duration::show(life),
        ),
        // No status event: an earlier handling may have moved the request on.
        request_id: None,
    })
}

/// Consumes until `shutdown` is cancelled. On cancellation no new batch is taken; the
/// batches in flight are settled first.
pub async fn run<H: Handler>(
    handler: Arc<H>,
    bus: Bus,
    consumer: PullConsumer,
    options: LoopOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let max_deliver = u64::try_from(consumer.cached_info().config.max_deliver).unwrap_or(u64::MAX);
    let in_flight_limit = options.in_flight.max(1);
    let buffer = options.batch.max(1) * in_flight_limit;
    let mut messages = open_messages(&consumer, buffer).await?;
    tracing::info!(stage = H::STAGE.as_str(), actor = %options.actor, in_flight = in_flight_limit, "consuming");
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut stream_errors = 0u32;
    let mut last_turn: Option<tokio::sync::oneshot::Receiver<()>> = None;
    let mut last_settled: Option<tokio::sync::oneshot::Receiver<()>> = None;
    loop {
        let room = in_flight.len() < in_flight_limit;
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(()) = in_flight.next(), if !in_flight.is_empty() => continue,
            next = messages.next(), if room => next,
        };
        let first = match next {
            Some(Ok(message)) => {
                stream_errors = 0;
                message
            }
            Some(Err(error)) => {
                stream_errors += 1;
                tracing::warn!(%error, stage = H::STAGE.as_str(), "message stream error");
                if stream_errors >= 3 {
                    tokio::time::sleep(retry_delay(stream_errors)).await;
                    messages = open_messages(&consumer, buffer).await?;
                }
                continue;
            }
            None => {
                tracing::warn!(stage = H::STAGE.as_str(), "message stream ended; reopening");
                messages = open_messages(&consumer, buffer).await?;
                continue;
            }
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + options.linger;
        while batch.len() < options.batch {
            let next = if options.linger.is_zero() {
                messages.next().now_or_never()
            } else {
                tokio::time::timeout_at(deadline, messages.next())
                    .await
                    .ok()
            };
            match next {
                Some(Some(Ok(message))) => batch.push(message),
                _ => break,
            }
        }
        let (reached, next) = tokio::sync::oneshot::channel();
        let (settled, next_settled) = tokio::sync::oneshot::channel();
        let turn = Turn {
            previous: last_turn.replace(next),
            reached: Some(reached),
            previous_settled: last_settled.replace(next_settled),
            settled: Some(settled),
        };
        in_flight.push(settle_batch(
            &handler,
            &bus,
            &options,
            max_deliver,
            batch,
            turn,
        ));
    }
    while in_flight.next().await.is_some() {}
    tracing::info!(stage = H::STAGE.as_str(), "stopped consuming");
    Ok(())
}

async fn open_messages(
    consumer: &PullConsumer,
    batch: usize,
) -> anyhow::Result<jetstream::consumer::pull::Stream> {
    consumer
        .stream()
        .max_messages_per_batch(batch.max(1))
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .context("open the consumer's message stream")
}

async fn settle_batch<H: Handler>(
    handler: &Arc<H>,
    bus: &Bus,
    options: &LoopOptions,
    max_deliver: u64,
    batch: Vec<jetstream::Message>,
    turn: Turn,
) {
    let deliveries: Vec<Delivery> = batch.iter().map(to_delivery).collect();
    let taken = Utc::now();
    for delivery in deliveries.iter().filter(|delivery| delivery.delivered == 1) {
        metrics::queue_waited(
            H::STAGE,
            (taken - delivery.published).to_std().unwrap_or_default(),
        );
    }
    let started = Instant::now();
    let refused: Vec<Option<Rejection>> = deliveries
        .iter()
        .map(|delivery| outlived_claims(delivery, options.claims_life, taken))
        .collect();
    let results = if refused.iter().all(Option::is_none) {
        handle_guarded(handler, deliveries.clone(), turn).await
    } else {
        let handled: Vec<Delivery> = deliveries
            .iter()
            .zip(&refused)
            .filter(|(_, refusal)| refusal.is_none())
            .map(|(delivery, _)| delivery.clone())
            .collect();
        let mut handled = if handled.is_empty() {
            drop(turn);
            Vec::new()
        } else {
            handle_guarded(handler, handled, turn).await
        }
        .into_iter();
        refused
            .into_iter()
            .map(|refusal| match refusal {
                Some(rejection) => Err(StageError::Permanent(rejection)),
                None => handled.next().unwrap_or_else(|| Err(panicked())),
            })
            .collect()
    };
    metrics::batch_handled(H::STAGE, started.elapsed(), deliveries.len());
    let settling = Instant::now();
    let settles =
        batch
            .iter()
            .zip(&deliveries)
            .zip(results)
            .map(|((message, delivery), result)| {
                settle(
                    bus,
                    options,
                    max_deliver,
                    H::STAGE,
                    message,
                    delivery,
                    result,
                )
            });
    futures::future::join_all(settles).await;
    metrics::batch_settled(H::STAGE, settling.elapsed());
}

/// Runs the handler on its own task so a panic cannot take the worker down. After a panic
/// in a batch, each message is retried alone so only the culprit is blamed.
async fn handle_guarded<H: Handler>(
    handler: &Arc<H>,
    deliveries: Vec<Delivery>,
    turn: Turn,
) -> Vec<Result<Outcome, StageError>> {
    let count = deliveries.len();
    let task_handler = Arc::clone(handler);
    let task_deliveries = deliveries.clone();
    match tokio::spawn(async move {
        task_handler
            .handle_batch_in_turn(&task_deliveries, turn)
            .await
    })
    .await
    {
        Ok(results) if results.len() == count => results,
        Ok(_) => (0..count)
            .map(|_| {
                Err(StageError::Transient(anyhow::anyhow!(
                    "handler returned a wrong number of results"
                )))
            })
            .collect(),
        Err(_) if count > 1 => {
            let mut results = Vec::with_capacity(count);
            for delivery in deliveries {
                let single_handler = Arc::clone(handler);
                let result = tokio::spawn(async move { single_handler.handle(&delivery).await })
                    .await
                    .unwrap_or_else(|_| Err(panicked()));
                results.push(result);
            }
            results
        }
        Err(_) => vec![Err(panicked())],
    }
}

fn panicked() -> StageError {
    StageError::Transient(anyhow::anyhow!("the handler panicked"))
}

fn to_delivery(message: &jetstream::Message) -> Delivery {
    let (stream_sequence, delivered, published) = match message.info() {
        Ok(info) => (
            info.stream_sequence,
            u64::try_from(info.delivered).unwrap_or(1),
            info.published,
        ),
        Err(_) => (0, 1, Utc::now()),
    };
    Delivery {
        subject: message.subject.to_string(),
        payload: message.payload.clone(),
        stream_sequence,
        delivered,
        published,
    }
}

async fn settle(
    bus: &Bus,
    options: &LoopOptions,
    max_deliver: u64,
    stage: Stage,
    message: &jetstream::Message,
    delivery: &Delivery,
    result: Result<Outcome, StageError>,
) {
    let outcome = match result {
        Ok(Outcome::Done) => ack(message, options.double_ack).await.map(|()| "done"),
        Ok(Outcome::Forward(outgoing)) => match publish_all(&bus.js, &outgoing).await {
            Ok(()) => ack(message, options.double_ack).await.map(|()| "forwarded"),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), stage = stage.as_str(), "publish failed; will retry");
                nak(message, delivery.delivered).await.map(|()| "retried")
            }
        },
        Err(StageError::Transient(error)) if delivery.delivered < max_deliver => {
            tracing::warn!(error = %format!("{error:#}"), stage = stage.as_str(), delivered = delivery.delivered, "transient failure; will retry");
            nak(message, delivery.delivered).await.map(|()| "retried")
        }
        Err(StageError::Later { after, error }) if delivery.delivered < max_deliver => {
            tracing::info!(error = %format!("{error:#}"), stage = stage.as_str(), delivered = delivery.delivered, after = %crate::duration::show(after), "not yet; will retry");
            nak_after(message, after).await.map(|()| "retried")
        }
        Err(StageError::Transient(error) | StageError::Later { error, .. }) => {
            let rejection = Rejection {
                code: "retries_exhausted",
                reason: format!("gave up after {} deliveries: {error:#}", delivery.delivered),
                request_id: None,
            };
            dead_letter(bus, options, stage, message, delivery, rejection).await
        }
        Err(StageError::Permanent(rejection)) => {
            dead_letter(bus, options, stage, message, delivery, rejection).await
        }
    };
    match outcome {
        Ok(outcome) => metrics::message_settled(stage, outcome),
        Err(error) => {
            // The message stays unacked and comes back after ack_wait; its effects are keyed.
            tracing::warn!(error = %format!("{error:#}"), stage = stage.as_str(), "could not settle a message");
            metrics::message_settled(stage, "unsettled");
        }
    }
}

async fn dead_letter(
    bus: &Bus,
    options: &LoopOptions,
    stage: Stage,
    message: &jetstream::Message,
    delivery: &Delivery,
    rejection: Rejection,
) -> anyhow::Result<&'static str> {
    tracing::warn!(stage = stage.as_str(), code = rejection.code, reason = %rejection.reason, seq = delivery.stream_sequence, "dead-lettering a message");
    let outgoing = dead_letter_messages(bus, options, stage, delivery, &rejection);
    match publish_all(&bus.js, &outgoing).await {
        Ok(()) => {
            message
                .ack_with(AckKind::Term)
                .await
                .map_err(|error| anyhow::anyhow!("term: {error}"))?;
            metrics::dead_lettered(stage, rejection.code);
            Ok("dead_lettered")
        }
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "could not dead-letter; will retry");
            nak(message, delivery.delivered).await.map(|()| "retried")
        }
    }
}

/// The DLQ entry, the audit event and (when the request is known) the status event of a
/// refused message. All ids derive from the message's stream position.
pub fn dead_letter_messages(
    bus: &Bus,
    options: &LoopOptions,
    stage: Stage,
    delivery: &Delivery,
    rejection: &Rejection,
) -> Vec<Outgoing> {
    let key = format!(
        "{}:dlq:{}:{}",
        stage.as_str(),
        delivery.subject,
        delivery.stream_sequence
    );
    let request_id = rejection
        .request_id
        .unwrap_or(RequestId::from_uuid(uuid::Uuid::nil()));
    let payload_text = String::from_utf8_lossy(&delivery.payload);
    let excerpt: String = payload_text.chars().take(8 * 1024).collect();
    let letter = DeadLetter {
        event_id: crate::envelope::derive_uuid_v7(delivery.published, &key),
        stage,
        code: rejection.code.to_string(),
        reason: rejection.reason.clone(),
        subject: delivery.subject.clone(),
        stream_sequence: delivery.stream_sequence,
        delivered: delivery.delivered,
        request_id: rejection.request_id,
        at: crate::envelope::now(),
        payload: excerpt,
    };
    let audit = Envelope::derived(
        request_id,
        delivery.published,
        &format!("{key}:audit"),
        AuditRecord {
            kind: AuditKind::MessageRejected,
            stage,
            status: None,
            actor: options.actor.clone(),
            data: json!({
                "code": rejection.code,
                "reason": rejection.reason,
                "subject": delivery.subject,
                "stream_sequence": delivery.stream_sequence,
                "delivered": delivery.delivered,
            }),
            then: Vec::new(),
        },
    );
    let mut outgoing = vec![
        Outgoing::json(
            bus.subjects.dlq(stage),
            letter.event_id.to_string(),
            &letter,
        ),
        Outgoing::audit(&bus.subjects, &audit),
    ];
    if let Some(request_id) = rejection.request_id {
        let mut details = serde_json::Map::new();
        details.insert("error".into(), json!(rejection.reason));
        details.insert("code".into(), json!(rejection.code));
        let status = StatusEvent {
            event_id: crate::envelope::derive_uuid_v7(delivery.published, &format!("{key}:status")),
            request_id,
            status: PublicStatus::Invalid,
            at: crate::envelope::now(),
            stage,
            details,
        };
        outgoing.push(Outgoing::json(
            bus.subjects.status(request_id),
            status.event_id.to_string(),
            &status,
        ));
    }
    outgoing
}

async fn ack(message: &jetstream::Message, double: bool) -> anyhow::Result<()> {
    crate::failpoint::hit("before_ack").await;
    let result = if double {
        message.double_ack().await
    } else {
        message.ack().await
    };
    result.map_err(|error| anyhow::anyhow!("ack: {error}"))
}

async fn nak(message: &jetstream::Message, delivered: u64) -> anyhow::Result<()> {
    nak_after(
        message,
        retry_delay(u32::try_from(delivered).unwrap_or(u32::MAX)),
    )
    .await
}

async fn nak_after(message: &jetstream::Message, delay: Duration) -> anyhow::Result<()> {
    message
        .ack_with(AckKind::Nak(Some(delay)))
        .await
        .map_err(|error| anyhow::anyhow!("nak: {error}"))
}

/// The delay before the `attempt`-th retry: exponential from 200 ms to 30 s, with jitter.
pub fn retry_delay(attempt: u32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(30))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stay_bounded() {
        let first = retry_delay(1);
        assert!(
            first >= Duration::from_millis(200) && first < Duration::from_millis(500),
            "{first:?}"
        );
        assert!(retry_delay(4) >= Duration::from_millis(1600));
        assert!(retry_delay(100) <= Duration::from_secs(60));
    }

    #[test]
    fn only_a_message_older_than_nine_tenths_of_the_claims_life_is_refused() {
        let now = Utc::now();
        let day = Duration::from_secs(86_400);
        let delivery = |delivered: u64, age_secs: i64| Delivery {
            subject: "wingman.requests.validated.auto".into(),
            payload: Bytes::from_static(
                br#"{"request_id":"0191e5a0-0000-7000-8000-000000000001"}"#,
            ),
            stream_sequence: 7,
            delivered,
            published: now - chrono::Duration::seconds(age_secs),
        };
        // While any claim an earlier handling made surely lives: handled.
        assert!(outlived_claims(&delivery(1, 0), Some(day), now).is_none());
        assert!(outlived_claims(&delivery(2, 77_000), Some(day), now).is_none());
        // Past 21.6 h of a day's claims: refused, naming the request, whatever the delivery
        // count says (nats-server 2.9 may call a repeat delivery 1).
        assert!(outlived_claims(&delivery(1, 78_000), Some(day), now).is_some());
        let refused = outlived_claims(&delivery(2, 78_000), Some(day), now).unwrap();
        assert_eq!(refused.code, "outlived_claims");
        assert!(
            refused
                .reason
                .contains("0191e5a0-0000-7000-8000-000000000001"),
            "{}",
            refused.reason
        );
        assert_eq!(
            refused.request_id, None,
            "no status event: the request may have moved on"
        );
        // A stage without claims (the recorder) handles every redelivery.
        assert!(outlived_claims(&delivery(5, 30 * 86_400), None, now).is_none());
    }
}

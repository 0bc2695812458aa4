//! Intake: the front door of the pipeline, and the decision at it — one hop per request.
//!
//! 1. Validates each submitted request against the public contract ([`crate::request`]),
//!    then scores it and decides ([`crate::stages::validator`]): AUTO_APPROVED,
//!    AUTO_REJECTED or PENDING (outside the rollout cohort, or when validation fails).
//! 2. Consumes `wingman.requests.submitted.<principal>`, where the subject's suffix is who
//!    submitted ([`crate::principal::Principal`], proven by the server's permissions, recorded
//!    as `submitted_by`); publishes per request one audit message (`request_received` and
//!    `request_validated`, on `wingman.audit.intake.request_received`), one status event with
//!    the decision, and `wingman.requests.validated.<route>` only when a stage acts on it
//!    (`human` for approvals, `auto` for an approved command). An invalid message is
//!    dead-lettered by the consume loop with the reason (and `INVALID` on the status subject
//!    when the message carried a request id).
//! 3. Its only effect is a claim on the request id in the `claims` KV bucket, so the same
//!    request id submitted again is one request, not two; everything it publishes has ids
//!    derived from the message, so a redelivery decides and publishes the very same events.
//! 4. It never trusts a field it has not validated, never lets one bad message stop the
//!    stream, and a validator that fails never approves.

use std::sync::Arc;

use async_nats::jetstream::kv;
use serde_json::{Map, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::bus::consume::{self, Delivery, Handler, LoopOptions, Outcome, StageError};
use crate::bus::publish::Outgoing;
use crate::bus::step::Step;
use crate::claims::{self, Created, Key};
use crate::envelope::RequestId;
use crate::events::Stage;
use crate::events::payload::{Payload as _, RequestReceived};
use crate::metrics;
use crate::principal::Principal;
use crate::request::{Request, parse_request};
use crate::rollout::RolloutStore;
use crate::settings::IntakeSettings;
use crate::stages::validator::{self, Decided, Scoring};
use crate::status::Status;
use crate::validation::Validator;

pub struct IntakeDeps {
    /// Subjects to publish on.
    pub bus: Bus,
    /// Where request ids are claimed once (`intake.<request_id>`).
    pub claims: kv::Store,
    /// The validators and the live rollout flags.
    pub scoring: Scoring,
    /// Who we are, for the audit trail.
    pub actor: String,
}

impl IntakeDeps {
    /// Intake on `bus`, as `actor`: the claims bucket, the validators of `settings` and the
    /// live rollout flags, followed until `shutdown`. The worker's main and the tests build
    /// it here alike.
    ///
    /// # Errors
    /// A validation config that does not compile, or a bucket that cannot be opened.
    pub async fn open(
        bus: Bus,
        actor: String,
        settings: &IntakeSettings,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let validator = Validator::new(settings.validation.clone())
            .map_err(|error| anyhow::anyhow!("validation config: {error}"))?;
        let rollout = RolloutStore::open(&bus).await?;
        let claims = claims::open(&bus).await?;
        // A pending request's id stays claimed while a human may still answer it.
        claims::ensure_outlives(&claims, settings.approval_ttl, "WINGMAN_APPROVAL_TTL")?;
        Ok(Self {
            claims,
            scoring: Scoring {
                validator: Arc::new(validator),
                rollout: rollout.follow(shutdown).await,
                approval_ttl: settings.approval_ttl,
                timeout: settings.validation_timeout,
            },
            bus,
            actor,
        })
    }
}

impl Handler for IntakeDeps {
    const STAGE: Stage = Stage::Intake;

    async fn handle(&self, delivery: &Delivery) -> Result<Outcome, StageError> {
        handle_batch(self, std::slice::from_ref(delivery))
            .await
            .pop()
            .unwrap_or(Ok(Outcome::Done))
    }

    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Result<Outcome, StageError>> {
        handle_batch(self, deliveries).await
    }
}

/// The durable consumers this stage reads (its readiness checks them).
pub const CONSUMERS: &[&str] = &["intake"];

pub async fn run(
    deps: IntakeDeps,
    options: LoopOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = deps.bus.consumer(CONSUMERS[0]).await?;
    let bus = deps.bus.clone();
    let options = claims::guarding(options, &deps.claims);
    consume::run(Arc::new(deps), bus, consumer, options, shutdown).await
}

/// A batch: each message parsed, then its id claimed and its request scored at once (the
/// claims concurrently, the scores together off the async threads: neither waits for the
/// other), then the requests claimed decided together. A duplicate's score is dropped
/// uncounted.
pub async fn handle_batch(
    deps: &IntakeDeps,
    deliveries: &[Delivery],
) -> Vec<Result<Outcome, StageError>> {
    let Some(rollout) = deps.scoring.rollout.current() else {
        return deliveries
            .iter()
            .map(|_| {
                Err(StageError::Transient(anyhow::anyhow!(
                    "the rollout flags are not set (start intake with topology set-up, or run `wingman rollout set`)"
                )))
            })
            .collect();
    };
    let parsed: Vec<Result<Request, StageError>> = deliveries
        .iter()
        .map(|delivery| parse(deps, delivery))
        .collect();
    let requests: Vec<&Request> = parsed
        .iter()
        .filter_map(|parsed| parsed.as_ref().ok())
        .collect();
    let claims = parsed
        .iter()
        .zip(deliveries)
        .filter_map(|(parsed, delivery)| Some(admit(deps, parsed.as_ref().ok()?, delivery)));
    let (claimed, scores) = tokio::join!(
        futures::future::join_all(claims),
        deps.scoring.validate_all(&requests),
    );
    let mut claimed = claimed.into_iter();
    let mut scores = scores.into_iter();
    // Per message: the request to decide, nothing to do (a duplicate), or why not; and the
    // scores of the requests to decide, in the same order.
    let mut kept_scores = Vec::new();
    let admitted: Vec<Result<Option<Request>, StageError>> = parsed
        .into_iter()
        .map(|parsed| {
            let request = parsed?;
            let claim = claimed.next().unwrap_or_else(|| {
                Err(StageError::Transient(anyhow::anyhow!(
                    "a claim went missing"
                )))
            });
            let score = scores.next().unwrap_or_else(validator::lost_score);
            if !claim? {
                return Ok(None);
            }
            kept_scores.push(score);
            Ok(Some(request))
        })
        .collect();
    let to_decide: Vec<(&Request, chrono::DateTime<chrono::Utc>)> = admitted
        .iter()
        .zip(deliveries)
        .filter_map(|(admitted, delivery)| match admitted {
            Ok(Some(request)) => Some((request, delivery.published)),
            _ => None,
        })
        .collect();
    let mut decisions = deps
        .scoring
        .decide_validated(&rollout, &to_decide, kept_scores)
        .into_iter();
    admitted
        .into_iter()
        .zip(deliveries)
        .map(|(admitted, delivery)| match admitted? {
            Some(request) => {
                let decided = decisions.next().ok_or_else(|| {
                    StageError::Transient(anyhow::anyhow!("a decision went missing"))
                })?;
                Ok(Outcome::Forward(publish(deps, request, &decided, delivery)))
            }
            None => Ok(Outcome::Done),
        })
        .collect()
}

/// Reads one message: the request it carries, with who submitted it (the subject), or why it
/// is invalid (counted, and dead-lettered by the consume loop).
fn parse(deps: &IntakeDeps, delivery: &Delivery) -> Result<Request, StageError> {
    let fallback_id = || {
        RequestId::derive(
            delivery.published,
            &format!("{}:{}", delivery.subject, delivery.stream_sequence),
        )
    };
    let mut request = match parse_request(&delivery.payload, fallback_id) {
        Ok(request) => request,
        Err(invalid) => {
            metrics::request_invalid(invalid.code);
            return Err(StageError::permanent(
                invalid.code,
                invalid.to_string(),
                invalid.request_id,
            ));
        }
    };
    request.submitted_by =
        Principal::from_submit_subject(&deps.bus.subjects.submitted_base(), &delivery.subject)
            .map_err(|problem| {
                metrics::request_invalid("unknown_principal");
                StageError::permanent("unknown_principal", problem, Some(request.request_id))
            })?;
    Ok(request)
}

/// Claims one parsed request's id: `true` to decide it, `false` for a duplicate of a known
/// request (nothing to do), an error for a taken id or a claim that could not be made.
#[tracing::instrument(level = "debug", skip_all, fields(stage = "intake", seq = delivery.stream_sequence, delivered = delivery.delivered, request_id = %request.request_id))]
async fn admit(
    deps: &IntakeDeps,
    request: &Request,
    delivery: &Delivery,
) -> Result<bool, StageError> {
    match claim(deps, request, delivery).await? {
        Claim::Ours => {}
        Claim::Duplicate => {
            tracing::info!(request_id = %request.request_id, "duplicate submission of a known request; ignored");
            return Ok(false);
        }
        Claim::Conflict => {
            return Err(StageError::permanent(
                "request_id_conflict",
                format!(
                    "field `request_id`: {} was already submitted with different content",
                    request.request_id
                ),
                None,
            ));
        }
    }
    metrics::request_received(request.environment.as_str());
    Ok(true)
}

/// One audit message with both records, one status event with the decision, and the
/// decision for the next stage when one acts on it.
fn publish(
    deps: &IntakeDeps,
    request: Request,
    decided: &Decided,
    delivery: &Delivery,
) -> Vec<Outgoing> {
    let step = Step {
        subjects: &deps.bus.subjects,
        stage: Stage::Intake,
        actor: &deps.actor,
        request_id: request.request_id,
        origin: delivery.published,
    };
    let mut details = Map::new();
    details.insert("title".into(), json!(request.title));
    details.insert("environment".into(), json!(request.environment));
    details.insert("requester".into(), json!(request.requester));
    details.insert("submitted_by".into(), json!(request.submitted_by));
    if let Some(command) = &request.command {
        details.insert("command".into(), json!(command.line));
        details.insert("operation".into(), json!(command.operation.name()));
    }
    decided.add_details(&mut details);
    let received = RequestReceived { request };
    let mut outgoing = vec![
        step.audits(vec![
            received.entry(Some(Status::Received)),
            decided.audit().entry(Some(decided.status)),
        ]),
        step.status(decided.status, details),
    ];
    let request = received.request;
    if let Some(route) = decided.route(&request) {
        outgoing.push(step.event(
            deps.bus.subjects.validated(route),
            "validated",
            decided.event(request),
        ));
    }
    outgoing
}

enum Claim {
    /// First time we see this id, or a redelivery of the very message that claimed it.
    Ours,
    /// The same request sent again (another message): one request, nothing to do.
    Duplicate,
    /// The id is taken by a request with other content.
    Conflict,
}

async fn claim(
    deps: &IntakeDeps,
    request: &Request,
    delivery: &Delivery,
) -> Result<Claim, StageError> {
    let key = Key::Intake(request.request_id).to_string();
    // Who submitted is part of the content: the same id from another principal is a
    // conflict, never a silent duplicate of somebody else's request.
    let fingerprint = hex::encode(Sha256::digest(
        format!("{}\n{}", request.submitted_by, request.to_public_json()).as_bytes(),
    ));
    let value = json!({ "stream_sequence": delivery.stream_sequence, "fingerprint": fingerprint });
    let stored = match claims::create_once(&deps.claims, &key, &value, "the request id")
        .await
        .map_err(StageError::Transient)?
    {
        Created::Ours(_) => return Ok(Claim::Ours),
        Created::Theirs(stored, _) => stored,
    };
    if stored["stream_sequence"].as_u64() == Some(delivery.stream_sequence) {
        Ok(Claim::Ours)
    } else if stored["fingerprint"].as_str() == Some(fingerprint.as_str()) {
        Ok(Claim::Duplicate)
    } else {
        Ok(Claim::Conflict)
    }
}

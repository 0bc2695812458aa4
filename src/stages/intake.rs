//! Intake: the front door of the pipeline.
//!
//! 1. Validates each submitted request against the public contract ([`crate::request`]).
//! 2. Consumes `wingman.requests.submitted.<principal>`, where the subject's suffix is who
//!    submitted ([`crate::identity::Principal`], proven by the server's permissions, recorded
//!    as `submitted_by`); publishes `wingman.requests.accepted`,
//!    `wingman.audit.request_received` and `wingman.status.<id>` (RECEIVED). An invalid
//!    message is dead-lettered by the consume loop with the reason (and `INVALID` on the
//!    status subject when the message carried a request id).
//! 3. Its only effect is a claim on the request id in the `claims` KV bucket, so the same
//!    request id submitted again is one request, not two.
//! 4. It never trusts a field it has not validated, and never lets one bad message stop the
//!    stream.

use std::sync::Arc;

use async_nats::jetstream::kv;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::bus::consume::{self, Delivery, Handler, LoopOptions, Outcome, StageError};
use crate::envelope::RequestId;
use crate::events::{Accepted, AuditKind, Stage};
use crate::identity::Principal;
use crate::metrics;
use crate::request::{Request, parse_request};
use crate::stages::Step;
use crate::status::Status;

pub struct IntakeDeps {
    /// Subjects to publish on.
    pub bus: Bus,
    /// Where request ids are claimed once (`intake.<request_id>`).
    pub claims: kv::Store,
    /// Who we are, for the audit trail.
    pub actor: String,
}

impl Handler for IntakeDeps {
    const STAGE: Stage = Stage::Intake;

    async fn handle(&self, delivery: &Delivery) -> Result<Outcome, StageError> {
        handle(self, delivery).await
    }
}

pub async fn run(
    deps: IntakeDeps,
    options: LoopOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = deps.bus.consumer("intake").await?;
    let bus = deps.bus.clone();
    consume::run(Arc::new(deps), bus, consumer, options, shutdown).await
}

#[tracing::instrument(skip_all, fields(stage = "intake", seq = delivery.stream_sequence, delivered = delivery.delivered))]
pub async fn handle(deps: &IntakeDeps, delivery: &Delivery) -> Result<Outcome, StageError> {
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
    request.submitted_by = Principal::from_submit_subject(&deps.bus.subjects, &delivery.subject)
        .map_err(|problem| {
            metrics::request_invalid("unknown_principal");
            StageError::permanent("unknown_principal", problem, Some(request.request_id))
        })?;
    tracing::Span::current().record("request_id", tracing::field::display(request.request_id));
    match claim(deps, &request, delivery).await? {
        Claim::Ours => {}
        Claim::Duplicate => {
            tracing::info!(request_id = %request.request_id, "duplicate submission of a known request; ignored");
            return Ok(Outcome::Done);
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
    Ok(Outcome::Forward(accept(deps, &request, delivery)))
}

fn accept(
    deps: &IntakeDeps,
    request: &Request,
    delivery: &Delivery,
) -> Vec<crate::bus::publish::Outgoing> {
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
    vec![
        step.event(
            deps.bus.subjects.accepted(),
            "accepted",
            Accepted {
                request: request.clone(),
            },
        ),
        step.audit(
            AuditKind::RequestReceived,
            Some(Status::Received),
            json!({ "request": request }),
        ),
        step.status(Status::Received.as_str(), details),
    ]
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
    let key = format!("intake.{}", request.request_id);
    // Who submitted is part of the content: the same id from another principal is a
    // conflict, never a silent duplicate of somebody else's request.
    let fingerprint = hex::encode(Sha256::digest(
        format!("{}\n{}", request.submitted_by, request.to_public_json()).as_bytes(),
    ));
    let value = json!({ "stream_sequence": delivery.stream_sequence, "fingerprint": fingerprint });
    match deps.claims.create(&key, value.to_string().into()).await {
        Ok(_) => return Ok(Claim::Ours),
        Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(error) => {
            return Err(StageError::Transient(anyhow::anyhow!(
                "claim {key}: {error}"
            )));
        }
    }
    let stored = deps
        .claims
        .get(&key)
        .await
        .map_err(|error| StageError::Transient(anyhow::anyhow!("read claim {key}: {error}")))?
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .unwrap_or(Value::Null);
    if stored["stream_sequence"].as_u64() == Some(delivery.stream_sequence) {
        Ok(Claim::Ours)
    } else if stored["fingerprint"].as_str() == Some(fingerprint.as_str()) {
        Ok(Claim::Duplicate)
    } else {
        Ok(Claim::Conflict)
    }
}

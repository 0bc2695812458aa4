//! Validator: scores each accepted request and decides what happens next.
//!
//! 1. Runs the five validators ([`crate::validation`]) on requests in the validated cohort
//!    (the live rollout flags in KV decide who is in it) and takes the composite's decision:
//!    AUTO_APPROVED, AUTO_REJECTED or PENDING. Requests outside the cohort go to PENDING with
//!    `validation_applied = false`.
//! 2. Consumes `wingman.requests.accepted`; publishes `wingman.requests.validated`,
//!    `wingman.audit.request_validated` and the status event.
//! 3. Its effect is the published decision (derived ids: a redelivery decides the same).
//! 4. A validator that errors, panics or times out never approves: the request goes to a human
//!    and the error is counted and audited.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::bus::consume::{self, Delivery, Handler, LoopOptions, Outcome, StageError};
use crate::events::{Accepted, AuditKind, Stage, Validated};
use crate::metrics;
use crate::request::Request;
use crate::rollout::{Rollout, RolloutStore};
use crate::stages::Step;
use crate::status::Status;
use crate::validation::{Decision, Validation, Validator};

pub struct ValidatorDeps {
    pub bus: Bus,
    /// The compiled validators and their configuration.
    pub validator: Arc<Validator>,
    /// The live rollout flags, read once per batch so a change applies to the next request.
    pub rollout: RolloutStore,
    pub actor: String,
    /// How long a PENDING request waits for a human (`WINGMAN_APPROVAL_TTL`).
    pub approval_ttl: Duration,
    /// A validation taking longer than this counts as an error (the request goes to a human).
    pub timeout: Duration,
}

impl Handler for ValidatorDeps {
    const STAGE: Stage = Stage::Validator;

    async fn handle(&self, delivery: &Delivery) -> Result<Outcome, StageError> {
        let rollout = self.current_rollout().await?;
        handle(self, &rollout, delivery).await
    }

    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Result<Outcome, StageError>> {
        let rollout = match self.current_rollout().await {
            Ok(rollout) => rollout,
            Err(error) => {
                let reason = error.to_string();
                return deliveries
                    .iter()
                    .map(|_| Err(StageError::Transient(anyhow::anyhow!("{reason}"))))
                    .collect();
            }
        };
        let mut results = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            results.push(handle(self, &rollout, delivery).await);
        }
        results
    }
}

impl ValidatorDeps {
    async fn current_rollout(&self) -> Result<Rollout, StageError> {
        let (rollout, _) = self
            .rollout
            .current()
            .await
            .map_err(StageError::Transient)?;
        metrics::rollout(rollout.enabled, rollout.percent);
        Ok(rollout)
    }
}

pub async fn run(
    deps: ValidatorDeps,
    options: LoopOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = deps.bus.consumer("validator").await?;
    let bus = deps.bus.clone();
    consume::run(Arc::new(deps), bus, consumer, options, shutdown).await
}

#[tracing::instrument(skip_all, fields(stage = "validator", seq = delivery.stream_sequence))]
pub async fn handle(
    deps: &ValidatorDeps,
    rollout: &Rollout,
    delivery: &Delivery,
) -> Result<Outcome, StageError> {
    let request = delivery.envelope::<Accepted>()?.body.request;
    let cohort = rollout.cohort(request.request_id);
    let (status, validation, error) = if cohort.applied {
        match validate_guarded(deps, &request).await {
            Ok(validation) => (status_of(validation.decision), Some(validation), None),
            Err((code, reason)) => {
                metrics::validation_error(code);
                tracing::warn!(request_id = %request.request_id, reason, "validation failed; the request goes to a human");
                (Status::Pending, None, Some(reason))
            }
        }
    } else {
        (Status::Pending, None, None)
    };
    let profile = validation
        .as_ref()
        .map_or("none", |v| v.validator_scores.composite.profile.as_str());
    metrics::validation_outcome(profile, status.as_str(), cohort.applied);
    if let Some(validation) = &validation {
        record_scores(validation);
    }
    // A human's answer has a deadline, an override of an auto-rejection included.
    let expires_at = matches!(status, Status::Pending | Status::AutoRejected).then(|| {
        delivery.published
            + chrono::Duration::from_std(deps.approval_ttl).unwrap_or(chrono::Duration::hours(1))
    });
    let scores = validation
        .as_ref()
        .map(|v| serde_json::to_value(&v.validator_scores).unwrap_or(Value::Null));
    let composite = validation.as_ref().map(|v| &v.validator_scores.composite);

    let step = Step {
        subjects: &deps.bus.subjects,
        stage: Stage::Validator,
        actor: &deps.actor,
        request_id: request.request_id,
        origin: delivery.published,
    };
    let audit_data = json!({
        "validator_scores": scores,
        "profile": composite.map(|c| c.profile.as_str()),
        "composite_score": composite.map(|c| c.score),
        "reasons": composite.map(|c| c.reasons.clone()),
        "validation_applied": cohort.applied,
        "validation_decision": validation.as_ref().map(|_| status.as_str()),
        "validation_error": error.is_some(),
        "error": error,
        "rollout_bucket": cohort.bucket,
        "rollout": rollout.describe(),
        "expires_at": expires_at,
    });
    let mut details = Map::new();
    details.insert("validation_applied".into(), json!(cohort.applied));
    if let Some(composite) = composite {
        details.insert("composite_score".into(), json!(composite.score));
        details.insert("profile".into(), json!(composite.profile.as_str()));
        details.insert("reasons".into(), json!(composite.reasons));
    }
    if let Some(expires_at) = expires_at {
        details.insert("expires_at".into(), json!(expires_at));
    }
    let validated = Validated {
        request,
        status,
        validation_applied: cohort.applied,
        rollout_bucket: cohort.bucket,
        validator_scores: scores,
        validation_error: error,
        expires_at,
    };
    Ok(Outcome::Forward(vec![
        step.event(deps.bus.subjects.validated(), "validated", validated),
        step.audit(AuditKind::RequestValidated, Some(status), audit_data),
        step.status(status.as_str(), details),
    ]))
}

fn status_of(decision: Decision) -> Status {
    match decision {
        Decision::AutoApproved => Status::AutoApproved,
        Decision::AutoRejected => Status::AutoRejected,
        Decision::Pending => Status::Pending,
    }
}

/// Runs the validators off the async threads, bounded in time; a panic or a timeout is an
/// error, never an approval.
async fn validate_guarded(
    deps: &ValidatorDeps,
    request: &Request,
) -> Result<Validation, (&'static str, String)> {
    let validator = Arc::clone(&deps.validator);
    let request = request.clone();
    let task = tokio::task::spawn_blocking(move || validator.validate(&request));
    match tokio::time::timeout(deps.timeout, task).await {
        Ok(Ok(validation)) => Ok(validation),
        Ok(Err(_)) => Err(("panic", "a validator panicked".to_string())),
        Err(_) => Err((
            "timeout",
            format!(
                "validation took longer than {} ms",
                deps.timeout.as_millis()
            ),
        )),
    }
}

fn record_scores(validation: &Validation) {
    let scores = &validation.validator_scores;
    metrics::validator_score("code_scanner", f64::from(scores.code_scanner.score));
    metrics::validator_score("content_quality", f64::from(scores.content_quality.score));
    metrics::validator_score(
        "dependency_analyzer",
        f64::from(scores.dependency_analyzer.score),
    );
    metrics::validator_score(
        "semantic_analyzer",
        f64::from(scores.semantic_analyzer.score),
    );
    metrics::validator_score("composite", f64::from(scores.composite.score));
}

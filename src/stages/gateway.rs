//! Gateway: the only holder of the Docker socket, and only of the verification key.
//!
//! 1. Performs an approved operation on the Docker Engine (through [`crate::engine`], never a
//!    shell) when, and only when, the job's capability token verifies: signature, expiry,
//!    environment (and `ALLOWED_ENVIRONMENTS`), request id and the hash of the operation it
//!    parsed itself; the policy allows it on what Docker says the targets are (it resolves
//!    them through the Engine: canonical names, full ids, compose labels; an `inspect` by
//!    inspecting them, what it read released only after the claim); and the token id
//!    was never used. It then acts on exactly the containers it resolved, by full id;
//!    `compose up` / `pull` run the compose binary from the project's registration, and an
//!    exec runs only the probe the policy declares.
//!    An automatic token runs only from the pipeline, a manual one only for its holder at
//!    `POST /gateway/execute` ([`token::check_presenter`]).
//! 2. Consumes `wingman.exec.jobs` (also called by `POST /gateway/execute`); publishes
//!    `execution_started` / `execution_finished` or `token_refused` audit events and status
//!    events (EXECUTING, SUCCEEDED, FAILED, INDETERMINATE, or REFUSED).
//! 3. Its effect is the operation, at most once: the token id is claimed in KV
//!    (`exec.<token_id>`) as `started` before Docker is called and `finished` after. A
//!    redelivery after a crash between the two finds `started` and reports INDETERMINATE for
//!    a human; it never runs the operation again.
//! 4. It never trusts the job's parsed operation: it parses the command line itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::Bus;
use crate::bus::consume::{self, Delivery, Handler, LoopOptions, Outcome, StageError};
use crate::bus::publish::{Outgoing, publish_all};
use crate::bus::step::Step;
use crate::claims::{self, Created, Key};
use crate::docker::{DockerOperation, parse_command_line};
use crate::engine::{ComposeFileDigests, Engine, ExecutionResult, Limits};
use crate::events::payload::{
    ExecutionFinished, ExecutionIndeterminate, ExecutionStarted, Payload as _,
};
use crate::events::{AuditKind, ExecJob, ExecutionOutput, PublicStatus, Stage};
use crate::metrics;
use crate::policy::Policy;
use crate::request::{Environment, Request};
use crate::settings::GatewaySettings;
use crate::status::Status;
use crate::token::{self, Expected, Presenter, VerifyKey};

/// The default of [`GatewayDeps::running_lease`]: above the gateway consumer's ack wait.
#[doc(inline)]
pub use crate::settings::GATEWAY_RUNNING_LEASE as RUNNING_LEASE;

pub struct GatewayDeps {
    pub bus: Bus,
    /// `exec.<token_id>`: the single-use claim of each token.
    pub claims: kv::Store,
    /// Verifies tokens; the gateway cannot mint.
    pub verify_key: VerifyKey,
    /// The Docker Engine (the socket only this process holds).
    pub engine: Engine,
    pub policy: Policy,
    /// `ALLOWED_ENVIRONMENTS`: a token for any other environment is refused.
    pub allowed_environments: Vec<Environment>,
    pub actor: String,
    /// A claim `started` more recently than this may still be running in another copy: retry
    /// later instead of declaring it INDETERMINATE (`WINGMAN_GATEWAY_LEASE_SECS`).
    pub running_lease: Duration,
}

/// The claim of one token, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecClaim {
    pub state: ClaimState,
    pub request_id: crate::envelope::RequestId,
    /// Which job message claimed it: the same message redelivered may report its result.
    pub job: String,
    pub started_at: DateTime<Utc>,
    pub result: Option<ExecutionResult>,
    pub duration_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimState {
    Started,
    Finished,
}

impl GatewayDeps {
    /// The gateway on `bus`, as `actor`: the claims bucket, `engine` (connected with
    /// [`connect_engine`]), the policy and environments of `settings`.
    ///
    /// # Errors
    /// When the claims bucket cannot be opened.
    pub async fn open(
        bus: Bus,
        actor: String,
        settings: GatewaySettings,
        engine: Engine,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            claims: claims::open(&bus).await?,
            verify_key: settings.verify_key,
            engine,
            policy: settings.policy,
            allowed_environments: settings.allowed_environments,
            running_lease: settings.running_lease,
            bus,
            actor,
        })
    }
}

/// The Docker Engine of `settings` (`DOCKER_HOST`), running compose with its compose binary.
/// The worker connects before it starts, so its readiness names Docker from the first answer.
///
/// # Errors
/// When the address is not a unix socket or the Engine does not answer.
pub async fn connect_engine(settings: &GatewaySettings) -> anyhow::Result<Engine> {
    Ok(Engine::connect(settings.docker_host.as_deref())
        .await
        .map_err(|error| anyhow::anyhow!("connect to the Docker Engine (DOCKER_HOST): {error}"))?
        .with_compose(settings.compose.clone()))
}

impl Handler for GatewayDeps {
    const STAGE: Stage = Stage::Gateway;

    async fn handle(&self, delivery: &Delivery) -> Result<Outcome, StageError> {
        let envelope = delivery.envelope::<ExecJob>()?;
        let outgoing = execute(
            self,
            &envelope.body,
            &envelope.event_id.to_string(),
            Presenter::Pipeline,
            delivery.published,
        )
        .await?;
        Ok(Outcome::Forward(outgoing))
    }
}

/// The durable consumers this stage reads (its readiness checks them).
pub const CONSUMERS: &[&str] = &["gateway"];

pub async fn run(
    deps: Arc<GatewayDeps>,
    options: LoopOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = deps.bus.consumer(CONSUMERS[0]).await?;
    let bus = deps.bus.clone();
    let options = claims::guarding(options, &deps.claims);
    consume::run(
        deps,
        bus,
        consumer,
        // One job at a time, in order: two operations on one container never interleave.
        LoopOptions {
            double_ack: true,
            batch: 1,
            in_flight: 1,
            ..options
        },
        shutdown,
    )
    .await
}

/// Verifies, claims and performs one job; returns the events to publish. `job_id` identifies
/// the delivery (the job's event id, or a fresh id per HTTP call); `presenter` is who brings
/// the token (the pipeline, or the client the HTTP face authenticated).
pub async fn execute(
    deps: &GatewayDeps,
    job: &ExecJob,
    job_id: &str,
    presenter: Presenter<'_>,
    origin: DateTime<Utc>,
) -> Result<Vec<Outgoing>, StageError> {
    let received = Instant::now();
    let request = &job.request;
    let step = Step {
        subjects: &deps.bus.subjects,
        stage: Stage::Gateway,
        actor: &deps.actor,
        request_id: request.request_id,
        origin,
    };
    let refuse =
        |code: &'static str, reason: String| Ok(refusal(&step, code, &reason, job.token_id));
    let Admitted { operation, claims } = match admit(
        job,
        presenter,
        &deps.verify_key,
        &deps.allowed_environments,
        &deps.policy,
        Utc::now(),
    ) {
        Ok(admitted) => admitted,
        Err(Refusal { code, reason }) => return refuse(code, reason),
    };
    let key = Key::Exec(claims.token_id).to_string();
    let admitted_at = Instant::now();
    // Whether the token was used, and what Docker says the targets are, asked at once: both
    // only read. A claim decides alone (a redelivered job gets its outcome again, any other
    // use is refused) whatever the Engine answered; without one, Docker must be reachable
    // before anything is claimed (if it is not, retry later). The policy decides on these
    // facts, and the engine acts on exactly these containers, so resolving never changes
    // what the token approved: an id prefix of two containers is refused, not guessed. An
    // `inspect` is resolved by the inspect itself ([`Engine::look`]): what it read leaves
    // the gateway only below, once the policy allowed it and the claim is ours.
    let (existing, (lookup, resolve_took)) = tokio::join!(
        read_claim(&deps.claims, &key),
        timed(deps.engine.look(&operation))
    );
    if let Some((claim, _)) = existing? {
        return replay(
            &step,
            &claim,
            job_id,
            &operation,
            request,
            &claims,
            deps.running_lease,
        );
    }
    let lookup = lookup
        .map_err(|error| StageError::Transient(anyhow::anyhow!("docker engine: {error:#}")))?;
    let resolved = &lookup.resolved;
    let resolved_at = Instant::now();
    // What the policy adds: the registered project `compose up` / `pull` run from, the
    // declared probe an exec runs (never the request's files or argv themselves).
    let admission = match deps.policy.admit(request.environment, &operation, resolved) {
        Ok(admission) => admission,
        Err(refusal) => return refuse("policy", refusal.to_string()),
    };
    // What a `compose up` / `pull` is about to run with: the registered files as they are
    // now (compose reads them again when it runs; this is the last look before it does).
    let files = match (&operation, &admission.project) {
        (DockerOperation::Compose(op), Some(project)) if op.action.reads_compose_files() => {
            project.digests().await
        }
        _ => ComposeFileDigests::default(),
    };
    let started = [
        step.record(
            Some(Status::Executing),
            &ExecutionStarted {
                resolved: json!(resolved),
                probe: json!(admission.probe),
                compose_project_directory: admission
                    .project
                    .as_ref()
                    .map(|project| project.directory.display().to_string()),
                compose_files: files.compose_files,
                env_file: files.env_file,
                ..started_record(&operation, request, &claims)
            },
        ),
        step.status(
            Status::Executing,
            details(&[("operation", json!(operation.to_string()))]),
        ),
    ];
    // EXECUTING and the claim, at once: both are durable before the Engine is called (one
    // round trip in line, not two). EXECUTING's ids are derived: a redelivery republishes
    // nothing new. When EXECUTING could not be recorded, the claim is given back so a retry
    // runs the operation once; when even that fails, or the gateway stops between the two,
    // the redelivery finds the claim and ends INDETERMINATE, recording EXECUTING first
    // ([`indeterminate_after_restart`]): never a second run.
    let claim = ExecClaim {
        state: ClaimState::Started,
        request_id: request.request_id,
        job: job_id.to_string(),
        started_at: Utc::now(),
        result: None,
        duration_ms: None,
    };
    let publishing_at = Instant::now();
    let ((published, published_at), (created, claimed_at)) = tokio::join!(
        async {
            crate::failpoint::hit("gateway_before_executing").await;
            let published = publish_all(&deps.bus.js, &started).await;
            (published, Instant::now())
        },
        async {
            let created = claims::create_once(&deps.claims, &key, &claim, "the execution claim");
            (created.await, Instant::now())
        },
    );
    let revision = match created.map_err(StageError::Transient)? {
        Created::Ours(revision) => revision,
        Created::Theirs(claim, _) => {
            return replay(
                &step,
                &claim,
                job_id,
                &operation,
                request,
                &claims,
                deps.running_lease,
            );
        }
    };
    if let Err(error) = published {
        if let Err(release) = deps
            .claims
            .delete_expect_revision(&key, Some(revision))
            .await
        {
            tracing::error!(%release, %key, "EXECUTING was not recorded and the claim could not be given back: the redelivery ends INDETERMINATE");
        }
        return Err(StageError::Transient(error));
    }
    crate::failpoint::hit("gateway_after_claim").await;
    let limits = Limits {
        max_stop_timeout_secs: deps.policy.max_stop_timeout(request.environment),
        ..Limits::default()
    };
    let began = Instant::now();
    let performed = deps
        .engine
        .perform_admitted(&operation, &lookup, &admission, &limits)
        .await;
    let performed_at = Instant::now();
    // The operation's Engine time: its call, and the reads it made while resolving.
    let elapsed = (performed_at - began) + lookup.read_took;
    let finished = match performed {
        Ok(result) => {
            metrics::docker_call(operation.name(), if result.ok { "ok" } else { "failed" });
            ExecClaim {
                state: ClaimState::Finished,
                result: Some(result),
                duration_ms: Some(elapsed.as_millis() as u64),
                ..claim
            }
        }
        Err(error) => {
            // The engine may have done part of it: a human must look; never retry.
            metrics::docker_call(operation.name(), "error");
            tracing::error!(%error, request_id = %request.request_id, "docker engine failed mid-operation");
            metrics::execution(
                operation.name(),
                request.environment.as_str(),
                "indeterminate",
                elapsed,
            );
            return Ok(indeterminate(
                &step,
                claims.token_id,
                &format!("the docker engine failed during the operation: {error}"),
            ));
        }
    };
    if let Err(error) = deps
        .claims
        .update(&key, to_bytes(&finished)?, revision)
        .await
    {
        tracing::error!(%error, %key, "could not record the finished claim");
    }
    // Where a job's time went, beside the Engine call (`RUST_LOG=wingman::stages::gateway=debug`):
    // what `wingman_gateway_overhead_seconds` sums, step by step.
    let done = Instant::now();
    let overhead = (done - received).saturating_sub(elapsed);
    let us = |took: Duration| took.as_micros() as u64;
    tracing::debug!(
        request_id = %request.request_id,
        overhead_us = us(overhead),
        admit_us = us(admitted_at - received),
        claim_read_and_resolve_us = us(resolved_at - admitted_at),
        resolve_us = us(resolve_took),
        policy_us = us(publishing_at - resolved_at),
        started_and_claim_us = us(began - publishing_at),
        publish_started_us = us(published_at - publishing_at),
        claim_us = us(claimed_at - publishing_at),
        engine_us = us(elapsed),
        read_while_resolving_us = us(lookup.read_took),
        claim_update_us = us(done - performed_at),
        "gateway job timings"
    );
    metrics::gateway_overhead(overhead);
    Ok(finished_events(
        &step,
        &finished,
        &operation,
        request,
        claims.token_id,
    ))
}

/// Why the gateway refuses a job before it claims anything: a stable code (the
/// `token_refused` audit event's `code`) and the reason, both shown to the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub reason: String,
}

impl Refusal {
    fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// A job the gateway admits: the operation its command line describes and the token's
/// verified claims.
#[derive(Debug)]
pub struct Admitted {
    pub operation: DockerOperation,
    pub claims: token::Claims,
}

/// The gateway's admission of a job, a pure function of the job, who presents it, the keys
/// and rules of this gateway and the time: the request carries a command that parses to the
/// job's operation; the token verifies for exactly this request, environment (one this
/// gateway may act on) and command, now; the presenter may run it (an automatic token only
/// from the pipeline, a manual one only by its holder); the policy allows the operation in
/// the environment. What Docker says the targets are is checked after, by
/// [`Policy::admit`], on the resolved facts.
///
/// # Errors
/// The first check that fails, as a [`Refusal`] with its code: `no_command`,
/// `unparseable_command`, `command_mismatch`, a token code ([`token::TokenError::code`]),
/// or `policy`.
pub fn admit(
    job: &ExecJob,
    presenter: Presenter<'_>,
    verify_key: &VerifyKey,
    allowed_environments: &[Environment],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Admitted, Refusal> {
    let request = &job.request;
    let command = request
        .command
        .as_ref()
        .ok_or_else(|| Refusal::new("no_command", "the request has no command to execute"))?;
    let operation = parse_command_line(&command.line).map_err(|error| {
        Refusal::new(
            "unparseable_command",
            format!("the command does not parse: {error}"),
        )
    })?;
    if operation != command.operation {
        return Err(Refusal::new(
            "command_mismatch",
            "the job's operation is not the one its command line describes",
        ));
    }
    let expected = Expected {
        request_id: request.request_id,
        environment: request.environment,
        argv_hash: &operation.argv_hash(),
        allowed_environments,
        now,
        max_clock_skew: chrono::Duration::seconds(30),
    };
    let token_refusal = |error: token::TokenError| Refusal::new(error.code(), error.to_string());
    let claims = token::verify(verify_key, &job.token, &expected).map_err(token_refusal)?;
    token::check_presenter(&claims, presenter).map_err(token_refusal)?;
    policy
        .check_operation(request.environment, &operation)
        .map_err(|refusal| Refusal::new("policy", refusal.to_string()))?;
    Ok(Admitted { operation, claims })
}

/// What a job finds when its token's claim exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingClaim {
    /// Another job used the token: refused (`token_reused`), it runs once.
    Reused,
    /// The same job redelivered after it finished: its outcome again, nothing run.
    Finished,
    /// The same job, started within the running lease: it may still be running in another
    /// gateway; retry later.
    MayStillRun,
    /// The same job, started before the lease: the gateway stopped between claiming and
    /// recording; INDETERMINATE, never run again.
    Indeterminate,
}

/// The claim state machine, pure: what `job_id` does with the existing `claim` at `now`.
pub fn existing_claim(
    claim: &ExecClaim,
    job_id: &str,
    running_lease: Duration,
    now: DateTime<Utc>,
) -> ExistingClaim {
    if claim.job != job_id {
        return ExistingClaim::Reused;
    }
    match claim.state {
        ClaimState::Finished => ExistingClaim::Finished,
        ClaimState::Started
            if now - claim.started_at
                < chrono::Duration::from_std(running_lease).unwrap_or_default() =>
        {
            ExistingClaim::MayStillRun
        }
        ClaimState::Started => ExistingClaim::Indeterminate,
    }
}

/// How long until a `started` claim's lease runs out, and a little more: the redelivery
/// after it finds the claim past the lease (INDETERMINATE) instead of spending the consumer's
/// deliveries on retries that can only find it running.
fn lease_left(claim: &ExecClaim, running_lease: Duration, now: DateTime<Utc>) -> Duration {
    let ends = claim.started_at + chrono::Duration::from_std(running_lease).unwrap_or_default();
    (ends - now).to_std().unwrap_or_default() + Duration::from_millis(500)
}

/// A claim exists: the same job redelivered gets its outcome again; any other use of the
/// token is a replay.
fn replay(
    step: &Step<'_>,
    claim: &ExecClaim,
    job_id: &str,
    operation: &DockerOperation,
    request: &Request,
    claims: &token::Claims,
    running_lease: Duration,
) -> Result<Vec<Outgoing>, StageError> {
    let token_id = claims.token_id;
    match existing_claim(claim, job_id, running_lease, Utc::now()) {
        ExistingClaim::Reused => Ok(refusal(
            step,
            "token_reused",
            "this token was already used: a capability token runs once",
            token_id,
        )),
        ExistingClaim::Finished => Ok(finished_events(step, claim, operation, request, token_id)),
        ExistingClaim::MayStillRun => Err(StageError::Later {
            after: lease_left(claim, running_lease, Utc::now()),
            error: anyhow::anyhow!("the operation may still be running in another gateway"),
        }),
        ExistingClaim::Indeterminate => {
            metrics::execution(
                operation.name(),
                request.environment.as_str(),
                "indeterminate",
                Duration::ZERO,
            );
            Ok(indeterminate_after_restart(
                step,
                operation,
                request,
                claims,
                "the gateway stopped between claiming the token and recording the result: check the containers by hand; it will not be run again",
            ))
        }
    }
}

/// What EXECUTING records of every execution: the token, the operation as approved, who
/// approved it. [`execute`] adds what Docker said the targets were and what the policy added.
fn started_record(
    operation: &DockerOperation,
    request: &Request,
    claims: &token::Claims,
) -> ExecutionStarted {
    ExecutionStarted {
        token_id: Some(claims.token_id),
        operation: operation.name().to_string(),
        argv: Some(operation.canonical_argv()),
        environment: Some(request.environment),
        approvers: claims.approvers.clone(),
        resolved: Value::Null,
        probe: Value::Null,
        compose_project_directory: None,
        compose_files: Vec::new(),
        env_file: None,
    }
}

/// INDETERMINATE found on a redelivery: the claim is there, the result is not. EXECUTING
/// may not be recorded (the gateway claims and records it at once, and may have stopped
/// between the two), so it travels first in the same audit message: the request moves
/// EXECUTING → INDETERMINATE either way. When it was recorded, its derived id makes this
/// copy (which knows no resolved targets) a duplicate the recorder leaves out.
fn indeterminate_after_restart(
    step: &Step<'_>,
    operation: &DockerOperation,
    request: &Request,
    claims: &token::Claims,
    reason: &str,
) -> Vec<Outgoing> {
    let started = started_record(operation, request, claims);
    let ended = ExecutionIndeterminate {
        token_id: Some(claims.token_id),
        error: Some(reason.to_string()),
    };
    vec![
        step.audits(vec![
            started.entry(Some(Status::Executing)),
            ended.entry(Some(Status::Indeterminate)),
        ]),
        step.status(Status::Indeterminate, details(&[("error", json!(reason))])),
    ]
}

/// The audit and status events of a finished execution, and its output for the requester.
///
/// What the operation printed goes to `wingman.output.<principal>.<request_id>`, which only
/// the principal that submitted may read (`nats/auth.conf`), never into the status event that
/// every publisher reads; the audit keeps the bounded, redacted copy.
fn finished_events(
    step: &Step<'_>,
    claim: &ExecClaim,
    operation: &DockerOperation,
    request: &Request,
    token_id: Uuid,
) -> Vec<Outgoing> {
    let environment = request.environment;
    let Some(result) = &claim.result else {
        return indeterminate(step, token_id, "the claim is finished but holds no result");
    };
    let status = if result.ok {
        Status::Succeeded
    } else {
        Status::Failed
    };
    let duration = Duration::from_millis(claim.duration_ms.unwrap_or(0));
    metrics::execution(
        operation.name(),
        environment.as_str(),
        if result.ok { "succeeded" } else { "failed" },
        duration,
    );
    let output_subject = step
        .subjects
        .output(&request.submitted_by, request.request_id);
    let mut events = vec![
        step.record(
            Some(status),
            &ExecutionFinished {
                token_id: Some(token_id),
                operation: operation.name().to_string(),
                exit_code: Some(result.exit_code),
                duration_ms: claim.duration_ms,
                summary: result.summary.clone(),
                output: Some(result.output.clone()),
                targets: result.targets.clone(),
            },
        ),
        step.status(
            status,
            details(&[
                ("result", json!(result.summary)),
                ("exit_code", json!(result.exit_code)),
                ("duration_ms", json!(claim.duration_ms)),
                ("output_bytes", json!(result.output.len())),
                ("output_subject", json!(output_subject)),
            ]),
        ),
    ];
    if !result.output.is_empty() {
        events.push(step.event(
            output_subject,
            "output",
            ExecutionOutput {
                output: result.output.clone(),
            },
        ));
    }
    events
}

fn indeterminate(step: &Step<'_>, token_id: Uuid, reason: &str) -> Vec<Outgoing> {
    vec![
        step.record(
            Some(Status::Indeterminate),
            &ExecutionIndeterminate {
                token_id: Some(token_id),
                error: Some(reason.to_string()),
            },
        ),
        step.status(Status::Indeterminate, details(&[("error", json!(reason))])),
    ]
}

fn refusal(step: &Step<'_>, code: &'static str, reason: &str, token_id: Uuid) -> Vec<Outgoing> {
    metrics::token_rejected(code);
    tracing::warn!(code, reason, request_id = %step.request_id, "execution refused");
    vec![
        step.audit(
            AuditKind::TokenRefused,
            None,
            json!({ "code": code, "reason": reason, "token_id": token_id }),
        ),
        step.status(
            PublicStatus::Refused,
            details(&[("code", json!(code)), ("error", json!(reason))]),
        ),
    ]
}

fn details(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_string(), value.clone()))
        .collect()
}

fn to_bytes(claim: &ExecClaim) -> Result<Bytes, StageError> {
    serde_json::to_vec(claim)
        .map(Bytes::from)
        .map_err(|error| StageError::Transient(error.into()))
}

/// A future's output and how long it took.
async fn timed<T>(future: impl std::future::Future<Output = T>) -> (T, Duration) {
    let began = Instant::now();
    let output = future.await;
    (output, began.elapsed())
}

async fn read_claim(claims: &kv::Store, key: &str) -> Result<Option<(ExecClaim, u64)>, StageError> {
    claims::read(claims, key, "the execution claim")
        .await
        .map_err(StageError::Transient)
}

#[cfg(test)]
mod tests;

//! Authority: the only holder of the token signing key.
//!
//! 1. Mints one capability token per approved request with a command: on AUTO_APPROVED from
//!    the validator, or APPROVED from a human (checked against the decision claim in KV, so a
//!    forged decision message mints nothing). Instruction approvals need no token. A request
//!    with `"execution": "manual"` gets a token bound to the principal that submitted it
//!    (the `holder` claim) and no job: that principal fetches it and runs it over HTTP.
//! 2. Consumes `wingman.requests.validated` (consumer `authority-auto`) and
//!    `wingman.approvals.decided` (consumer `authority`); publishes `wingman.exec.jobs`
//!    (automatic execution only), the `token_minted` audit event and a status event with the
//!    token's expiry. Answers `wingman.authority.token` requests (the gateway's
//!    `POST /gateway/token`, on behalf of the API key that called): a manual request's token,
//!    to its holder only; an automatic request's token, to nobody (the pipeline runs it).
//! 3. Its effect is the token, stored once per request in the claims bucket
//!    (`minted.<request_id>`): a redelivery republishes the same token, never a second one.
//! 4. It never mints for a request that is not approved, and never publishes the key.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::Bus;
use crate::bus::consume::{self, Delivery, Handler, LoopOptions, Outcome, StageError};
use crate::bus::step::Step;
use crate::claims::{self, Created, DecisionClaim, Key};
use crate::envelope::RequestId;
use crate::events::{AuditKind, Decided, ExecJob, Stage, Validated};
use crate::metrics;
use crate::principal::Principal;
use crate::request::{Execution, Request};
use crate::settings::AuthoritySettings;
use crate::status::Status;
use crate::token::{self, Claims, SigningKey};

pub struct AuthorityDeps {
    pub bus: Bus,
    /// Once-only claims: `minted.<request_id>` (ours) and `decision.<request_id>` (approvals').
    pub claims: kv::Store,
    /// The signing key: it never leaves this process.
    pub signing_key: Arc<SigningKey>,
    /// How long a token is valid (`WINGMAN_TOKEN_TTL`, default 10 min).
    pub token_ttl: Duration,
    pub actor: String,
}

impl AuthorityDeps {
    /// The authority on `bus`, as `actor`, with the key and token lifetime of `settings`.
    ///
    /// # Errors
    /// When the claims bucket cannot be opened.
    pub async fn open(
        bus: Bus,
        actor: String,
        settings: &AuthoritySettings,
    ) -> anyhow::Result<Self> {
        let claims = claims::open(&bus).await?;
        // The gateway's claim of a token must outlive the token.
        claims::ensure_outlives(&claims, settings.token_ttl, "WINGMAN_TOKEN_TTL")?;
        Ok(Self {
            claims,
            signing_key: Arc::clone(&settings.signing_key),
            token_ttl: settings.token_ttl,
            bus,
            actor,
        })
    }
}

/// A minted token as stored in the claims bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Minted {
    pub token: String,
    pub token_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub approvers: Vec<String>,
    /// A manual execution's holder (the token's `holder` claim): the only principal the
    /// token is handed to. `None`: the pipeline runs it, and it is handed to nobody.
    #[serde(default)]
    pub holder: Option<Principal>,
}

/// Consumes the validator's decisions.
pub struct FromValidator(pub Arc<AuthorityDeps>);
/// Consumes human decisions.
pub struct FromApprovals(pub Arc<AuthorityDeps>);

impl Handler for FromValidator {
    const STAGE: Stage = Stage::Authority;

    async fn handle(&self, delivery: &Delivery) -> Result<Outcome, StageError> {
        let validated = delivery.envelope::<Validated>()?.body;
        if validated.status != Status::AutoApproved {
            return Ok(Outcome::Done);
        }
        authorize(
            &self.0,
            &validated.request,
            Status::AutoApproved,
            vec!["validator".into()],
            delivery,
        )
        .await
    }
}

impl Handler for FromApprovals {
    const STAGE: Stage = Stage::Authority;

    async fn handle(&self, delivery: &Delivery) -> Result<Outcome, StageError> {
        let decided = delivery.envelope::<Decided>()?.body;
        if decided.decision != Status::Approved {
            return Ok(Outcome::Done);
        }
        let request_id = decided.request.request_id;
        let claim = read_json::<DecisionClaim>(&self.0.claims, Key::Decision(request_id)).await?;
        match claim {
            Some(claim) if claim.decision == Status::Approved => {
                authorize(
                    &self.0,
                    &decided.request,
                    Status::Approved,
                    claim.approvers,
                    delivery,
                )
                .await
            }
            _ => Err(StageError::permanent(
                "decision_not_claimed",
                format!("approval of {request_id} has no matching decision claim; no token minted"),
                Some(request_id),
            )),
        }
    }
}

/// The durable consumers this stage reads: auto-approved, then human-approved requests (its
/// readiness checks them).
pub const CONSUMERS: &[&str] = &["authority-auto", "authority"];

pub async fn run(
    deps: AuthorityDeps,
    options: LoopOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let deps = Arc::new(deps);
    let bus = deps.bus.clone();
    let options = claims::guarding(options, &deps.claims);
    let auto = bus.consumer(CONSUMERS[0]).await?;
    let human = bus.consumer(CONSUMERS[1]).await?;
    let (first, second, third) = tokio::join!(
        consume::run(
            Arc::new(FromValidator(Arc::clone(&deps))),
            bus.clone(),
            auto,
            options.clone(),
            shutdown.clone()
        ),
        consume::run(
            Arc::new(FromApprovals(Arc::clone(&deps))),
            bus.clone(),
            human,
            options,
            shutdown.clone()
        ),
        serve_token_requests(Arc::clone(&deps), shutdown),
    );
    first.and(second).and(third)
}

async fn authorize(
    deps: &AuthorityDeps,
    request: &Request,
    status: Status,
    approvers: Vec<String>,
    delivery: &Delivery,
) -> Result<Outcome, StageError> {
    let Some(command) = &request.command else {
        return Ok(Outcome::Done);
    };
    let minted = mint_once(
        deps,
        request,
        &command.operation.argv_hash(),
        approvers,
        delivery.published,
    )
    .await?;
    let step = Step {
        subjects: &deps.bus.subjects,
        stage: Stage::Authority,
        actor: &deps.actor,
        request_id: request.request_id,
        origin: delivery.published,
    };
    let job = ExecJob {
        request: request.clone(),
        token: minted.token.clone(),
        token_id: minted.token_id,
        expires_at: minted.expires_at,
    };
    let mut details = Map::new();
    details.insert("token_expires_at".into(), json!(minted.expires_at));
    details.insert("approvers".into(), json!(minted.approvers));
    details.insert("execution".into(), json!(request.execution));
    let mut minted_audit = json!({
        "token_id": minted.token_id,
        "expires_at": minted.expires_at,
        "approvers": minted.approvers,
        "environment": request.environment,
        "argv_hash": command.operation.argv_hash(),
        "execution": request.execution,
    });
    if let Some(holder) = &minted.holder {
        minted_audit["holder"] = json!(holder);
        details.insert("holder".into(), json!(holder));
    }
    let mut outgoing = Vec::with_capacity(3);
    // A manual request is never enqueued: its holder runs it at `POST /gateway/execute`, so
    // the pipeline can never race them for the token.
    if request.execution == Execution::Automatic {
        outgoing.push(step.event(deps.bus.subjects.exec_jobs(), "job", job));
    }
    outgoing.push(step.audit(AuditKind::TokenMinted, None, minted_audit));
    outgoing.push(step.status(status, details));
    Ok(Outcome::Forward(outgoing))
}

/// Who may present a request's token: nobody for automatic execution (the pipeline runs it),
/// the principal that submitted it for manual execution.
fn holder_of(request: &Request) -> Option<Principal> {
    match request.execution {
        Execution::Automatic => None,
        Execution::Manual => Some(request.submitted_by.clone()),
    }
}

/// Mints the request's token, or returns the one already minted for it.
async fn mint_once(
    deps: &AuthorityDeps,
    request: &Request,
    argv_hash: &str,
    approvers: Vec<String>,
    origin: DateTime<Utc>,
) -> Result<Minted, StageError> {
    let key = Key::Minted(request.request_id);
    if let Some(minted) = read_json::<Minted>(&deps.claims, key).await? {
        return Ok(minted);
    }
    let issued_at = Utc::now();
    let expires_at = issued_at
        + chrono::Duration::from_std(deps.token_ttl).unwrap_or(chrono::Duration::minutes(10));
    let claims = Claims {
        token_id: crate::envelope::derive_uuid_v7(origin, &format!("{}:token", request.request_id)),
        request_id: request.request_id,
        environment: request.environment,
        argv_hash: argv_hash.to_string(),
        approvers: approvers.clone(),
        requester: request.requester.clone(),
        issued_at,
        expires_at,
        holder: holder_of(request),
    };
    let token = token::mint(&deps.signing_key, &claims).map_err(|error| {
        StageError::permanent("mint_failed", error.to_string(), Some(request.request_id))
    })?;
    let minted = Minted {
        token,
        token_id: claims.token_id,
        expires_at,
        approvers,
        holder: claims.holder.clone(),
    };
    match claims::create_once(&deps.claims, &key.to_string(), &minted, "the token")
        .await
        .map_err(StageError::Transient)?
    {
        Created::Ours(_) => {
            metrics::token_minted(request.environment.as_str());
            Ok(minted)
        }
        // Another copy minted first: use its token, drop ours.
        Created::Theirs(theirs, _) => Ok(theirs),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    bucket: &kv::Store,
    key: Key,
) -> Result<Option<T>, StageError> {
    claims::read(bucket, &key.to_string(), "claim")
        .await
        .map(|found| found.map(|(value, _)| value))
        .map_err(StageError::Transient)
}

/// A request on `wingman.authority.token`. Only the gateway may publish there
/// (`nats/auth.conf`); it names the API key its HTTP face authenticated.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenRequest {
    pub request_id: RequestId,
    /// Who asks: the token is handed to its holder only.
    pub principal: Principal,
}

/// Why a token is not handed out: a fixed code and a sentence for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRefusal {
    pub code: &'static str,
    pub reason: String,
}

/// Whether `asker` gets the token minted for `request_id` (`None`: none minted). Pure.
pub fn hand_out<'a>(
    request_id: RequestId,
    minted: Option<&'a Minted>,
    asker: &Principal,
) -> Result<&'a Minted, TokenRefusal> {
    let refuse = |code, reason: String| Err(TokenRefusal { code, reason });
    let Some(minted) = minted else {
        return refuse(
            "no_token",
            format!("no token for {request_id}: it is not approved (yet), or it has no command"),
        );
    };
    match &minted.holder {
        None => refuse(
            "automatic_execution",
            format!(
                "{request_id} runs automatically: the gateway executes it from the pipeline and its token is handed to nobody; submit with \"execution\": \"manual\" to run it yourself"
            ),
        ),
        Some(holder) if holder == asker => Ok(minted),
        Some(holder) => refuse(
            "not_the_submitter",
            format!(
                "{request_id} was submitted by {holder}: only that principal may fetch its token, not {asker}"
            ),
        ),
    }
}

/// Answers token requests with the token minted for an approved request, or why there is none.
async fn serve_token_requests(
    deps: Arc<AuthorityDeps>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let bus = deps.bus.clone();
    crate::bus::reply::serve(&bus, bus.subjects.token_requests(), "authority", shutdown, |payload| {
        let deps = Arc::clone(&deps);
        async move {
            match serde_json::from_slice::<TokenRequest>(&payload) {
                Err(error) => json!({ "error": format!("invalid token request: {error}"), "code": "invalid_token_request" }),
                Ok(asked) => match read_json::<Minted>(&deps.claims, Key::Minted(asked.request_id)).await {
                    Ok(minted) => match hand_out(asked.request_id, minted.as_ref(), &asked.principal) {
                        Ok(minted) => {
                            json!({ "token": minted.token, "token_id": minted.token_id, "expires_at": minted.expires_at })
                        }
                        Err(refusal) => json!({ "error": refusal.reason, "code": refusal.code }),
                    },
                    Err(error) => json!({ "error": format!("token store unavailable: {error}"), "code": "unavailable" }),
                },
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests;

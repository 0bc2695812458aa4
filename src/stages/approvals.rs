//! Approvals: puts PENDING (and AUTO_REJECTED) requests in front of humans.
//!
//! 1. Records each request waiting for a human in the `approvals` KV bucket with a single-use
//!    nonce, sends the Telegram prompt (when a bot token is configured) and acks: it never
//!    holds a JetStream message while a human thinks. Decisions come back as new events
//!    (Telegram buttons and commands, the console approver over `wingman.console.decisions`,
//!    the HTTP API's `decide` keys over `wingman.api.decisions`)
//!    and go through [`crate::approval::Desk`].
//! 2. Consumes `wingman.requests.validated` (consumer `approvals`) and `wingman.status.>`
//!    (consumer `approvals-updates`, to edit prompts with the outcome); publishes
//!    `wingman.approvals.decided` with its audit and status events.
//! 3. Its effects are the record (a KV `create`: a redelivery or a restart never duplicates
//!    it) and the prompt (sent only while the record has none).
//! 4. It never decides for anyone the roster does not prove (a Telegram user id, a console
//!    vote signed by a registered key), nor for the principal that submitted the request.

use std::sync::Arc;

use async_nats::jetstream::kv;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::approval::{ApprovalRecord, Desk};
use crate::bus::Bus;
use crate::bus::consume::{self, Delivery, Handler, LoopOptions, Outcome, StageError};
use crate::bus::topology::PROMPT_UPDATES;
use crate::bus::topology::open_bucket;
use crate::claims;
use crate::events::{PublicStatus, Stage, StatusEvent, Validated};
use crate::identity::api_vote::{ApiVote, VoteAnswer};
use crate::identity::console_vote::SignedVote;
use crate::identity::roster::RosterStore;
use crate::settings::ApprovalsSettings;
use crate::status::Status;
use crate::telegram::TelegramClient;

pub struct ApprovalsDeps {
    pub desk: Desk,
    /// None: no bot token configured; the console approver still works.
    pub telegram: Option<TelegramClient>,
    /// Read-only, for `/pending`, `/status` and `/stats`.
    pub pool: sqlx::PgPool,
}

impl ApprovalsDeps {
    /// Approvals on `bus`, as `actor`: the claims, approvals and roster buckets, the rules
    /// and the bot of `settings` (its prompts linking to the console), `pool` to read.
    ///
    /// # Errors
    /// When a bucket cannot be opened or the bot's API address is invalid.
    pub async fn open(
        bus: Bus,
        actor: String,
        settings: &ApprovalsSettings,
        pool: sqlx::PgPool,
    ) -> anyhow::Result<Self> {
        let telegram = match &settings.telegram {
            None => None,
            Some(bot) => Some(
                TelegramClient::from_settings(bot)?.with_console_url(settings.console.url.clone()),
            ),
        };
        let desk = Desk {
            claims: claims::open(&bus).await?,
            approvals: open_bucket(
                &bus.js,
                &bus.subjects.localize_name(crate::approval::BUCKET),
            )
            .await?,
            roster: RosterStore::open(&bus).await?,
            rules: settings.rules.clone(),
            actor,
            bus,
        };
        Ok(Self {
            desk,
            telegram,
            pool,
        })
    }
}

pub struct FromIntake(pub Arc<ApprovalsDeps>);
pub struct StatusUpdates(pub Arc<ApprovalsDeps>);

impl Handler for FromIntake {
    const STAGE: Stage = Stage::Approvals;

    async fn handle(&self, delivery: &Delivery) -> Result<Outcome, StageError> {
        let validated = delivery.envelope::<Validated>()?.body;
        if !matches!(validated.status, Status::Pending | Status::AutoRejected) {
            return Ok(Outcome::Done);
        }
        record_and_prompt(&self.0, validated, delivery)
            .await
            .map_err(StageError::Transient)?;
        Ok(Outcome::Done)
    }
}

impl Handler for StatusUpdates {
    const STAGE: Stage = Stage::Approvals;

    async fn handle(&self, delivery: &Delivery) -> Result<Outcome, StageError> {
        let Some(telegram) = &self.0.telegram else {
            return Ok(Outcome::Done);
        };
        let event: StatusEvent = serde_json::from_slice(&delivery.payload).map_err(|error| {
            StageError::permanent(
                "undecodable",
                format!("cannot decode a status event: {error}"),
                None,
            )
        })?;
        let Some(line) = outcome_line(&event) else {
            return Ok(Outcome::Done);
        };
        let Some((mut record, revision)) = self
            .0
            .desk
            .record(event.request_id)
            .await
            .map_err(StageError::Transient)?
        else {
            return Ok(Outcome::Done);
        };
        if !record.outcomes.contains(&line) {
            record.outcomes.push(line);
            // A concurrent update fails the compare-and-set: retried with the fresh record.
            self.0
                .desk
                .approvals
                .update(
                    format!("request.{}", event.request_id),
                    to_json(&record)?.into(),
                    revision,
                )
                .await
                .map_err(|error| {
                    StageError::Transient(anyhow::anyhow!("record the outcome: {error}"))
                })?;
        }
        telegram
            .show_outcome(&record, &record.outcomes.join("\n"))
            .await
            .map_err(StageError::Transient)?;
        Ok(Outcome::Done)
    }
}

/// The durable consumers this stage reads (its readiness checks them).
pub const CONSUMERS: &[&str] = &["approvals"];

pub async fn run(
    deps: ApprovalsDeps,
    options: LoopOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let deps = Arc::new(deps);
    let bus = deps.desk.bus.clone();
    let options = claims::guarding(options, &deps.desk.claims);
    match deps.desk.roster().await {
        Ok(roster) if roster.approvers.is_empty() => tracing::error!(
            "no approvers: the roster is empty and TELEGRAM_APPROVER_IDS is unset, so nobody can approve (wingman approvers add)"
        ),
        Ok(roster) => tracing::info!(approvers = roster.approvers.len(), "approver roster loaded"),
        Err(error) => tracing::error!(%error, "cannot read the approver roster"),
    }
    let pending = bus.consumer(CONSUMERS[0]).await?;
    // The prompt updates read every status event; without Telegram there is no prompt to
    // edit, so the consumer is not started and those deliveries are not made at all.
    let updates = match &deps.telegram {
        Some(_) => Some(bus.consumer(PROMPT_UPDATES).await?),
        None => None,
    };
    let bot = match &deps.telegram {
        Some(telegram) => Some(crate::stages::approvals_bot::start(
            telegram.bot.clone(),
            Arc::new(crate::stages::approvals_bot::BotDeps {
                desk: deps.desk.clone(),
                pool: deps.pool.clone(),
            }),
        )),
        None => {
            tracing::info!(
                "no TELEGRAM_BOT_TOKEN: console approver only (wingman pending / approve / reject)"
            );
            None
        }
    };
    let (first, second, third) = tokio::join!(
        consume::run(
            Arc::new(FromIntake(Arc::clone(&deps))),
            bus.clone(),
            pending,
            options.clone(),
            shutdown.clone()
        ),
        {
            let (deps, bus, shutdown) = (Arc::clone(&deps), bus.clone(), shutdown.clone());
            async move {
                match updates {
                    Some(updates) => {
                        consume::run(
                            Arc::new(StatusUpdates(deps)),
                            bus,
                            updates,
                            options,
                            shutdown,
                        )
                        .await
                    }
                    None => Ok(()),
                }
            }
        },
        async {
            let (console, api, cancel) = tokio::join!(
                serve_console(Arc::clone(&deps), shutdown.clone()),
                serve_api(Arc::clone(&deps), shutdown.clone()),
                serve_cancel(Arc::clone(&deps), shutdown),
            );
            console.and(api).and(cancel)
        },
    );
    if let Some(bot) = bot {
        bot.stop().await;
    }
    first.and(second).and(third)
}

async fn record_and_prompt(
    deps: &ApprovalsDeps,
    validated: Validated,
    delivery: &Delivery,
) -> anyhow::Result<()> {
    let request_id = validated.request.request_id;
    let key = format!("request.{request_id}");
    let scores = validated.validator_scores.clone().unwrap_or(Value::Null);
    let composite = &scores["composite"];
    let record = ApprovalRecord {
        status: validated.status,
        composite_score: composite["score"].as_i64(),
        profile: composite["profile"].as_str().map(str::to_string),
        reasons: strings(&composite["reasons"]),
        findings: top_findings(&scores),
        expires_at: validated.expires_at,
        pending_since: delivery.published,
        nonce: crate::envelope::derive_uuid_v7(delivery.published, &format!("{request_id}:nonce"))
            .simple()
            .to_string(),
        messages: Vec::new(),
        votes: Vec::new(),
        needed: Some(deps.desk.rules.needed(validated.request.environment)),
        outcomes: Vec::new(),
        request: validated.request,
    };
    match deps
        .desk
        .approvals
        .create(&key, serde_json::to_vec(&record)?.into())
        .await
    {
        Ok(_) => {}
        Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(error) => anyhow::bail!("record {key}: {error}"),
    }
    // The nonce maps a Telegram button back to its request: without Telegram there is no
    // button, so no key to store.
    let Some(telegram) = &deps.telegram else {
        return Ok(());
    };
    let _ = deps
        .desk
        .approvals
        .create(
            format!("nonce.{}", record.nonce),
            request_id.to_string().into(),
        )
        .await;
    // Send only while no prompt was recorded: a redelivery or a restart sends nothing twice.
    let Some((current, revision)) = deps.desk.record(request_id).await? else {
        return Ok(());
    };
    if !current.messages.is_empty() {
        return Ok(());
    }
    let messages = telegram.send_prompt(&current).await?;
    let updated = ApprovalRecord {
        messages,
        ..current
    };
    deps.desk
        .approvals
        .update(&key, serde_json::to_vec(&updated)?.into(), revision)
        .await
        .map_err(|error| anyhow::anyhow!("record the prompt of {request_id}: {error}"))?;
    Ok(())
}

fn to_json(record: &ApprovalRecord) -> Result<Vec<u8>, StageError> {
    serde_json::to_vec(record).map_err(|error| StageError::Transient(error.into()))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The most severe findings across validators, as `[severity] code: reason`.
fn top_findings(scores: &Value) -> Vec<String> {
    const ORDER: [&str; 5] = ["critical", "high", "medium", "low", "info"];
    let mut findings: Vec<(usize, String)> = Vec::new();
    for validator in crate::validation::ValidatorName::ALL {
        for finding in scores[validator.as_str()]["findings"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let severity = finding["severity"].as_str().unwrap_or("info");
            let rank = ORDER.iter().position(|s| *s == severity).unwrap_or(4);
            if rank <= 3 {
                let text = format!(
                    "[{severity}] {}: {}",
                    finding["code"].as_str().unwrap_or("?"),
                    finding["reason"].as_str().unwrap_or("")
                );
                findings.push((rank, text));
            }
        }
    }
    findings.sort_by_key(|(rank, _)| *rank);
    findings.into_iter().map(|(_, text)| text).take(6).collect()
}

/// The line a status event adds to a prompt, for the statuses a human cares about there.
pub fn outcome_line(event: &StatusEvent) -> Option<String> {
    let detail = |key: &str| {
        event
            .details
            .get(key)
            .and_then(Value::as_str)
            .map(crate::telegram::escape)
    };
    let at = event.at.format("%Y-%m-%d %H:%M:%S UTC");
    let line = match event.status {
        PublicStatus::Request(Status::Approved) if event.stage == Stage::Approvals => {
            let note = detail("note")
                .map(|note| format!(" — {note}"))
                .unwrap_or_default();
            format!(
                "✅ <b>APPROVED</b> by {} at {at}{note}",
                detail("decided_by").unwrap_or_default()
            )
        }
        PublicStatus::Request(Status::Rejected) => format!(
            "❌ <b>REJECTED</b> by {} at {at} — {}",
            detail("decided_by").unwrap_or_default(),
            detail("note").unwrap_or_default()
        ),
        PublicStatus::Request(Status::Expired) => {
            format!("⌛ <b>EXPIRED</b> at {at}: no decision in time (default deny)")
        }
        PublicStatus::Request(Status::Cancelled) => {
            let note = detail("note")
                .map(|note| format!(" — {note}"))
                .unwrap_or_default();
            format!(
                "↩️ <b>CANCELLED</b> by {} at {at}: withdrawn by its requester{note}",
                detail("decided_by").unwrap_or_default()
            )
        }
        PublicStatus::Request(Status::Succeeded | Status::Failed | Status::Indeterminate)
        | PublicStatus::Refused => {
            let result = detail("result")
                .or_else(|| detail("error"))
                .unwrap_or_default();
            format!("⚙️ <b>{}</b> at {at}: {result}", event.status)
        }
        _ => return None,
    };
    Some(line)
}

/// Answers the console approver (`wingman approve` / `reject`).
async fn serve_console(
    deps: Arc<ApprovalsDeps>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let bus = deps.desk.bus.clone();
    crate::bus::reply::serve(&bus, bus.subjects.console_decisions(), "approvals", shutdown, |payload| {
        let deps = Arc::clone(&deps);
        async move {
            match serde_json::from_slice::<SignedVote>(&payload) {
                Err(error) => json!({ "ok": false, "error": format!("invalid vote: {error}") }),
                Ok(vote) => match deps.desk.vote_console(&vote).await {
                    Ok(Ok(decision)) => json!({ "ok": true, "message": decision.describe() }),
                    Ok(Err(refusal)) => json!({ "ok": false, "code": refusal.code(), "error": refusal.to_string() }),
                    Err(error) => json!({ "ok": false, "error": format!("{error:#}") }),
                },
            }
        }
    })
    .await
}

/// Answers the HTTP API's votes (`POST /requests/{id}/approve|reject`, the web console), in
/// the name of the `decide` key the API authenticated.
async fn serve_api(deps: Arc<ApprovalsDeps>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let bus = deps.desk.bus.clone();
    crate::bus::reply::serve(&bus, bus.subjects.api_decisions(), "approvals", shutdown, |payload| {
        let deps = Arc::clone(&deps);
        async move {
            let answer = match serde_json::from_slice::<ApiVote>(&payload) {
                Err(error) => VoteAnswer::invalid("invalid_vote", format!("invalid vote: {error}")),
                Ok(vote) => match deps.desk.vote_api(&vote).await {
                    Ok(result) => crate::approval::answer(&result),
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "could not apply an API vote");
                        VoteAnswer::invalid("unavailable", "the vote could not be applied; try again".into())
                    }
                },
            };
            serde_json::to_value(answer).unwrap_or_else(|_| json!({ "outcome": "refused" }))
        }
    })
    .await
}

/// Answers withdrawals (`wingman cancel`, `POST /requests/{id}/cancel`) on
/// `<prefix>.requests.cancel.<principal>`: NATS lets each user publish only on its own suffix
/// (the API only on `api.<key>`, for the key it checked), so the subject proves who asks.
async fn serve_cancel(deps: Arc<ApprovalsDeps>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let bus = deps.desk.bus.clone();
    let base = bus.subjects.cancel_base();
    let subject = format!("{base}.>");
    crate::bus::reply::serve_subjects(&bus, subject, "approvals", shutdown, |subject, payload| {
        let deps = Arc::clone(&deps);
        let base = base.clone();
        async move {
            let answer = match (
                crate::principal::Principal::from_submit_subject(&base, &subject),
                serde_json::from_slice::<crate::approval::Withdrawal>(&payload),
            ) {
                (Err(problem), _) => VoteAnswer::invalid("invalid_subject", problem),
                (_, Err(error)) => VoteAnswer::invalid("invalid_withdrawal", format!("invalid withdrawal: {error}")),
                (Ok(principal), Ok(withdrawal)) => {
                    match deps.desk.cancel(&principal, withdrawal.request_id, withdrawal.note).await {
                        Ok(result) => crate::approval::withdrawal_answer(&result),
                        Err(error) => {
                            tracing::warn!(error = %format!("{error:#}"), "could not apply a withdrawal");
                            VoteAnswer::invalid("unavailable", "the withdrawal could not be applied; try again".into())
                        }
                    }
                }
            };
            serde_json::to_value(answer).unwrap_or_else(|_| json!({ "outcome": "refused" }))
        }
    })
    .await
}

//! The approvals bot's handlers (teloxide long polling): button clicks, reasons given by
//! reply, and the commands `/pending`, `/status`, `/approve`, `/reject`, `/stats`, `/rollout`,
//! `/help`, `/whoami`. Every decision goes through [`crate::approval::Desk::vote`].
//!
//! Anyone can write to the bot, so a vote from a Telegram user who is not an approver (a
//! stranger) is counted in `wingman_access_denied_total{edge="approvals"}` always, but audited
//! one by one only up to the [`AuditThrottle`]'s limit per user id and minute; the rest of the
//! minute becomes one summary audit event with the count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use teloxide::dispatching::{Dispatcher, ShutdownToken, UpdateFilterExt};
use teloxide::dptree;
use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::prelude::{Bot, CallbackQuery, Message, Requester, Update};
use teloxide::types::{ForceReply, ParseMode, ReplyMarkup, User};
use teloxide::utils::command::BotCommands;
use tokio::task::JoinHandle;

use crate::access::throttle::{Admission, AuditThrottle};
use crate::approval::{Refusal, Verdict};
use crate::envelope::RequestId;
use crate::events::{AuditKind, Stage};
use crate::status::Status;
use crate::telegram::escape;

type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Questions the bot asked ("reply with the reason"): (chat, question message) → what the
/// reason is for. Lost on restart, which only means clicking the button again.
type Awaiting = Arc<Mutex<HashMap<(i64, i32), (RequestId, Verdict)>>>;

pub struct RunningBot {
    shutdown: ShutdownToken,
    task: JoinHandle<()>,
}

impl RunningBot {
    pub async fn stop(self) {
        if let Ok(stopped) = self.shutdown.shutdown() {
            stopped.await;
        }
        let _ = self.task.await;
    }
}

/// What the bot reads and votes through: the approvals worker's desk, and Postgres (read
/// only) for `/pending`, `/status` and `/stats`.
pub struct BotDeps {
    pub desk: crate::approval::Desk,
    pub pool: sqlx::PgPool,
}

pub fn start(bot: Bot, deps: Arc<BotDeps>) -> RunningBot {
    // The command menu: best effort (a bot without it still answers every command).
    let menu_bot = bot.clone();
    tokio::spawn(async move {
        // The Bot API's command names carry no slash ("1-32 lowercase letters, digits, _").
        let menu = BotCommand::bot_commands().into_iter().map(|mut command| {
            command.command = command.command.trim_start_matches('/').to_string();
            command
        });
        if let Err(error) = menu_bot.set_my_commands(menu).await {
            tracing::warn!(%error, "could not register the bot's command menu");
        }
    });
    let handler = dptree::entry()
        .branch(Update::filter_message().endpoint(on_message))
        .branch(Update::filter_callback_query().endpoint(on_callback));
    let awaiting = Awaiting::default();
    let throttle = AuditThrottle::default();
    let mut dispatcher = Dispatcher::builder(bot, handler)
        .dependencies(dptree::deps![deps, awaiting, throttle])
        .build();
    let shutdown = dispatcher.shutdown_token();
    let task = tokio::spawn(async move { dispatcher.dispatch().await });
    RunningBot { shutdown, task }
}

/// The Telegram user id of an update's sender: Telegram vouches for it, so it is what the
/// roster is asked about (a user id can be an approver; a name is anyone's to type).
fn user_id_of(user: &User) -> i64 {
    i64::try_from(user.id.0).unwrap_or(i64::MAX)
}

async fn on_callback(
    bot: Bot,
    query: CallbackQuery,
    deps: Arc<BotDeps>,
    awaiting: Awaiting,
    throttle: AuditThrottle,
) -> HandlerResult {
    let data = query.data.clone().unwrap_or_default();
    let user_id = user_id_of(&query.from);
    let Some((kind, nonce)) = data.split_once(':') else {
        bot.answer_callback_query(query.id.clone())
            .text("unknown button")
            .await?;
        return Ok(());
    };
    let Some(request_id) = deps.desk.request_for_nonce(nonce).await? else {
        bot.answer_callback_query(query.id.clone())
            .text("this button is stale or unknown: nothing done")
            .await?;
        return Ok(());
    };
    let answer = match kind {
        "a" => {
            vote_text(
                &deps,
                &throttle,
                user_id,
                request_id,
                Verdict::Approve,
                None,
            )
            .await?
        }
        "r" | "o" => {
            let verdict = if kind == "r" {
                Verdict::Reject
            } else {
                Verdict::Approve
            };
            if deps.desk.telegram_approver(user_id).await?.is_none() {
                // Let the desk refuse it, so the attempt is audited (within the limit).
                vote_text(
                    &deps,
                    &throttle,
                    user_id,
                    request_id,
                    verdict,
                    Some("-".into()),
                )
                .await?
            } else if let Some(claim) = deps.desk.decision(request_id).await? {
                format!(
                    "already {} by {}",
                    claim.decision,
                    claim.approvers.join(", ")
                )
            } else if let Some(message) = query.regular_message() {
                let what = if kind == "r" {
                    "reject"
                } else {
                    "override the auto-rejection of"
                };
                let question = bot
                    .send_message(
                        message.chat.id,
                        format!("Reply to this message with your reason to {what} {request_id}"),
                    )
                    .reply_markup(ReplyMarkup::ForceReply(ForceReply::new()))
                    .await?;
                awaiting
                    .lock()
                    .map_err(|_| "lock poisoned")?
                    .insert((message.chat.id.0, question.id.0), (request_id, verdict));
                "reply with your reason".to_string()
            } else {
                "use /reject <id> <reason>".to_string()
            }
        }
        _ => "unknown button".to_string(),
    };
    bot.answer_callback_query(query.id.clone())
        .text(answer)
        .await?;
    Ok(())
}

/// The desk's answer to a vote. A stranger's vote reaches the desk (which refuses and audits
/// it) only while its user id is within the audit limit; past it, it is refused here,
/// counted, and left to the window's summary.
async fn vote_text(
    deps: &BotDeps,
    throttle: &AuditThrottle,
    user_id: i64,
    request_id: RequestId,
    verdict: Verdict,
    note: Option<String>,
) -> anyhow::Result<String> {
    let roster = deps.desk.roster().await?;
    let vote = || {
        deps.desk
            .vote_telegram(&roster, user_id, request_id, verdict, note.clone())
    };
    if roster.by_telegram(user_id).is_some() {
        return Ok(outcome_text(vote().await?));
    }
    let source = format!("telegram:{user_id}");
    let admission = throttle.admit(&source, tokio::time::Instant::now());
    crate::metrics::access_denied(Stage::Approvals.as_str(), admission == Admission::Audit);
    match admission {
        Admission::Audit => Ok(outcome_text(vote().await?)),
        Admission::Suppress { summary_at } => {
            if let Some(at) = summary_at {
                schedule_summary(deps, throttle, at);
            }
            Ok(Refusal::NotAuthorized(format!("{source} is not on the approver list")).to_string())
        }
    }
}

/// Publishes the window's summary of strangers' votes that were not audited one by one.
fn schedule_summary(deps: &BotDeps, throttle: &AuditThrottle, at: tokio::time::Instant) {
    let desk = deps.desk.clone();
    let throttle = throttle.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(at).await;
        let Some(summary) = throttle.take_summary(tokio::time::Instant::now()) else {
            return;
        };
        let audited = crate::bus::step::publish_audit(
            &desk.bus,
            None,
            AuditKind::AccessDenied,
            Stage::Approvals,
            &desk.actor,
            crate::access::throttle::summary_data(&summary),
        )
        .await;
        if let Err(error) = audited {
            tracing::warn!(error = %format!("{error:#}"), "could not audit the strangers' votes summary");
        }
    });
}

fn outcome_text(outcome: Result<crate::approval::Decision, crate::approval::Refusal>) -> String {
    match outcome {
        Ok(decision) => decision.describe(),
        Err(refusal) => refusal.to_string(),
    }
}

// The bot's commands: parsed by teloxide's derive, and registered as the chat's command menu
// (`setMyCommands`) when the bot starts, so Telegram offers them as the approver types `/`.
// (Plain comments: the derive would show a doc comment in /help.)
#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase", description = "Wingman approvals")]
pub enum BotCommand {
    #[command(description = "requests waiting for a decision")]
    Pending,
    #[command(description = "where a request is: /status <id>")]
    Status(String),
    #[command(description = "approve: /approve <id> [note]")]
    Approve(String),
    #[command(description = "reject: /reject <id> <reason> (a reason is required)")]
    Reject(String),
    #[command(description = "the rollout's rates: /stats [24h|7d]")]
    Stats(String),
    #[command(description = "validation rollout state")]
    Rollout,
    #[command(description = "your Telegram user id and this chat's id (for the roster)")]
    Whoami,
    #[command(description = "these commands")]
    Help,
    #[command(description = "these commands", hide)]
    Start,
}

impl BotCommand {
    /// Parses `/name[@bot] args`; the `@bot` suffix Telegram adds in groups is dropped first
    /// (this bot answers whatever its username), so only the name and arguments count.
    pub fn read(text: &str) -> Option<Result<Self, String>> {
        let command = text.strip_prefix('/')?;
        let (name, rest) = command
            .split_once(char::is_whitespace)
            .unwrap_or((command, ""));
        let name = name.split('@').next().unwrap_or_default().to_lowercase();
        let line = format!("/{name} {}", rest.trim());
        Some(Self::parse(line.trim_end(), "").map_err(|_| name))
    }
}

/// The command menu's help text, HTML-escaped for the chat.
fn help() -> String {
    escape(&BotCommand::descriptions().to_string())
}

async fn on_message(
    bot: Bot,
    message: Message,
    deps: Arc<BotDeps>,
    awaiting: Awaiting,
    throttle: AuditThrottle,
) -> HandlerResult {
    let Some(user) = message.from.clone() else {
        return Ok(());
    };
    let text = message.text().unwrap_or_default().trim().to_string();
    let chat = message.chat.id;
    let user_id = user_id_of(&user);
    let reply = |text: String| bot.send_message(chat, text).parse_mode(ParseMode::Html);

    if let Some(question) = message.reply_to_message() {
        let waiting = awaiting
            .lock()
            .map_err(|_| "lock poisoned")?
            .remove(&(chat.0, question.id.0));
        if let Some((request_id, verdict)) = waiting {
            reply(escape(
                &vote_text(&deps, &throttle, user_id, request_id, verdict, Some(text)).await?,
            ))
            .await?;
            return Ok(());
        }
    }
    let command = match BotCommand::read(&text) {
        None => return Ok(()),
        Some(Ok(command)) => command,
        Some(Err(name)) => {
            let known = BotCommand::bot_commands()
                .iter()
                .any(|command| command.command.trim_start_matches('/') == name);
            let answer = if known {
                format!("/{}: wrong arguments; see /help", escape(&name))
            } else {
                format!("unknown command /{}; see /help", escape(&name))
            };
            reply(answer).await?;
            return Ok(());
        }
    };
    let split = |text: &str| {
        let (first, rest) = text
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((text.trim(), ""));
        (first.to_string(), rest.trim().to_string())
    };
    let listed = deps.desk.telegram_approver(user_id).await?.is_some();
    let answer = match command {
        BotCommand::Whoami => format!("your user id: <code>{}</code>\nthis chat id: <code>{}</code>", user.id.0, chat.0),
        BotCommand::Help | BotCommand::Start => help(),
        BotCommand::Approve(ref args) | BotCommand::Reject(ref args) => {
            let verdict = if matches!(command, BotCommand::Approve(_)) { Verdict::Approve } else { Verdict::Reject };
            let (first, rest) = split(args);
            let Ok(request_id) = first.parse::<RequestId>() else {
                let name = if verdict == Verdict::Approve { "approve" } else { "reject" };
                reply(format!("usage: /{name} &lt;request id&gt; {}", if verdict == Verdict::Reject { "&lt;reason&gt;" } else { "[note]" }))
                    .await?;
                return Ok(());
            };
            let note = Some(rest).filter(|note| !note.is_empty());
            escape(&vote_text(&deps, &throttle, user_id, request_id, verdict, note).await?)
        }
        _ if !listed => "not authorized: ask an operator to add your user id (see /whoami) to the approver roster (wingman approvers add)".into(),
        BotCommand::Pending => pending(&deps).await?,
        BotCommand::Status(args) => match split(&args).0.parse::<RequestId>() {
            Ok(request_id) => match crate::store::requests::get(&deps.pool, request_id.as_uuid()).await? {
                Some(row) => format!("<code>{}</code>: <b>{}</b>{} — {}", row.request_id, row.status, row.execution_status.as_deref().map(|run| format!(", ran: <b>{run}</b>")).unwrap_or_default(), escape(&row.title)),
                None => format!("no request {request_id}"),
            },
            Err(_) => "usage: /status &lt;request id&gt;".into(),
        },
        BotCommand::Stats(args) => {
            let (window, _) = split(&args);
            stats(&deps, if window.is_empty() { "24h" } else { &window }).await?
        }
        BotCommand::Rollout => {
            let store = crate::rollout::RolloutStore::open(&deps.desk.bus).await?;
            let (rollout, _) = store.current().await?;
            format!("validation {} (set by {})", rollout.describe(), escape(&rollout.updated_by))
        }
    };
    reply(answer).await?;
    Ok(())
}

async fn pending(deps: &BotDeps) -> anyhow::Result<String> {
    let filter = crate::store::requests::ListFilter {
        status: Some(Status::Pending),
        since: None,
        limit: 20,
    };
    let rows = crate::store::requests::list(&deps.pool, &filter).await?;
    if rows.is_empty() {
        return Ok("nothing is waiting for a decision".into());
    }
    let lines: Vec<String> = rows
        .iter()
        .map(|row| {
            format!(
                "• <code>{}</code> {} — {}",
                row.request_id,
                row.environment,
                escape(&row.title)
            )
        })
        .collect();
    Ok(format!("{} waiting:\n{}", rows.len(), lines.join("\n")))
}

async fn stats(deps: &BotDeps, window: &str) -> anyhow::Result<String> {
    let since = crate::duration::since(window).map_err(anyhow::Error::msg)?;
    let report =
        crate::report::report(&deps.pool, since, &crate::report::Criteria::default()).await?;
    let rates = &report.rates;
    Ok(format!(
        "last {window}: {} requests, {} validated\nauto-reject {:.1} % · auto-approve {:.1} % · manual {:.1} % · false positives {:.1} %\nverdict: {}",
        report.counts.total,
        report.counts.validated,
        rates.auto_reject,
        rates.auto_approve,
        rates.manual_review,
        rates.false_positive,
        serde_json::to_value(&report.verdict)?["verdict"]
            .as_str()
            .unwrap_or("?"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_with_their_arguments_and_a_group_suffix_is_ignored() {
        assert_eq!(BotCommand::read("/pending"), Some(Ok(BotCommand::Pending)));
        assert_eq!(
            BotCommand::read("/approve@WingmanBot 0190 looks fine"),
            Some(Ok(BotCommand::Approve("0190 looks fine".into())))
        );
        assert_eq!(
            BotCommand::read("/REJECT 0190   too risky "),
            Some(Ok(BotCommand::Reject("0190   too risky".into())))
        );
        assert_eq!(
            BotCommand::read("/stats"),
            Some(Ok(BotCommand::Stats(String::new())))
        );
        assert_eq!(
            BotCommand::read("/frobnicate"),
            Some(Err("frobnicate".into()))
        );
        assert_eq!(BotCommand::read("just chatting"), None);
    }

    #[test]
    fn the_menu_lists_every_command_but_the_hidden_start() {
        let menu: Vec<String> = BotCommand::bot_commands()
            .into_iter()
            .map(|command| command.command)
            .collect();
        assert_eq!(
            menu,
            [
                "pending", "status", "approve", "reject", "stats", "rollout", "whoami", "help"
            ]
            .map(|name| format!("/{name}"))
        );
        assert!(help().contains("/approve"), "{}", help());
    }
}

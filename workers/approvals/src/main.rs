//! `wingman-approvals`: puts requests in front of humans (see `wingman::stages::approvals`).
//! Telegram with `TELEGRAM_BOT_TOKEN` + `TELEGRAM_CHAT_ID` (+ `TELEGRAM_API_URL`); approvers
//! from the roster (`wingman approvers`) and `TELEGRAM_APPROVER_IDS`. With
//! `WINGMAN_CONSOLE_URL`, prompts link to the request's page in the web console.

use anyhow::Context as _;
use wingman::approval::{BUCKET, Desk, Rules};
use wingman::bus::topology::open_bucket;
use wingman::config::{secret_var, var};
use wingman::events::Stage;
use wingman::identity::roster::{BUCKET as ROSTER_BUCKET, RosterStore};
use wingman::stages::approvals::{self, ApprovalsDeps};
use wingman::telegram::TelegramClient;
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let rules = Rules::from_env()?;
    let telegram = match secret_var("TELEGRAM_BOT_TOKEN")? {
        None => None,
        Some(token) => {
            let chats = var("TELEGRAM_CHAT_ID")
                .context("TELEGRAM_CHAT_ID must name the approver chat(s) when TELEGRAM_BOT_TOKEN is set")?
                .split(',')
                .map(|id| id.trim().parse::<i64>().map_err(|_| anyhow::anyhow!("TELEGRAM_CHAT_ID: `{id}` is not a chat id")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Some(
                TelegramClient::new(&token, var("TELEGRAM_API_URL").as_deref(), chats)?
                    .with_console_url(wingman::config::ConsoleSettings::from_env()?.url),
            )
        }
    };
    let worker = Worker::start(Stage::Approvals).await?;
    let pool = worker.settings.database.pool()?;
    worker
        .readiness
        .consumers(&worker.bus, approvals::CONSUMERS);
    worker.readiness.postgres(&pool);
    let desk = Desk {
        bus: worker.bus.clone(),
        claims: open_bucket(
            &worker.bus.js,
            &worker.bus.subjects.localize_name("wingman_claims"),
        )
        .await?,
        approvals: open_bucket(&worker.bus.js, &worker.bus.subjects.localize_name(BUCKET)).await?,
        roster: RosterStore {
            kv: open_bucket(
                &worker.bus.js,
                &worker.bus.subjects.localize_name(ROSTER_BUCKET),
            )
            .await?,
        },
        rules,
        actor: worker.actor.clone(),
    };
    let deps = ApprovalsDeps {
        desk,
        telegram,
        pool,
    };
    let options = worker.loop_options(32, 1)?;
    let token = worker.shutdown.token();
    worker.run(approvals::run(deps, options, token)).await
}

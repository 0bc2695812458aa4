//! `wingman-approvals`: puts requests in front of humans (see `wingman::stages::approvals`;
//! settings: `wingman::settings::ApprovalsSettings`). Telegram with `TELEGRAM_BOT_TOKEN` +
//! `TELEGRAM_CHAT_ID`; approvers from the roster (`wingman approvers`) and
//! `TELEGRAM_APPROVER_IDS`; prompts link to the web console with `WINGMAN_CONSOLE_URL`.

use wingman::events::Stage;
use wingman::settings::ApprovalsSettings;
use wingman::stages::approvals::{self, ApprovalsDeps};
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let settings = ApprovalsSettings::from_env()?;
    let worker = Worker::start(Stage::Approvals).await?;
    let pool = worker.settings.database.pool()?;
    worker
        .readiness
        .consumers(&worker.bus, approvals::CONSUMERS);
    worker.readiness.postgres(&pool);
    let (bus, actor) = (worker.bus.clone(), worker.actor.clone());
    let deps = ApprovalsDeps::open(bus, actor, &settings, pool).await?;
    let options = worker.loop_options(32, 1);
    let token = worker.shutdown.token();
    worker.run(approvals::run(deps, options, token)).await
}

//! `wingman-watcher`: expires stale requests, guards the rollout, reports consumer backlog
//! (see `wingman::stages::watcher`).

use std::time::Duration;

use wingman::bus::topology::open_bucket;
use wingman::config::{duration_var, parse_var, secret_var, var};
use wingman::events::Stage;
use wingman::rollout::{BUCKET, RolloutStore};
use wingman::stages::watcher::{self, GuardSettings, WatcherDeps};
use wingman::telegram::TelegramClient;
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let defaults = GuardSettings::default();
    let guard = GuardSettings {
        enabled: var("WINGMAN_GUARD_ENABLED").as_deref() != Some("0"),
        window: duration_var("WINGMAN_GUARD_WINDOW")?.unwrap_or(defaults.window),
        min_auto_rejected: parse_var::<i64>("WINGMAN_GUARD_MIN_SAMPLES")?
            .unwrap_or(defaults.min_auto_rejected),
        critical_rate: parse_var::<f64>("WINGMAN_GUARD_CRITICAL_PERCENT")?
            .unwrap_or(defaults.critical_rate),
        every: duration_var("WINGMAN_GUARD_EVERY")?.unwrap_or(defaults.every),
    };
    let telegram = match (secret_var("TELEGRAM_BOT_TOKEN")?, var("TELEGRAM_CHAT_ID")) {
        (Some(token), Some(chats)) => {
            let chats = chats
                .split(',')
                .filter_map(|id| id.trim().parse::<i64>().ok())
                .collect();
            Some(TelegramClient::new(
                &token,
                var("TELEGRAM_API_URL").as_deref(),
                chats,
            )?)
        }
        _ => None,
    };
    let worker = Worker::start(Stage::Watcher).await?;
    let pool = worker.settings.database.pool()?;
    worker.readiness.postgres(&pool);
    let deps = WatcherDeps {
        bus: worker.bus.clone(),
        pool,
        claims: open_bucket(
            &worker.bus.js,
            &worker.bus.subjects.localize_name("wingman_claims"),
        )
        .await?,
        rollout: RolloutStore::new(
            open_bucket(&worker.bus.js, &worker.bus.subjects.localize_name(BUCKET)).await?,
        ),
        telegram,
        guard,
        phases: wingman::report::PhaseMinimums::from_env()?,
        interval: duration_var("WINGMAN_WATCH_INTERVAL")?.unwrap_or(Duration::from_secs(5)),
        actor: worker.actor.clone(),
    };
    let token = worker.shutdown.token();
    worker.run(watcher::run(deps, token)).await
}

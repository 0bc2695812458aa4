//! `wingman-watcher`: expires stale requests, guards the rollout, reports consumer backlog
//! (see `wingman::stages::watcher`; settings: `wingman::settings::WatcherSettings`).

use wingman::events::Stage;
use wingman::settings::WatcherSettings;
use wingman::stages::watcher::{self, WatcherDeps};
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let settings = WatcherSettings::from_env()?;
    let worker = Worker::start(Stage::Watcher).await?;
    let pool = worker.settings.database.pool()?;
    worker.readiness.postgres(&pool);
    let deps = WatcherDeps::open(worker.bus.clone(), worker.actor.clone(), settings, pool).await?;
    let token = worker.shutdown.token();
    worker.run(watcher::run(deps, token)).await
}

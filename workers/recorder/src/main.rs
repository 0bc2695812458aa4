//! `wingman-recorder`: persists audit events to Postgres (see `wingman::stages::recorder`;
//! settings: `wingman::settings::RecorderSettings`).

use wingman::events::Stage;
use wingman::settings::RecorderSettings;
use wingman::stages::recorder::{self, RecorderDeps};
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let settings = RecorderSettings::from_env()?;
    let worker = Worker::start(Stage::Recorder).await?;
    let pool = worker.settings.database.pool()?;
    worker.readiness.consumers(&worker.bus, recorder::CONSUMERS);
    worker.readiness.postgres(&pool);
    let deps = RecorderDeps::open(pool, &settings).await?;
    let options = worker.loop_options(256, 1);
    let (bus, token) = (worker.bus.clone(), worker.shutdown.token());
    worker.run(recorder::run(deps, bus, options, token)).await
}

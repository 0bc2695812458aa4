//! `wingman-recorder`: persists audit events to Postgres (see `wingman::stages::recorder`).

use wingman::events::Stage;
use wingman::stages::recorder::{self, RecorderDeps};
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let worker = Worker::start(Stage::Recorder).await?;
    let pool = worker.settings.database.pool()?;
    worker.readiness.consumers(&worker.bus, recorder::CONSUMERS);
    worker.readiness.postgres(&pool);
    if wingman::config::var("WINGMAN_MIGRATE").as_deref() != Some("0") {
        wingman::store::migrate(&pool).await?;
    }
    let deps = RecorderDeps { pool };
    let options = worker.loop_options(256, 1)?;
    let (bus, token) = (worker.bus.clone(), worker.shutdown.token());
    worker.run(recorder::run(deps, bus, options, token)).await
}

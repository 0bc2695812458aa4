//! `wingman-authority`: mints capability tokens (see `wingman::stages::authority`; settings:
//! `wingman::settings::AuthoritySettings`, `WINGMAN_SIGNING_KEY_FILE` from `wingman keygen`).

use wingman::events::Stage;
use wingman::settings::AuthoritySettings;
use wingman::stages::authority::{self, AuthorityDeps};
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let settings = AuthoritySettings::from_env()?;
    let worker = Worker::start(Stage::Authority).await?;
    worker
        .readiness
        .consumers(&worker.bus, authority::CONSUMERS);
    let deps = AuthorityDeps::open(worker.bus.clone(), worker.actor.clone(), &settings).await?;
    let options = worker.loop_options(32, 4);
    let token = worker.shutdown.token();
    worker.run(authority::run(deps, options, token)).await
}

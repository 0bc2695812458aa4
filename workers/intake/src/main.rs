//! `wingman-intake`: validates submitted requests, scores them and decides, in one hop (see
//! `wingman::stages::intake`; settings: `wingman::settings::IntakeSettings`). Where it sets up
//! the topology itself (local, `WINGMAN_ENSURE_TOPOLOGY=1`), `VALIDATION_ENABLED` /
//! `VALIDATION_ROLLOUT_PERCENT` are applied to the live rollout flags when they changed since
//! last applied, as `wingman setup-nats` does in production.

use wingman::events::Stage;
use wingman::rollout::RolloutStore;
use wingman::settings::IntakeSettings;
use wingman::stages::intake::{self, IntakeDeps};
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let settings = IntakeSettings::from_env()?;
    let worker = Worker::start(Stage::Intake).await?;
    worker.readiness.consumers(&worker.bus, intake::CONSUMERS);
    // With WINGMAN_ENSURE_TOPOLOGY=0, `wingman setup-nats` applied the environment and this
    // worker may only read the flags (it has no right to write the rollout bucket).
    if worker.ensure_topology {
        let rollout = RolloutStore::open(&worker.bus).await?;
        rollout.apply_environment(&settings.rollout).await?;
    }
    let (bus, actor, token) = (
        worker.bus.clone(),
        worker.actor.clone(),
        worker.shutdown.token(),
    );
    let deps = IntakeDeps::open(bus, actor, &settings, token.clone()).await?;
    let options = worker.loop_options(64, 4);
    worker.run(intake::run(deps, options, token)).await
}

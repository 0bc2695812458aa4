//! `wingman-intake`: validates submitted requests, scores them and decides, in one hop (see
//! `wingman::stages::intake`). `WINGMAN_VALIDATION_CONFIG` names a validation config file
//! (default: the shipped one). Where it sets up the topology itself (local,
//! `WINGMAN_ENSURE_TOPOLOGY=1`), `VALIDATION_ENABLED` / `VALIDATION_ROLLOUT_PERCENT` are
//! applied to the live rollout flags when they changed since last applied, as
//! `wingman setup-nats` does in production.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wingman::bus::topology::open_bucket;
use wingman::config::{duration_var, var};
use wingman::events::Stage;
use wingman::rollout::{BUCKET, Rollout, RolloutStore};
use wingman::stages::intake::{self, IntakeDeps};
use wingman::stages::validator::Scoring;
use wingman::validation::{ValidationConfig, Validator};
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let config = match var("WINGMAN_VALIDATION_CONFIG") {
        Some(path) => ValidationConfig::load(path.as_ref())?,
        None => ValidationConfig::default_config(),
    };
    let validator = Arc::new(Validator::new(config).context("validation config")?);
    let worker = Worker::start(Stage::Intake).await?;
    worker.readiness.consumers(&worker.bus, intake::CONSUMERS);
    let js = &worker.bus.js;
    let claims = open_bucket(js, &worker.bus.subjects.localize_name("wingman_claims")).await?;
    let rollout =
        RolloutStore::new(open_bucket(js, &worker.bus.subjects.localize_name(BUCKET)).await?);
    // With WINGMAN_ENSURE_TOPOLOGY=0, `wingman setup-nats` applied the environment and this
    // worker may only read the flags (it has no right to write the rollout bucket).
    if worker.ensure_topology {
        rollout.apply_environment(&Rollout::from_env()?).await?;
    }
    let scoring = Scoring {
        validator,
        rollout: rollout.follow(worker.shutdown.token()).await,
        approval_ttl: duration_var("WINGMAN_APPROVAL_TTL")?.unwrap_or(Duration::from_secs(3600)),
        timeout: Duration::from_millis(2000),
    };
    let deps = IntakeDeps {
        bus: worker.bus.clone(),
        claims,
        scoring,
        actor: worker.actor.clone(),
    };
    let options = worker.loop_options(64, 4)?;
    let token = worker.shutdown.token();
    worker.run(intake::run(deps, options, token)).await
}

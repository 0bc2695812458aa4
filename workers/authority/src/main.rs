//! `wingman-authority`: mints capability tokens (see `wingman::stages::authority`).
//! Needs `WINGMAN_SIGNING_KEY_FILE` (from `wingman keygen`); `WINGMAN_TOKEN_TTL` (default 10m).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wingman::bus::topology::open_bucket;
use wingman::config::{duration_var, var};
use wingman::events::Stage;
use wingman::stages::authority::{self, AuthorityDeps};
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let key_file = var("WINGMAN_SIGNING_KEY_FILE")
        .context("WINGMAN_SIGNING_KEY_FILE must name the token signing key (create one with `wingman keygen`)")?;
    let signing_key =
        wingman::token::read_signing_key(key_file.as_ref()).context("WINGMAN_SIGNING_KEY_FILE")?;
    let worker = Worker::start(Stage::Authority).await?;
    worker
        .readiness
        .consumers(&worker.bus, authority::CONSUMERS);
    let claims = open_bucket(
        &worker.bus.js,
        &worker.bus.subjects.localize_name("wingman_claims"),
    )
    .await?;
    let deps = AuthorityDeps {
        bus: worker.bus.clone(),
        claims,
        signing_key: Arc::new(signing_key),
        token_ttl: duration_var("WINGMAN_TOKEN_TTL")?.unwrap_or(Duration::from_secs(600)),
        actor: worker.actor.clone(),
    };
    let options = worker.loop_options(32, 4)?;
    let token = worker.shutdown.token();
    worker.run(authority::run(deps, options, token)).await
}

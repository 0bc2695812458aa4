//! `wingman-intake`: validates submitted requests (see `wingman::stages::intake`).

use wingman::bus::topology::open_bucket;
use wingman::events::Stage;
use wingman::stages::intake::{self, IntakeDeps};
use wingman::worker::Worker;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let worker = Worker::start(Stage::Intake, 9101).await?;
    let claims = open_bucket(
        &worker.bus.js,
        &worker.bus.subjects.localize_name("wingman_claims"),
    )
    .await?;
    let deps = IntakeDeps {
        bus: worker.bus.clone(),
        claims,
        actor: worker.actor.clone(),
    };
    let options = worker.loop_options(64, 4)?;
    let token = worker.shutdown.token();
    worker.run(intake::run(deps, options, token)).await
}

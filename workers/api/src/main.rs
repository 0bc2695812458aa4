//! `wingman-api`: the HTTP API and the web console under `/console` (see `wingman::api`,
//! `wingman::console`; settings: `wingman::settings::ApiSettings`). Needs
//! `WINGMAN_API_KEYS_FILE` (it refuses to start without API keys).

use wingman::access::guard::Guard;
use wingman::api::ApiState;
use wingman::events::Stage;
use wingman::settings::ApiSettings;
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let keys = wingman::settings::api_keys()?;
    let worker = Worker::start(Stage::Api).await?;
    // Read after the start, so a policy that cannot be read is logged (the console says so).
    let settings = ApiSettings::from_env()?;
    let pool = worker.settings.database.pool()?;
    worker.readiness.postgres(&pool);
    let (bus, actor) = (worker.bus.clone(), worker.actor.clone());
    let guard = Guard::new(keys, bus.clone(), Stage::Api, actor.clone());
    let state = ApiState::new(bus, pool, guard, worker.metrics.clone(), actor, &settings);
    let listener = settings.http.bind().await?;
    tracing::info!(address = %listener.local_addr()?, "API listening");
    let token = worker.shutdown.token();
    worker
        .run(wingman::web::serve(listener, state, token))
        .await
}

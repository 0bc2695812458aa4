//! `wingman-gateway`: the only process with the Docker socket (see `wingman::stages::gateway`;
//! settings: `wingman::settings::GatewaySettings`). Needs `WINGMAN_VERIFY_KEY_FILE`,
//! `ALLOWED_ENVIRONMENTS` and `WINGMAN_API_KEYS_FILE` (it refuses to start without them).

use std::sync::Arc;

use wingman::access::guard::Guard;
use wingman::events::Stage;
use wingman::gateway_http::{self, GatewayHttp};
use wingman::settings::GatewaySettings;
use wingman::stages::gateway::{self, GatewayDeps};
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let settings = GatewaySettings::from_env()?;
    let keys = wingman::settings::api_keys()?;
    let http = settings.http.clone();
    let engine = gateway::connect_engine(&settings).await?;
    let worker = Worker::start(Stage::Gateway).await?;
    // Everything /health checks is registered before the first await after the start.
    worker.readiness.consumers(&worker.bus, gateway::CONSUMERS);
    let probe = engine.clone();
    worker.readiness.add("docker", move || {
        let engine = probe.clone();
        async move { engine.ping().await.map_err(|error| format!("{error:#}")) }
    });
    let (bus, actor) = (worker.bus.clone(), worker.actor.clone());
    let deps = Arc::new(GatewayDeps::open(bus.clone(), actor.clone(), settings, engine).await?);
    let listener = http.bind().await?;
    tracing::info!(address = %listener.local_addr()?, "gateway HTTP listening");
    let edge = GatewayHttp {
        deps: Arc::clone(&deps),
        metrics: worker.metrics.clone(),
        guard: Guard::new(keys, bus, Stage::Gateway, actor),
    };
    let http_token = worker.shutdown.token();
    worker.shutdown.tracker().spawn(async move {
        if let Err(error) = gateway_http::serve(listener, edge, http_token).await {
            tracing::error!(error = %format!("{error:#}"), "gateway HTTP stopped");
        }
    });
    let options = worker.loop_options(1, 1);
    let token = worker.shutdown.token();
    worker.run(gateway::run(deps, options, token)).await
}

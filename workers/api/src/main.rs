//! `wingman-api`: the HTTP API (see `wingman::api`). Listens on `API_PORT` (default 8080).
//! Needs `WINGMAN_API_KEYS_FILE` (it refuses to start without API keys). Serves the web
//! console under `/console` (`WINGMAN_CONSOLE_URL`, `WINGMAN_CONSOLE_SESSION_TTL`).

use anyhow::Context as _;
use wingman::access::ApiKeys;
use wingman::access::guard::Guard;
use wingman::api::ApiState;
use wingman::events::Stage;
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let keys = ApiKeys::from_env()?;
    let worker = Worker::start(Stage::Api).await?;
    let pool = worker.settings.database.pool()?;
    worker.readiness.postgres(&pool);
    let state = ApiState {
        guard: Guard {
            keys,
            bus: worker.bus.clone(),
            stage: Stage::Api,
            actor: worker.actor.clone(),
            throttle: Default::default(),
        },
        bus: worker.bus.clone(),
        pool,
        metrics: worker.metrics.clone(),
        actor: worker.actor.clone(),
        console: wingman::config::ConsoleSettings::from_env()?,
    };
    let port = wingman::config::parse_var::<u16>("API_PORT")?.unwrap_or(8080);
    let host = wingman::config::var("API_HOST").unwrap_or_else(|| "127.0.0.1".to_string());
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("bind the API on {host}:{port}"))?;
    tracing::info!(address = %listener.local_addr()?, "API listening");
    let token = worker.shutdown.token();
    worker
        .run(async move {
            // The peer address names the source of refused calls (their audit is rate-limited).
            let router = wingman::web::router(state);
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(token.cancelled_owned())
            .await
            .context("serve the API")
        })
        .await
}

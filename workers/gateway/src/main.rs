//! `wingman-gateway`: the only process with the Docker socket (see `wingman::stages::gateway`).
//! Needs `WINGMAN_VERIFY_KEY_FILE` and `ALLOWED_ENVIRONMENTS`; `DOCKER_HOST` names the engine;
//! `WINGMAN_POLICY_FILE` the policy (default: the shipped one); HTTP on `GATEWAY_PORT` (5001),
//! with API keys from `WINGMAN_API_KEYS_FILE` (it refuses to start without them).

use std::sync::Arc;

use anyhow::Context as _;
use wingman::access::ApiKeys;
use wingman::access::guard::Guard;
use wingman::bus::topology::open_bucket;
use wingman::config::{parse_var, var};
use wingman::engine::Engine;
use wingman::events::Stage;
use wingman::gateway_http::{self, GatewayHttp};
use wingman::policy::Policy;
use wingman::request::Environment;
use wingman::stages::gateway::{self, GatewayDeps};
use wingman::worker::Worker;

fn main() -> anyhow::Result<()> {
    wingman::worker::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let key_file = var("WINGMAN_VERIFY_KEY_FILE")
        .context("WINGMAN_VERIFY_KEY_FILE must name the token verification key")?;
    let verify_key =
        wingman::token::read_verify_key(key_file.as_ref()).context("WINGMAN_VERIFY_KEY_FILE")?;
    let allowed_environments = var("ALLOWED_ENVIRONMENTS")
        .context("ALLOWED_ENVIRONMENTS must list the environments this gateway acts on (e.g. prd)")?
        .split(',')
        .map(|name| {
            name.trim()
                .parse::<Environment>()
                .map_err(|error| anyhow::anyhow!("ALLOWED_ENVIRONMENTS: {error}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keys = ApiKeys::from_env()?;
    let policy = match var("WINGMAN_POLICY_FILE") {
        Some(path) => Policy::load(path.as_ref())?,
        None => Policy::default_policy(),
    };
    let engine = Engine::connect(var("DOCKER_HOST").as_deref())
        .await
        .context("connect to the Docker Engine (DOCKER_HOST)")?;
    let worker = Worker::start(Stage::Gateway).await?;
    let claims = open_bucket(
        &worker.bus.js,
        &worker.bus.subjects.localize_name("wingman_claims"),
    )
    .await?;
    let deps = Arc::new(GatewayDeps {
        bus: worker.bus.clone(),
        claims,
        verify_key,
        engine,
        policy,
        allowed_environments,
        actor: worker.actor.clone(),
        running_lease: parse_var::<u64>("WINGMAN_GATEWAY_LEASE_SECS")?
            .map_or(gateway::RUNNING_LEASE, std::time::Duration::from_secs),
    });
    worker.readiness.consumers(&worker.bus, gateway::CONSUMERS);
    let engine_deps = Arc::clone(&deps);
    worker.readiness.add("docker", move || {
        let deps = Arc::clone(&engine_deps);
        async move {
            deps.engine
                .ping()
                .await
                .map_err(|error| format!("{error:#}"))
        }
    });
    let port = parse_var::<u16>("GATEWAY_PORT")?.unwrap_or(5001);
    let host = var("GATEWAY_HOST").unwrap_or_else(|| "127.0.0.1".to_string());
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("bind {host}:{port}"))?;
    tracing::info!(address = %listener.local_addr()?, "gateway HTTP listening");
    let http = gateway_http::router(GatewayHttp {
        deps: Arc::clone(&deps),
        metrics: worker.metrics.clone(),
        guard: Guard {
            keys,
            bus: worker.bus.clone(),
            stage: Stage::Gateway,
            actor: worker.actor.clone(),
            throttle: Default::default(),
        },
    });
    let http_token = worker.shutdown.token();
    worker.shutdown.tracker().spawn(async move {
        // The peer address names the source of refused calls (their audit is rate-limited).
        let http = http.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, http)
            .with_graceful_shutdown(http_token.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "gateway HTTP stopped");
        }
    });
    let options = worker.loop_options(1, 1)?;
    let token = worker.shutdown.token();
    worker.run(gateway::run(deps, options, token)).await
}

//! Manual execution through the gateway's HTTP face, as the seed's checklist uses it ("Token
//! minting works (`POST /gateway/token`)", "Command execution works (`POST /gateway/execute`)"),
//! and automatic execution beside it, both on the real Docker Engine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;
use wingman::request::Environment;
use wingman::stages::gateway::GatewayDeps;

use crate::api::call_with_key;
use crate::docker;
use crate::helpers::{
    OPERATOR_KEY, SUBMIT_KEY, TestEnv, run_wingman, text, wait_for_status, well_explained,
};

/// Serves the gateway's HTTP face for `deps` on a free loopback port.
pub(crate) async fn serve_gateway_http(env: &TestEnv, deps: Arc<GatewayDeps>) -> SocketAddr {
    let router = wingman::gateway_http::router(wingman::gateway_http::GatewayHttp {
        deps,
        metrics: wingman::metrics::install().unwrap(),
        guard: env.guard(wingman::events::Stage::Gateway),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = env.shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    address
}

/// The whole pipeline in-process (the gateway's consumer included), the API and the gateway's
/// HTTP face; returns their addresses.
async fn pipeline(env: &mut TestEnv) -> (SocketAddr, SocketAddr) {
    env.spawn_intake_validating(100).await;
    env.spawn_authority().await;
    let (deps, _) = env
        .spawn_gateway(&[Environment::Dev, Environment::Test])
        .await;
    env.spawn_recorder().await;
    let api = env.spawn_api().await;
    let gateway = serve_gateway_http(env, deps).await;
    (api, gateway)
}

/// Waits for the authority's status event (the one that carries the token's expiry).
pub(crate) async fn wait_for_token_minted(env: &TestEnv, request_id: Uuid) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = env
            .stream_messages(
                "WINGMAN_STATUS",
                &format!("{}.status.{request_id}", env.prefix),
            )
            .await;
        if let Some(event) = events
            .iter()
            .find(|event| event.get("token_expires_at").is_some())
        {
            return event.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no token minted for {request_id}; saw {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn token_refusal_codes(env: &TestEnv, request_id: Uuid) -> Vec<String> {
    let mut codes: Vec<String> = sqlx::query_scalar(
        "SELECT data->>'code' FROM audit_events WHERE request_id = $1 AND kind = 'token_refused'",
    )
    .bind(request_id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    codes.sort();
    codes
}

#[tokio::test]
async fn a_manual_request_is_run_once_and_only_by_the_key_that_submitted_it() {
    let mut env = TestEnv::start().await;
    let name = docker::unique("wt-manual");
    docker::start_container(&name, None).await;
    let (_, started_before) = docker::state(&name).await.unwrap();
    let (api, gateway) = pipeline(&mut env).await;

    let request_id = Uuid::new_v4();
    let command = format!("docker restart {name}");
    let mut request = well_explained(request_id, "dev", &command, &name);
    request["execution"] = json!("manual");
    let (status, accepted) = call_with_key(
        "POST",
        &format!("http://{api}/requests"),
        Some(request),
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");

    // Approved and minted, never enqueued: the gateway's consumer does nothing.
    let minted = wait_for_token_minted(&env, request_id).await;
    assert_eq!(minted["status"], "AUTO_APPROVED");
    assert_eq!(minted["execution"], "manual");
    assert_eq!(minted["holder"], "api:submitter");
    env.settle_all().await;
    let (_, started) = docker::state(&name).await.unwrap();
    assert_eq!(started, started_before, "the pipeline did not run it");
    assert_eq!(
        env.status_of(request_id).await.as_deref(),
        Some("AUTO_APPROVED")
    );

    // Another key with the submit role gets no token, and cannot run the token either.
    let token_url = format!("http://{gateway}/gateway/token");
    let execute_url = format!("http://{gateway}/gateway/execute");
    let (status, refused) = call_with_key(
        "POST",
        &token_url,
        Some(json!({ "request_id": request_id })),
        Some(OPERATOR_KEY),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("not_the_submitter"))
    );
    assert!(
        refused["error"].as_str().unwrap().contains("api:submitter"),
        "{refused}"
    );

    let (status, fetched) = call_with_key(
        "POST",
        &token_url,
        Some(json!({ "request_id": request_id })),
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(status, 200, "{fetched}");
    let token = fetched["token"].as_str().unwrap().to_string();
    let body = json!({ "request_id": request_id, "command": command, "environment": "dev" });
    let execute = |key: &'static str| {
        let client = reqwest::Client::new();
        let request = client
            .post(&execute_url)
            .header("x-api-key", key)
            .header("x-capability-token", &token)
            // What the runbook's `curl -d` sends.
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, stolen) = execute(OPERATOR_KEY).await;
    assert_eq!(
        (status, stolen["code"].as_str()),
        (403, Some("not_the_holder"))
    );
    let (_, started) = docker::state(&name).await.unwrap();
    assert_eq!(started, started_before, "a refused call runs nothing");

    // The submitter runs it: the real container restarts.
    let (status, done) = execute(SUBMIT_KEY).await;
    assert_eq!(
        (status, done["status"].as_str(), done["exit_code"].as_i64()),
        (200, Some("SUCCEEDED"), Some(0)),
        "{done}"
    );
    let (running, started_after) = docker::state(&name).await.unwrap();
    assert!(running);
    assert_ne!(
        started_after, started_before,
        "the container was really restarted"
    );

    // Single use: the same token again is refused, and nothing runs.
    let (status, again) = execute(SUBMIT_KEY).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (403, Some("token_reused"))
    );
    assert_eq!(docker::state(&name).await.unwrap().1, started_after);

    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = 'token_refused'",
        Some(request_id),
        3,
    )
    .await;
    assert_eq!(
        token_refusal_codes(&env, request_id).await,
        ["not_the_holder", "not_the_submitter", "token_reused"]
    );
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM audit_events WHERE request_id = $1 AND kind <> 'token_refused' ORDER BY seq",
    )
    .bind(request_id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        [
            "request_received",
            "request_validated",
            "token_minted",
            "execution_started",
            "execution_finished"
        ]
    );
    let executions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(executions, 1);
    assert_eq!(
        env.execution_status_of(request_id).await.as_deref(),
        Some("SUCCEEDED")
    );

    // A manual request a NATS user submitted is that user's: no API key gets its token.
    let over_nats = Uuid::new_v4();
    let mut request = well_explained(over_nats, "dev", &command, &name);
    request["execution"] = json!("manual");
    env.publish_raw(
        &format!("{}.requests.submitted.alice", env.prefix),
        request.to_string(),
    )
    .await;
    wait_for_token_minted(&env, over_nats).await;
    let (status, refused) = call_with_key(
        "POST",
        &token_url,
        Some(json!({ "request_id": over_nats })),
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("not_the_submitter"))
    );
    assert!(
        refused["error"].as_str().unwrap().contains("nats:alice"),
        "{refused}"
    );
    assert_eq!(docker::state(&name).await.unwrap().1, started_after);

    docker::remove(&name).await;
    env.stop().await;
}

#[tokio::test]
async fn an_automatic_request_is_run_by_the_pipeline_and_its_token_is_handed_to_nobody() {
    let mut env = TestEnv::start().await;
    let name = docker::unique("wt-auto");
    docker::start_container(&name, None).await;
    let (api, gateway) = pipeline(&mut env).await;

    let request_id = Uuid::new_v4();
    let command = format!("docker restart {name}");
    let request = well_explained(request_id, "dev", &command, &name);
    let (status, _) = call_with_key(
        "POST",
        &format!("http://{api}/requests"),
        Some(request),
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(status, 202);
    let minted = wait_for_token_minted(&env, request_id).await;
    assert_eq!(minted["execution"], "automatic");
    // Not even the submitter gets it: only the pipeline runs an automatic request.
    let (status, refused) = call_with_key(
        "POST",
        &format!("http://{gateway}/gateway/token"),
        Some(json!({ "request_id": request_id })),
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("automatic_execution"))
    );
    let done = wait_for_status(&env, request_id, "SUCCEEDED").await;
    assert_eq!(done["exit_code"], 0);
    env.settle_all().await;
    // Even with the token in hand (read here from the authority's store), a client cannot
    // run an automatic request: only the pipeline presents that token.
    let minted: Value = serde_json::from_slice(
        &env.claims()
            .await
            .get(format!("minted.{request_id}"))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let (status, stolen) = {
        let response = reqwest::Client::new()
            .post(format!("http://{gateway}/gateway/execute"))
            .header("x-api-key", SUBMIT_KEY)
            .header("x-capability-token", minted["token"].as_str().unwrap())
            .body(
                json!({ "request_id": request_id, "command": command, "environment": "dev" })
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };
    assert_eq!(
        (status, stolen["code"].as_str()),
        (403, Some("automatic_token"))
    );
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = 'token_refused'",
        Some(request_id),
        2,
    )
    .await;
    assert_eq!(
        token_refusal_codes(&env, request_id).await,
        ["automatic_execution", "automatic_token"]
    );
    let executions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(executions, 1);
    assert_eq!(
        env.execution_status_of(request_id).await.as_deref(),
        Some("SUCCEEDED")
    );

    docker::remove(&name).await;
    env.stop().await;
}

#[tokio::test]
async fn wingman_request_manual_submits_through_the_api_and_stops_when_the_token_is_ready() {
    let mut env = TestEnv::start().await;
    let (api, gateway) = pipeline(&mut env).await;
    let api_url = format!("http://{api}");
    let description = "The container api caches its config at start and we changed the log \
                       level, so it must restart. Only api is touched. Rollback: docker start \
                       api if it does not come back. Verify: docker inspect shows api running.";
    let args = [
        "request",
        "--env",
        "dev",
        "--title",
        "Restart the container api to reload its config",
        "--description",
        description,
        "--manual",
        "--api-url",
        &api_url,
        "--json",
        "--timeout",
        "60s",
        "--",
        "docker",
        "inspect",
        "api",
    ];
    let output = run_wingman(&env, &[("WINGMAN_API_KEY", SUBMIT_KEY)], &args).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let ready = crate::helpers::last_json_line(&output.stdout);
    assert_eq!(
        (ready["execution"].as_str(), ready["holder"].as_str()),
        (Some("manual"), Some("api:submitter")),
        "{ready}"
    );
    let (status, fetched) = call_with_key(
        "POST",
        &format!("http://{gateway}/gateway/token"),
        Some(json!({ "request_id": ready["request_id"] })),
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(status, 200, "{fetched}");

    // Without the API a manual request would belong to a NATS user no key can act for.
    let without_api: Vec<&str> = args
        .iter()
        .copied()
        .filter(|arg| *arg != "--api-url" && *arg != api_url)
        .collect();
    let output = run_wingman(&env, &[], &without_api).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("--api-url"),
        "{}",
        text(&output.stderr)
    );
    env.stop().await;
}

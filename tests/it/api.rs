//! The HTTP API, called over real HTTP, with API keys by role.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{DECIDE_KEY, OPERATOR_KEY, READ_KEY, SUBMIT_KEY, TestEnv, request_json};

/// A call with a key that may submit and read.
async fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    call_with_key(method, url, body, Some(OPERATOR_KEY)).await
}

pub async fn call_with_key(
    method: &str,
    url: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().unwrap(), url);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn a_request_posted_to_the_api_is_accepted_recorded_and_readable() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let address = env.spawn_api().await;
    let mut body = request_json(Uuid::new_v4(), Some("docker stop api"));
    body.as_object_mut().unwrap().remove("request_id");
    let (status, answer) = call("POST", &format!("http://{address}/requests"), Some(body)).await;
    assert_eq!(status, 202, "{answer}");
    let request_id = answer["request_id"].as_str().unwrap().to_string();
    env.settle_all().await;

    let (status, view) = call(
        "GET",
        &format!("http://{address}/requests/{request_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "PENDING");
    assert_eq!(view["command"], "docker stop api");
    let (status, listing) = call(
        "GET",
        &format!("http://{address}/requests?status=PENDING&since=1h"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listing["count"], 1);
    let (status, error) = call(
        "GET",
        &format!("http://{address}/requests?status=DONE"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["field"], "status");
    env.stop().await;
}

#[tokio::test]
async fn invalid_input_gets_a_400_naming_the_field_and_is_audited() {
    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    let address = env.spawn_api().await;
    let body = json!({"requester": "a", "environment": "prd", "title": "t"});
    let (status, error) = call("POST", &format!("http://{address}/requests"), Some(body)).await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        json!({"error": "field `description`: is required", "field": "description", "code": "missing_field"})
    );
    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'message_rejected' AND stage = 'api'",
        None,
        1,
    )
    .await;
    let (status, _) = call(
        "GET",
        &format!("http://{address}/requests/{}", Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, error) = call("GET", &format!("http://{address}/requests/not-an-id"), None).await;
    assert_eq!((status, error["field"].as_str()), (400, Some("request_id")));
    env.stop().await;
}

#[tokio::test]
async fn health_reports_both_dependencies_and_metrics_are_exposed() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let address = env.spawn_api().await;
    let (status, health) = call("GET", &format!("http://{address}/health"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        health,
        json!({"status": "ok", "nats": "ok", "postgres": "ok"})
    );
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request_json(Uuid::new_v4(), None).to_string(),
    )
    .await;
    env.settle_all().await;
    let (status, metrics) = call("GET", &format!("http://{address}/metrics"), None).await;
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    let forwarded = format!(
        "{}{{stage=\"intake\",outcome=\"forwarded\"}}",
        wingman::metrics::MESSAGES_TOTAL
    );
    assert!(text.contains(&forwarded), "{text}");
    let histogram = format!("# TYPE {} histogram", wingman::metrics::HANDLE_DURATION);
    assert!(text.contains(&histogram), "{text}");
    env.stop().await;
}

/// The `access_denied` audit rows of this test's database: (route, reason).
async fn denials(env: &TestEnv) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT data->>'route', data->>'reason', stage FROM audit_events \
         WHERE kind = 'access_denied' ORDER BY seq",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn calls_without_a_key_with_a_wrong_key_or_role_get_401_and_are_audited() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let address = env.spawn_api().await;
    let requests_url = format!("http://{address}/requests");
    let body = request_json(Uuid::new_v4(), Some("docker stop api"));

    let (status, error) = call_with_key("POST", &requests_url, Some(body.clone()), None).await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(error["code"], "missing_api_key");
    assert_eq!(error["required_role"], "submit");
    let wrong_key = "wmk_0000000000000000000000000000000000000000000000000000000000000000";
    let (status, error) =
        call_with_key("POST", &requests_url, Some(body.clone()), Some(wrong_key)).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert!(
        !error.to_string().contains(wrong_key),
        "the key is never echoed"
    );
    // A reader may not submit, a submitter may not read, a decider may do neither.
    let (status, error) =
        call_with_key("POST", &requests_url, Some(body.clone()), Some(READ_KEY)).await;
    assert_eq!((status, error["code"].as_str()), (401, Some("wrong_role")));
    let (status, error) = call_with_key("GET", &requests_url, None, Some(SUBMIT_KEY)).await;
    assert_eq!((status, error["code"].as_str()), (401, Some("wrong_role")));
    let (status, _) = call_with_key(
        "GET",
        &format!("http://{address}/metrics"),
        None,
        Some(DECIDE_KEY),
    )
    .await;
    assert_eq!(status, 401);

    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'access_denied'",
        None,
        5,
    )
    .await;
    let rows = denials(&env).await;
    let reasons: Vec<(&str, &str)> = rows
        .iter()
        .map(|(route, reason, _)| (route.as_str(), reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("/requests", "missing_api_key"),
            ("/requests", "invalid_api_key"),
            ("/requests", "wrong_role"),
            ("/requests", "wrong_role"),
            ("/metrics", "wrong_role"),
        ]
    );
    assert!(rows.iter().all(|(_, _, stage)| stage == "api"));
    let audit_text: String = sqlx::query_scalar(
        "SELECT string_agg(data::text, ' ') FROM audit_events WHERE kind = 'access_denied'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    for key in [wrong_key, READ_KEY, SUBMIT_KEY, DECIDE_KEY] {
        assert!(!audit_text.contains(key), "a key reached the audit log");
    }
    assert!(
        audit_text.contains("\"key_name\": \"reader\""),
        "{audit_text}"
    );
    // Nothing was submitted by the refused calls.
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM approval_requests")
            .fetch_one(&env.pool)
            .await
            .unwrap(),
        0
    );
    env.stop().await;
}

#[tokio::test]
async fn the_right_key_works_for_each_role_and_health_needs_none() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let address = env.spawn_api().await;
    let body = request_json(Uuid::new_v4(), Some("docker stop api"));
    let request_id = body["request_id"].as_str().unwrap().to_string();
    let (status, answer) = call_with_key(
        "POST",
        &format!("http://{address}/requests"),
        Some(body),
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    env.settle_all().await;
    env.wait_for_count("SELECT count(*) FROM approval_requests", None, 1)
        .await;
    let (status, view) = call_with_key(
        "GET",
        &format!("http://{address}/requests/{request_id}"),
        None,
        Some(READ_KEY),
    )
    .await;
    assert_eq!((status, view["status"].as_str()), (200, Some("PENDING")));
    // Authorization: Bearer works as well as X-API-Key.
    let response = reqwest::Client::new()
        .get(format!("http://{address}/metrics"))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, _) = call_with_key("GET", &format!("http://{address}/health"), None, None).await;
    assert_eq!(status, 200);
    assert!(denials(&env).await.is_empty());
    env.stop().await;
}

#[tokio::test]
async fn the_gateway_endpoints_need_a_submit_key_and_refusals_are_audited() {
    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    let deps = std::sync::Arc::new(env.gateway_deps(&[]).await);
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
    let execute = format!("http://{address}/gateway/execute");
    let body =
        json!({"request_id": Uuid::new_v4(), "command": "docker stop api", "environment": "dev"});
    let (status, error) = call_with_key("POST", &execute, Some(body.clone()), None).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("missing_api_key"))
    );
    let (status, error) = call_with_key("POST", &execute, Some(body.clone()), Some(READ_KEY)).await;
    assert_eq!((status, error["code"].as_str()), (401, Some("wrong_role")));
    let (status, error) = call_with_key(
        "POST",
        &format!("http://{address}/gateway/token"),
        Some(json!({"request_id": Uuid::new_v4()})),
        Some("wmk_guess"),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    // The right key passes the edge; the capability token is still required behind it.
    let (status, error) = call_with_key("POST", &execute, Some(body), Some(SUBMIT_KEY)).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("missing_token"))
    );
    let (status, _) = call_with_key("GET", &format!("http://{address}/health"), None, None).await;
    assert_ne!(status, 401, "/health needs no key");

    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'access_denied' AND stage = 'gateway'",
        None,
        3,
    )
    .await;
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT data->>'route' || ' ' || (data->>'reason') FROM audit_events \
         WHERE kind = 'access_denied' ORDER BY seq",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        reasons,
        [
            "/gateway/execute missing_api_key",
            "/gateway/execute wrong_role",
            "/gateway/token invalid_api_key"
        ]
    );
    env.stop().await;
}

/// Runs a worker binary to its end (it must end: it refuses to start) and returns stderr.
async fn run_to_exit(
    binary: &str,
    env: &TestEnv,
    extra: &[(&str, &str)],
) -> (std::process::ExitStatus, String) {
    let mut command = tokio::process::Command::new(crate::helpers::worker_binary(binary));
    command
        .envs(env.child_env())
        .env_remove("WINGMAN_API_KEYS_FILE")
        .env("API_PORT", "0")
        .env("ALLOWED_ENVIRONMENTS", "dev")
        .kill_on_drop(true);
    for (key, value) in extra {
        command.env(key, value);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), command.output())
        .await
        .expect("the worker kept running")
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_api_and_gateway_refuse_to_start_without_api_keys_and_dev_passes_a_generated_file() {
    let env = TestEnv::start().await;
    for binary in ["wingman-api", "wingman-gateway"] {
        let (status, stderr) = run_to_exit(binary, &env, &[]).await;
        assert!(!status.success(), "{binary} started without API keys");
        assert!(
            stderr.contains("WINGMAN_API_KEYS_FILE must name the API key file"),
            "{binary}: {stderr}"
        );
    }
    // An empty key file is no better than none.
    let empty = env.keys_dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let (status, stderr) = run_to_exit(
        "wingman-api",
        &env,
        &[("WINGMAN_API_KEYS_FILE", empty.to_str().unwrap())],
    )
    .await;
    assert!(!status.success() && stderr.contains("no keys"), "{stderr}");

    // What scripts/dev does: `wingman apikey` writes the file and prints the key once.
    let keys_file = env.keys_dir.path().join("api-keys.toml");
    let output = tokio::process::Command::new(crate::helpers::worker_binary("wingman"))
        .args([
            "apikey", "--name", "dev", "--role", "submit", "--role", "read", "--file",
        ])
        .arg(&keys_file)
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let key = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let file = std::fs::read_to_string(&keys_file).unwrap();
    assert!(!file.contains(&key), "the key file holds hashes, not keys");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&keys_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut api = tokio::process::Command::new(crate::helpers::worker_binary("wingman-api"))
        .envs(env.child_env())
        .env("WINGMAN_API_KEYS_FILE", &keys_file)
        .env("API_PORT", "0")
        .env("RUST_LOG", "info")
        .env("WINGMAN_LOG_FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let address = listening_address(&mut api).await;
    let (status, _) = call_with_key(
        "GET",
        &format!("http://{address}/requests?limit=1"),
        None,
        Some(&key),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call_with_key(
        "GET",
        &format!("http://{address}/requests?limit=1"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    api.kill().await.unwrap();
    env.stop().await;
}

/// The address the API logs (in JSON) once it listens.
async fn listening_address(child: &mut tokio::process::Child) -> String {
    use tokio::io::AsyncBufReadExt as _;
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(log) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if log["fields"]["message"] == "API listening" {
                return log["fields"]["address"].as_str().unwrap().to_string();
            }
        }
        panic!("the API ended without listening");
    })
    .await
    .expect("the API did not listen within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found
}

/// The `data:` of every `event: status` in a Server-Sent Events body.
fn sse_statuses(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter(|block| block.lines().any(|line| line == "event: status"))
        .filter_map(|block| block.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[tokio::test]
async fn a_client_follows_a_request_live_over_server_sent_events_until_it_settles() {
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_recorder().await;
    let address = env.spawn_api().await;
    let request_id = Uuid::new_v4();
    let mut request =
        crate::helpers::well_explained(request_id, "dev", "docker restart api", "api");
    request.as_object_mut().unwrap().remove("command");
    // Opened right after the 202, before intake has said anything: the stream still comes.
    let (status, _) = call_with_key(
        "POST",
        &format!("http://{address}/requests"),
        Some(request),
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(status, 202);
    let events = reqwest::Client::new()
        .get(format!("http://{address}/requests/{request_id}/events"))
        .header("x-api-key", READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status().as_u16(), 200);
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    // The body ends by itself once the request is settled (an instruction: its decision).
    let body = tokio::time::timeout(std::time::Duration::from_secs(30), events.text())
        .await
        .expect("the event stream ends once the request settles")
        .unwrap();
    let statuses = sse_statuses(&body);
    let last = statuses.last().expect("at least one status event");
    assert_eq!(last["status"], "AUTO_APPROVED", "{body}");
    assert_eq!(last["request_id"], request_id.to_string());
    assert!(body.contains("\nid: "), "each event carries its id: {body}");

    let (status, _) = call_with_key(
        "GET",
        &format!("http://{address}/requests/{request_id}/events"),
        None,
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(status, 401, "a submit key may not read the event stream");
    let (status, body) = call_with_key(
        "GET",
        &format!("http://{address}/requests/{}/events", Uuid::new_v4()),
        None,
        Some(READ_KEY),
    )
    .await;
    assert_eq!(status, 404, "an id nobody submitted: {body}");
    env.stop().await;
}

/// The attack: a call with no key to every route the API describes, whatever its method.
/// Each is refused with `missing_api_key`; `/health` alone is open (`/openapi.json` is open
/// and not described).
#[tokio::test]
async fn every_described_route_refuses_a_call_without_a_key() {
    let mut env = TestEnv::start().await;
    let address = env.spawn_api().await;
    let (status, document) =
        call_with_key("GET", &format!("http://{address}/openapi.json"), None, None).await;
    assert_eq!(status, 200, "{document}");
    let parameter = regex::Regex::new(r"\{[^}]+\}").unwrap();
    let mut tried = Vec::new();
    for (path, methods) in document["paths"].as_object().unwrap() {
        if path == "/health" {
            continue;
        }
        let url = format!(
            "http://{address}{}",
            parameter.replace_all(path, Uuid::new_v4().to_string().as_str())
        );
        for method in methods.as_object().unwrap().keys() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let body = (method != "get").then(|| json!({}));
            let (status, error) = call_with_key(&method.to_uppercase(), &url, body, None).await;
            assert_eq!(
                (status, error["code"].as_str()),
                (401, Some("missing_api_key")),
                "{method} {path}: {error}"
            );
            tried.push(format!("{method} {path}"));
        }
    }
    println!("refused without a key: {tried:?}");
    assert!(
        tried.len() >= 5,
        "the description names too few routes: {tried:?}"
    );
    env.stop().await;
}

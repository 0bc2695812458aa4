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
    env.spawn_recorder();
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
    assert_eq!(view["status"], "RECEIVED");
    assert_eq!(view["command"], "docker stop api");
    let (status, listing) = call(
        "GET",
        &format!("http://{address}/requests?status=RECEIVED&since=1h"),
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
    env.spawn_recorder();
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
    env.spawn_recorder();
    let address = env.spawn_api().await;
    let (status, health) = call("GET", &format!("http://{address}/health"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        health,
        json!({"status": "ok", "nats": "ok", "postgres": "ok"})
    );
    env.publish_raw(
        &format!("{}.requests.submitted", env.prefix),
        request_json(Uuid::new_v4(), None).to_string(),
    )
    .await;
    env.settle_all().await;
    let (status, metrics) = call("GET", &format!("http://{address}/metrics"), None).await;
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("pipeline_messages_total{stage=\"intake\",outcome=\"forwarded\"}"),
        "{text}"
    );
    assert!(text.contains("# TYPE pipeline_handle_duration_seconds histogram"));
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
    env.spawn_recorder();
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
    env.spawn_recorder();
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
    assert_eq!((status, view["status"].as_str()), (200, Some("RECEIVED")));
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

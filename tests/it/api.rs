//! The HTTP API, called over real HTTP.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestEnv, request_json};

async fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().unwrap(), url);
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

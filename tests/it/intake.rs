//! Intake against real NATS and Postgres: the front door's promises.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestEnv, request_json};

#[tokio::test]
async fn a_raw_json_request_is_recorded_with_its_decision_and_announced_on_its_status_subject() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    let mut status = env
        .bus
        .client
        .subscribe(format!("{}.status.{request_id}", env.prefix))
        .await
        .unwrap();

    let raw = format!(
        r#"{{"request_id":"{request_id}","requester":"ci-job-42","environment":"prd","command":"docker compose -f docker-compose.prd.yml -p wingman-prd down","title":"Stop PRD for the gateway deploy","description":"Stage A. Rollback: up -d. Verify: health."}}"#
    );
    env.publish_raw(&format!("{}.requests.submitted.anonymous", env.prefix), raw)
        .await;

    let message = tokio::time::timeout(Duration::from_secs(10), status.next())
        .await
        .unwrap()
        .unwrap();
    let event: Value = serde_json::from_slice(&message.payload).unwrap();
    // Validation is disabled (a fresh deployment): the decision is a human's.
    assert_eq!(event["status"], "PENDING");
    assert_eq!(event["validation_applied"], false);
    assert_eq!(event["request_id"], request_id.to_string());
    assert_eq!(event["environment"], "prd");
    assert_eq!(event["requester"], "ci-job-42");
    assert!(event["expires_at"].is_string());
    assert!(event["at"].is_string());
    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND status = 'PENDING'",
        Some(request_id),
        1,
    )
    .await;
    // Both steps are in the audit trail, in order, each its own row of the chain.
    let kinds: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT kind, status FROM audit_events WHERE request_id = $1 ORDER BY seq")
            .bind(request_id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        vec![
            ("request_received".to_string(), Some("RECEIVED".to_string())),
            ("request_validated".to_string(), Some("PENDING".to_string())),
        ]
    );
    let (requester, command, operation): (String, String, Value) = sqlx::query_as(
        "SELECT requester, command, operation FROM approval_requests WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(requester, "ci-job-42");
    assert!(command.contains("-p wingman-prd down"));
    assert_eq!(operation["kind"], "compose");
    env.stop().await;
}

#[tokio::test]
async fn the_same_request_published_three_times_is_one_request_with_one_audit_trail() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    let payload = request_json(request_id, Some("docker restart api")).to_string();
    for _ in 0..3 {
        env.publish_raw(
            &format!("{}.requests.submitted.anonymous", env.prefix),
            payload.clone(),
        )
        .await;
    }
    env.settle_all().await;
    env.wait_for_count("SELECT count(*) FROM approval_requests", None, 1)
        .await;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        2,
    )
    .await;
    let decided = env
        .stream_messages(
            "WINGMAN_REQUESTS",
            &format!("{}.requests.validated.human", env.prefix),
        )
        .await;
    assert_eq!(decided.len(), 1, "one decision for approvals");
    env.stop().await;
}

/// The duplicates of a request are scored while their ids are being claimed, but only the
/// request that won the claim is counted: the validation metrics of the real intake process
/// (its own registry, its own scrape) count one outcome and one score per validator for a
/// request published three times, as for a request published once.
#[tokio::test]
async fn a_request_published_three_times_is_counted_once_in_the_validation_metrics() {
    let env = TestEnv::start().await;
    let workers = crate::observability::spawn_workers(
        &env,
        &["intake"],
        &[
            ("VALIDATION_ENABLED", "1"),
            ("VALIDATION_ROLLOUT_PERCENT", "100"),
        ],
    )
    .await;
    let once = Uuid::new_v4();
    let thrice = Uuid::new_v4();
    let subject = format!("{}.requests.submitted.anonymous", env.prefix);
    env.publish_raw(
        &subject,
        request_json(once, Some("docker restart api")).to_string(),
    )
    .await;
    let payload = request_json(thrice, Some("docker restart api")).to_string();
    for _ in 0..3 {
        env.publish_raw(&subject, payload.clone()).await;
    }
    env.settle_all().await;
    let scrape = reqwest::get(format!("http://127.0.0.1:{}/metrics", workers[0].port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = |name: &str| -> Vec<f64> {
        scrape
            .lines()
            .filter(|line| line.starts_with(&format!("{name}{{")))
            .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
            .collect()
    };
    let outcomes: f64 = series(wingman::metrics::VALIDATION_OUTCOMES).iter().sum();
    assert_eq!(
        outcomes, 2.0,
        "two requests, two outcomes (the duplicates counted none):\n{scrape}"
    );
    let scores = series(&format!("{}_count", wingman::metrics::VALIDATOR_SCORE));
    assert!(!scores.is_empty(), "no validator scores:\n{scrape}");
    assert!(
        scores.iter().all(|count| *count == 2.0),
        "each validator scored two requests, not {scores:?}:\n{scrape}"
    );
    drop(workers);
    env.stop().await;
}

#[tokio::test]
async fn a_reused_request_id_with_other_content_is_refused_without_touching_the_first() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    let subject = format!("{}.requests.submitted.anonymous", env.prefix);
    env.publish_raw(
        &subject,
        request_json(request_id, Some("docker restart api")).to_string(),
    )
    .await;
    env.settle_all().await;
    env.publish_raw(
        &subject,
        request_json(request_id, Some("docker rm -f db")).to_string(),
    )
    .await;
    env.settle_all().await;
    let dead = env
        .stream_messages("WINGMAN_DLQ", &format!("{}.dlq.intake", env.prefix))
        .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["code"], "request_id_conflict");
    let command: String =
        sqlx::query_scalar("SELECT command FROM approval_requests WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(command, "docker restart api");
    env.stop().await;
}

#[tokio::test]
async fn malformed_messages_are_dead_lettered_with_the_reason_audited_and_the_stream_keeps_flowing()
{
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let subject = format!("{}.requests.submitted.anonymous", env.prefix);
    let mut unknown = request_json(Uuid::new_v4(), None);
    unknown["priority"] = json!("urgent");
    let mut missing = request_json(Uuid::new_v4(), None);
    missing.as_object_mut().unwrap().remove("description");
    let mut oversized = request_json(Uuid::new_v4(), None);
    oversized["title"] = json!("t".repeat(500));
    let bad: Vec<(String, &str, &str)> = vec![
        (
            "{\"requester\": \"x\", ".to_string(),
            "invalid_json",
            "invalid JSON",
        ),
        (
            unknown.to_string(),
            "unknown_field",
            "field `priority`: unknown field",
        ),
        (
            missing.to_string(),
            "missing_field",
            "field `description`: is required",
        ),
        (
            oversized.to_string(),
            "too_long",
            "field `title`: too long (500 characters, at most 200)",
        ),
    ];
    for (payload, _, _) in &bad {
        env.publish_raw(&subject, payload.clone()).await;
    }
    let good_id = Uuid::new_v4();
    env.publish_raw(&subject, request_json(good_id, None).to_string())
        .await;
    env.settle_all().await;

    assert_eq!(
        env.status_of(good_id).await.as_deref(),
        Some("PENDING"),
        "the good message after the bad ones"
    );
    let dead = env
        .stream_messages("WINGMAN_DLQ", &format!("{}.dlq.intake", env.prefix))
        .await;
    assert_eq!(dead.len(), bad.len());
    for ((_, code, reason), letter) in bad.iter().zip(&dead) {
        assert_eq!(letter["code"], *code);
        assert!(
            letter["reason"].as_str().unwrap().starts_with(reason),
            "{letter}"
        );
    }
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'message_rejected'",
        None,
        bad.len() as i64,
    )
    .await;
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT data->>'reason' FROM audit_events WHERE kind = 'message_rejected' ORDER BY seq",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(reasons.iter().any(|reason| reason.contains("`priority`")));
    env.stop().await;
}

#[tokio::test]
async fn a_command_the_gateway_cannot_run_is_refused_on_the_requests_status_subject() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    let mut status = env
        .bus
        .client
        .subscribe(format!("{}.status.{request_id}", env.prefix))
        .await
        .unwrap();
    let payload = request_json(request_id, Some("docker stop api && docker rm api")).to_string();
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload,
    )
    .await;
    let message = tokio::time::timeout(Duration::from_secs(10), status.next())
        .await
        .unwrap()
        .unwrap();
    let event: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(event["status"], "INVALID");
    assert_eq!(event["code"], "invalid_command");
    assert!(
        event["error"]
            .as_str()
            .unwrap()
            .starts_with("field `command`: shell syntax is not allowed"),
        "{event}"
    );
    env.settle_all().await;
    assert_eq!(
        env.status_of(request_id).await,
        None,
        "never a row for a refused request"
    );
    env.stop().await;
}

//! `wingman cancel` and `POST /requests/{id}/cancel`: the principal that submitted a request
//! withdraws it while it waits for a decision; anyone else is refused and audited, and the
//! first of a withdrawal, a vote and the expiry wins. (On NATS users, where the subject proves
//! who asks: `nats_permissions::only_the_nats_user_that_submitted_a_request_may_withdraw_it`.)

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::call_with_key;
use crate::fake_telegram::FakeTelegram;
use crate::helpers::{
    DECIDE_KEY, OPERATOR_KEY, SUBMIT_KEY, TestEnv, run_wingman, text, wait_for_status,
};

async fn audit_rows(env: &TestEnv, request_id: Uuid, kind: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT data FROM audit_events WHERE request_id = $1 AND kind = $2 ORDER BY seq",
    )
    .bind(request_id)
    .bind(kind)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_requester_withdraws_a_pending_request_with_wingman_cancel_and_it_stays_withdrawn() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    env.spawn_approvals(None, &["cli:ops"], 1).await;
    let submitted = run_wingman(
        &env,
        &[],
        &[
            "request",
            "--env",
            "prd",
            "--title",
            "Stop the api",
            "--description",
            "Stop it for the migration. Rollback: start it. Verify: ps.",
            "--no-wait",
            "--json",
            "--",
            "docker",
            "stop",
            "api",
        ],
    )
    .await;
    assert!(submitted.status.success(), "{}", text(&submitted.stderr));
    let submitted: Value = serde_json::from_slice(&submitted.stdout).unwrap();
    let id = submitted["request_id"].as_str().unwrap().to_string();
    let request_id = Uuid::parse_str(&id).unwrap();
    wait_for_status(&env, request_id, "PENDING").await;

    // By a unique prefix, as `approve` takes it; the reason is untrusted text, kept as typed.
    let reason = "not needed: the <b>api</b> recovered";
    let cancelled = run_wingman(
        &env,
        &[],
        &["cancel", &id[..8], "--reason", reason, "--json"],
    )
    .await;
    assert_eq!(
        cancelled.status.code(),
        Some(0),
        "{}",
        text(&cancelled.stderr)
    );
    let answer: Value = serde_json::from_slice(&cancelled.stdout).unwrap();
    assert_eq!(answer["applied"], true, "{answer}");
    assert_eq!(answer["status"], "CANCELLED", "{answer}");
    assert_eq!(answer["request_id"], id.as_str());
    // This test's bus has no NATS users: the principal is `anonymous`, as it submitted.
    assert_eq!(answer["decided_by"], "anonymous", "{answer}");

    let event = wait_for_status(&env, request_id, "CANCELLED").await;
    assert_eq!(event["note"], reason, "{event}");
    assert_eq!(event["decided_by"], "anonymous", "{event}");
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND status = 'CANCELLED'",
        Some(request_id),
        1,
    )
    .await;
    let (decided_by, note): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT decided_by, decision_note FROM approval_requests WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(decided_by.as_deref(), Some("anonymous"));
    assert_eq!(note.as_deref(), Some(reason));
    let rows = audit_rows(&env, request_id, "request_cancelled").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["cancelled_by"], "anonymous");

    // A second withdrawal changes nothing: refused, exit 3, naming who withdrew it.
    let again = run_wingman(&env, &[], &["cancel", &id]).await;
    assert_eq!(again.status.code(), Some(3));
    let said = text(&again.stderr);
    assert!(
        said.contains("refused: already CANCELLED by anonymous"),
        "{said}"
    );
    // Following it ends at once, with the refused exit code: nothing will run.
    let followed = run_wingman(&env, &[], &["status", &id, "--wait", "--json"]).await;
    assert_eq!(
        followed.status.code(),
        Some(3),
        "{}",
        text(&followed.stdout)
    );
    env.settle_all().await;
    let refused = audit_rows(&env, request_id, "decision_refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["code"], "already_decided");
    assert_eq!(refused[0]["action"], "cancel");
    env.stop().await;
}

#[tokio::test]
async fn only_the_key_that_submitted_a_request_may_cancel_it_through_the_api() {
    let mut env = TestEnv::start().await;
    env.register_approver(
        "dana",
        wingman::cli::approvers::Credentials {
            api_keys: vec!["decider".to_string()],
            ..Default::default()
        },
    )
    .await;
    let address = env.spawn_api().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let telegram = FakeTelegram::start().await;
    env.spawn_approvals(Some(&telegram), &[], 1).await;
    let base = format!("http://{address}");

    let body = json!({
        "requester": "agent-7",
        "environment": "test",
        "command": "docker stop api-1",
        "title": "Stop api-1",
        "description": "Stop it. Rollback: start it. Verify: ps.",
    });
    let (status, submitted) = call_with_key(
        "POST",
        &format!("{base}/requests"),
        Some(body),
        Some(OPERATOR_KEY),
    )
    .await;
    assert_eq!(status, 202, "{submitted}");
    let id = submitted["request_id"].as_str().unwrap().to_string();
    let request_id = Uuid::parse_str(&id).unwrap();
    wait_for_status(&env, request_id, "PENDING").await;
    let prompt = telegram
        .wait_for_sent(
            |sent| sent.text.contains("Stop api-1"),
            Duration::from_secs(30),
        )
        .await;
    let cancel = format!("{base}/requests/{id}/cancel");

    // Another submit key: refused by the rule, audited, and the request still waits.
    let (status, answer) = call_with_key("POST", &cancel, None, Some(SUBMIT_KEY)).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["code"], "not_requester", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("api:operator"),
        "{answer}"
    );
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = 'access_denied' AND data->>'code' = 'not_requester' AND data->>'principal' = 'api:submitter'",
        Some(request_id),
        1,
    )
    .await;
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("PENDING"));
    // A decide key has no submit role: the route refuses it before any rule.
    let (status, _) = call_with_key("POST", &cancel, None, Some(DECIDE_KEY)).await;
    assert_eq!(status, 401);
    // Nothing waits under an unknown id; a body that is not JSON is refused naming it.
    let (status, answer) = call_with_key(
        "POST",
        &format!("{base}/requests/{}/cancel", Uuid::new_v4()),
        None,
        Some(OPERATOR_KEY),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["code"], "unknown_request", "{answer}");
    let response = reqwest::Client::new()
        .post(&cancel)
        .header("x-api-key", OPERATOR_KEY)
        .body("withdraw it please")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["field"], "body", "{answer}");
    // A reason that is not text is refused naming the field.
    let (status, answer) = call_with_key(
        "POST",
        &cancel,
        Some(json!({"reason": "a\u{7}b"})),
        Some(OPERATOR_KEY),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["field"], "reason", "{answer}");

    // The key that submitted it withdraws it.
    let (status, answer) = call_with_key(
        "POST",
        &cancel,
        Some(json!({"reason": "superseded by <b>another</b> request"})),
        Some(OPERATOR_KEY),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(answer["status"], "CANCELLED");
    assert_eq!(answer["decided_by"], "api:operator");
    // The approvers' prompt says so, the requester's reason escaped (untrusted text).
    let edit = telegram
        .wait_for_edit(
            |edit| {
                edit.message_id == prompt.message_id
                    && edit
                        .text
                        .as_deref()
                        .is_some_and(|t| t.contains("CANCELLED"))
            },
            Duration::from_secs(30),
        )
        .await;
    let text = edit.text.unwrap();
    assert!(
        text.contains("<b>CANCELLED</b> by api:operator")
            && text.contains("superseded by &lt;b&gt;another&lt;/b&gt; request"),
        "{text}"
    );

    // First decision wins: an approver's vote afterwards is told who withdrew it.
    let (status, answer) = call_with_key(
        "POST",
        &format!("{base}/requests/{id}/approve"),
        Some(json!({"reason": "looks fine"})),
        Some(DECIDE_KEY),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["code"], "already_decided");
    assert_eq!(answer["status"], "CANCELLED");
    assert_eq!(answer["decided_by"], "api:operator");
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND status = 'CANCELLED'",
        Some(request_id),
        1,
    )
    .await;
    env.settle_all().await;
    assert_eq!(
        audit_rows(&env, request_id, "approval_decided").await.len(),
        0,
        "nothing was approved"
    );
    env.stop().await;
}

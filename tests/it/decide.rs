//! `POST /requests/{id}/approve|reject`: a `decide` key votes as the approver the roster says
//! it is, through the approvals worker's rules; other keys are refused.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::call_with_key;
use crate::helpers::TestEnv;
use crate::web_console::{ALICE, BOB, CAROL, Console, READER, STRANGER};

async fn vote(
    console: &Console,
    key: &str,
    request_id: &str,
    verdict: &str,
    body: Option<Value>,
) -> (u16, Value) {
    call_with_key(
        "POST",
        &format!("{}/requests/{request_id}/{verdict}", console.base),
        body,
        Some(key),
    )
    .await
}

async fn audit_rows(env: &TestEnv, request_id: &str, kind: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT data FROM audit_events WHERE request_id = $1 AND kind = $2 ORDER BY seq",
    )
    .bind(Uuid::parse_str(request_id).unwrap())
    .bind(kind)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_decide_key_approves_through_the_api_as_its_approver_and_a_second_vote_is_told_who_won() {
    let console = Console::start(1, false).await;
    let request_id = console
        .submit_as(
            CAROL,
            "test",
            "docker stop api-1",
            "Stop it. Rollback: start it. Verify: ps.",
        )
        .await;

    let (status, answer) = vote(
        &console,
        ALICE,
        &request_id,
        "approve",
        Some(json!({"reason": "checked"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(answer["status"], "APPROVED");
    assert_eq!(answer["decided_by"], "alice");
    console.env.settle_all().await;
    assert_eq!(
        console
            .env
            .status_of(Uuid::parse_str(&request_id).unwrap())
            .await
            .as_deref(),
        Some("APPROVED")
    );
    let decided = audit_rows(&console.env, &request_id, "approval_decided").await;
    assert_eq!(decided[0]["decided_by"], "alice", "{decided:?}");
    assert_eq!(decided[0]["note"], "checked");

    let (status, answer) = vote(
        &console,
        BOB,
        &request_id,
        "reject",
        Some(json!({"reason": "too late"})),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["code"], "already_decided");
    assert_eq!(answer["decided_by"], "alice");
    console.stop().await;
}

#[tokio::test]
async fn a_read_key_the_requesters_own_key_and_a_key_of_nobody_are_refused() {
    let console = Console::start(1, false).await;
    let request_id = console
        .submit_as(
            CAROL,
            "test",
            "docker stop api-2",
            "Stop it. Rollback: start it. Verify: ps.",
        )
        .await;

    let (status, answer) = vote(&console, READER, &request_id, "approve", None).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["code"], "wrong_role");

    let (status, answer) = vote(&console, CAROL, &request_id, "approve", None).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["code"], "own_request");

    let (status, answer) = vote(&console, STRANGER, &request_id, "approve", None).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["code"], "not_authorized");
    assert!(
        answer["message"].as_str().unwrap().contains("stranger"),
        "{answer}"
    );

    let (status, answer) = vote(
        &console,
        ALICE,
        &request_id,
        "reject",
        Some(json!({"reason": "   "})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "reason_required");
    let (status, answer) = vote(
        &console,
        ALICE,
        &request_id,
        "approve",
        Some(json!({"why": "x"})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["field"], "body");

    console.env.settle_all().await;
    assert_eq!(
        console
            .env
            .status_of(Uuid::parse_str(&request_id).unwrap())
            .await
            .as_deref(),
        Some("PENDING")
    );
    let refused = audit_rows(&console.env, &request_id, "decision_refused").await;
    assert!(
        refused
            .iter()
            .any(|data| data["code"] == "own_request" && data["approver"] == "api:carol"),
        "{refused:?}"
    );
    let rejected = audit_rows(&console.env, &request_id, "message_rejected").await;
    assert!(
        rejected
            .iter()
            .any(|data| data["field"] == "body" && data["key_name"] == "alice"),
        "{rejected:?}"
    );
    let denied = audit_rows(&console.env, &request_id, "access_denied").await;
    assert!(
        denied.iter().any(|data| data["approver"] == "api:stranger"),
        "{denied:?}"
    );
    console.stop().await;
}

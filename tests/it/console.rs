//! The console approver, as a user runs it: `wingman request` waits, `wingman pending` shows,
//! `wingman approve` decides, and the real containers change.

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;
use wingman::request::Environment;

use crate::docker;
use crate::helpers::{TestEnv, run_wingman, text, wait_for_status};

/// `wingman` as the console approver `approver`, with their own key.
async fn wingman(env: &TestEnv, approver: &str, args: &[&str]) -> Output {
    let key = env.approver_key(approver);
    run_wingman(
        env,
        &[
            ("WINGMAN_APPROVER", approver),
            ("WINGMAN_APPROVER_KEY_FILE", key.to_str().unwrap()),
        ],
        args,
    )
    .await
}

async fn pipeline() -> TestEnv {
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_approvals(None, &["cli:ops-bob"], 1).await;
    env.spawn_authority().await;
    env.spawn_gateway(&[Environment::Prd]).await;
    env.spawn_recorder().await;
    env
}

fn prd(request_id: Uuid, command: &str, requester: &str) -> serde_json::Value {
    json!({
        "request_id": request_id, "requester": requester, "environment": "prd", "command": command,
        "title": "Remove the retired reporting containers",
        "description": "The reporting service was retired last week (ticket OPS-481); its containers only hold \
            stale caches. Rollback: recreate from the compose file in git. Verify: docker ps shows them gone.",
    })
}

#[tokio::test]
async fn a_waiting_request_completes_when_the_console_approver_approves_it_and_the_container_is_removed()
 {
    let env = pipeline().await;
    let name = docker::unique("wt-retired");
    docker::start_container(&name, None).await;
    let request_id = Uuid::new_v4();
    let mut waiting = tokio::process::Command::new(env!("CARGO_BIN_EXE_wingman"))
        .envs(env.child_env())
        .args([
            "request", "--env", "prd", "--id", &request_id.to_string(), "--requester", "agent-7",
            "--title", "Remove the retired reporting container",
            "--description", "The reporting service was retired (OPS-481). Rollback: recreate from git. Verify: docker ps.",
            "--timeout", "60s", "--", "docker", "rm", "-f", &name,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_status(&env, request_id, "PENDING").await;
    env.settle_all().await;

    let pending = wingman(&env, "ops-bob", &["pending"]).await;
    assert!(
        text(&pending.stdout).contains(&request_id.to_string()),
        "{}",
        text(&pending.stdout)
    );
    assert!(text(&pending.stdout).contains(&format!("$ docker rm -f {name}")));

    let denied = wingman(
        &env,
        "eve",
        &["reject", &request_id.to_string(), "--reason", "because"],
    )
    .await;
    assert_eq!(denied.status.code(), Some(3));
    assert_eq!(
        text(&denied.stderr).trim(),
        "refused: not authorized: eve is not on the approver list"
    );

    let approved = wingman(&env, "ops-bob", &["approve", &request_id.to_string()]).await;
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    assert_eq!(
        text(&approved.stdout).trim(),
        format!("{request_id}: APPROVED by ops-bob")
    );

    let finished = tokio::time::timeout(Duration::from_secs(60), waiting.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        finished.success(),
        "the waiting request ends with exit 0 once executed"
    );
    let mut progress = String::new();
    use tokio::io::AsyncReadExt;
    waiting
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut progress)
        .await
        .unwrap();
    for stage in ["PENDING", "APPROVED", "EXECUTING", "SUCCEEDED"] {
        assert!(
            progress.contains(stage),
            "{stage} shown in the progress:\n{progress}"
        );
    }
    assert_eq!(docker::state(&name).await, None, "the container is gone");

    let again = wingman(&env, "ops-bob", &["approve", &request_id.to_string()]).await;
    assert_eq!(again.status.code(), Some(3));
    assert!(
        text(&again.stderr).starts_with("refused: already APPROVED by ops-bob at "),
        "{}",
        text(&again.stderr)
    );
    env.stop().await;
}

#[tokio::test]
async fn an_approved_compose_down_removes_only_that_projects_containers() {
    let env = pipeline().await;
    let project = docker::unique("wt-shop");
    let other = docker::unique("wt-keep");
    for service in ["web", "worker"] {
        docker::start_container(&format!("{project}-{service}"), Some((&project, service))).await;
    }
    docker::start_container(&format!("{other}-web"), Some((&other, "web"))).await;
    let request_id = Uuid::new_v4();
    let payload = prd(
        request_id,
        &format!("docker compose -p {project} down"),
        "agent-7",
    );
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    wait_for_status(&env, request_id, "PENDING").await;
    env.settle_all().await;
    let approved = wingman(
        &env,
        "ops-bob",
        &[
            "approve",
            &request_id.to_string(),
            "--note",
            "retired, see OPS-481",
        ],
    )
    .await;
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let done = wait_for_status(&env, request_id, "SUCCEEDED").await;
    assert_eq!(done["exit_code"], 0);
    assert_eq!(docker::project_containers(&project).await, 0);
    assert_eq!(
        docker::project_containers(&other).await,
        1,
        "another project is untouched"
    );
    docker::remove(&format!("{other}-web")).await;
    env.stop().await;
}

#[tokio::test]
async fn the_console_approver_cannot_approve_their_own_request() {
    let env = pipeline().await;
    let request_id = Uuid::new_v4();
    let payload = prd(request_id, "docker stop nothing-here", "ops-bob");
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    wait_for_status(&env, request_id, "PENDING").await;
    env.settle_all().await;
    let own = wingman(&env, "ops-bob", &["approve", &request_id.to_string()]).await;
    assert_eq!(own.status.code(), Some(3));
    assert_eq!(
        text(&own.stderr).trim(),
        "refused: a requester cannot approve their own request"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_rejected_request_never_gets_a_token_even_when_an_approval_is_forged_on_the_bus() {
    let env = pipeline().await;
    let name = docker::unique("wt-guarded");
    docker::start_container(&name, None).await;
    let request_id = Uuid::new_v4();
    let payload = prd(request_id, &format!("docker rm -f {name}"), "agent-7");
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    wait_for_status(&env, request_id, "PENDING").await;
    env.settle_all().await;
    let rejected = wingman(
        &env,
        "ops-bob",
        &[
            "reject",
            &request_id.to_string(),
            "--reason",
            "not during the freeze",
        ],
    )
    .await;
    assert!(rejected.status.success(), "{}", text(&rejected.stderr));
    wait_for_status(&env, request_id, "REJECTED").await;

    // Someone with access to the bus publishes an approval the approvals worker never made.
    let request: wingman::request::Request = sqlx::query_scalar::<_, sqlx::types::Json<serde_json::Value>>(
        "SELECT data->'request' FROM audit_events WHERE request_id = $1 AND kind = 'request_received'",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .map(|json| serde_json::from_value(json.0).unwrap())
    .unwrap();
    let forged = wingman::events::Decided {
        request,
        decision: wingman::status::Status::Approved,
        approvers: vec!["cli:mallory".into()],
        note: None,
        overrides_auto_reject: false,
        decided_at: chrono::Utc::now(),
    };
    let envelope = wingman::envelope::Envelope::derived(
        wingman::envelope::RequestId::from_uuid(request_id),
        chrono::Utc::now(),
        "forged",
        forged,
    );
    let outgoing = wingman::bus::publish::Outgoing::json(
        env.bus.subjects.decided(),
        envelope.event_id.to_string(),
        &envelope,
    );
    wingman::bus::publish::publish_all(&env.bus.js, &[outgoing])
        .await
        .unwrap();
    env.settle_all().await;

    let jobs = env
        .stream_messages("WINGMAN_EXEC", &format!("{}.exec.jobs", env.prefix))
        .await;
    assert!(
        jobs.is_empty(),
        "no execution job for a rejected request: {jobs:?}"
    );
    let dead = env
        .stream_messages("WINGMAN_DLQ", &format!("{}.dlq.authority", env.prefix))
        .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["code"], "decision_not_claimed");
    let (running, _) = docker::state(&name).await.unwrap();
    assert!(running, "the container was not touched");
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("REJECTED"));
    docker::remove(&name).await;
    env.stop().await;
}

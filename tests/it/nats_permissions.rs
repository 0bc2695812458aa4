//! Least privilege on the bus: a test's own nats-server with the production users and
//! permissions of `nats/auth.conf`. A publisher cannot forge a decision or an execution job,
//! a worker cannot publish outside its subjects, and the pipeline still runs with every
//! worker on its own user.

use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::helpers::{TestEnv, request_json, worker_binary};
use crate::nats_server::{NatsServer, credentials, password};

/// A raw connection as `user`, with the server's error messages (permission violations).
struct Connection {
    client: async_nats::Client,
    js: jetstream::Context,
    server_errors: mpsc::UnboundedReceiver<String>,
}

async fn connect_as(server: &NatsServer, user: &str) -> Connection {
    let (sender, server_errors) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password(user))
        .custom_inbox_prefix(credentials(user).inbox_prefix())
        .event_callback(move |event| {
            let sender = sender.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    let _ = sender.send(error.to_string());
                }
            }
        })
        .connect(server.url())
        .await
        .unwrap_or_else(|error| panic!("connect as {user}: {error}"));
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(1))
        .build(client.clone());
    Connection {
        client,
        js,
        server_errors,
    }
}

impl Connection {
    /// Publishes with a JetStream ack; `Ok` only when the stream stored it.
    async fn publish(&self, subject: &str) -> Result<(), String> {
        let payload = serde_json::json!({"forged": true}).to_string();
        let ack = self
            .js
            .send_publish(
                subject.to_string(),
                PublishMessage::build()
                    .payload(payload.into())
                    .message_id(Uuid::new_v4().to_string()),
            )
            .await
            .map_err(|error| error.to_string())?;
        ack.await.map(|_| ()).map_err(|error| error.to_string())
    }

    /// Asserts the publish is refused: no JetStream ack, and the server says why.
    async fn assert_refused(&mut self, subject: &str) {
        let result = self.publish(subject).await;
        assert!(result.is_err(), "publishing to {subject} was accepted");
        self.assert_violation(subject).await;
    }

    async fn assert_violation(&mut self, subject: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let error = tokio::time::timeout_at(deadline, self.server_errors.recv())
                .await
                .unwrap_or_else(|_| panic!("no permissions violation reported for {subject}"))
                .unwrap();
            if error.contains("Permissions Violation") && error.contains(subject) {
                return;
            }
        }
    }
}

/// How many messages the stream holds on `subject` (asked as the admin).
async fn count_on(env: &TestEnv, stream: &str, subject: &str) -> u64 {
    let stream = env.bus.js.get_stream(stream).await.unwrap();
    let info = stream
        .info_with_subjects(subject)
        .await
        .unwrap()
        .next()
        .await;
    match info {
        Some(Ok((_, count))) => count as u64,
        _ => 0,
    }
}

#[tokio::test]
async fn a_publisher_may_submit_and_read_status_but_never_forge_a_decision_or_a_job() {
    let server = NatsServer::single().await;
    let env = TestEnv::on_server(&server).await;
    let mut publisher = connect_as(&server, "publisher").await;

    publisher
        .publish("wingman.requests.submitted.publisher")
        .await
        .expect("a publisher may submit on its own subject");
    for forged in [
        "wingman.approvals.decided",
        "wingman.requests.validated.auto",
        "wingman.requests.validated.human",
        "wingman.exec.jobs",
        "wingman.audit.approval_decided",
    ] {
        publisher.assert_refused(forged).await;
    }
    assert_eq!(
        count_on(&env, "WINGMAN_APPROVALS", "wingman.approvals.decided").await,
        0
    );
    assert_eq!(count_on(&env, "WINGMAN_EXEC", "wingman.exec.jobs").await, 0);
    assert_eq!(
        count_on(&env, "WINGMAN_REQUESTS", "wingman.requests.validated.*").await,
        0
    );
    // Nor may it read the jobs (they carry tokens), change the topology or the rollout.
    assert!(publisher.js.get_stream("WINGMAN_EXEC").await.is_err());
    publisher
        .assert_violation("$JS.API.STREAM.INFO.WINGMAN_EXEC")
        .await;
    let _subscription = publisher.client.subscribe("wingman.exec.jobs").await;
    publisher.assert_violation("wingman.exec.jobs").await;
    assert!(
        publisher
            .js
            .delete_stream("WINGMAN_REQUESTS")
            .await
            .is_err()
    );
    publisher
        .assert_violation("$JS.API.STREAM.DELETE.WINGMAN_REQUESTS")
        .await;
    publisher
        .assert_refused("$KV.wingman_rollout.validation")
        .await;
    // It may read its status: the last event, as `wingman status` does.
    let status = publisher.js.get_stream("WINGMAN_STATUS").await;
    assert!(status.is_ok(), "a publisher may read the status stream");
    env.stop().await;
}

#[tokio::test]
async fn a_worker_may_publish_only_its_own_subjects_and_claims() {
    let server = NatsServer::single().await;
    let env = TestEnv::on_server(&server).await;

    let mut intake = connect_as(&server, "intake").await;
    for subject in [
        "wingman.approvals.decided",
        "wingman.exec.jobs",
        "wingman.audit.token_minted",
        "$KV.wingman_claims.minted.x",
        "$KV.wingman_claims.decision.x",
        "$KV.wingman_rollout.validation",
    ] {
        intake.assert_refused(subject).await;
    }
    let mut recorder = connect_as(&server, "recorder").await;
    for subject in [
        "wingman.requests.submitted.recorder",
        "wingman.requests.validated.auto",
        "wingman.exec.jobs",
    ] {
        recorder.assert_refused(subject).await;
    }
    let mut gateway = connect_as(&server, "gateway").await;
    gateway.assert_refused("wingman.exec.jobs").await;
    gateway.assert_refused("wingman.approvals.decided").await;
    // The gateway cannot read the authority's minted tokens from the claims bucket.
    let claims = gateway.js.get_key_value("wingman_claims").await.unwrap();
    assert!(claims.get("minted.someone").await.is_err());
    gateway
        .assert_violation("$JS.API.DIRECT.GET.KV_wingman_claims.$KV.wingman_claims.minted.someone")
        .await;
    // No worker may change the topology (workers run with WINGMAN_ENSURE_TOPOLOGY=0).
    assert!(intake.js.delete_stream("WINGMAN_EXEC").await.is_err());
    intake
        .assert_violation("$JS.API.STREAM.DELETE.WINGMAN_EXEC")
        .await;
    // Only the authority may publish jobs and only the approvals worker human decisions.
    let authority = connect_as(&server, "authority").await;
    authority
        .publish("wingman.exec.jobs")
        .await
        .expect("the authority publishes jobs");
    let approvals = connect_as(&server, "approvals").await;
    approvals
        .publish("wingman.approvals.decided")
        .await
        .expect("the approvals worker publishes decisions");
    assert_eq!(count_on(&env, "WINGMAN_EXEC", "wingman.exec.jobs").await, 1);
    env.stop().await;
}

/// A request the validator approves (as in tests/it/execution.rs).
fn well_explained(request_id: Uuid) -> Value {
    serde_json::json!({
        "request_id": request_id,
        "requester": "ops-anna",
        "environment": "dev",
        "command": "docker restart api",
        "title": "Restart the container api to reload its config",
        "description": "The container api caches its config at start and we changed the log level, \
            so it must restart. Only api is touched. Rollback: docker start api if it does not \
            come back. Verify: docker inspect shows api running.",
    })
}

#[tokio::test]
async fn the_pipeline_runs_with_every_worker_on_its_own_nats_user() {
    let server = NatsServer::single().await;
    let mut env = TestEnv::on_server(&server).await;
    // Intake as a real worker process, configured like the compose file configures it.
    let password_file = env.keys_dir.path().join("nats-intake-password");
    std::fs::write(&password_file, password("intake")).unwrap();
    let mut intake = tokio::process::Command::new(worker_binary("wingman-intake"))
        .envs(env.child_env())
        .env("NATS_USER", "intake")
        .env("NATS_PASSWORD_FILE", &password_file)
        .env("WINGMAN_ENSURE_TOPOLOGY", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start wingman-intake");
    // The other stages in-process, each as its own user.
    for stage in ["authority", "recorder"] {
        env.connect_stage_as(stage, credentials(stage)).await;
    }
    env.set_rollout(true, 100).await;
    env.spawn_authority().await;
    env.spawn_recorder().await;

    let publisher = connect_as(&server, "publisher").await;
    let approved = Uuid::new_v4();
    let other = Uuid::new_v4();
    for payload in [well_explained(approved), request_json(other, None)] {
        publisher
            .js
            .publish(
                "wingman.requests.submitted.publisher",
                payload.to_string().into(),
            )
            .await
            .unwrap()
            .await
            .expect("submitted");
    }
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE status IN ('AUTO_APPROVED', 'PENDING', 'AUTO_REJECTED')",
        None,
        2,
    )
    .await;
    assert_eq!(
        env.status_of(approved).await.as_deref(),
        Some("AUTO_APPROVED")
    );
    // The authority (its own user) minted the token and published the job.
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'token_minted' AND request_id = $1",
        Some(approved),
        1,
    )
    .await;
    assert_eq!(count_on(&env, "WINGMAN_EXEC", "wingman.exec.jobs").await, 1);
    // The gateway's user asks the authority by request-reply and gets its answer (an
    // automatic request's token is handed to nobody: the job above carries it); a publisher
    // may not ask at all.
    let gateway = connect_as(&server, "gateway").await;
    let reply = gateway
        .client
        .request(
            "wingman.authority.token",
            serde_json::json!({"request_id": approved, "principal": "api:ops"})
                .to_string()
                .into(),
        )
        .await
        .expect("the authority answers the gateway");
    let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(answer["code"], "automatic_execution", "{answer}");
    let mut publisher = publisher;
    let asked = tokio::time::timeout(
        Duration::from_secs(2),
        publisher.client.request(
            "wingman.authority.token",
            serde_json::json!({"request_id": approved})
                .to_string()
                .into(),
        ),
    )
    .await;
    assert!(!matches!(asked, Ok(Ok(_))), "a publisher got a token");
    publisher.assert_violation("wingman.authority.token").await;
    // No worker was refused anything along the way (the server logs each violation with
    // its user).
    let log = server.log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Violation"))
        .filter(|line| {
            ["intake", "authority", "recorder"]
                .iter()
                .any(|user| line.contains(&format!("User \"{user}\"")))
        })
        .collect();
    assert!(
        refused.is_empty(),
        "a worker lacks a permission it needs: {refused:#?}"
    );
    intake.kill().await.unwrap();
    env.stop().await;
}

#[tokio::test]
async fn only_the_api_may_ask_the_approvals_worker_to_vote_in_a_keys_name() {
    let server = NatsServer::single().await;
    let env = TestEnv::on_server(&server).await;
    // The approvals worker's user takes the API's votes; the API's user may ask.
    let approvals = connect_as(&server, "approvals").await;
    let mut votes = approvals
        .client
        .subscribe("wingman.api.decisions")
        .await
        .unwrap();
    approvals.client.flush().await.unwrap();
    let api = connect_as(&server, "api").await;
    api.client
        .publish("wingman.api.decisions", "from the api".into())
        .await
        .unwrap();
    api.client.flush().await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(5), votes.next())
        .await
        .expect("the approvals worker receives the API's vote")
        .unwrap();
    assert_eq!(&received.payload[..], b"from the api");
    // Nobody else may: a publisher or an operator naming a key it never presented is refused
    // by the server, and nothing reaches the approvals worker.
    for user in ["publisher", "operator", "intake", "gateway"] {
        let mut forger = connect_as(&server, user).await;
        forger
            .client
            .publish("wingman.api.decisions", format!("forged by {user}").into())
            .await
            .unwrap();
        forger.client.flush().await.unwrap();
        forger.assert_violation("wingman.api.decisions").await;
    }
    let leaked = tokio::time::timeout(Duration::from_millis(500), votes.next()).await;
    assert!(
        leaked.is_err(),
        "a forged vote reached the approvals worker: {leaked:?}"
    );
    // The API may read the roster (which approver a key is), never write it.
    let roster = api.js.get_key_value("wingman_approvers").await.unwrap();
    assert!(roster.get("roster").await.is_ok());
    let mut api = api;
    assert!(
        roster
            .put("roster", "{\"approvers\":[]}".into())
            .await
            .is_err()
    );
    api.assert_violation("$KV.wingman_approvers.roster").await;
    // The API may read a waiting request's approval record (the web console shows the
    // approvals counted so far), never write it, nor read the Telegram buttons' nonces.
    let approvals = api.js.get_key_value("wingman_approvals").await.unwrap();
    assert!(approvals.get("request.x").await.is_ok());
    assert!(approvals.get("nonce.x").await.is_err());
    api.assert_violation("$KV.wingman_approvals.nonce.x").await;
    assert!(approvals.put("request.x", "{}".into()).await.is_err());
    api.assert_violation("$KV.wingman_approvals.request.x")
        .await;
    env.stop().await;
}

/// `wingman cancel` on production users: the subject a withdrawal arrives on names the NATS
/// user that sent it, and only that user may publish there, so nobody withdraws another's
/// request — not by asking in their own name (refused by the rule, audited) and not by
/// pretending to be them (refused by the server). The approvals worker runs as its own user.
#[tokio::test]
async fn only_the_nats_user_that_submitted_a_request_may_withdraw_it() {
    let server = NatsServer::single().await;
    let mut env = TestEnv::on_server(&server).await;
    for stage in ["approvals", "recorder"] {
        env.connect_stage_as(stage, credentials(stage)).await;
    }
    env.spawn_intake().await;
    env.spawn_recorder().await;
    env.spawn_approvals(None, &[], 1).await;

    let publisher = connect_as(&server, "publisher").await;
    let request_id = Uuid::new_v4();
    publisher
        .js
        .publish(
            "wingman.requests.submitted.publisher",
            request_json(request_id, Some("docker stop api"))
                .to_string()
                .into(),
        )
        .await
        .unwrap()
        .await
        .expect("submitted");
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND status = 'PENDING'",
        Some(request_id),
        1,
    )
    .await;

    let cli_as = |user: &'static str| {
        let password_file = env.keys_dir.path().join(format!("nats-{user}-password"));
        std::fs::write(&password_file, password(user)).unwrap();
        let env = env.child_env();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_wingman"))
                .envs(env)
                .env("NATS_USER", user)
                .env("NATS_PASSWORD_FILE", &password_file)
                .args(["cancel", &request_id.to_string(), "--json"])
                .output()
                .await
                .expect("run wingman cancel")
        }
    };
    // The operator asks in its own name: the rule refuses it, and it is audited.
    let output = cli_as("operator").await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        crate::helpers::text(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["code"], "not_requester", "{answer}");
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = 'access_denied' AND data->>'principal' = 'nats:operator'",
        Some(request_id),
        1,
    )
    .await;
    // The operator pretends to be the publisher: the server refuses the subject.
    let mut operator = connect_as(&server, "operator").await;
    operator
        .client
        .publish(
            "wingman.requests.cancel.publisher",
            serde_json::json!({"request_id": request_id})
                .to_string()
                .into(),
        )
        .await
        .unwrap();
    operator
        .assert_violation("wingman.requests.cancel.publisher")
        .await;
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("PENDING"));

    // The publisher that submitted it withdraws it.
    let output = cli_as("publisher").await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        crate::helpers::text(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["decided_by"], "nats:publisher", "{answer}");
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND status = 'CANCELLED' AND decided_by = 'nats:publisher'",
        Some(request_id),
        1,
    )
    .await;
    env.stop().await;
}

//! Who asked and who approved are proven, never typed: attacks on the approver and requester
//! identities, played through the real CLI, the real approvals stage, the HTTP API and (for
//! the publish permissions) a nats-server running `nats/auth.conf`.

use std::process::Output;
use std::time::Duration;

use async_nats::jetstream;
use serde_json::{Value, json};
use uuid::Uuid;
use wingman::cli::approvers::Credentials;
use wingman::identity::Principal;

use crate::fake_telegram::FakeTelegram;
use crate::helpers::{APPROVER_CHAT, SUBMIT_KEY, TestEnv, run_wingman, text, wait_for_status};
use crate::nats_server::{NatsServer, credentials, password};

const WAIT: Duration = Duration::from_secs(20);

/// A connection to `server` as `user` (production permissions).
async fn connect_as(server: &NatsServer, user: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), password(user))
        .custom_inbox_prefix(credentials(user).inbox_prefix())
        .connect(server.url())
        .await
        .unwrap_or_else(|error| panic!("connect as {user}: {error}"))
}

/// Publishes with a JetStream ack: `Ok` only when a stream stored it.
async fn stored(client: &async_nats::Client, subject: &str, payload: String) -> Result<(), String> {
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client.clone());
    js.publish(subject.to_string(), payload.into())
        .await
        .map_err(|error| error.to_string())?
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// `wingman <args>` as the console approver `name`, signing with the key of `key_of`.
async fn as_approver(env: &TestEnv, name: &str, key_of: &str, args: &[&str]) -> Output {
    let key = env.approver_key(key_of);
    run_wingman(
        env,
        &[
            ("WINGMAN_APPROVER", name),
            ("WINGMAN_APPROVER_KEY_FILE", key.to_str().unwrap()),
        ],
        args,
    )
    .await
}

fn prd_request(request_id: Uuid, requester: &str) -> Value {
    json!({
        "request_id": request_id, "requester": requester, "environment": "prd",
        "title": "Stop the reporting container for the disk migration",
        "description": "The reporting container writes to the disk we migrate tonight, so it must be \
            stopped first. Only this container is touched. Rollback: docker start it again. Verify: \
            docker inspect shows it exited.",
    })
}

/// Intake, validation and approvals (prd needs `prd_approvals`), with `approvers` registered.
async fn pipeline(approvers: &[&str], prd_approvals: usize) -> TestEnv {
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_approvals(None, approvers, prd_approvals).await;
    env.spawn_recorder().await;
    env
}

async fn submit_as(env: &TestEnv, suffix: &str, payload: &Value) {
    env.publish_raw(
        &format!("{}.requests.submitted.{suffix}", env.prefix),
        payload.to_string(),
    )
    .await;
}

async fn count_audit(env: &TestEnv, request_id: Uuid, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = $2")
        .bind(request_id)
        .bind(kind)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_two_person_prd_request_cannot_be_approved_by_one_principal_under_two_names() {
    let env = pipeline(&["cli:alice", "cli:bob"], 2).await;
    let request_id = Uuid::new_v4();
    submit_as(&env, "release-bot", &prd_request(request_id, "release-bot")).await;
    wait_for_status(&env, request_id, "PENDING").await;
    env.settle_all().await;
    let id = request_id.to_string();

    let first = as_approver(&env, "alice", "alice", &["approve", &id]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("approval 1 of 2 recorded"));

    // The same person again, under her own name.
    let again = as_approver(&env, "alice", "alice", &["approve", &id]).await;
    assert_eq!(again.status.code(), Some(3));
    assert_eq!(
        text(&again.stderr).trim(),
        "refused: alice already approved; a different approver is needed"
    );
    // Under a name nobody registered, with her own key.
    let alias = as_approver(&env, "alice-2", "alice", &["approve", &id]).await;
    assert_eq!(alias.status.code(), Some(3));
    assert_eq!(
        text(&alias.stderr).trim(),
        "refused: not authorized: alice-2 is not on the approver list"
    );
    // As bob, whose key she does not hold.
    let as_bob = as_approver(&env, "bob", "alice", &["approve", &id]).await;
    assert_eq!(as_bob.status.code(), Some(3));
    assert_eq!(
        text(&as_bob.stderr).trim(),
        "refused: not authorized: the vote is not signed by a key registered to bob"
    );
    // By registering her key under a second name (an admin slip): the roster refuses it.
    let public = wingman::token::read_signing_key(&env.approver_key("alice"))
        .unwrap()
        .verify_key()
        .to_text();
    let slip = run_wingman(
        &env,
        &[],
        &["approvers", "add", "alice-2", "--console-key", &public],
    )
    .await;
    assert_eq!(slip.status.code(), Some(1));
    assert!(
        text(&slip.stderr).contains("is held by two approvers (one credential is one person)"),
        "{}",
        text(&slip.stderr)
    );

    env.settle_all().await;
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("PENDING"));
    assert_eq!(count_audit(&env, request_id, "access_denied").await, 2);
    assert_eq!(count_audit(&env, request_id, "decision_refused").await, 1);
    // The first approval did not decide, yet it is on the record: who, through what, 1 of 2.
    let counted: (String, serde_json::Value) = sqlx::query_as(
        "SELECT actor, data FROM audit_events WHERE request_id = $1 AND kind = 'vote_counted'",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(counted.1["approver"], "alice");
    assert_eq!(counted.1["channel"], "cli");
    assert_eq!(
        (counted.1["have"].as_u64(), counted.1["need"].as_u64()),
        (Some(1), Some(2))
    );
    let shown = run_wingman(&env, &[], &["audit", "show", &id]).await;
    assert!(
        text(&shown.stdout).contains("vote_counted")
            && text(&shown.stdout).contains("approver=alice"),
        "{}",
        text(&shown.stdout)
    );

    let second = as_approver(&env, "bob", "bob", &["approve", &id]).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    wait_for_status(&env, request_id, "APPROVED").await;
    env.settle_all().await;
    let decided_by: Option<String> =
        sqlx::query_scalar("SELECT decided_by FROM approval_requests WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(decided_by.as_deref(), Some("alice, bob"));
    env.stop().await;
}

#[tokio::test]
async fn a_requester_cannot_approve_their_own_request_under_another_name() {
    let mut env = pipeline(&[], 1).await;
    // Alice also submits through the API with the key named `submitter`.
    env.register_approver(
        "alice",
        Credentials {
            publishers: vec![Principal::ApiKey("submitter".into())],
            ..Credentials::default()
        },
    )
    .await;
    let api = env.spawn_api().await;

    // Submitted as the NATS user alice, labelled as somebody else.
    let over_nats = Uuid::new_v4();
    submit_as(&env, "alice", &prd_request(over_nats, "release-bot")).await;
    // Submitted through the API with her key.
    let over_http = Uuid::new_v4();
    let response = reqwest::Client::new()
        .post(format!("http://{api}/requests"))
        .header("X-API-Key", SUBMIT_KEY)
        .json(&prd_request(over_http, "someone-else"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    for (request_id, principal) in [(over_nats, "nats:alice"), (over_http, "api:submitter")] {
        wait_for_status(&env, request_id, "PENDING").await;
        env.settle_all().await;
        let submitted_by: String =
            sqlx::query_scalar("SELECT submitted_by FROM approval_requests WHERE request_id = $1")
                .bind(request_id)
                .fetch_one(&env.pool)
                .await
                .unwrap();
        assert_eq!(submitted_by, principal);
        let own = as_approver(
            &env,
            "alice",
            "alice",
            &["approve", &request_id.to_string()],
        )
        .await;
        assert_eq!(own.status.code(), Some(3), "{principal}");
        assert_eq!(
            text(&own.stderr).trim(),
            "refused: a requester cannot approve their own request"
        );
        env.settle_all().await;
        assert_eq!(count_audit(&env, request_id, "decision_refused").await, 1);
        assert_eq!(env.status_of(request_id).await.as_deref(), Some("PENDING"));
    }
    env.stop().await;
}

#[tokio::test]
async fn one_person_on_telegram_and_at_the_console_is_one_vote() {
    let fake = FakeTelegram::start().await;
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.register_approver(
        "anna",
        Credentials {
            telegram_ids: vec![42],
            ..Credentials::default()
        },
    )
    .await;
    env.spawn_approvals(Some(&fake), &["cli:bob"], 2).await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    submit_as(&env, "release-bot", &prd_request(request_id, "release-bot")).await;
    let id = request_id.to_string();
    let prompt = fake
        .wait_for_sent(
            |sent| sent.chat_id == APPROVER_CHAT && sent.text.contains(&id),
            WAIT,
        )
        .await;
    let approve = prompt.reply_markup.as_ref().unwrap()["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .unwrap()
        .to_string();
    let query = fake.user_clicks(42, APPROVER_CHAT, prompt.message_id, &approve);
    let answer = fake
        .wait_for_answer(|a| a.callback_query_id == query, WAIT)
        .await;
    assert_eq!(
        answer.text.as_deref(),
        Some("approval 1 of 2 recorded; another approver is needed")
    );
    // The same person at the console: her Telegram approval already counted.
    let console = as_approver(&env, "anna", "anna", &["approve", &id]).await;
    assert_eq!(console.status.code(), Some(3));
    assert_eq!(
        text(&console.stderr).trim(),
        "refused: anna already approved; a different approver is needed"
    );
    let bob = as_approver(&env, "bob", "bob", &["approve", &id]).await;
    assert!(bob.status.success(), "{}", text(&bob.stderr));
    wait_for_status(&env, request_id, "APPROVED").await;
    env.stop().await;
}

#[tokio::test]
async fn a_publisher_cannot_submit_in_another_principals_name_on_the_production_bus() {
    let server = NatsServer::single().await;
    let mut env = TestEnv::on_server(&server).await;
    env.connect_stage_as("intake", credentials("intake")).await;
    env.connect_stage_as("recorder", credentials("recorder"))
        .await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let publisher = connect_as(&server, "publisher").await;
    for (subject, allowed) in [
        ("wingman.requests.submitted.publisher", true),
        ("wingman.requests.submitted.operator", false),
        ("wingman.requests.submitted.api.alice", false),
        ("wingman.requests.submitted.anonymous", false),
        ("wingman.requests.submitted", false),
    ] {
        let request_id = Uuid::new_v4();
        let published = stored(
            &publisher,
            subject,
            prd_request(request_id, "operator").to_string(),
        )
        .await;
        assert_eq!(published.is_ok(), allowed, "{subject}: {published:?}");
        if allowed {
            env.wait_for_count(
                "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND submitted_by = 'nats:publisher'",
                Some(request_id),
                1,
            )
            .await;
        }
    }
    // Nor can anyone but the admin write the approver roster.
    for user in ["publisher", "operator", "approvals", "api"] {
        let client = connect_as(&server, user).await;
        let written = stored(
            &client,
            "$KV.wingman_approvers.roster",
            r#"{"approvers":[]}"#.into(),
        )
        .await;
        assert!(written.is_err(), "{user} wrote the roster");
    }
    env.stop().await;
}

#[tokio::test]
async fn an_operator_cannot_vote_as_an_approver_whose_key_they_do_not_hold() {
    let server = NatsServer::single().await;
    let mut env = TestEnv::on_server(&server).await;
    for stage in ["intake", "approvals", "recorder"] {
        env.connect_stage_as(stage, credentials(stage)).await;
    }
    env.spawn_intake_validating(100).await;
    env.spawn_approvals(None, &["cli:alice"], 1).await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    let publisher = connect_as(&server, "publisher").await;
    stored(
        &publisher,
        "wingman.requests.submitted.publisher",
        prd_request(request_id, "agent-7").to_string(),
    )
    .await
    .expect("submitted");
    wait_for_status(&env, request_id, "PENDING").await;

    // The operator user may send console votes; one signed with a key alice never had is
    // refused, however it names itself.
    let operator = connect_as(&server, "operator").await;
    let (mallory_key, _) = wingman::token::generate_keypair();
    let forged = wingman::identity::console_vote::sign(
        &mallory_key,
        "alice",
        wingman::envelope::RequestId::from_uuid(request_id),
        wingman::approval::Verdict::Approve,
        None,
        chrono::Utc::now(),
    )
    .unwrap();
    let reply = operator
        .request(
            "wingman.console.decisions".to_string(),
            serde_json::to_vec(&forged).unwrap().into(),
        )
        .await
        .expect("the approvals worker answers");
    let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(answer["ok"], false);
    assert_eq!(
        answer["error"],
        "not authorized: the vote is not signed by a key registered to alice"
    );
    env.settle_all().await;
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("PENDING"));
    assert_eq!(count_audit(&env, request_id, "access_denied").await, 1);
    env.stop().await;
}

#[tokio::test]
async fn a_publisher_cannot_pre_empt_a_pipeline_event_with_a_message_id_it_chooses() {
    let server = NatsServer::single().await;
    let mut env = TestEnv::on_server(&server).await;
    let publisher = connect_as(&server, "publisher").await;
    let request_id = Uuid::new_v4();
    stored(
        &publisher,
        "wingman.requests.submitted.publisher",
        prd_request(request_id, "agent-7").to_string(),
    )
    .await
    .expect("submitted");
    // The intake's `validated` event id is derived from the request id and the submission's
    // stored time: both are known to the publisher. It publishes that id first.
    let submission = env
        .bus
        .js
        .get_stream("WINGMAN_SUBMISSIONS")
        .await
        .unwrap()
        .get_last_raw_message_by_subject("wingman.requests.submitted.publisher")
        .await
        .unwrap();
    let origin = submission.time.with_timezone(&chrono::Utc);
    let accepted_id =
        wingman::envelope::derive_uuid_v7(origin, &format!("{request_id}:intake:validated"));
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(publisher.clone());
    let planted = js
        .send_publish(
            "wingman.requests.submitted.publisher",
            jetstream::message::PublishMessage::build()
                .payload("{}".into())
                .message_id(accepted_id.to_string()),
        )
        .await
        .unwrap()
        .await
        .expect("a publisher's own submission is stored");
    assert!(!planted.duplicate);

    for stage in ["intake", "recorder"] {
        env.connect_stage_as(stage, credentials(stage)).await;
    }
    env.spawn_intake_validating(100).await;
    env.spawn_recorder().await;
    // The real event was not suppressed: the request moves on to a decision.
    wait_for_status(&env, request_id, "PENDING").await;
    let validated = env
        .stream_messages("WINGMAN_REQUESTS", "wingman.requests.validated.human")
        .await;
    assert_eq!(
        validated.len(),
        1,
        "intake's decision for approvals was stored"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_publisher_cannot_read_what_another_principals_request_printed() {
    let server = NatsServer::single().await;
    let env = TestEnv::on_server(&server).await;
    // What the gateway publishes when the operator's request ran (written here as the admin).
    let request_id = wingman::envelope::RequestId::generate();
    let operator = Principal::Nats("operator".into());
    let envelope = wingman::envelope::Envelope::derived(
        request_id,
        chrono::Utc::now(),
        "output",
        wingman::events::ExecutionOutput {
            output: "DB_HOST=db\n".into(),
        },
    );
    let message = wingman::bus::publish::Outgoing::json(
        env.bus.subjects.output(&operator, request_id),
        envelope.event_id.to_string(),
        &envelope,
    );
    wingman::bus::publish::publish_all(&env.bus.js, &[message])
        .await
        .unwrap();

    let bus_as = |user: &str| {
        let mut settings = env.nats.clone();
        settings.credentials = Some(credentials(user));
        async move { wingman::bus::Bus::connect(&settings, "test").await.unwrap() }
    };
    let as_operator = bus_as("operator").await;
    assert_eq!(
        as_operator
            .output(&operator, request_id)
            .await
            .unwrap()
            .as_deref(),
        Some("DB_HOST=db\n"),
        "the requester reads its own output"
    );
    let as_publisher = bus_as("publisher").await;
    assert!(
        as_publisher.output(&operator, request_id).await.is_err(),
        "another publisher is refused the operator's output"
    );
    assert_eq!(
        as_publisher
            .output(&as_publisher.principal.clone(), request_id)
            .await
            .unwrap(),
        None
    );
    // Nor can it read the stream by sequence or list it.
    let raw = connect_as(&server, "publisher").await;
    let by_sequence = raw
        .request(
            "$JS.API.STREAM.MSG.GET.WINGMAN_OUTPUT".to_string(),
            r#"{"seq":1}"#.into(),
        )
        .await;
    assert!(
        by_sequence.is_err()
            || !String::from_utf8_lossy(&by_sequence.unwrap().payload).contains("DB_HOST"),
        "read by sequence"
    );
    env.stop().await;
}

#[tokio::test]
async fn an_api_key_reads_only_what_its_own_requests_printed() {
    let mut env = TestEnv::start().await;
    let api = env.spawn_api().await;
    let request_id = wingman::envelope::RequestId::generate();
    let envelope = wingman::envelope::Envelope::derived(
        request_id,
        chrono::Utc::now(),
        "output",
        wingman::events::ExecutionOutput {
            output: "api running\n".into(),
        },
    );
    let message = wingman::bus::publish::Outgoing::json(
        env.bus
            .subjects
            .output(&Principal::ApiKey("submitter".into()), request_id),
        envelope.event_id.to_string(),
        &envelope,
    );
    wingman::bus::publish::publish_all(&env.bus.js, &[message])
        .await
        .unwrap();
    let get = |key: &'static str| {
        let url = format!("http://{api}/requests/{request_id}/output");
        async move {
            reqwest::Client::new()
                .get(url)
                .header("X-API-Key", key)
                .send()
                .await
                .unwrap()
        }
    };
    let own = get(SUBMIT_KEY).await;
    assert_eq!(own.status(), 200);
    let body: Value = own.json().await.unwrap();
    assert_eq!(body["output"], "api running\n");
    // Another key with the submit role: as if there were nothing.
    let other = get(crate::helpers::OPERATOR_KEY).await;
    assert_eq!(other.status(), 404);
    env.stop().await;
}

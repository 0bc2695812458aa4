//! Human approval on Telegram, driven through the fake Bot API (getUpdates) against the real
//! teloxide bot, and the console approver through the CLI.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;
use wingman::request::Environment;

use crate::docker;
use crate::fake_telegram::FakeTelegram;
use crate::helpers::{APPROVER_CHAT, TestEnv, wait_for_status};

const ANNA: i64 = 42;
const BOB: i64 = 43;
const MALLORY: i64 = 99;
const WAIT: Duration = Duration::from_secs(20);

/// A prd request: never auto-approved, so it waits for a human.
fn prd_request(request_id: Uuid, command: Option<&str>, requester: &str) -> Value {
    let mut request = json!({
        "request_id": request_id,
        "requester": requester,
        "environment": "prd",
        "title": "Stop the reporting container for the disk migration",
        "description": "The reporting container writes to the disk we migrate tonight, so it must be stopped first. \
            Only this container is touched. Rollback: docker start it again. Verify: docker inspect shows it exited \
            and the reports page shows the maintenance banner.",
    });
    if let Some(command) = command {
        request["command"] = Value::String(command.into());
    }
    request
}

async fn submit(env: &TestEnv, payload: &Value) {
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
}

fn prompt_for(
    fake: &FakeTelegram,
    request_id: Uuid,
) -> impl Fn(&crate::fake_telegram::SentMessage) -> bool {
    let _ = fake;
    let id = request_id.to_string();
    move |sent| sent.chat_id == APPROVER_CHAT && sent.text.contains(&id)
}

fn button(sent: &crate::fake_telegram::SentMessage, index: usize) -> String {
    sent.reply_markup.as_ref().unwrap()["inline_keyboard"][0][index]["callback_data"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_allow_listed_click_approves_a_prompted_request_and_the_real_container_stops() {
    let fake = FakeTelegram::start().await;
    let mut env = TestEnv::start().await;
    let name = docker::unique("wt-reports");
    docker::start_container(&name, None).await;
    env.spawn_intake_validating(100).await;
    env.spawn_approvals(Some(&fake), &["telegram:42", "telegram:43"], 1)
        .await;
    env.spawn_authority().await;
    env.spawn_gateway(&[Environment::Prd]).await;
    env.spawn_recorder().await;

    let request_id = Uuid::new_v4();
    submit(
        &env,
        &prd_request(request_id, Some(&format!("docker stop {name}")), "agent-7"),
    )
    .await;
    let prompt = fake
        .wait_for_sent(prompt_for(&fake, request_id), WAIT)
        .await;
    assert!(
        prompt.text.contains("Approval needed") && prompt.text.contains("PRD"),
        "{}",
        prompt.text
    );
    assert!(
        prompt
            .text
            .contains(&format!("<pre>docker stop {name}</pre>"))
    );
    assert!(prompt.text.contains("Requester: agent-7") && prompt.text.contains("Validation: "));
    assert!(prompt.text.contains("Expires: "));
    assert_eq!(prompt.parse_mode.as_deref(), Some("HTML"));
    let approve = button(&prompt, 0);
    assert!(
        approve.starts_with("a:") && !approve.contains(&request_id.to_string()),
        "a nonce, not the id: {approve}"
    );
    assert!(button(&prompt, 1).starts_with("r:"));

    // Someone not on the list: refused, told so, audited.
    let query = fake.user_clicks(MALLORY, APPROVER_CHAT, prompt.message_id, &approve);
    let answer = fake
        .wait_for_answer(|a| a.callback_query_id == query, WAIT)
        .await;
    assert_eq!(
        answer.text.as_deref(),
        Some("not authorized: telegram:99 is not on the approver list")
    );

    let query = fake.user_clicks(ANNA, APPROVER_CHAT, prompt.message_id, &approve);
    let answer = fake
        .wait_for_answer(|a| a.callback_query_id == query, WAIT)
        .await;
    assert_eq!(answer.text.as_deref(), Some("APPROVED by telegram:42"));
    wait_for_status(&env, request_id, "SUCCEEDED").await;
    let (running, _) = docker::state(&name).await.unwrap();
    assert!(!running, "the approved stop stopped the real container");

    // A double click changes nothing and says who won.
    let query = fake.user_clicks(ANNA, APPROVER_CHAT, prompt.message_id, &approve);
    let answer = fake
        .wait_for_answer(|a| a.callback_query_id == query, WAIT)
        .await;
    assert!(
        answer
            .text
            .as_deref()
            .unwrap()
            .starts_with("already APPROVED by telegram:42 at "),
        "{answer:?}"
    );
    let edit = fake
        .wait_for_edit(
            |e| {
                e.message_id == prompt.message_id
                    && e.text.as_deref().is_some_and(|t| t.contains("SUCCEEDED"))
            },
            WAIT,
        )
        .await;
    assert!(edit.text.unwrap().contains("APPROVED</b> by telegram:42"));
    assert!(
        edit.reply_markup.is_none(),
        "the buttons are gone after the decision"
    );

    env.settle_all().await;
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE kind = 'access_denied' AND request_id = $1",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(denied, 1);
    let decisions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE kind = 'approval_decided' AND request_id = $1",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(decisions, 1);
    docker::remove(&name).await;
    env.stop().await;
}

#[tokio::test]
async fn approve_and_reject_from_two_approvers_at_the_same_moment_make_exactly_one_decision() {
    let fake = FakeTelegram::start().await;
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_approvals(Some(&fake), &["telegram:42", "telegram:43"], 1)
        .await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    submit(&env, &prd_request(request_id, None, "agent-7")).await;
    let prompt = fake
        .wait_for_sent(prompt_for(&fake, request_id), WAIT)
        .await;

    let click = fake.user_clicks(ANNA, APPROVER_CHAT, prompt.message_id, &button(&prompt, 0));
    fake.user_sends_text(
        BOB,
        APPROVER_CHAT,
        &format!("/reject {request_id} the window is closed"),
    );
    fake.wait_for_answer(|a| a.callback_query_id == click, WAIT)
        .await;
    let reply = fake
        .wait_for_sent(
            |sent| sent.chat_id == APPROVER_CHAT && !sent.text.contains("Approval needed"),
            WAIT,
        )
        .await;
    env.settle_all().await;

    let decided: Vec<String> = sqlx::query_scalar(
        "SELECT status FROM audit_events WHERE kind = 'approval_decided' AND request_id = $1",
    )
    .bind(request_id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(decided.len(), 1, "exactly one decision: {decided:?}");
    let row = env.status_of(request_id).await.unwrap();
    assert_eq!(row, decided[0]);
    let answers: Vec<String> = fake
        .callback_answers()
        .into_iter()
        .filter_map(|a| a.text)
        .collect();
    let loser_told =
        answers.iter().any(|text| text.starts_with("already")) || reply.text.starts_with("already");
    assert!(
        loser_told,
        "the second approver hears who won: {answers:?} / {}",
        reply.text
    );
    env.stop().await;
}

#[tokio::test]
async fn a_requester_cannot_approve_their_own_request() {
    let fake = FakeTelegram::start().await;
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_approvals(Some(&fake), &["telegram:42"], 1).await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    submit(&env, &prd_request(request_id, None, "telegram:42")).await;
    let prompt = fake
        .wait_for_sent(prompt_for(&fake, request_id), WAIT)
        .await;
    let query = fake.user_clicks(ANNA, APPROVER_CHAT, prompt.message_id, &button(&prompt, 0));
    let answer = fake
        .wait_for_answer(|a| a.callback_query_id == query, WAIT)
        .await;
    assert_eq!(
        answer.text.as_deref(),
        Some("a requester cannot approve their own request")
    );
    env.settle_all().await;
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("PENDING"));
    env.stop().await;
}

#[tokio::test]
async fn a_request_nobody_decides_expires_and_its_prompt_says_so() {
    let fake = FakeTelegram::start().await;
    let mut env = TestEnv::start().await;
    env.spawn_intake_with_ttl(100, Duration::from_secs(2)).await;
    env.spawn_approvals(Some(&fake), &["telegram:42"], 1).await;
    env.spawn_watcher(None, Default::default()).await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    submit(&env, &prd_request(request_id, None, "agent-7")).await;
    let prompt = fake
        .wait_for_sent(prompt_for(&fake, request_id), WAIT)
        .await;
    let expired = wait_for_status(&env, request_id, "EXPIRED").await;
    assert_eq!(
        expired["error"],
        "no decision before the deadline: default deny"
    );
    let edit = fake
        .wait_for_edit(
            |e| {
                e.message_id == prompt.message_id
                    && e.text.as_deref().is_some_and(|t| t.contains("EXPIRED"))
            },
            WAIT,
        )
        .await;
    assert!(edit.reply_markup.is_none());
    let query = fake.user_clicks(ANNA, APPROVER_CHAT, prompt.message_id, &button(&prompt, 0));
    let answer = fake
        .wait_for_answer(|a| a.callback_query_id == query, WAIT)
        .await;
    assert!(
        answer
            .text
            .unwrap()
            .starts_with("already EXPIRED by watcher")
    );
    env.settle_all().await;
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("EXPIRED"));
    env.stop().await;
}

#[tokio::test]
async fn overriding_an_auto_rejection_needs_a_reason_and_counts_as_a_false_positive() {
    let fake = FakeTelegram::start().await;
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_approvals(Some(&fake), &["telegram:42"], 1).await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    let payload = json!({
        "request_id": request_id, "requester": "agent-7", "environment": "dev",
        "command": "docker compose -p scratch down -v", "title": "cleanup", "description": "cleanup stuff",
    });
    submit(&env, &payload).await;
    let prompt = fake
        .wait_for_sent(prompt_for(&fake, request_id), WAIT)
        .await;
    assert!(prompt.text.contains("Auto-rejected"), "{}", prompt.text);
    let override_button = button(&prompt, 0);
    assert!(override_button.starts_with("o:"));
    fake.user_clicks(ANNA, APPROVER_CHAT, prompt.message_id, &override_button);
    let question = fake
        .wait_for_sent(
            |sent| {
                sent.text
                    .starts_with("Reply to this message with your reason")
            },
            WAIT,
        )
        .await;
    assert_eq!(question.reply_markup.as_ref().unwrap()["force_reply"], true);
    fake.user_replies(
        ANNA,
        APPROVER_CHAT,
        question.message_id,
        "scratch project of the CI, volumes are throwaway",
    );
    let told = fake
        .wait_for_sent(
            |sent| sent.text.starts_with("APPROVED by telegram:42"),
            WAIT,
        )
        .await;
    assert!(told.text.contains("false positive"));
    env.settle_all().await;
    let (status, false_positive, note): (String, bool, Option<String>) = sqlx::query_as(
        "SELECT status, false_positive, decision_note FROM approval_requests WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), false_positive), ("APPROVED", true));
    assert_eq!(
        note.as_deref(),
        Some("scratch project of the CI, volumes are throwaway")
    );
    env.stop().await;
}

#[tokio::test]
async fn a_bot_restart_neither_loses_nor_duplicates_prompts() {
    let fake = FakeTelegram::start().await;
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_recorder().await;
    let stop_bot = env.spawn_approvals_stoppable(&fake, &["telegram:42"]).await;
    let first: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
    for id in &first {
        submit(&env, &prd_request(*id, None, "agent-7")).await;
    }
    for id in &first {
        fake.wait_for_sent(prompt_for(&fake, *id), WAIT).await;
    }
    stop_bot.cancel();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let while_down = Uuid::new_v4();
    submit(&env, &prd_request(while_down, None, "agent-7")).await;
    env.spawn_approvals_stoppable(&fake, &["telegram:42"]).await;
    fake.wait_for_sent(prompt_for(&fake, while_down), WAIT)
        .await;
    env.settle_all().await;
    for id in first.iter().chain([&while_down]) {
        let prompts = fake
            .sent()
            .iter()
            .filter(|sent| sent.text.contains(&id.to_string()))
            .count();
        assert_eq!(prompts, 1, "one prompt for {id}");
    }
    env.stop().await;
}

/// An upgrade moved approvals to another subject: the consumer it finds with the old filter is
/// made anew on the declared one (nats-server 2.9 would take an update of the filter but keep
/// waking the consumer on the old subject, so a request reached approvals seconds late).
#[tokio::test]
async fn a_consumer_whose_filter_changed_is_made_anew_and_hears_of_a_request_at_once() {
    let mut env = TestEnv::start().await;
    let declared = env.bus.topology.consumer("approvals").unwrap().clone();
    let stream = env.bus.js.get_stream(&declared.stream).await.unwrap();
    stream.delete_consumer("approvals").await.unwrap();
    let mut stale = declared.config.clone();
    stale.filter_subject = env.bus.subjects.validated(wingman::events::Route::Auto);
    stream.create_consumer(stale).await.unwrap();

    env.bus.ensure_topology().await.unwrap();
    let mut consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("approvals")
        .await
        .unwrap();
    assert_eq!(
        consumer.info().await.unwrap().config.filter_subject,
        declared.config.filter_subject
    );

    env.spawn_intake_validating(0).await;
    env.spawn_approvals(None, &["cli:ops-bob"], 1).await;
    // Both workers pull before the request arrives, as in a running deployment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let request_id = Uuid::new_v4();
    let started = std::time::Instant::now();
    submit(&env, &prd_request(request_id, None, "agent-7")).await;
    let approvals = wingman::bus::topology::open_bucket(
        &env.bus.js,
        &env.bus.subjects.localize_name("wingman_approvals"),
    )
    .await
    .unwrap();
    let key = format!("request.{request_id}");
    while approvals.get(&key).await.unwrap().is_none() {
        assert!(
            started.elapsed() < WAIT,
            "approvals never recorded the request"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "approvals recorded the request {:?} after it was submitted",
        started.elapsed()
    );
    env.stop().await;
}

#[tokio::test]
async fn the_bot_offers_its_command_menu_and_answers_commands_from_it() {
    let fake = FakeTelegram::start().await;
    let mut env = TestEnv::start().await;
    env.spawn_approvals(Some(&fake), &["telegram:42"], 1).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while fake.my_commands().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot never registered its command menu (setMyCommands)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let menu: Vec<String> = fake
        .my_commands()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for command in [
        "pending", "status", "approve", "reject", "stats", "rollout", "whoami", "help",
    ] {
        assert!(
            menu.iter().any(|name| name == command),
            "{command} missing from {menu:?}"
        );
    }
    fake.user_sends_text(ANNA, APPROVER_CHAT, "/help@wingman_test_bot");
    let help = fake
        .wait_for_sent(|sent| sent.text.contains("/approve"), WAIT)
        .await;
    assert!(help.text.starts_with("Wingman approvals"), "{}", help.text);
    assert!(help.text.contains("/reject"), "{}", help.text);
    fake.user_sends_text(ANNA, APPROVER_CHAT, "/frobnicate");
    fake.wait_for_sent(
        |sent| sent.text.contains("unknown command /frobnicate"),
        WAIT,
    )
    .await;
    fake.user_sends_text(ANNA, APPROVER_CHAT, "/approve");
    fake.wait_for_sent(
        |sent| sent.text.contains("usage: /approve &lt;request id&gt;"),
        WAIT,
    )
    .await;
    env.stop().await;
}

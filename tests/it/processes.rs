//! Real worker processes: killed mid-message, and run side by side.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use wingman::bus::topology::open_bucket;

use crate::helpers::{BusOptions, TestEnv, request_json, worker_binary};

fn spawn_worker(env: &TestEnv, name: &str, extra: &[(&str, &str)]) -> Child {
    let mut command = Command::new(worker_binary(name));
    command
        .envs(env.child_env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in extra {
        command.env(key, value);
    }
    command.spawn().expect("start the worker")
}

/// Waits until the child prints `needle` on stderr.
async fn wait_for_stderr(child: &mut Child, needle: &str) {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the worker never printed `{needle}`");
}

/// Submits a request to an intake that handles it, publishes what it decided and is killed
/// (SIGKILL) before it acks; returns the request's id.
async fn submit_to_an_intake_killed_before_its_ack(env: &TestEnv, extra: &[(&str, &str)]) -> Uuid {
    let failpoint = [("WINGMAN_FAILPOINT", "before_ack:pause")];
    let env_vars: Vec<(&str, &str)> = failpoint.iter().chain(extra).copied().collect();
    let mut doomed = spawn_worker(env, "wingman-intake", &env_vars);
    let request_id = Uuid::new_v4();
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request_json(request_id, Some("docker stop api")).to_string(),
    )
    .await;
    wait_for_stderr(&mut doomed, "failpoint before_ack reached").await;
    doomed.kill().await.unwrap();
    request_id
}

#[tokio::test]
async fn an_intake_killed_between_receive_and_ack_records_the_request_exactly_once() {
    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    // SIGKILL: the message was handled and published, never acked.
    let request_id = submit_to_an_intake_killed_before_its_ack(&env, &[]).await;

    let _survivor = spawn_worker(&env, "wingman-intake", &[]);
    env.settle_all().await;
    env.wait_for_count("SELECT count(*) FROM approval_requests", None, 1)
        .await;
    // Received and decided, once each, though the doomed intake published both already.
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
    assert_eq!(
        decided.len(),
        1,
        "the republished decision was dropped as a duplicate"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_message_redelivered_after_its_claim_expired_is_refused_not_handled_again() {
    // Claims live 4 s here (a day in production): the claim made by a handling that never
    // acked is gone before JetStream hands the message to the next worker, which must not
    // handle it again (for intake that would re-route the request; for the authority, mint a
    // second token).
    let mut env = TestEnv::start_with(BusOptions {
        request_retention: Some(Duration::from_secs(4)),
        ..BusOptions::default()
    })
    .await;
    env.spawn_recorder().await;
    let short_wait = ("WINGMAN_APPROVAL_TTL", "2s");
    // Handled and claimed, never acked.
    let request_id = submit_to_an_intake_killed_before_its_ack(&env, &[short_wait]).await;
    let claims = open_bucket(
        &env.bus.js,
        &env.bus.subjects.localize_name("wingman_claims"),
    )
    .await
    .unwrap();
    let key = format!("intake.{request_id}");
    assert!(
        claims.get(&key).await.unwrap().is_some(),
        "the first handling claimed the id"
    );
    wait_until_expired(&claims, &key).await;

    // nats-server 2.9 hands this worker the message twice, once as delivery 1: only its age
    // can tell that a claim may be gone.
    let _survivor = spawn_worker(&env, "wingman-intake", &[short_wait]);
    refused_for_its_age(&env, "intake", request_id).await;
    // Refused, not handled: no claim was made again (not by a later delivery either), and the
    // refusal is in the audit log.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = claims.entry(&key).await.unwrap();
    assert!(
        again.is_none(),
        "the id was claimed a second time: {again:?}"
    );
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'message_rejected' \
         AND data->>'code' = 'outlived_claims'",
        None,
        1,
    )
    .await;
    env.stop().await;
}

/// Waits until the claim `key` is gone from `claims` (its life ran out).
async fn wait_until_expired(claims: &async_nats::jetstream::kv::Store, key: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while claims.get(key).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the claim {key} never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for `stage` to dead-letter a message of `request_id` as `outlived_claims`, the one
/// dead letter of the stage, with a reason naming the request.
async fn refused_for_its_age(env: &TestEnv, stage: &str, request_id: Uuid) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let letters = loop {
        let letters = env
            .stream_messages("WINGMAN_DLQ", &format!("{}.dlq.{stage}", env.prefix))
            .await;
        if !letters.is_empty() {
            break letters;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{stage} dead-lettered nothing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["code"], "outlived_claims");
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&request_id.to_string()) && reason.contains("not handled again"),
        "{reason}"
    );
}

/// The authority's once-only effect is the one token it mints per request, claimed as
/// `minted.<id>`. An authority killed after minting, before its ack, leaves the decision to
/// be redelivered; once that claim has expired, the next authority must refuse the decision
/// for its age — not mint a second token for a request that has one.
#[tokio::test]
async fn an_authority_refuses_a_decision_redelivered_after_its_minted_claim_expired() {
    let mut env = TestEnv::start_with(BusOptions {
        request_retention: Some(Duration::from_secs(4)),
        ..BusOptions::default()
    })
    .await;
    env.spawn_recorder().await;
    env.spawn_intake_with_ttl(100, Duration::from_secs(2)).await;
    let short_ttl = ("WINGMAN_TOKEN_TTL", "2s");
    let mut doomed = spawn_worker(
        &env,
        "wingman-authority",
        &[("WINGMAN_FAILPOINT", "before_ack:pause"), short_ttl],
    );
    let request_id = Uuid::new_v4();
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        crate::helpers::well_explained(request_id, "dev", "docker restart wt-api", "wt-api")
            .to_string(),
    )
    .await;
    wait_for_stderr(&mut doomed, "failpoint before_ack reached").await;
    doomed.kill().await.unwrap();
    let jobs = || async {
        env.stream_messages("WINGMAN_EXEC", &format!("{}.exec.jobs", env.prefix))
            .await
            .len()
    };
    assert_eq!(jobs().await, 1, "the doomed authority minted one token");
    let claims = open_bucket(
        &env.bus.js,
        &env.bus.subjects.localize_name("wingman_claims"),
    )
    .await
    .unwrap();
    let key = format!("minted.{request_id}");
    wait_until_expired(&claims, &key).await;

    let _survivor = spawn_worker(&env, "wingman-authority", &[short_ttl]);
    refused_for_its_age(&env, "authority", request_id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(jobs().await, 1, "a second token was minted");
    assert!(claims.entry(&key).await.unwrap().is_none());
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'message_rejected' \
         AND data->>'code' = 'outlived_claims' AND stage = 'authority'",
        None,
        1,
    )
    .await;
    env.stop().await;
}

#[tokio::test]
async fn intake_refuses_to_start_when_a_human_may_answer_after_the_claims_expire() {
    let env = TestEnv::start().await;
    // Claims live a day: an approval TTL of 23 h is past nine tenths of it.
    let intake = spawn_worker(&env, "wingman-intake", &[("WINGMAN_APPROVAL_TTL", "23h")]);
    let output = tokio::time::timeout(Duration::from_secs(60), intake.wait_with_output())
        .await
        .expect("intake kept running")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WINGMAN_APPROVAL_TTL (23h) must be shorter than nine tenths")
            && stderr.contains("21h 36m of 1day"),
        "{stderr}"
    );
    env.stop().await;
}

#[tokio::test]
async fn the_authority_refuses_to_start_when_a_token_could_outlive_its_gateway_claim() {
    let env = TestEnv::start().await;
    // Claims live a day: a token living 22 h could be presented again after the gateway's
    // claim of it expired.
    let authority = spawn_worker(&env, "wingman-authority", &[("WINGMAN_TOKEN_TTL", "22h")]);
    let output = tokio::time::timeout(Duration::from_secs(60), authority.wait_with_output())
        .await
        .expect("the authority kept running")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WINGMAN_TOKEN_TTL (22h) must be shorter than nine tenths"),
        "{stderr}"
    );
    env.stop().await;
}

#[tokio::test]
async fn two_intake_workers_share_the_work_and_no_request_is_processed_twice() {
    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    let small_batches = [("WINGMAN_CONSUME_BATCH", "2")];
    let _first = spawn_worker(&env, "wingman-intake", &small_batches);
    let _second = spawn_worker(&env, "wingman-intake", &small_batches);
    // Both must be pulling before the work arrives.
    let consumer = env.bus.consumer("intake").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut consumer = consumer.clone();
        if consumer.info().await.unwrap().num_waiting >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the two workers never both pulled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count = 60;
    for _ in 0..count {
        let payload = request_json(Uuid::new_v4(), Some("docker restart api")).to_string();
        env.publish_raw(
            &format!("{}.requests.submitted.anonymous", env.prefix),
            payload,
        )
        .await;
    }
    env.settle_all().await;
    env.wait_for_count("SELECT count(*) FROM approval_requests", None, count)
        .await;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'request_received'",
        None,
        count,
    )
    .await;
    let actors: Vec<(String, i64)> = sqlx::query_as(
        "SELECT actor, count(*) FROM audit_events WHERE kind = 'request_received' GROUP BY actor",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        actors.len(),
        2,
        "both workers did some of the work: {actors:?}"
    );
    assert!(actors.iter().all(|(_, done)| *done > 0));
    env.stop().await;
}

#[tokio::test]
async fn a_gateway_killed_between_claim_and_result_leaves_the_execution_indeterminate_and_never_reruns_it()
 {
    gateway_killed_at("gateway_after_claim").await;
}

/// The gateway records EXECUTING and claims the token at once: killed with the claim stored
/// and EXECUTING not, the request still moves EXECUTING → INDETERMINATE (the recorder
/// refuses INDETERMINATE from AUTO_APPROVED) and the operation never runs.
#[tokio::test]
async fn a_gateway_killed_between_its_claim_and_executing_still_records_executing_then_indeterminate()
 {
    gateway_killed_at("gateway_before_executing").await;
}

/// A restart through the pipeline, the gateway killed at `failpoint` with the token claimed,
/// a second gateway taking over: the request ends INDETERMINATE, its audit trail says
/// EXECUTING once then INDETERMINATE, and the container was not restarted.
async fn gateway_killed_at(failpoint: &str) {
    use futures::StreamExt as _;
    let mut env = TestEnv::start().await;
    let name = crate::docker::unique("wt-crash");
    crate::docker::start_container(&name, None).await;
    let (_, started_before) = crate::docker::state(&name).await.unwrap();
    env.spawn_intake_validating(100).await;
    env.spawn_authority().await;
    env.spawn_recorder().await;
    // The running lease longer than the consumer's redeliveries take (ack wait 2 s, then
    // retries 0.2, 0.4, 0.8 s … apart, 5 deliveries in all), as in production (120 s, 150 s):
    // the replacement must wait the lease out, not spend the deliveries inside it.
    let gateway_env = [
        ("ALLOWED_ENVIRONMENTS", "dev,test"),
        ("WINGMAN_GATEWAY_LEASE_SECS", "8"),
    ];
    let paused = format!("{failpoint}:pause");
    let mut doomed = spawn_worker(
        &env,
        "wingman-gateway",
        &[
            gateway_env[0],
            gateway_env[1],
            ("WINGMAN_FAILPOINT", &paused),
        ],
    );
    let request_id = Uuid::new_v4();
    let payload =
        crate::helpers::well_explained(request_id, "dev", &format!("docker restart {name}"), &name);
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    wait_for_stderr(&mut doomed, &format!("failpoint {failpoint} reached")).await;
    // The claim is stored before the kill (before EXECUTING, it is on its way beside it).
    let claims = env.claims().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut keys = claims.keys().await.unwrap();
        let mut claimed = false;
        while let Some(key) = keys.next().await {
            claimed |= key.unwrap().starts_with("exec.");
        }
        if claimed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the token was never claimed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    doomed.kill().await.unwrap();

    let _replacement = spawn_worker(&env, "wingman-gateway", &gateway_env);
    let event = crate::helpers::wait_for_status(&env, request_id, "INDETERMINATE").await;
    assert!(
        event["error"]
            .as_str()
            .unwrap()
            .contains("check the containers by hand"),
        "{event}"
    );
    env.settle_all().await;
    let (_, started_after) = crate::docker::state(&name).await.unwrap();
    assert_eq!(
        started_after, started_before,
        "the operation was not run a second time"
    );
    assert_eq!(
        env.status_of(request_id).await.as_deref(),
        Some("AUTO_APPROVED")
    );
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE execution_status = 'INDETERMINATE' AND request_id = $1",
        Some(request_id),
        1,
    )
    .await;
    let executions: Vec<String> =
        sqlx::query_scalar("SELECT status FROM executions WHERE request_id = $1")
            .bind(request_id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(executions, ["INDETERMINATE"]);
    let trail: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT kind, status FROM audit_events WHERE request_id = $1 AND stage = 'gateway' ORDER BY seq",
    )
    .bind(request_id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let trail: Vec<(&str, Option<&str>)> = trail
        .iter()
        .map(|(kind, status)| (kind.as_str(), status.as_deref()))
        .collect();
    assert_eq!(
        trail,
        [
            ("execution_started", Some("EXECUTING")),
            ("execution_finished", Some("INDETERMINATE")),
        ]
    );
    crate::docker::remove(&name).await;
    env.stop().await;
}

/// What a worker says when its settings are wrong: it stops before it connects anywhere,
/// naming the variable and the value. Approvals and the watcher read the bot's variables
/// with the same rule (the watcher used to drop a chat id that was no number, and ignore a
/// token without chats, and start).
/// A worker, the variables it is started with, and the words its error must contain.
type WrongSetting = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

#[test]
fn a_worker_with_a_wrong_setting_stops_at_start_naming_it() {
    let cases: [WrongSetting; 5] = [
        (
            "wingman-watcher",
            &[
                ("TELEGRAM_BOT_TOKEN", "123:abc"),
                ("TELEGRAM_CHAT_ID", "ops"),
            ],
            &["TELEGRAM_CHAT_ID", "`ops`"],
        ),
        (
            "wingman-approvals",
            &[
                ("TELEGRAM_BOT_TOKEN", "123:abc"),
                ("TELEGRAM_CHAT_ID", "ops"),
            ],
            &["TELEGRAM_CHAT_ID", "`ops`"],
        ),
        (
            "wingman-watcher",
            &[("TELEGRAM_BOT_TOKEN", "123:abc")],
            &["TELEGRAM_CHAT_ID"],
        ),
        (
            "wingman-watcher",
            &[("WINGMAN_GUARD_ENABLED", "off")],
            &["WINGMAN_GUARD_ENABLED", "`off`"],
        ),
        (
            "wingman-recorder",
            &[("WINGMAN_MIGRATE", "2")],
            &["WINGMAN_MIGRATE", "`2`"],
        ),
    ];
    for (worker, settings, named) in cases {
        let output = std::process::Command::new(crate::helpers::worker_binary(worker))
            // Nothing to reach: a worker that got past its settings would fail on NATS.
            .env("NATS_URL", "nats://127.0.0.1:1")
            .env("WINGMAN_NATS_CONNECT_ATTEMPTS", "1")
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .env("METRICS_PORT", "0")
            .env_remove("TELEGRAM_BOT_TOKEN")
            .env_remove("TELEGRAM_CHAT_ID")
            .envs(settings.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{worker} {settings:?} started");
        for word in named {
            assert!(stderr.contains(word), "{worker} {settings:?}: {stderr}");
        }
    }
}

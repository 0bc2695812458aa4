//! The durable consumers of the status stream (the approvals worker's `approvals-updates`)
//! belong to their workers: publishers and operators, who may follow their own requests'
//! status, can neither delete them, re-create them with another config, nor pull or ack
//! their messages. Played as each of them against a server with `nats/auth.conf`.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestEnv;
use crate::nats_server::{NatsServer, credentials, password};

/// Every durable consumer `nats/consumers/` declares on the status stream.
fn status_durables(env: &TestEnv) -> Vec<String> {
    let durables: Vec<String> = env
        .bus
        .topology
        .consumers
        .iter()
        .filter(|def| def.stream == "WINGMAN_STATUS")
        .filter_map(|def| def.config.durable_name.clone())
        .collect();
    assert!(durables.contains(&"approvals-updates".to_string()));
    durables
}

async fn connect_as(server: &NatsServer, user: &str) -> (async_nats::Client, jetstream::Context) {
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password(user))
        .custom_inbox_prefix(credentials(user).inbox_prefix())
        .connect(server.url())
        .await
        .unwrap_or_else(|error| panic!("connect as {user}: {error}"));
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(1))
        .build(client.clone());
    (client, js)
}

/// A raw JetStream API request as `client`: `Ok(answer)` when the server answered (an error
/// answer included), `Err` when nobody answered (the request was not allowed out).
async fn api(client: &async_nats::Client, subject: &str, body: Value) -> Result<Value, String> {
    let request = client.request(subject.to_string(), body.to_string().into());
    match tokio::time::timeout(Duration::from_secs(2), request).await {
        Ok(Ok(message)) => Ok(serde_json::from_slice(&message.payload).unwrap_or(Value::Null)),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer".into()),
    }
}

/// What a takeover would change: the consumer's config and how far it got.
async fn snapshot(env: &TestEnv, durable: &str) -> (Value, u64, usize) {
    let stream = env.bus.js.get_stream("WINGMAN_STATUS").await.unwrap();
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_consumer(durable)
        .await
        .unwrap_or_else(|error| panic!("{durable} is gone: {error}"));
    let info = consumer.info().await.unwrap().clone();
    let mut config = serde_json::to_value(&info.config).unwrap();
    config.as_object_mut().unwrap().remove("metadata");
    (config, info.delivered.stream_sequence, info.num_ack_pending)
}

fn status_event(request_id: Uuid, status: &str) -> Value {
    json!({
        "event_id": Uuid::now_v7(),
        "request_id": request_id,
        "status": status,
        "at": chrono::Utc::now(),
        "stage": "approvals",
    })
}

#[tokio::test]
async fn a_publisher_or_an_operator_cannot_delete_or_take_over_a_durable_consumer_of_the_status_stream()
 {
    let server = NatsServer::single().await;
    let env = TestEnv::on_server(&server).await;
    let request_id = Uuid::new_v4();
    let subject = format!("wingman.status.{request_id}");
    env.publish_raw(&subject, status_event(request_id, "PENDING").to_string())
        .await;
    let durables = status_durables(&env);
    let mut before = Vec::new();
    for durable in &durables {
        before.push(snapshot(&env, durable).await);
    }

    for user in ["publisher", "operator"] {
        let (client, js) = connect_as(&server, user).await;
        let stream = js.get_stream("WINGMAN_STATUS").await.unwrap();
        for durable in &durables {
            // Delete it.
            assert!(
                stream.delete_consumer(durable).await.is_err(),
                "{user} deleted {durable}"
            );
            // Re-create it with another config, through each create API.
            let hijack = pull::Config {
                durable_name: Some(durable.clone()),
                filter_subject: "wingman.status.>".into(),
                deliver_policy: jetstream::consumer::DeliverPolicy::New,
                max_ack_pending: 1,
                ..Default::default()
            };
            assert!(
                stream.create_consumer(hijack.clone()).await.is_err(),
                "{user} re-created {durable}"
            );
            let config = serde_json::to_value(&hijack).unwrap();
            for subject in [
                "$JS.API.CONSUMER.CREATE.WINGMAN_STATUS".to_string(),
                format!("$JS.API.CONSUMER.CREATE.WINGMAN_STATUS.{durable}"),
                format!("$JS.API.CONSUMER.DURABLE.CREATE.WINGMAN_STATUS.{durable}"),
            ] {
                let body = json!({"stream_name": "WINGMAN_STATUS", "config": config});
                if let Ok(answer) = api(&client, &subject, body).await {
                    assert!(
                        answer.get("error").is_some(),
                        "{user}: {subject} answered {answer}"
                    );
                }
            }
            // An ephemeral named like it.
            let named = json!({"stream_name": "WINGMAN_STATUS", "config": {
                "name": durable, "filter_subject": subject, "ack_policy": "none"}});
            if let Ok(answer) = api(&client, "$JS.API.CONSUMER.CREATE.WINGMAN_STATUS", named).await
            {
                assert!(answer.get("error").is_some(), "{user}: {answer}");
            }
            // Pull its messages, or ack them.
            let next = format!("$JS.API.CONSUMER.MSG.NEXT.WINGMAN_STATUS.{durable}");
            let pulled = api(&client, &next, json!({"batch": 1, "expires": 500_000_000})).await;
            assert!(pulled.is_err(), "{user} pulled from {durable}: {pulled:?}");
            let _ = client
                .publish(
                    format!("$JS.ACK.WINGMAN_STATUS.{durable}.1.1.1.0.0"),
                    "+ACK".into(),
                )
                .await;
            // Nor may it even read how far the worker got.
            assert!(
                stream.get_consumer::<pull::Config>(durable).await.is_err(),
                "{user} read {durable}'s info"
            );
        }
        client.flush().await.unwrap();
    }

    for (durable, before) in durables.iter().zip(&before) {
        assert_eq!(
            &snapshot(&env, durable).await,
            before,
            "{durable} was changed"
        );
    }
    let log = server.log();
    for user in ["publisher", "operator"] {
        assert!(
            log.lines().any(
                |line| line.contains(&format!("User \"{user}\"")) && line.contains("Violation")
            ),
            "the server logged no violation of {user}"
        );
    }
    env.stop().await;
}

#[tokio::test]
async fn a_publisher_and_an_operator_still_follow_their_request_with_status_wait() {
    let server = NatsServer::single().await;
    let env = TestEnv::on_server(&server).await;
    for user in ["publisher", "operator"] {
        let request_id = Uuid::new_v4();
        let subject = format!("wingman.status.{request_id}");
        // Intake's event (its decision) names no command: an instruction approval, which its
        // decision ends.
        let mut decided = status_event(request_id, "PENDING");
        decided["stage"] = json!("intake");
        env.publish_raw(&subject, decided.to_string()).await;
        let waiting = tokio::process::Command::new(env!("CARGO_BIN_EXE_wingman"))
            .args(["status", &request_id.to_string(), "--wait", "--json"])
            .args(["--timeout", "30s"])
            .env("NATS_URL", server.url())
            .env("NATS_USER", user)
            .env("NATS_PASSWORD", password(user))
            .env("WINGMAN_SUBJECT_PREFIX", "wingman")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .output();
        let decide = async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            env.publish_raw(&subject, status_event(request_id, "APPROVED").to_string())
                .await;
        };
        let (output, ()) = tokio::join!(waiting, decide);
        let output = output.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{user}: wingman status --wait failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("APPROVED"), "{user}: {stdout}");
    }
    let log = server.log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Violation"))
        .collect();
    assert!(
        refused.is_empty(),
        "following a status was refused: {refused:#?}"
    );
    env.stop().await;
}

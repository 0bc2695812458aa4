//! Secrets never leave through a read-only operation: `docker inspect` and `docker logs` of a
//! container that holds a password, through the whole pipeline and the real gateway process
//! on the real Engine, show the names but never the password: in no status event, no audit
//! row, no execution row, no line the gateway logs.

use std::collections::HashMap;
use std::process::Stdio;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, StartContainerOptions};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use uuid::Uuid;

use crate::docker;
use crate::helpers::{TestEnv, wait_for_status, worker_binary};

const PASSWORD: &str = "hunter2-d41d8cd98f";

/// A container with the password in its environment, a label and its logs.
async fn start_container_with_a_password(name: &str) {
    let client = docker::client().await;
    let body = ContainerCreateBody {
        image: Some(docker::IMAGE.into()),
        cmd: Some(vec![
            "sh".into(),
            "-c".into(),
            format!("echo connecting with password={PASSWORD}; sleep 3600"),
        ]),
        env: Some(vec![
            format!("SECRET={PASSWORD}"),
            format!("POSTGRES_PASSWORD={PASSWORD}"),
            "MODE=plain".into(),
        ]),
        labels: Some(HashMap::from([
            ("wingman.test".to_string(), "1".to_string()),
            ("com.example.api-token".to_string(), PASSWORD.to_string()),
        ])),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            init: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    client
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(name).build()),
            body,
        )
        .await
        .expect("create the container");
    client
        .start_container(name, None::<StartContainerOptions>)
        .await
        .unwrap();
}

async fn read_all(mut pipe: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A read-only request the validator approves by itself.
fn read_request(request_id: Uuid, command: &str, name: &str) -> Value {
    json!({
        "request_id": request_id,
        "requester": "ops-anna",
        "environment": "dev",
        "command": command,
        "title": format!("Inspect the container {name} to check its configuration"),
        "description": format!(
            "Read-only check of the container {name}: we read its configuration and its recent \
             logs to confirm the log level change. Only {name} is read, nothing is changed. \
             Rollback: nothing to roll back, the command is read-only. Verify: the output shows \
             {name} running with the new settings."
        ),
    })
}

#[tokio::test]
async fn an_inspect_of_a_container_with_a_password_shows_it_nowhere() {
    let mut env = TestEnv::start().await;
    let name = docker::unique("wt-secret");
    start_container_with_a_password(&name).await;
    env.spawn_intake_validating(100).await;
    env.spawn_authority().await;
    env.spawn_recorder().await;
    let mut gateway = tokio::process::Command::new(worker_binary("wingman-gateway"))
        .envs(env.child_env())
        .env("ALLOWED_ENVIRONMENTS", "dev")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start wingman-gateway");
    // Drained as it runs, so a chatty debug log never blocks the gateway on a full pipe.
    let stdout = tokio::spawn(read_all(gateway.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(gateway.stderr.take().unwrap()));

    let commands = [
        format!("docker inspect {name}"),
        format!("docker inspect --format '{{{{json .Config.Env}}}}' {name}"),
        format!("docker inspect --format '{{{{json .}}}}' {name}"),
        format!("docker logs {name}"),
    ];
    let mut outputs = Vec::new();
    for command in &commands {
        let request_id = Uuid::new_v4();
        env.publish_raw(
            &format!("{}.requests.submitted.anonymous", env.prefix),
            read_request(request_id, command, &name).to_string(),
        )
        .await;
        wait_for_status(&env, request_id, "SUCCEEDED").await;
        outputs.push(env.output_of(request_id).await);
    }
    env.settle_all().await;

    // The operations did read the secrets' places: names are there, values are not.
    assert!(outputs[0].contains(&format!("/{name}")), "{}", outputs[0]);
    assert!(
        outputs[1].contains("SECRET=<redacted>")
            && outputs[1].contains("POSTGRES_PASSWORD=<redacted>")
            && outputs[1].contains("MODE=<redacted>"),
        "{}",
        outputs[1]
    );
    assert!(
        outputs[2].contains("\"com.example.api-token\":\"<redacted>\""),
        "{}",
        outputs[2]
    );
    assert!(
        outputs[3].contains("connecting with password=<redacted>"),
        "{}",
        outputs[3]
    );
    // Nowhere a publisher or the audit can read.
    let statuses = env
        .stream_messages("WINGMAN_STATUS", &format!("{}.status.>", env.prefix))
        .await;
    assert!(statuses.len() >= 4 * 3, "{} status events", statuses.len());
    for event in &statuses {
        assert!(
            !event.to_string().contains(PASSWORD),
            "status event: {event}"
        );
        // Every publisher reads status events: what an operation printed is not in them.
        assert!(event.get("output").is_none(), "status event: {event}");
    }
    let audits = env
        .stream_messages("WINGMAN_AUDIT", &format!("{}.audit.>", env.prefix))
        .await;
    assert!(!audits.is_empty());
    for event in &audits {
        assert!(
            !event.to_string().contains(PASSWORD),
            "audit message: {event}"
        );
    }
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM audit_events WHERE data::text LIKE '%' || $1 || '%') \
              + (SELECT count(*) FROM executions WHERE coalesce(output_excerpt, '') LIKE '%' || $1 || '%') \
              + (SELECT count(*) FROM approval_requests WHERE row_to_json(approval_requests)::text LIKE '%' || $1 || '%')",
    )
    .bind(PASSWORD)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0, "the password is in Postgres");
    let executions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE status = 'SUCCEEDED'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(executions, 4);

    gateway.kill().await.unwrap();
    let logs = [stdout.await.unwrap(), stderr.await.unwrap()].concat();
    assert!(
        logs.contains("wingman-gateway") && logs.lines().count() > 20,
        "the gateway's debug log was captured: {logs}"
    );
    let leaking: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains(PASSWORD))
        .collect();
    assert!(
        leaking.is_empty(),
        "gateway log lines have the password: {leaking:#?}"
    );
    docker::remove(&name).await;
    env.stop().await;
}

//! The docker wrapper as a user runs it: pass-through, block, and wait-and-execute.

use std::process::Output;

use serde_json::Value;
use wingman::request::Environment;

use crate::docker;
use crate::helpers::{TestEnv, docker_host};

async fn docker_wrapper(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wingman-docker"));
    command
        .envs(env.child_env())
        .env("DOCKER_BIN", "/usr/bin/docker")
        .env("DOCKER_HOST", docker_host())
        .env_remove("WINGMAN_REASON")
        .args(args);
    for (key, value) in extra {
        command.env(key, value);
    }
    command.output().await.expect("run wingman-docker")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn read_only_commands_pass_straight_through_to_the_real_docker() {
    let env = TestEnv::start().await;
    let name = docker::unique("wt-visible");
    docker::start_container(&name, None).await;
    let output = docker_wrapper(&env, &["ps", "--format", "{{.Names}}"], &[]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).lines().any(|line| line == name),
        "{}",
        text(&output.stdout)
    );
    let inspect = docker_wrapper(
        &env,
        &["inspect", "--format", "{{.State.Running}}", &name],
        &[],
    )
    .await;
    assert_eq!(text(&inspect.stdout).trim(), "true");
    docker::remove(&name).await;
    env.stop().await;
}

#[tokio::test]
async fn a_destructive_command_without_a_reason_is_blocked_and_nothing_happens() {
    let env = TestEnv::start().await;
    let name = docker::unique("wt-protected");
    docker::start_container(&name, None).await;
    for args in [
        vec!["stop", name.as_str()],
        vec!["rm", "-f", name.as_str()],
        vec!["system", "prune", "-a"],
    ] {
        let output = docker_wrapper(&env, &args, &[("WINGMAN_ENV", "dev")]).await;
        assert_eq!(output.status.code(), Some(3), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.starts_with("❌ BLOCKED: Destructive docker command requires Wingman approval"),
            "{stderr}"
        );
        assert!(stderr.contains("--wingman-reason"));
    }
    let (running, _) = docker::state(&name).await.unwrap();
    assert!(running, "the blocked commands did nothing");
    let unsupported = docker_wrapper(
        &env,
        &["system", "prune", "-a", "--wingman-reason", "disk full"],
        &[("WINGMAN_ENV", "dev")],
    )
    .await;
    assert_eq!(unsupported.status.code(), Some(3));
    assert!(
        text(&unsupported.stderr)
            .starts_with("❌ BLOCKED: the Wingman gateway cannot run this command: unsupported"),
        "{}",
        text(&unsupported.stderr)
    );
    docker::remove(&name).await;
    env.stop().await;
}

#[tokio::test]
async fn a_destructive_command_with_a_reason_waits_for_approval_and_prints_the_gateways_result() {
    let mut env = TestEnv::start().await;
    let name = docker::unique("wt-api");
    docker::start_container(&name, None).await;
    let (_, started_before) = docker::state(&name).await.unwrap();
    env.spawn_intake_validating(100).await;
    env.spawn_approvals(None, &["cli:ops-bob"], 1).await;
    env.spawn_authority().await;
    env.spawn_gateway(&[Environment::Dev]).await;
    env.spawn_recorder().await;
    let reason = format!(
        "The container {name} caches its config at start and we changed the log level, so restart only {name}. \
         Rollback: docker start {name}. Verify: docker inspect shows {name} running."
    );
    let output = docker_wrapper(
        &env,
        &["restart", &name, "--wingman-reason", &reason],
        &[("WINGMAN_ENV", "dev")],
    )
    .await;
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("submitted") && stderr.contains("SUCCEEDED"),
        "progress shown: {stderr}"
    );
    assert!(
        text(&output.stdout).contains(&format!("{name}: restarted")),
        "{}",
        text(&output.stdout)
    );
    let (running, started_after) = docker::state(&name).await.unwrap();
    assert!(running && started_after != started_before);
    let rows: Vec<(String, Value)> =
        sqlx::query_as("SELECT requester, to_jsonb(description) FROM approval_requests")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, Value::String(reason));
    docker::remove(&name).await;
    env.stop().await;
}

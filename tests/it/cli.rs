//! The `wingman` CLI as a user runs it, against the pipeline running in-process.

use std::process::Output;

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{
    TestEnv, json_lines, last_json_line, request_json, run_wingman, text, wait_for_status,
    well_explained,
};

async fn wingman(env: &TestEnv, args: &[&str]) -> Output {
    run_wingman(env, &[], args).await
}

#[tokio::test]
async fn wingman_request_no_wait_then_status_and_list_show_the_request() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let output = wingman(
        &env,
        &[
            "request",
            "--env",
            "test",
            "--title",
            "Restart api",
            "--description",
            "Reload config. Rollback: start it. Verify: health.",
            "--requester",
            "ops-anna",
            "--no-wait",
            "--json",
            "--",
            "docker",
            "restart",
            "api",
        ],
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let submitted: Value = serde_json::from_slice(&output.stdout).unwrap();
    let request_id = submitted["request_id"].as_str().unwrap().to_string();
    env.settle_all().await;

    let status = wingman(&env, &["status", &request_id]).await;
    assert!(status.status.success(), "{}", text(&status.stderr));
    let line = text(&status.stdout);
    assert!(
        line.contains("PENDING") && line.contains("docker restart api"),
        "{line}"
    );

    let list = wingman(&env, &["list", "--status", "PENDING", "--json"]).await;
    assert!(list.status.success(), "{}", text(&list.stderr));
    let rows: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows[0]["request_id"], request_id);
    assert_eq!(rows[0]["requester"], "ops-anna");
    env.stop().await;
}

#[tokio::test]
async fn an_invalid_request_is_refused_by_the_cli_in_one_line_naming_the_field() {
    let env = TestEnv::start().await;
    let output = wingman(
        &env,
        &[
            "request",
            "--env",
            "dev",
            "--title",
            "",
            "--description",
            "y",
            "--no-wait",
            "--",
            "docker",
            "stop",
            "a",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "error: invalid request: field `title`: must not be empty"
    );
    env.stop().await;
}

#[tokio::test]
async fn waiting_on_a_refused_request_ends_with_the_reason_and_a_denied_exit_code() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    let request_id = Uuid::new_v4();
    let mut payload = request_json(request_id, None);
    payload["environment"] = Value::String("moon".into());
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    let output = wingman(
        &env,
        &[
            "status",
            &request_id.to_string(),
            "--wait",
            "--timeout",
            "20s",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("INVALID"));
    assert!(text(&output.stdout).contains("unknown environment `moon`"));
    env.stop().await;
}

#[tokio::test]
async fn the_seeds_monitoring_queries_run_unchanged() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    for _ in 0..4 {
        env.publish_raw(
            &format!("{}.requests.submitted.anonymous", env.prefix),
            request_json(Uuid::new_v4(), None).to_string(),
        )
        .await;
    }
    env.settle_all().await;
    env.wait_for_count("SELECT count(*) FROM approval_requests", None, 4)
        .await;
    for status in ["AUTO_REJECTED", "AUTO_APPROVED", "PENDING"] {
        let query = match status {
            "AUTO_REJECTED" => {
                "SELECT COUNT(*) FILTER (WHERE status = 'AUTO_REJECTED') * 100.0 / COUNT(*)
   FROM approval_requests
   WHERE created_at > NOW() - INTERVAL '24 hours';"
            }
            "AUTO_APPROVED" => {
                "SELECT COUNT(*) FILTER (WHERE status = 'AUTO_APPROVED') * 100.0 / COUNT(*)
   FROM approval_requests
   WHERE created_at > NOW() - INTERVAL '24 hours';"
            }
            _ => {
                "SELECT COUNT(*) FILTER (WHERE status = 'PENDING') * 100.0 / COUNT(*)
   FROM approval_requests
   WHERE created_at > NOW() - INTERVAL '24 hours';"
            }
        };
        let rate: sqlx::types::BigDecimal = sqlx::query_scalar(query)
            .fetch_one(&env.pool)
            .await
            .unwrap();
        // Validation is disabled (a fresh deployment): every request waits for a human.
        let expected = if status == "PENDING" { 100.0 } else { 0.0 };
        assert_eq!(
            rate.to_string().parse::<f64>().unwrap(),
            expected,
            "{status}"
        );
    }
    let scores: Vec<Option<Value>> = sqlx::query_scalar(
        "SELECT validator_scores
   FROM approval_requests
   WHERE status = 'AUTO_REJECTED'
     AND created_at > NOW() - INTERVAL '24 hours';",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(scores.is_empty());
    env.stop().await;
}

/// `wingman status <id> --wait --json` as a child process, still running.
fn spawn_status_wait(env: &TestEnv, request_id: Uuid) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_wingman"))
        .envs(env.child_env())
        .args([
            "status",
            &request_id.to_string(),
            "--wait",
            "--json",
            "--timeout",
            "60s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run wingman status --wait")
}

#[tokio::test]
async fn status_wait_on_an_approved_command_waits_until_its_execution_ends() {
    let mut env = TestEnv::start().await;
    let name = crate::docker::unique("wt-wait");
    crate::docker::start_container(&name, None).await;
    env.spawn_intake_validating(100).await;
    env.spawn_authority().await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    let payload = well_explained(request_id, "dev", &format!("docker restart {name}"), &name);
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    // Approved and minted; no gateway runs yet, so the latest event is the approval, which
    // names no command.
    env.settle_all().await;
    wait_for_status(&env, request_id, "AUTO_APPROVED").await;
    let mut waiting = spawn_status_wait(&env, request_id);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "status --wait must not stop at the approval of a command"
    );
    env.spawn_gateway(&[wingman::request::Environment::Dev])
        .await;
    let output = waiting.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let last = last_json_line(&output.stdout);
    assert_eq!(last["status"], "SUCCEEDED", "{last}");
    // --json streams one object per stage as it happens (NDJSON), the settling one last.
    let events = json_lines(&output.stdout);
    let statuses: Vec<&str> = events
        .iter()
        .map(|event| event["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses.first(), Some(&"AUTO_APPROVED"), "{statuses:?}");
    let executing = statuses.iter().position(|status| *status == "EXECUTING");
    assert!(
        executing.is_some_and(|at| at + 1 < statuses.len()),
        "EXECUTING comes before SUCCEEDED: {statuses:?}"
    );
    assert!(
        events
            .iter()
            .all(|event| event["request_id"] == request_id.to_string()),
        "{events:?}"
    );
    crate::docker::remove(&name).await;
    env.stop().await;
}

#[tokio::test]
async fn status_wait_on_an_instruction_approval_ends_at_its_decision() {
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    let mut payload = well_explained(request_id, "dev", "docker restart api", "api");
    payload.as_object_mut().unwrap().remove("command");
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    env.settle_all().await;
    let output = spawn_status_wait(&env, request_id)
        .wait_with_output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let last = last_json_line(&output.stdout);
    assert_eq!(last["status"], "AUTO_APPROVED", "{last}");
    env.stop().await;
}

/// The binary alone, without a pipeline: usage errors and what needs no service.
async fn wingman_alone(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_wingman"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run wingman")
}

#[tokio::test]
async fn a_bad_duration_or_environment_is_a_usage_error_naming_the_flag_and_what_it_takes() {
    let since = wingman_alone(&["list", "--since", "soon"]).await;
    assert_eq!(since.status.code(), Some(2), "{}", text(&since.stderr));
    let message = text(&since.stderr);
    assert!(
        message.contains("'--since <SINCE>'") && message.contains("a bare number is seconds"),
        "{message}"
    );
    let zero = wingman_alone(&["status", &Uuid::new_v4().to_string(), "--timeout", "0"]).await;
    assert_eq!(zero.status.code(), Some(2), "{}", text(&zero.stderr));
    assert!(text(&zero.stderr).contains("'--timeout <TIMEOUT>'"));
    let environment = wingman_alone(&[
        "request",
        "--env",
        "staging",
        "--title",
        "t",
        "--description",
        "d",
    ])
    .await;
    assert_eq!(environment.status.code(), Some(2));
    let message = text(&environment.stderr);
    assert!(
        message.contains("'staging'") && message.contains("[possible values: dev, test, prd]"),
        "{message}"
    );
    let help = wingman_alone(&["--help"]).await;
    assert!(
        text(&help.stdout).contains("Exit codes:") && text(&help.stdout).contains("5  timed out"),
        "{}",
        text(&help.stdout)
    );
}

#[tokio::test]
async fn completions_are_printed_for_bash_zsh_and_fish_and_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let output = wingman_alone(&["completions", shell]).await;
        assert!(output.status.success(), "{shell}: {}", text(&output.stderr));
        let script = text(&output.stdout);
        let json_flag = if shell == "fish" { "-l json" } else { "--json" };
        for word in ["request", "approve", "rollout", json_flag] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let bash = text(&wingman_alone(&["completions", "bash"]).await.stdout);
    assert!(bash.contains("complete -F"), "{bash}");
}

#[tokio::test]
async fn the_health_probe_answers_in_json_with_the_reason_when_nothing_listens() {
    let port = crate::nats_server::free_port();
    let url = format!("http://127.0.0.1:{port}/health");
    let output = wingman_alone(&["health", &url, "--json", "--timeout", "2s"]).await;
    assert_eq!(output.status.code(), Some(1));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["ready"], false, "{answer}");
    assert_eq!(answer["url"], url.as_str());
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|error| error.contains("Connection refused")),
        "{answer}"
    );
}

#[tokio::test]
async fn quiet_prints_only_ids_and_a_unique_prefix_stands_for_the_whole_id() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let mut ids = Vec::new();
    for target in ["api", "worker"] {
        let output = wingman(
            &env,
            &[
                "request",
                "--env",
                "dev",
                "--title",
                "Restart it",
                "--description",
                "Reload config. Rollback: start it. Verify: health.",
                "-q",
                "--no-wait",
                "--",
                "docker",
                "restart",
                target,
            ],
        )
        .await;
        assert!(output.status.success(), "{}", text(&output.stderr));
        let printed = text(&output.stdout);
        let id: Uuid = printed
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("-q prints only the id: {printed:?}"));
        assert_eq!(printed, format!("{id}\n"));
        ids.push(id.to_string());
    }
    env.settle_all().await;
    for id in &ids {
        env.wait_for_count(
            "SELECT count(*) FROM approval_requests WHERE request_id = $1",
            Some(id.parse().unwrap()),
            1,
        )
        .await;
    }

    let short = &ids[0][..ids[0].len() - 6];
    let status = wingman(&env, &["status", short]).await;
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(
        text(&status.stdout).contains("docker restart api"),
        "{}",
        text(&status.stdout)
    );

    // Two ids made by one CLI within a few days share their first hex digits.
    let common: String = ids[0]
        .chars()
        .zip(ids[1].chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    assert!(common.len() >= 4, "{ids:?}");
    let ambiguous = wingman(&env, &["status", &common[..4]]).await;
    assert_eq!(ambiguous.status.code(), Some(1));
    let message = text(&ambiguous.stderr);
    assert!(
        message.contains("ambiguous") && message.contains(&ids[0]) && message.contains(&ids[1]),
        "{message}"
    );
    let unknown = wingman(&env, &["status", "ffffffff"]).await;
    assert!(text(&unknown.stderr).contains("no request id starts with `ffffffff`"));

    let list = wingman(&env, &["list", "-q"]).await;
    assert!(list.status.success(), "{}", text(&list.stderr));
    let mut listed: Vec<String> = text(&list.stdout).lines().map(str::to_string).collect();
    listed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected);
    env.stop().await;
}

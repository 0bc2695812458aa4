//! The seed's rollout procedure as written: edit `VALIDATION_ENABLED` /
//! `VALIDATION_ROLLOUT_PERCENT` in the environment and start again. `wingman setup-nats` (the
//! production start, as the process the compose file runs) applies a changed environment,
//! audited as a rollout change by the deployment; an unchanged environment keeps an operator's
//! live `wingman rollout set`. Real NATS and Postgres, the watcher and recorder in-process.

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use wingman::stages::watcher::{self, GuardSettings};

use crate::helpers::{TestEnv, run_wingman, text};

/// The watcher (it audits every revision of the flags and answers `rollout set`).
pub(crate) async fn start_watcher(env: &TestEnv) -> CancellationToken {
    let deps = env
        .watcher_deps(
            None,
            GuardSettings {
                enabled: false,
                ..Default::default()
            },
        )
        .await;
    let stop = env.shutdown.child_token();
    let token = stop.clone();
    tokio::spawn(async move {
        watcher::run(deps, token).await.expect("the watcher runs");
    });
    stop
}

/// `wingman setup-nats` as the deployment runs it, with this `.env.prd`; returns its stdout.
async fn deploy_with(env: &TestEnv, enabled: &str, percent: &str) -> String {
    let output = run_wingman(
        env,
        &[
            ("VALIDATION_ENABLED", enabled),
            ("VALIDATION_ROLLOUT_PERCENT", percent),
        ],
        &["setup-nats"],
    )
    .await;
    assert!(
        output.status.success(),
        "setup-nats failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

async fn live_flags(env: &TestEnv) -> (bool, u8, String) {
    let (flags, _) = env.rollout().await.current().await.unwrap();
    (flags.enabled, flags.percent, flags.updated_by)
}

/// `data` of the watcher's `rollout_changed` rows, oldest first, once there are `rows`; then
/// checks no more come.
async fn rollout_audit(env: &TestEnv, rows: usize) -> Vec<Value> {
    let query = "SELECT data FROM audit_events WHERE kind = 'rollout_changed' AND stage = 'watcher' ORDER BY seq";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let audit: Vec<Value> = sqlx::query_scalar(query)
            .fetch_all(&env.pool)
            .await
            .unwrap();
        if audit.len() >= rows {
            env.settle_all().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let again: Vec<Value> = sqlx::query_scalar(query)
                .fetch_all(&env.pool)
                .await
                .unwrap();
            assert_eq!(again.len(), rows, "{again:#?}");
            return again;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} rollout_changed rows, expected {rows}: {audit:#?}",
            audit.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_deployment_change(row: &Value, old: (bool, u64), new: (bool, u64)) {
    assert_eq!(row["by"], "deployment", "{row}");
    assert_eq!(row["author_proven"], true, "{row}");
    assert_eq!(row["via"], "environment", "{row}");
    assert_eq!(
        (
            row["old"]["enabled"].as_bool(),
            row["old"]["percent"].as_u64()
        ),
        (Some(old.0), Some(old.1)),
        "{row}"
    );
    assert_eq!(
        (
            row["new"]["enabled"].as_bool(),
            row["new"]["percent"].as_u64()
        ),
        (Some(new.0), Some(new.1)),
        "{row}"
    );
}

#[tokio::test]
async fn an_edited_environment_applies_at_the_next_start_and_is_audited_as_the_deployment() {
    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    let _watcher = start_watcher(&env).await;

    // The first deploy: the seed's `.env.prd` (validation disabled) seeds the flags.
    let first = deploy_with(&env, "0", "100").await;
    assert!(first.contains("seeded from the environment"), "{first}");
    assert_eq!(live_flags(&env).await, (false, 100, "environment".into()));

    // Week 1, day 1: VALIDATION_ENABLED=1, VALIDATION_ROLLOUT_PERCENT=10, restart.
    let day_one = deploy_with(&env, "1", "10").await;
    assert!(day_one.contains("environment changed"), "{day_one}");
    assert_eq!(live_flags(&env).await, (true, 10, "deployment".into()));

    // A restart with the same `.env.prd` writes nothing.
    let restart = deploy_with(&env, "1", "10").await;
    assert!(restart.contains("environment unchanged"), "{restart}");

    // Day 4: VALIDATION_ROLLOUT_PERCENT=50, restart.
    deploy_with(&env, "1", "50").await;
    assert_eq!(live_flags(&env).await, (true, 50, "deployment".into()));

    let audit = rollout_audit(&env, 3).await;
    assert_eq!(
        audit[0]["claimed_by"], "environment",
        "the seed: {}",
        audit[0]
    );
    assert_deployment_change(&audit[1], (false, 100), (true, 10));
    assert_deployment_change(&audit[2], (true, 10), (true, 50));
    let verify = run_wingman(&env, &[], &["audit", "verify"]).await;
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    env.stop().await;
}

#[tokio::test]
async fn an_unchanged_environment_keeps_a_live_rollout_set_and_an_edited_one_wins_at_the_next_start()
 {
    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    let _watcher = start_watcher(&env).await;
    deploy_with(&env, "1", "10").await;

    // An operator lowers the rollout live, between restarts.
    let set = run_wingman(&env, &[], &["rollout", "set", "5", "--by", "ops-carol"]).await;
    assert!(set.status.success(), "{}", text(&set.stderr));
    assert_eq!(live_flags(&env).await, (true, 5, "ops-carol".into()));

    // A restart with the `.env.prd` unchanged keeps the operator's value.
    let restart = deploy_with(&env, "1", "10").await;
    assert!(restart.contains("live flags kept"), "{restart}");
    assert_eq!(live_flags(&env).await, (true, 5, "ops-carol".into()));

    // An edited `.env.prd` wins at the next start, over the live value.
    deploy_with(&env, "1", "50").await;
    assert_eq!(live_flags(&env).await, (true, 50, "deployment".into()));

    // And `rollout set` stays live after it.
    let set = run_wingman(&env, &[], &["rollout", "set", "20", "--by", "ops-carol"]).await;
    assert!(set.status.success(), "{}", text(&set.stderr));
    assert_eq!(live_flags(&env).await, (true, 20, "ops-carol".into()));

    let audit = rollout_audit(&env, 4).await;
    assert_eq!(audit[1]["by"], "ops-carol", "{}", audit[1]);
    assert_deployment_change(&audit[2], (true, 5), (true, 50));
    assert_eq!(audit[3]["by"], "ops-carol", "{}", audit[3]);
    env.stop().await;
}

/// Starts `wingman-intake` as a local deployment does (it sets up the topology itself) with
/// this environment, and waits until it has applied it.
async fn start_local_intake(env: &TestEnv, enabled: &str, percent: &str) -> tokio::process::Child {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(crate::helpers::worker_binary("wingman-intake"))
        .envs(env.child_env())
        .envs([
            ("WINGMAN_ENSURE_TOPOLOGY", "1"),
            ("RUST_LOG", "info"),
            ("VALIDATION_ENABLED", enabled),
            ("VALIDATION_ROLLOUT_PERCENT", percent),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start wingman-intake");
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let applied = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("rollout flags at start") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(applied, Ok(true)),
        "wingman-intake did not apply the environment"
    );
    child
}

#[tokio::test]
async fn a_local_intake_that_sets_up_the_topology_applies_an_edited_environment_too() {
    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    let _watcher = start_watcher(&env).await;
    let mut intake = start_local_intake(&env, "1", "30").await;
    assert_eq!(live_flags(&env).await, (true, 30, "environment".into()));
    intake.kill().await.unwrap();

    let set = run_wingman(&env, &[], &["rollout", "set", "5", "--by", "ops-carol"]).await;
    assert!(set.status.success(), "{}", text(&set.stderr));
    let mut intake = start_local_intake(&env, "1", "30").await;
    assert_eq!(live_flags(&env).await, (true, 5, "ops-carol".into()));
    intake.kill().await.unwrap();

    let _intake = start_local_intake(&env, "1", "60").await;
    assert_eq!(live_flags(&env).await, (true, 60, "deployment".into()));
    let audit = rollout_audit(&env, 3).await;
    assert_deployment_change(&audit[2], (true, 5), (true, 60));
    env.stop().await;
}

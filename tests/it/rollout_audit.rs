//! Every rollout change is audited by the system, whoever makes it: operators change the
//! rollout through the watcher on their own subject (the author proven by NATS), a direct
//! write to the bucket is audited as such, a restart audits nothing twice, and the guard
//! may only lower the rollout. Against a nats-server with `nats/auth.conf`.

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use wingman::bus::topology::open_bucket;
use wingman::rollout::change::UNPROVEN;
use wingman::rollout::{BUCKET, Rollout};
use wingman::stages::watcher::{self, GuardSettings};

use crate::helpers::{TestEnv, run_wingman, text};
use crate::nats_server::{NatsServer, USERS, credentials, password};

fn flags(enabled: bool, percent: u8, by: &str) -> Rollout {
    Rollout {
        enabled,
        percent,
        updated_by: by.into(),
        updated_at: chrono::Utc::now(),
    }
}

/// The watcher as its own NATS user, stoppable on its own.
async fn start_watcher(env: &TestEnv) -> (CancellationToken, tokio::task::JoinHandle<()>) {
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
    let task = tokio::spawn(async move {
        watcher::run(deps, token).await.expect("the watcher runs");
    });
    (stop, task)
}

/// `data` of the `rollout_changed` rows, oldest first.
async fn rollout_audit(env: &TestEnv) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT data FROM audit_events WHERE kind = 'rollout_changed' AND stage = 'watcher' ORDER BY seq",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

async fn wait_for_rollout_audit(env: &TestEnv, rows: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let audit = rollout_audit(env).await;
        if audit.len() >= rows {
            return audit;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} rollout_changed rows, expected {rows}: {audit:?}",
            audit.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn operator_cli(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let password = password("operator");
    run_wingman(
        env,
        &[("NATS_USER", "operator"), ("NATS_PASSWORD", &password)],
        args,
    )
    .await
}

#[tokio::test]
async fn an_operator_changes_the_rollout_only_through_the_watcher_and_is_proven_by_its_subject() {
    let server = NatsServer::single().await;
    let mut env = TestEnv::on_server(&server).await;
    env.rollout()
        .await
        .seed(&flags(true, 100, "environment"))
        .await
        .unwrap();
    env.connect_stage_as("watcher", credentials("watcher"))
        .await;
    env.connect_stage_as("recorder", credentials("recorder"))
        .await;
    env.spawn_recorder().await;
    let (_stop, _watcher) = start_watcher(&env).await;

    // `--by` names nobody when the operator is a NATS user: the author is the user.
    let set = operator_cli(&env, &["rollout", "set", "10", "--by", "ops-carol"]).await;
    assert!(set.status.success(), "{}", text(&set.stderr));
    assert_eq!(
        text(&set.stdout).trim(),
        "validation: enabled, 100 % → enabled, 10 %"
    );
    let disable = operator_cli(&env, &["rollout", "disable"]).await;
    assert!(disable.status.success(), "{}", text(&disable.stderr));
    let audit = wait_for_rollout_audit(&env, 3).await;
    assert_eq!(audit[0]["by"], UNPROVEN, "the seed: {}", audit[0]);
    assert_eq!(audit[0]["claimed_by"], "environment");
    for (row, (old, new)) in audit[1..].iter().zip([(100, 10), (10, 10)]) {
        assert_eq!(row["by"], "operator", "{row}");
        assert_eq!(row["author_proven"], true);
        assert_eq!(row["via"], "wingman.rollout.change.operator");
        assert_eq!(
            (
                row["old"]["percent"].as_u64(),
                row["new"]["percent"].as_u64()
            ),
            (Some(old), Some(new))
        );
    }
    assert_eq!(audit[2]["new"]["enabled"], false);

    // The operator may neither write the bucket itself nor ask as someone else.
    let operator =
        async_nats::ConnectOptions::with_user_and_password("operator".into(), password("operator"))
            .custom_inbox_prefix(credentials("operator").inbox_prefix())
            .connect(server.url())
            .await
            .unwrap();
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(1))
        .build(operator.clone());
    let direct = js
        .publish(
            "$KV.wingman_rollout.validation",
            serde_json::to_vec(&flags(true, 100, "operator"))
                .unwrap()
                .into(),
        )
        .await;
    let stored = match direct {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    assert!(!stored, "an operator wrote the rollout bucket");
    let as_admin = tokio::time::timeout(
        Duration::from_secs(2),
        operator.request(
            "wingman.rollout.change.admin",
            r#"{"percent":100}"#.as_bytes().to_vec().into(),
        ),
    )
    .await;
    assert!(!matches!(as_admin, Ok(Ok(_))), "an operator asked as admin");
    // A name in the body is refused, not believed.
    let with_name = operator
        .request(
            "wingman.rollout.change.operator",
            r#"{"percent":100,"by":"ops-dave"}"#.as_bytes().to_vec().into(),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&with_name.payload).unwrap();
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `by`"),
        "{answer}"
    );
    // Past the CLI (which requires --reason with --force), a raw forced raise without a reason
    // is refused by the watcher, naming the field, and changes nothing.
    let forced = operator
        .request(
            "wingman.rollout.change.operator",
            r#"{"percent":100,"force":true}"#.as_bytes().to_vec().into(),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&forced.payload).unwrap();
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("reason: a forced change needs a reason"),
        "{answer}"
    );
    // Nobody but the watcher (and admin) writes the flags.
    let writers_refused: Vec<&str> = USERS
        .iter()
        .copied()
        .filter(|user| !matches!(*user, "admin" | "watcher"))
        .collect();
    for user in &writers_refused {
        let client =
            async_nats::ConnectOptions::with_user_and_password(user.to_string(), password(user))
                .connect(server.url())
                .await
                .unwrap();
        client
            .publish(
                "$KV.wingman_rollout.validation",
                serde_json::to_vec(&flags(true, 100, user)).unwrap().into(),
            )
            .await
            .unwrap();
        client.flush().await.unwrap();
    }
    let (flags_now, _) = env.rollout().await.current().await.unwrap();
    assert_eq!((flags_now.enabled, flags_now.percent), (false, 10));
    assert_eq!(flags_now.updated_by, "operator");
    let log = server.log();
    for user in writers_refused {
        assert!(
            log.lines().any(|line| line.contains("Violation")
                && line.contains(&format!("User \"{user}\""))
                && line.contains("$KV.wingman_rollout.validation")),
            "{user} may write the rollout bucket"
        );
    }
    for violation in [
        "$KV.wingman_rollout.validation",
        "wingman.rollout.change.admin",
    ] {
        assert!(
            log.lines().any(|line| line.contains("Violation")
                && line.contains("User \"operator\"")
                && line.contains(violation)),
            "no violation logged for {violation}"
        );
    }
    let watcher_refused: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Violation") && line.contains("User \"watcher\""))
        .collect();
    assert!(
        watcher_refused.is_empty(),
        "the watcher lacks a permission: {watcher_refused:#?}"
    );
    env.settle_all().await;
    let verify = run_wingman(&env, &[], &["audit", "verify"]).await;
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    env.stop().await;
}

#[tokio::test]
async fn a_direct_admin_write_is_audited_as_unproven_and_a_restart_audits_nothing_twice() {
    let server = NatsServer::single().await;
    let mut env = TestEnv::on_server(&server).await;
    env.rollout()
        .await
        .seed(&flags(true, 100, "environment"))
        .await
        .unwrap();
    env.connect_stage_as("watcher", credentials("watcher"))
        .await;
    env.spawn_recorder().await;
    let (stop, watcher_task) = start_watcher(&env).await;
    let change = operator_cli(&env, &["rollout", "set", "50"]).await;
    assert!(change.status.success(), "{}", text(&change.stderr));
    wait_for_rollout_audit(&env, 2).await;

    // `admin` copies the current value (with the watcher's mark in it) and writes it back
    // with another percent, as `nats kv put` would: the copied mark proves nothing.
    let bucket = open_bucket(&env.bus.js, &env.bus.subjects.localize_name(BUCKET))
        .await
        .unwrap();
    let current = bucket.get("validation").await.unwrap().unwrap();
    let mut value: Value = serde_json::from_slice(&current).unwrap();
    assert_eq!(value["change"]["author"], "operator", "{value}");
    value["percent"] = 100.into();
    bucket
        .put("validation", value.to_string().into())
        .await
        .unwrap();
    let audit = wait_for_rollout_audit(&env, 3).await;
    assert_eq!(audit[2]["by"], UNPROVEN, "{}", audit[2]);
    assert_eq!(audit[2]["author_proven"], false);
    assert_eq!(audit[2]["claimed_by"], "operator");
    assert_eq!(
        (
            audit[2]["old"]["percent"].as_u64(),
            audit[2]["new"]["percent"].as_u64()
        ),
        (Some(50), Some(100))
    );

    // A new watcher replays the bucket's history: the same revisions, the same event ids.
    stop.cancel();
    watcher_task.await.unwrap();
    let (_stop, _watcher) = start_watcher(&env).await;
    let after = operator_cli(&env, &["rollout", "set", "10"]).await;
    assert!(after.status.success(), "{}", text(&after.stderr));
    let audit = wait_for_rollout_audit(&env, 4).await;
    env.settle_all().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let audit_again = rollout_audit(&env).await;
    assert_eq!(audit_again.len(), 4, "{audit_again:#?}");
    assert_eq!(audit[3]["by"], "operator");
    let revisions: Vec<u64> = audit_again
        .iter()
        .map(|row| row["revision"].as_u64().unwrap())
        .collect();
    let mut unique = revisions.clone();
    unique.dedup();
    assert_eq!(unique, revisions, "each revision audited once");

    // The guard's own change is audited by the same watch, with its reason.
    env.rollout()
        .await
        .lower_as(
            watcher::GUARD_AUTHOR,
            "false positives 20.0 % > 10 %",
            |current| Rollout {
                percent: 0,
                ..current.clone()
            },
        )
        .await
        .unwrap();
    let audit = wait_for_rollout_audit(&env, 5).await;
    assert_eq!(audit[4]["by"], watcher::GUARD_AUTHOR, "{}", audit[4]);
    assert_eq!(audit[4]["author_proven"], true);
    assert_eq!(audit[4]["via"], "guard");
    assert_eq!(audit[4]["reason"], "false positives 20.0 % > 10 %");
    assert_eq!(
        (
            audit[4]["old"]["percent"].as_u64(),
            audit[4]["new"]["percent"].as_u64()
        ),
        (Some(10), Some(0))
    );
    env.stop().await;
}

#[tokio::test]
async fn the_rollout_guard_may_only_lower_the_rollout() {
    let env = TestEnv::start().await;
    let rollout = env.rollout().await;
    rollout.seed(&flags(true, 50, "environment")).await.unwrap();
    let to = |enabled: bool, percent: u8| {
        move |current: &Rollout| Rollout {
            enabled,
            percent,
            ..current.clone()
        }
    };
    let raised = rollout
        .lower_as(watcher::GUARD_AUTHOR, "a guard gone wrong", to(true, 100))
        .await;
    assert!(raised.unwrap_err().to_string().contains(
        "the rollout guard may only lower the rollout: enabled, 50 % → enabled, 100 % refused"
    ),);
    let (old, new) = rollout
        .lower_as(watcher::GUARD_AUTHOR, "false positives", to(true, 10))
        .await
        .unwrap();
    assert_eq!((old.percent, new.percent), (50, 10));
    rollout
        .change_as("operator", "test", to(false, 10))
        .await
        .unwrap();
    let enabled = rollout
        .lower_as(watcher::GUARD_AUTHOR, "a guard gone wrong", to(true, 0))
        .await;
    assert!(enabled.is_err(), "the guard enabled validation");
    let (now, _) = rollout.current().await.unwrap();
    assert_eq!((now.enabled, now.percent), (false, 10));
    env.stop().await;
}

//! The live rollout (changed through the CLI while the validator runs), the report's rates on
//! a seeded set, and the rollout guard.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;
use wingman::envelope::RequestId;
use wingman::stages::watcher::{self, GuardSettings};

use crate::fake_telegram::FakeTelegram;
use crate::helpers::{APPROVER_CHAT, TestEnv, request_json, run_wingman, text};

async fn wingman(env: &TestEnv, args: &[&str]) -> Output {
    let output = run_wingman(env, &[], args).await;
    assert!(
        output.status.success(),
        "wingman {args:?}: {}",
        text(&output.stderr)
    );
    output
}

/// A request id whose rollout bucket is below (or not below) 50.
fn id_in_bucket(below_50: bool) -> Uuid {
    loop {
        let id = RequestId::generate();
        if (id.rollout_bucket() < 50) == below_50 {
            return id.as_uuid();
        }
    }
}

async fn applied(env: &TestEnv, request_id: Uuid) -> (bool, i16) {
    sqlx::query_as(
        "SELECT validation_applied, rollout_bucket FROM approval_requests WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

async fn submit_and_settle(env: &TestEnv, request_id: Uuid) {
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request_json(request_id, None).to_string(),
    )
    .await;
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND validation_applied IS NOT NULL",
        Some(request_id),
        1,
    )
    .await;
    env.settle_all().await;
}

#[tokio::test]
async fn a_rollout_change_through_the_cli_applies_to_the_next_request_and_a_request_keeps_its_bucket()
 {
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_recorder();
    // The watcher writes the flags for operators and audits each change.
    env.spawn_watcher(
        None,
        GuardSettings {
            enabled: false,
            ..Default::default()
        },
    )
    .await;

    let set = wingman(&env, &["rollout", "set", "50", "--by", "ops-carol"]).await;
    assert_eq!(
        String::from_utf8_lossy(&set.stdout).trim(),
        "validation: enabled, 100 % → enabled, 50 %"
    );
    let (inside, outside) = (id_in_bucket(true), id_in_bucket(false));
    submit_and_settle(&env, inside).await;
    submit_and_settle(&env, outside).await;
    assert_eq!(
        applied(&env, inside).await,
        (true, RequestId::from_uuid(inside).rollout_bucket() as i16)
    );
    assert_eq!(
        applied(&env, outside).await,
        (false, RequestId::from_uuid(outside).rollout_bucket() as i16)
    );

    wingman(&env, &["rollout", "disable", "--by", "ops-carol"]).await;
    let while_disabled = id_in_bucket(true);
    submit_and_settle(&env, while_disabled).await;
    assert!(
        !applied(&env, while_disabled).await.0,
        "disabled: nobody validated"
    );

    // The same request again is the same request, in the same bucket.
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request_json(inside, None).to_string(),
    )
    .await;
    env.settle_all().await;
    assert_eq!(
        applied(&env, inside).await,
        (true, RequestId::from_uuid(inside).rollout_bucket() as i16)
    );

    let show = wingman(&env, &["rollout", "show", "--json"]).await;
    let flags: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(
        (flags["enabled"].as_bool(), flags["percent"].as_u64()),
        (Some(false), Some(50))
    );
    assert_eq!(flags["updated_by"], "ops-carol");
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'rollout_changed' AND data->>'by' = 'ops-carol'",
        None,
        2,
    )
    .await;
    let changes: Vec<(Value, Value)> = sqlx::query_as(
        "SELECT data->'old', data->'new' FROM audit_events WHERE kind = 'rollout_changed' AND data->>'by' = 'ops-carol' ORDER BY seq",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(changes.len(), 2, "each change audited: {changes:?}");
    assert_eq!(
        (
            changes[0].0["percent"].as_u64(),
            changes[0].1["percent"].as_u64()
        ),
        (Some(100), Some(50))
    );
    env.stop().await;
}

/// Seeds `count` validated requests with `decision`, `false_positives` of them overridden.
async fn seed(env: &TestEnv, count: usize, decision: &str, false_positives: usize, applied: bool) {
    for index in 0..count {
        sqlx::query(
            "INSERT INTO approval_requests (request_id, requester, environment, title, description, status,
                created_at, updated_at, validation_applied, validation_decision, false_positive)
             VALUES ($1, 'seed', 'prd', 't', 'd', $2, now(), now(), $3, $4, $5)",
        )
        .bind(Uuid::new_v4())
        .bind(if index < false_positives { "APPROVED" } else { decision })
        .bind(applied)
        .bind(applied.then_some(decision))
        .bind(index < false_positives)
        .execute(&env.pool)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn the_report_computes_the_seeds_rates_over_the_validated_cohort() {
    let env = TestEnv::start().await;
    seed(&env, 4, "AUTO_REJECTED", 0, true).await;
    seed(&env, 8, "AUTO_APPROVED", 0, true).await;
    seed(&env, 28, "PENDING", 0, true).await;
    seed(&env, 10, "PENDING", 0, false).await;
    let output = wingman(&env, &["rollout", "report", "--since", "24h", "--json"]).await;
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["counts"]["total"], 50);
    assert_eq!(report["counts"]["validated"], 40);
    assert_eq!(report["rates"]["auto_reject"], 10.0);
    assert_eq!(report["rates"]["auto_approve"], 20.0);
    assert_eq!(report["rates"]["manual_review"], 70.0);
    assert_eq!(report["verdict"], "GO");

    seed(&env, 1, "AUTO_REJECTED", 1, true).await;
    let output = wingman(&env, &["rollout", "report", "--json"]).await;
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["rates"]["false_positive"], 20.0);
    assert_eq!(report["verdict"], "NO_GO");
    let human = wingman(&env, &["rollout", "report"]).await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("verdict: NO-GO")
            && text.contains("false positives 20.0 % > 10 % (critical)"),
        "{text}"
    );
    env.stop().await;
}

#[tokio::test]
async fn too_few_requests_are_insufficient_data_never_a_go() {
    let env = TestEnv::start().await;
    seed(&env, 1, "AUTO_REJECTED", 0, true).await;
    seed(&env, 2, "AUTO_APPROVED", 0, true).await;
    let output = wingman(&env, &["rollout", "report", "--json"]).await;
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verdict"], "INSUFFICIENT_DATA");
    env.stop().await;
}

#[tokio::test]
async fn a_burst_of_overridden_auto_rejections_makes_the_guard_lower_the_rollout() {
    let fake = FakeTelegram::start().await;
    let env = TestEnv::start().await;
    env.rollout()
        .await
        .seed(&wingman::rollout::Rollout {
            enabled: true,
            percent: 100,
            updated_by: "test".into(),
            updated_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    seed(&env, 12, "AUTO_REJECTED", 3, true).await;
    let deps = env
        .watcher_deps(
            Some(&fake),
            GuardSettings {
                every: Duration::from_millis(1),
                ..Default::default()
            },
        )
        .await;
    let action = watcher::guard(&deps).await.unwrap();
    assert_eq!(action.action, "lowered", "{action:?}");
    let (rollout, _) = env.rollout().await.current().await.unwrap();
    assert_eq!((rollout.enabled, rollout.percent), (true, 50));
    assert_eq!(rollout.updated_by, "watcher (rollout guard)");
    let told = fake
        .wait_for_sent(
            |sent| sent.chat_id == APPROVER_CHAT,
            Duration::from_secs(10),
        )
        .await;
    assert!(
        told.text.contains("Rollout guard") && told.text.contains("100 % → 50 %"),
        "{}",
        told.text
    );
    let report = wingman(&env, &["rollout", "report"]).await;
    assert!(String::from_utf8_lossy(&report.stdout).contains("rollout guard, last look at"));
    env.stop().await;
}

#[tokio::test]
async fn a_quiet_period_with_three_requests_leaves_the_rollout_alone() {
    let env = TestEnv::start().await;
    env.rollout()
        .await
        .seed(&wingman::rollout::Rollout {
            enabled: true,
            percent: 100,
            updated_by: "test".into(),
            updated_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    seed(&env, 1, "AUTO_REJECTED", 1, true).await;
    seed(&env, 2, "PENDING", 0, true).await;
    let deps = env.watcher_deps(None, GuardSettings::default()).await;
    let action = watcher::guard(&deps).await.unwrap();
    assert_eq!(action.action, "insufficient_data");
    assert!(action.detail.starts_with("insufficient data"));
    assert_eq!(env.rollout().await.current().await.unwrap().0.percent, 100);
    env.stop().await;
}

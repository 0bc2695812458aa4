//! The audit chain against tampering: an edit is named, a truncation caught by a checkpoint.

use std::process::Output;

use uuid::Uuid;

use crate::helpers::{TestEnv, run_wingman};

async fn wingman(env: &TestEnv, args: &[&str]) -> Output {
    run_wingman(env, &[], args).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

async fn record_requests(env: &mut TestEnv, count: usize) -> Vec<Uuid> {
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    env.submit_anonymous(&ids).await;
    env.settle_all().await;
    // Two rows per request: received, then intake's decision.
    env.wait_for_count("SELECT count(*) FROM audit_events", None, 2 * count as i64)
        .await;
    ids
}

#[tokio::test]
async fn an_edited_audit_row_is_named_by_audit_verify() {
    let mut env = TestEnv::start().await;
    record_requests(&mut env, 5).await;
    let clean = wingman(&env, &["audit", "verify"]).await;
    assert!(clean.status.success());
    assert!(
        stdout(&clean).starts_with("audit chain OK: 10 rows, head row 10 hash "),
        "{}",
        stdout(&clean)
    );

    // A superuser bypasses the append-only trigger and rewrites history.
    sqlx::query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET actor = 'intake@elsewhere' WHERE seq = 3")
        .execute(&env.pool)
        .await
        .unwrap();
    let tampered = wingman(&env, &["audit", "verify"]).await;
    assert_eq!(tampered.status.code(), Some(4));
    assert!(
        stdout(&tampered)
            .starts_with("audit chain BROKEN at row 3: row 3 (request_received, event "),
        "{}",
        stdout(&tampered)
    );

    sqlx::query(
        "UPDATE audit_events SET actor = 'x', hash = 'recomputed-by-mallory' WHERE seq = 3",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let relinked = wingman(&env, &["audit", "verify"]).await;
    assert!(
        stdout(&relinked).starts_with("audit chain BROKEN at row 3"),
        "{}",
        stdout(&relinked)
    );
    env.stop().await;
}

#[tokio::test]
async fn deleting_the_newest_rows_is_caught_against_a_checkpoint() {
    let mut env = TestEnv::start().await;
    let ids = record_requests(&mut env, 4).await;
    let keys = env.keys_dir.path().to_path_buf();
    let keygen = wingman(
        &env,
        &["keygen", "--dir", keys.to_str().unwrap(), "--name", "audit"],
    )
    .await;
    assert!(
        keygen.status.success(),
        "{}",
        String::from_utf8_lossy(&keygen.stderr)
    );
    let checkpoint = wingman(
        &env,
        &[
            "audit",
            "checkpoint",
            "--key",
            keys.join("audit.key").to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        checkpoint.status.success(),
        "{}",
        String::from_utf8_lossy(&checkpoint.stderr)
    );
    let checkpoint_file = keys.join("checkpoint.paseto");
    let audit_pub = keys.join("audit.pub");
    std::fs::write(&checkpoint_file, stdout(&checkpoint)).unwrap();
    let against = [
        "audit",
        "verify",
        "--against",
        checkpoint_file.to_str().unwrap(),
        "--key",
        audit_pub.to_str().unwrap(),
    ];
    let holds = wingman(&env, &against).await;
    assert!(holds.status.success(), "{}", stdout(&holds));

    // The request whose story starts the log (intake handles a batch concurrently, so it is
    // not always the first submitted): its first rows survive the truncation below.
    let first: uuid::Uuid = sqlx::query_scalar("SELECT request_id FROM audit_events WHERE seq = 1")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_events WHERE seq > 2")
        .execute(&env.pool)
        .await
        .unwrap();
    let alone = wingman(&env, &["audit", "verify"]).await;
    assert!(
        alone.status.success(),
        "a truncated chain is self-consistent: {}",
        stdout(&alone)
    );
    let caught = wingman(&env, &against).await;
    assert_eq!(caught.status.code(), Some(4));
    assert!(
        stdout(&caught).contains("truncated: the checkpoint of"),
        "{}",
        stdout(&caught)
    );
    assert!(stdout(&caught).contains("saw row 8, the log now ends at row 2"));

    assert!(ids.contains(&first), "{first} is not one of {ids:?}");
    let story = wingman(&env, &["audit", "show", &first.to_string()]).await;
    assert!(
        stdout(&story).contains("request_received"),
        "{}",
        stdout(&story)
    );
    env.stop().await;
}

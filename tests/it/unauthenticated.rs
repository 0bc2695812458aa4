//! What an unauthenticated caller can write into the permanent audit is bounded: a flood of
//! 401s at the HTTP edge, or of `/approve` from a Telegram stranger, is counted in full in
//! `wingman_access_denied_total` but audited one by one only up to the per-source limit; the
//! rest of the window becomes one summary event with the count.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;
use wingman::access::guard::Guard;
use wingman::access::throttle::{AuditThrottle, SUMMARY_REASON, ThrottleLimits};
use wingman::events::Stage;

use crate::fake_telegram::FakeTelegram;
use crate::helpers::{APPROVER_CHAT, READ_KEY, TestEnv};

const FLOOD: usize = 20;

/// The API with a guard whose audit window is short enough to see it close.
async fn spawn_api_with(env: &mut TestEnv, limits: ThrottleLimits) -> SocketAddr {
    let state = wingman::api::ApiState::new(
        env.bus.clone(),
        env.pool.clone(),
        Guard {
            throttle: AuditThrottle::new(limits),
            ..env.guard(Stage::Api)
        },
        wingman::metrics::install().unwrap(),
        "api@test".into(),
        &wingman::settings::ApiSettings::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(wingman::web::serve(listener, state, env.shutdown.clone()));
    address
}

async fn access_denied_rows(env: &TestEnv) -> Vec<Value> {
    sqlx::query_scalar("SELECT data FROM audit_events WHERE kind = 'access_denied' ORDER BY seq")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

/// The value of `wingman_access_denied_total` for these labels in a scrape.
fn refused_count(scrape: &str, edge: &str, audited: &str) -> f64 {
    let series = format!("{}{{", wingman::metrics::ACCESS_DENIED);
    scrape
        .lines()
        .filter(|line| line.starts_with(&series))
        .filter(|line| {
            line.contains(&format!("edge=\"{edge}\""))
                && line.contains(&format!("audited=\"{audited}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_flood_of_401s_writes_a_bounded_number_of_audit_rows_and_one_summary() {
    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    let limits = ThrottleLimits {
        per_window: 3,
        window: Duration::from_secs(2),
        max_sources: 16,
    };
    let address = spawn_api_with(&mut env, limits).await;
    let client = reqwest::Client::new();
    for index in 0..FLOOD {
        let mut call = client.get(format!("http://{address}/requests"));
        if index % 2 == 1 {
            call = call.header("x-api-key", "wmk_guessed");
        }
        let answer = call.send().await.unwrap();
        assert_eq!(answer.status(), 401);
    }
    // The window closes, its summary is published and recorded.
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'access_denied'",
        None,
        4,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.settle_all().await;
    let rows = access_denied_rows(&env).await;
    assert_eq!(rows.len(), 4, "3 refusals and 1 summary: {rows:#?}");
    for row in &rows[..3] {
        assert_eq!(row["source"], "127.0.0.1", "{row}");
        assert_eq!(row["route"], "/requests");
    }
    let summary = &rows[3];
    assert_eq!(summary["reason"], SUMMARY_REASON);
    assert_eq!(summary["suppressed"], (FLOOD - 3) as u64);
    assert_eq!(summary["top_sources"][0]["source"], "127.0.0.1");
    assert_eq!(summary["window_secs"], 2);
    // Every refusal was counted.
    let scrape = client
        .get(format!("http://{address}/metrics"))
        .header("x-api-key", READ_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(refused_count(&scrape, "api", "true") >= 3.0, "{scrape}");
    assert!(
        refused_count(&scrape, "api", "false") >= (FLOOD - 3) as f64,
        "{scrape}"
    );
    // A new window audits again.
    let answer = client
        .get(format!("http://{address}/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'access_denied'",
        None,
        5,
    )
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_telegram_stranger_flooding_approve_is_audited_only_up_to_the_limit() {
    let fake = FakeTelegram::start().await;
    let mut env = TestEnv::start().await;
    env.spawn_approvals(Some(&fake), &["telegram:42"], 1).await;
    env.spawn_recorder().await;
    let stranger = 99;
    let request_id = Uuid::new_v4();
    for _ in 0..FLOOD {
        fake.user_sends_text(stranger, APPROVER_CHAT, &format!("/approve {request_id}"));
    }
    // Every one is answered (refused) …
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while fake
        .sent()
        .iter()
        .filter(|sent| sent.text.contains("not authorized"))
        .count()
        < FLOOD
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot did not answer every stranger's /approve: {:#?}",
            fake.sent()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.settle_all().await;
    // … but only the first few are in the audit (the rest in the minute's summary).
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE kind = 'access_denied' AND request_id = $1",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let limit = ThrottleLimits::default().per_window as i64;
    assert_eq!(audited, limit);
    let rows = access_denied_rows(&env).await;
    assert!(
        rows.iter()
            .all(|row| row["approver"] == format!("telegram:{stranger}")),
        "{rows:#?}"
    );
    env.stop().await;
}

//! Bounded storage: `setup-nats` puts the declared limits on streams and buckets that were
//! created without them, and one request of the largest valid size takes a known, bounded
//! number of bytes in NATS and Postgres (the README's "what one publisher can fill").

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;
use wingman::request::MAX_DESCRIPTION_BYTES;

use crate::helpers::{TEST_STREAM_MAX_BYTES, TestEnv};

/// What one request of the largest valid size may take (README, "Storage limits").
const MAX_NATS_BYTES_PER_REQUEST: u64 = 512 * 1024;
const MAX_POSTGRES_BYTES_PER_REQUEST: i64 = 256 * 1024;

#[tokio::test]
async fn setup_nats_bounds_streams_and_buckets_that_were_created_unbounded() {
    let env = TestEnv::start().await;
    let js = &env.bus.js;
    let requests = env.bus.subjects.localize_name("WINGMAN_REQUESTS");
    let claims = format!("KV_{}", env.bus.subjects.localize_name("wingman_claims"));
    // As an older deployment made them: no byte limit, claims kept forever.
    for name in [&requests, &claims] {
        let mut config = js
            .get_stream(name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .config
            .clone();
        config.max_bytes = -1;
        config.max_age = Duration::ZERO;
        js.update_stream(config).await.unwrap();
    }

    env.bus.topology.ensure(js).await.unwrap();

    // The declared limits (capped in tests at TEST_STREAM_MAX_BYTES, a reservation each).

    let requests = js
        .get_stream(&requests)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(requests.max_bytes, TEST_STREAM_MAX_BYTES);
    assert_eq!(requests.max_age, Duration::from_secs(7 * 24 * 3600));
    let claims = js
        .get_stream(&claims)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(claims.max_bytes, TEST_STREAM_MAX_BYTES);
    assert_eq!(claims.max_age, Duration::from_secs(24 * 3600));
    env.stop().await;
}

#[tokio::test]
async fn one_request_of_the_largest_valid_size_takes_a_bounded_number_of_bytes() {
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    // Random words, so neither JetStream nor Postgres (TOAST) can compress them away.
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut description = String::with_capacity(MAX_DESCRIPTION_BYTES);
    while description.len() < MAX_DESCRIPTION_BYTES {
        for byte in Uuid::new_v4().as_bytes() {
            description.push(LETTERS[usize::from(*byte) % LETTERS.len()] as char);
        }
        description.push(' ');
    }
    description.truncate(MAX_DESCRIPTION_BYTES);
    let request = json!({
        "request_id": request_id,
        "requester": "ops-anna",
        "environment": "prd",
        "command": "docker restart api",
        "title": "t".repeat(200),
        "description": description,
    });
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request.to_string(),
    )
    .await;
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND status <> 'RECEIVED'",
        Some(request_id),
        1,
    )
    .await;
    env.settle_all().await;

    let mut nats_bytes = 0;
    for stream in &env.bus.topology.streams {
        let mut stream = env.bus.js.get_stream(&stream.name).await.unwrap();
        nats_bytes += stream.info().await.unwrap().state.bytes;
    }
    let postgres_bytes: i64 = sqlx::query_scalar(
        "SELECT (SELECT coalesce(sum(pg_column_size(r.*)), 0) FROM approval_requests r WHERE request_id = $1) \
              + (SELECT coalesce(sum(pg_column_size(a.*)), 0) FROM audit_events a WHERE request_id = $1)",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    println!(
        "one request of {} bytes: {nats_bytes} bytes in NATS streams, {postgres_bytes} bytes in Postgres",
        request.to_string().len()
    );
    assert!(
        nats_bytes <= MAX_NATS_BYTES_PER_REQUEST,
        "{nats_bytes} bytes in NATS"
    );
    assert!(
        postgres_bytes <= MAX_POSTGRES_BYTES_PER_REQUEST,
        "{postgres_bytes} bytes in Postgres"
    );
    env.stop().await;
}

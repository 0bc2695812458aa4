//! A three-node NATS cluster from `nats/cluster.conf`, streams and buckets with three
//! replicas: the pipeline keeps going when a node dies mid-run, and every request is still
//! recorded exactly once. A server without the route password cannot join it.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use uuid::Uuid;
use wingman::bus::publish::{Outgoing, publish_all};

use crate::helpers::{BusOptions, TestEnv, request_json};
use crate::nats_server::{NatsServer, ROUTE_PASSWORD, credentials, password};

const REQUESTS: usize = 30;

/// Waits until the cluster can place a stream with three replicas (a metadata leader is
/// elected and every node is in).
async fn wait_for_jetstream(url: &str) {
    let client =
        async_nats::ConnectOptions::with_user_and_password("admin".into(), password("admin"))
            .connect(url)
            .await
            .unwrap();
    let js = jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let created = js
            .create_stream(stream::Config {
                name: "READY_PROBE".into(),
                subjects: vec!["ready.probe".into()],
                num_replicas: 3,
                ..Default::default()
            })
            .await;
        if created.is_ok() {
            let _ = js.delete_stream("READY_PROBE").await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster never got ready: {created:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Publishes until JetStream acknowledges; the request id as message id makes a retry of a
/// publish whose ack was lost a duplicate the stream drops.
async fn submit(env: &TestEnv, request_id: Uuid) {
    let outgoing = Outgoing::json(
        env.bus.subjects.submitted(&env.bus.principal),
        request_id.to_string(),
        &request_json(request_id, None),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(error) = publish_all(&env.bus.js, std::slice::from_ref(&outgoing)).await {
        assert!(
            Instant::now() < deadline,
            "could not submit {request_id}: {error:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn with_one_of_three_nats_nodes_lost_mid_run_every_request_completes_exactly_once() {
    let started = Instant::now();
    let mut servers = NatsServer::cluster().await;
    let urls: Vec<String> = servers.iter().map(NatsServer::url).collect();
    wait_for_jetstream(&urls[0]).await;
    let mut env = TestEnv::start_with(BusOptions {
        url: Some(urls.join(",")),
        prefix: Some("wingman".into()),
        credentials: Some(credentials("admin")),
        replicas: Some(3),
        request_retention: None,
    })
    .await;
    let mut requests_stream = env.bus.js.get_stream("WINGMAN_REQUESTS").await.unwrap();
    let info = requests_stream.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let claims = env.bus.js.get_stream("KV_wingman_claims").await.unwrap();
    assert_eq!(claims.cached_info().config.num_replicas, 3);
    env.spawn_intake_validating(100).await;
    env.spawn_recorder().await;

    let request_ids: Vec<Uuid> = (0..REQUESTS).map(|_| Uuid::new_v4()).collect();
    let (before, after) = request_ids.split_at(REQUESTS / 2);
    for request_id in before {
        submit(&env, *request_id).await;
    }
    env.wait_for_count("SELECT least(count(*), 5) FROM approval_requests", None, 5)
        .await;
    // Lose the node that leads the requests stream: a new leader must take over.
    let leader = requests_stream
        .info()
        .await
        .unwrap()
        .cluster
        .as_ref()
        .and_then(|cluster| cluster.leader.clone())
        .expect("a clustered stream has a leader");
    let index: usize = leader.trim_start_matches('n').parse::<usize>().unwrap() - 1;
    servers[index].kill();
    for request_id in after {
        submit(&env, *request_id).await;
    }

    env.wait_for_count(
        "SELECT count(*) FROM approval_requests",
        None,
        REQUESTS as i64,
    )
    .await;
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE status IN ('AUTO_APPROVED', 'AUTO_REJECTED', 'PENDING')",
        None,
        REQUESTS as i64,
    )
    .await;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'request_received'",
        None,
        REQUESTS as i64,
    )
    .await;
    let repeated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT request_id FROM audit_events \
         WHERE kind IN ('request_received', 'request_validated') \
         GROUP BY request_id, kind HAVING count(*) > 1) AS twice",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(repeated, 0, "a request was received or validated twice");
    let recorded: Vec<Uuid> = sqlx::query_scalar("SELECT request_id FROM approval_requests")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    for request_id in &request_ids {
        assert!(recorded.contains(request_id), "{request_id} is missing");
    }
    env.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

/// Waits until `server` has at least `expected` routes (or fails after a while).
async fn wait_for_routes(server: &NatsServer, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let routes = server.routes().await;
        if routes >= expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{routes} routes instead of {expected}:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_nats_server_without_the_route_password_cannot_join_the_cluster() {
    let servers = NatsServer::cluster().await;
    // The nodes themselves route to each other with the password.
    for server in &servers {
        wait_for_routes(server, 2).await;
    }
    let node = &servers[0];
    let cluster_port = node.cluster_port.unwrap();
    let subscriber =
        async_nats::ConnectOptions::with_user_and_password("admin".into(), password("admin"))
            .connect(node.url())
            .await
            .unwrap();
    let mut received = subscriber
        .subscribe("wingman.requests.submitted")
        .await
        .unwrap();
    subscriber.flush().await.unwrap();

    for route in [
        format!("nats-route://127.0.0.1:{cluster_port}"),
        format!("nats-route://route:not-the-password@127.0.0.1:{cluster_port}"),
        format!(
            "nats-route://admin:{}@127.0.0.1:{cluster_port}",
            password("admin")
        ),
    ] {
        let stranger = NatsServer::stranger(&route).await;
        // Give it the time a route takes to form (the nodes above took well under this), and
        // on a loaded machine the time to be told no (it retries every second).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let told_no = tokio::time::Instant::now() + Duration::from_secs(20);
        while !stranger.log().contains("Authorization Violation")
            && tokio::time::Instant::now() < told_no
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(
            stranger.routes().await,
            0,
            "{route} joined:\n{}",
            stranger.log()
        );
        assert_eq!(node.routes().await, 2, "{route} joined the node");
        assert!(
            stranger.log().contains("Authorization Violation"),
            "{route}: {}",
            stranger.log()
        );
        // What its clients publish does not reach the cluster.
        let intruder = async_nats::connect(stranger.url()).await.unwrap();
        intruder
            .publish("wingman.requests.submitted", "forged".into())
            .await
            .unwrap();
        intruder.flush().await.unwrap();
        let leaked = tokio::time::timeout(Duration::from_millis(500), received.next()).await;
        assert!(
            leaked.is_err(),
            "{route}: a stranger's message reached the cluster"
        );
    }
    assert!(
        node.log().contains("Authentication Failure")
            || node.log().contains("authentication error"),
        "the node logged no refused route"
    );
    // And the right password does join (the refusals above are about the password).
    let friend = NatsServer::stranger(&format!(
        "nats-route://route:{ROUTE_PASSWORD}@127.0.0.1:{cluster_port}"
    ))
    .await;
    wait_for_routes(&friend, 1).await;
}

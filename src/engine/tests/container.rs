//! Container state changes against the real engine: stop, start, restart, kill, rm.

use std::time::Instant;

use crate::engine::tests::{Fixture, operation};
use crate::engine::{Engine, EngineError, Limits};

#[tokio::test]
async fn stopping_a_running_container_leaves_it_not_running() {
    let fixture = Fixture::start().await;
    let name = fixture.sleeper("web").await;

    let result = fixture.perform(&format!("docker stop {name}")).await;

    assert!(result.ok, "{result:?}");
    assert_eq!(result.exit_code, 0);
    assert_eq!(result.targets[0].outcome, "stopped");
    assert_eq!(result.summary, format!("stop container {name}: stopped"));
    assert!(!fixture.is_running(&name).await);
}

#[tokio::test]
async fn stopping_a_stopped_container_is_ok_and_says_already_stopped() {
    let fixture = Fixture::start().await;
    let name = fixture.sleeper("web").await;
    fixture.perform(&format!("docker stop {name}")).await;

    let result = fixture.perform(&format!("docker stop {name}")).await;

    assert!(result.ok, "{result:?}");
    assert_eq!(result.targets[0].outcome, "already stopped");
}

#[tokio::test]
async fn a_stop_timeout_beyond_the_limit_is_clamped() {
    let fixture = Fixture::start().await;
    // Ignores SIGTERM (the ignored disposition survives exec), so only the kill ends it.
    let name = fixture
        .run("stubborn", &[], &["sh", "-c", "trap '' TERM; sleep 600"])
        .await;
    let limits = Limits {
        max_stop_timeout_secs: 1,
        ..Limits::default()
    };

    let started = Instant::now();
    let result = fixture
        .perform_with(&format!("docker stop -t 600 {name}"), &limits)
        .await;

    assert!(result.ok, "{result:?}");
    assert!(started.elapsed().as_secs() < 8, "{:?}", started.elapsed());
    assert!(!fixture.is_running(&name).await);
}

#[tokio::test]
async fn starting_a_stopped_container_runs_it_and_starting_it_again_is_ok() {
    let fixture = Fixture::start().await;
    let name = fixture.sleeper("web").await;
    fixture.perform(&format!("docker stop {name}")).await;

    let started = fixture.perform(&format!("docker start {name}")).await;
    let again = fixture.perform(&format!("docker start {name}")).await;

    assert_eq!(started.targets[0].outcome, "started");
    assert!(fixture.is_running(&name).await);
    assert!(again.ok, "{again:?}");
    assert_eq!(again.targets[0].outcome, "already running");
}

#[tokio::test]
async fn restarting_a_container_runs_it_with_a_new_start_time() {
    let fixture = Fixture::start().await;
    let name = fixture.sleeper("web").await;
    let first_start = fixture.started_at(&name).await;

    let result = fixture
        .perform(&format!("docker restart -t 2 {name}"))
        .await;

    assert!(result.ok, "{result:?}");
    assert_eq!(result.targets[0].outcome, "restarted");
    assert!(fixture.is_running(&name).await);
    assert_ne!(fixture.started_at(&name).await, first_start);
}

#[tokio::test]
async fn killing_a_container_leaves_it_exited() {
    let fixture = Fixture::start().await;
    let name = fixture.sleeper("web").await;

    let result = fixture.perform(&format!("docker kill {name}")).await;

    assert!(result.ok, "{result:?}");
    assert_eq!(result.targets[0].outcome, "killed");
    let state = fixture.inspect(&name).await.and_then(|i| i.state).unwrap();
    assert_eq!(
        state.status.map(|status| status.to_string()),
        Some("exited".to_string())
    );
    assert_eq!(state.exit_code, Some(137));
}

#[tokio::test]
async fn removing_a_container_makes_inspect_answer_not_found() {
    let fixture = Fixture::start().await;
    let name = fixture.sleeper("web").await;

    let result = fixture.perform(&format!("docker rm -f -v {name}")).await;

    assert!(result.ok, "{result:?}");
    assert_eq!(result.targets[0].outcome, "removed");
    assert!(fixture.inspect(&name).await.is_none());
}

#[tokio::test]
async fn removing_a_running_container_without_force_fails_for_that_target_only() {
    let fixture = Fixture::start().await;
    let running = fixture.sleeper("running").await;
    let stopped = fixture.sleeper("stopped").await;
    fixture.perform(&format!("docker stop {stopped}")).await;

    let result = fixture
        .perform(&format!("docker rm {running} {stopped}"))
        .await;

    assert!(!result.ok);
    assert_eq!(result.exit_code, 1);
    assert!(!result.targets[0].ok);
    assert!(
        result.targets[0].outcome.starts_with("failed: "),
        "{result:?}"
    );
    assert_eq!(result.targets[1].outcome, "removed");
    assert!(fixture.is_running(&running).await);
    assert!(fixture.inspect(&stopped).await.is_none());
}

#[tokio::test]
async fn a_missing_target_is_not_found_and_the_other_targets_still_change() {
    let fixture = Fixture::start().await;
    let missing = fixture.name("missing");
    let present = fixture.sleeper("present").await;

    let result = fixture
        .perform(&format!("docker stop {missing} {present}"))
        .await;

    assert!(!result.ok);
    assert_eq!(result.exit_code, 1);
    assert_eq!(
        (
            result.targets[0].name.as_str(),
            result.targets[0].outcome.as_str()
        ),
        (missing.as_str(), "not found")
    );
    assert!(!result.targets[0].ok);
    assert_eq!(result.targets[1].outcome, "stopped");
    assert!(!fixture.is_running(&present).await);
    assert!(result.summary.contains("1 of 2 ok"), "{}", result.summary);
}

#[tokio::test]
async fn a_stop_signal_the_engine_would_ignore_is_refused() {
    let fixture = Fixture::start().await;
    let name = fixture.sleeper("web").await;

    let performed = fixture
        .engine
        .perform(
            &operation(&format!("docker stop -s SIGINT {name}")),
            &Limits::default(),
        )
        .await;

    // dockerd 20.10 speaks API 1.41; `signal` on stop arrived in 1.42.
    match performed {
        Err(EngineError::Unsupported { what }) => assert!(what.contains("1.42"), "{what}"),
        Ok(result) => assert!(result.ok, "{result:?}"),
        Err(error) => panic!("{error:?}"),
    }
}

#[tokio::test]
async fn a_missing_socket_is_unreachable_and_a_tcp_host_is_refused() {
    let missing = Engine::connect(Some("unix:///nonexistent/wingman.sock")).await;
    let tcp = Engine::connect(Some("tcp://127.0.0.1:2375")).await;

    assert!(
        matches!(&missing, Err(error @ EngineError::Unreachable { .. }) if error.is_transient()),
        "{missing:?}"
    );
    assert!(
        matches!(tcp, Err(EngineError::UnsupportedHost { .. })),
        "{tcp:?}"
    );
}

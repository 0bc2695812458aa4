//! Inspect and logs against the real engine.

use crate::engine::tests::{Fixture, eventually};
use crate::engine::{CUT_MARKER, Limits};

#[tokio::test]
async fn logs_return_what_the_container_printed_on_stdout_and_stderr() {
    let fixture = Fixture::start().await;
    let name = fixture
        .run(
            "talker",
            &[],
            &["sh", "-c", "echo hello-out; echo hello-err >&2; sleep 600"],
        )
        .await;

    let line = format!("docker logs {name}");
    let printed = eventually(|| async {
        let result = fixture.perform(&line).await;
        result.output.contains("hello-out") && result.output.contains("hello-err")
    })
    .await;

    assert!(printed, "{:?}", fixture.perform(&line).await);
    let result = fixture.perform(&line).await;
    assert!(result.ok);
    assert_eq!(result.targets[0].outcome, "read 2 lines");
}

#[tokio::test]
async fn logs_tail_keeps_only_the_last_lines() {
    let fixture = Fixture::start().await;
    let name = fixture
        .run("counter", &[], &["sh", "-c", "seq 1 50; sleep 600"])
        .await;
    let full = format!("docker logs {name}");
    assert!(eventually(|| async { fixture.perform(&full).await.output.contains("\n50\n") }).await);

    let result = fixture
        .perform(&format!("docker logs --tail 3 --timestamps {name}"))
        .await;

    let lines: Vec<&str> = result.output.lines().skip(1).collect();
    assert_eq!(lines.len(), 3, "{}", result.output);
    assert!(lines[0].ends_with(" 48"), "{}", result.output);
    assert!(lines[2].ends_with(" 50"), "{}", result.output);
}

#[tokio::test]
async fn log_output_is_bounded_by_max_output_bytes() {
    let fixture = Fixture::start().await;
    let name = fixture
        .run("chatty", &[], &["sh", "-c", "seq 1 20000; sleep 600"])
        .await;
    let line = format!("docker logs --tail all {name}");
    assert!(
        eventually(|| async { fixture.perform(&line).await.output.contains("\n20000\n") }).await
    );
    let limits = Limits {
        max_output_bytes: 1024,
        ..Limits::default()
    };

    let result = fixture.perform_with(&line, &limits).await;

    assert!(result.ok, "{result:?}");
    assert!(result.output.len() <= 1024, "{}", result.output.len());
    assert!(result.output.contains(CUT_MARKER), "{}", result.output);
    assert!(result.output.ends_with(" bytes, the rest not read)"));
    assert!(result.targets[0].outcome.ends_with(", cut"), "{result:?}");
}

#[tokio::test]
async fn logs_since_a_future_time_return_nothing() {
    let fixture = Fixture::start().await;
    let name = fixture
        .run("talker", &[], &["sh", "-c", "echo early; sleep 600"])
        .await;

    let result = fixture
        .perform(&format!("docker logs --since 2999-01-01T00:00:00Z {name}"))
        .await;
    let bad = fixture
        .engine
        .perform(
            &crate::engine::tests::operation(&format!("docker logs --since 2023-02-30 {name}")),
            &Limits::default(),
        )
        .await;

    assert!(result.ok, "{result:?}");
    assert!(!result.output.contains("early"), "{}", result.output);
    assert!(bad.is_err(), "{bad:?}");
}

#[tokio::test]
async fn inspect_reports_the_state_as_json() {
    let fixture = Fixture::start().await;
    let name = fixture.sleeper("web").await;

    let result = fixture.perform(&format!("docker inspect {name}")).await;

    assert!(result.ok, "{result:?}");
    assert_eq!(result.targets[0].outcome, "inspected");
    let json_start = result.output.find('{').expect("json in output");
    let excerpt: serde_json::Value =
        serde_json::from_str(&result.output[json_start..]).expect("excerpt is json");
    assert_eq!(excerpt["State"]["Status"], "running");
    assert_eq!(excerpt["Name"], format!("/{name}"));
    assert_eq!(excerpt["HostConfig"]["NetworkMode"], "none");
}

#[tokio::test]
async fn inspect_with_a_format_renders_the_requested_fields() {
    let fixture = Fixture::start().await;
    let name = fixture.sleeper("web").await;

    let result = fixture
        .perform(&format!(
            "docker inspect --format '{{{{.State.Status}}}} {{{{json .HostConfig.NetworkMode}}}}' {name}"
        ))
        .await;

    assert!(result.ok, "{result:?}");
    assert_eq!(
        result.output,
        format!("{name}: inspected\nrunning \"none\"\n")
    );
}

#[tokio::test]
async fn inspecting_a_missing_container_is_not_found() {
    let fixture = Fixture::start().await;
    let missing = fixture.name("missing");

    let result = fixture.perform(&format!("docker inspect {missing}")).await;

    assert!(!result.ok);
    assert_eq!(result.targets[0].outcome, "not found");
}

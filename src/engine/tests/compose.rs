//! Compose operations against the real engine, on containers labelled like compose's.

use std::collections::HashMap;

use bollard::models::VolumeCreateRequest;

use crate::engine::tests::{Fixture, TAG_LABEL};

/// A fixture with project `wt-<tag>-app` (web and db) and `wt-<tag>-other` (web).
async fn two_projects() -> (Fixture, String, String) {
    let fixture = Fixture::start().await;
    let app = fixture.name("app");
    let other = fixture.name("other");
    // Created out of order, to show results come sorted by name.
    fixture.service("app-web", &app, "web").await;
    fixture.service("app-db", &app, "db").await;
    fixture.service("other-web", &other, "web").await;
    (fixture, app, other)
}

async fn project_volume(fixture: &Fixture, name: &str, project: &str) -> String {
    let name = fixture.name(name);
    let labels = HashMap::from([
        (
            "com.docker.compose.project".to_string(),
            project.to_string(),
        ),
        (TAG_LABEL.to_string(), fixture.tag.clone()),
    ]);
    fixture
        .docker
        .create_volume(VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(labels),
            ..VolumeCreateRequest::default()
        })
        .await
        .expect("create volume");
    name
}

#[tokio::test]
async fn compose_down_removes_the_projects_containers_and_leaves_another_project_alone() {
    let (fixture, app, other) = two_projects().await;

    let result = fixture
        .perform(&format!("docker compose -p {app} down --remove-orphans"))
        .await;

    assert!(result.ok, "{result:?}");
    let names: Vec<&str> = result.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, [fixture.name("app-db"), fixture.name("app-web")]);
    assert!(
        result
            .targets
            .iter()
            .all(|t| t.outcome == "stopped, removed")
    );
    assert!(fixture.inspect(&fixture.name("app-web")).await.is_none());
    assert!(fixture.inspect(&fixture.name("app-db")).await.is_none());
    assert!(fixture.is_running(&fixture.name("other-web")).await);
    let again = fixture
        .perform(&format!("docker compose -p {app} down"))
        .await;
    assert!(again.ok, "{again:?}");
    assert!(again.targets.is_empty());
    assert!(
        fixture.is_running(&fixture.name("other-web")).await,
        "{other}"
    );
}

#[tokio::test]
async fn compose_down_with_volumes_removes_only_the_projects_volumes() {
    let (fixture, app, other) = two_projects().await;
    let app_volume = project_volume(&fixture, "app-data", &app).await;
    let other_volume = project_volume(&fixture, "other-data", &other).await;

    let result = fixture
        .perform(&format!("docker compose -p {app} down -v -t 1"))
        .await;

    assert!(result.ok, "{result:?}");
    let volume_target = format!("volume {app_volume}");
    assert!(
        result
            .targets
            .iter()
            .any(|t| t.name == volume_target && t.outcome == "removed"),
        "{result:?}"
    );
    assert!(fixture.docker.inspect_volume(&app_volume).await.is_err());
    assert!(fixture.docker.inspect_volume(&other_volume).await.is_ok());
}

#[tokio::test]
async fn compose_stop_with_a_service_only_stops_that_service() {
    let (fixture, app, _other) = two_projects().await;

    let result = fixture
        .perform(&format!("docker compose -p {app} stop db"))
        .await;

    assert!(result.ok, "{result:?}");
    assert_eq!(result.targets.len(), 1);
    assert_eq!(result.targets[0].name, fixture.name("app-db"));
    assert!(!fixture.is_running(&fixture.name("app-db")).await);
    assert!(fixture.is_running(&fixture.name("app-web")).await);
    assert!(fixture.is_running(&fixture.name("other-web")).await);
}

#[tokio::test]
async fn compose_start_and_restart_bring_every_service_back() {
    let (fixture, app, _other) = two_projects().await;
    fixture
        .perform(&format!("docker compose -p {app} stop -t 1"))
        .await;
    let web_started = fixture.started_at(&fixture.name("app-web")).await;

    let started = fixture
        .perform(&format!("docker compose -p {app} start db"))
        .await;
    let restarted = fixture
        .perform(&format!("docker compose -p {app} restart -t 1"))
        .await;

    assert_eq!(started.targets[0].outcome, "started");
    assert!(restarted.ok, "{restarted:?}");
    assert_eq!(restarted.targets.len(), 2);
    assert!(fixture.is_running(&fixture.name("app-db")).await);
    assert!(fixture.is_running(&fixture.name("app-web")).await);
    assert_ne!(
        fixture.started_at(&fixture.name("app-web")).await,
        web_started
    );
}

#[tokio::test]
async fn compose_ps_lists_name_service_state_and_status() {
    let (fixture, app, _other) = two_projects().await;
    fixture
        .perform(&format!("docker compose -p {app} stop db"))
        .await;

    let running = fixture
        .perform(&format!("docker compose -p {app} ps"))
        .await;
    let all = fixture
        .perform(&format!("docker compose -p {app} ps -a"))
        .await;

    assert!(running.ok, "{running:?}");
    assert_eq!(
        running.summary,
        format!("compose ps project {app}: 1 containers")
    );
    let lines: Vec<&str> = running.output.lines().collect();
    assert_eq!(lines.len(), 2, "{}", running.output);
    assert!(lines[0].starts_with("NAME"), "{}", running.output);
    assert!(
        lines[1].starts_with(&fixture.name("app-web")),
        "{}",
        running.output
    );
    assert!(lines[1].contains(" web ") && lines[1].contains("running") && lines[1].contains("Up"));
    let states: Vec<(&str, &str)> = all
        .targets
        .iter()
        .map(|t| (t.name.as_str(), t.outcome.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            (fixture.name("app-db").as_str(), "exited"),
            (fixture.name("app-web").as_str(), "running")
        ]
    );
}

#[tokio::test]
async fn compose_stop_of_an_unknown_project_or_service_is_not_found() {
    let (fixture, app, _other) = two_projects().await;
    let unknown = fixture.name("nothing");

    let no_project = fixture
        .perform(&format!("docker compose -p {unknown} stop"))
        .await;
    let no_service = fixture
        .perform(&format!("docker compose -p {app} stop cache db"))
        .await;

    assert!(!no_project.ok);
    assert_eq!(no_project.targets[0].outcome, "not found");
    assert!(!no_service.ok);
    assert_eq!(no_service.targets[0].name, "service cache");
    assert_eq!(no_service.targets[0].outcome, "not found");
    assert_eq!(no_service.targets[1].outcome, "stopped");
    assert!(fixture.is_running(&fixture.name("app-web")).await);
}

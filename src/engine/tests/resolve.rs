//! Resolving targets, and acting on exactly what was resolved: a name that moves to another
//! container, or a container that joins a project, after the decision is never touched.

use bollard::query_parameters::RenameContainerOptions;

use super::{Fixture, operation};
use crate::docker::{Resolution, Resolved};
use crate::engine::Limits;

#[tokio::test]
async fn a_name_and_an_id_prefix_resolve_to_the_canonical_name_id_and_labels() {
    let fixture = Fixture::start().await;
    let project = fixture.name("app");
    let name = fixture.service("app-db-1", &project, "db").await;
    let id = fixture.inspect(&name).await.unwrap().id.unwrap();

    for typed in [name.clone(), id[..12].to_string(), id.clone()] {
        let resolved = fixture
            .engine
            .resolve(&operation(&format!("docker stop {typed}")))
            .await
            .unwrap();
        let Resolved::Containers(targets) = resolved else {
            panic!("expected container targets");
        };
        let Resolution::Found(facts) = &targets[0].resolution else {
            panic!("{typed}: {targets:?}");
        };
        assert_eq!(facts.name, name, "{typed}");
        assert_eq!(facts.id, id, "{typed}");
        assert_eq!(facts.project.as_deref(), Some(project.as_str()), "{typed}");
        assert_eq!(facts.service.as_deref(), Some("db"), "{typed}");
    }
    let missing = fixture
        .engine
        .resolve(&operation(&format!(
            "docker stop {}",
            fixture.name("nothing")
        )))
        .await
        .unwrap();
    assert!(
        matches!(&missing, Resolved::Containers(targets) if targets[0].resolution == Resolution::Missing),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_resolved_container_is_acted_on_by_id_after_its_name_moved_to_another() {
    let fixture = Fixture::start().await;
    let name = fixture.sleeper("web").await;
    let stop = operation(&format!("docker stop -t 1 {name}"));
    let resolved = fixture.engine.resolve(&stop).await.unwrap();
    // After the decision, the name moves to another container.
    let moved = fixture.name("web-moved");
    fixture
        .docker
        .rename_container(
            &name,
            RenameContainerOptions {
                name: moved.clone(),
            },
        )
        .await
        .unwrap();
    let impostor = fixture.sleeper("web").await;

    let result = fixture
        .engine
        .perform_resolved(&stop, &resolved, &Limits::default())
        .await
        .unwrap();

    assert!(result.ok, "{result:?}");
    assert_eq!(result.targets[0].name, name);
    assert!(
        !fixture.is_running(&moved).await,
        "the resolved container stopped"
    );
    assert!(
        fixture.is_running(&impostor).await,
        "the new holder of the name did not"
    );
}

#[tokio::test]
async fn a_container_that_joins_a_project_after_the_decision_is_left_alone() {
    let fixture = Fixture::start().await;
    let project = fixture.name("app");
    let web = fixture.service("app-web", &project, "web").await;
    let stop = operation(&format!("docker compose -p {project} stop -t 1"));
    let resolved = fixture.engine.resolve(&stop).await.unwrap();
    let late = fixture.service("app-late", &project, "web").await;

    let result = fixture
        .engine
        .perform_resolved(&stop, &resolved, &Limits::default())
        .await
        .unwrap();

    assert!(result.ok, "{result:?}");
    assert!(!fixture.is_running(&web).await);
    assert!(fixture.is_running(&late).await, "joined after the decision");
}

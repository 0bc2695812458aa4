//! Resolving targets, and acting on exactly what was resolved: a name that moves to another
//! container, or a container that joins a project, after the decision is never touched.

use bollard::query_parameters::RenameContainerOptions;

use super::{Fixture, operation};
use crate::docker::{Resolution, Resolved};
use crate::engine::Limits;

/// A running container of service `db` in a compose project of this test: (project, name, id).
async fn compose_db(fixture: &Fixture) -> (String, String, String) {
    let project = fixture.name("app");
    let name = fixture.service("app-db-1", &project, "db").await;
    let id = fixture.inspect(&name).await.unwrap().id.unwrap();
    (project, name, id)
}

#[tokio::test]
async fn a_name_and_an_id_prefix_resolve_to_the_canonical_name_id_and_labels() {
    let fixture = Fixture::start().await;
    let (project, name, id) = compose_db(&fixture).await;

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

/// The ambiguous form of a resolution, whatever the count (other tests add containers).
fn shape(resolved: &Resolved) -> Vec<Resolution> {
    let Resolved::Containers(targets) = resolved else {
        panic!("expected container targets: {resolved:?}");
    };
    targets
        .iter()
        .map(|target| match &target.resolution {
            Resolution::Ambiguous { .. } => Resolution::Ambiguous { matches: 0 },
            other => other.clone(),
        })
        .collect()
}

/// An `inspect` is resolved by inspecting its targets, and says what the listing says: a
/// compose container by name, id prefix and full id (with its labels), a missing name, an
/// id prefix of two containers; several targets at once. Only what it found was read.
#[tokio::test]
async fn an_inspect_resolved_by_inspecting_says_what_the_listing_says() {
    let fixture = Fixture::start().await;
    let (project, name, id) = compose_db(&fixture).await;
    let missing = fixture.name("nothing");
    // Containers of this test until two of their ids begin alike: that digit is ambiguous.
    let mut firsts: Vec<char> = vec![id.chars().next().unwrap()];
    let shared = loop {
        let other = fixture
            .run(&format!("idle-{}", firsts.len()), &[], &["true"])
            .await;
        let first = fixture
            .inspect(&other)
            .await
            .unwrap()
            .id
            .unwrap()
            .chars()
            .next()
            .unwrap();
        if firsts.contains(&first) {
            break first.to_string();
        }
        firsts.push(first);
    };

    for (typed, read) in [
        (name.as_str(), 1),
        (&id[..12], 1),
        (id.as_str(), 1),
        (missing.as_str(), 0),
        (shared.as_str(), 0),
    ] {
        let inspect = operation(&format!("docker inspect {typed}"));
        let lookup = fixture.engine.look(&inspect).await.unwrap();
        let listed = fixture.engine.resolve(&inspect).await.unwrap();
        assert_eq!(shape(&lookup.resolved), shape(&listed), "{typed}");
        assert_eq!(lookup.read.len(), read, "{typed}: {lookup:?}");
    }
    let Resolved::Containers(targets) = fixture
        .engine
        .look(&operation(&format!("docker inspect {}", &id[..12])))
        .await
        .unwrap()
        .resolved
    else {
        panic!("expected container targets");
    };
    let Resolution::Found(facts) = &targets[0].resolution else {
        panic!("{targets:?}");
    };
    assert_eq!(
        (facts.name.as_str(), facts.id.as_str()),
        (name.as_str(), id.as_str())
    );
    assert_eq!(facts.project.as_deref(), Some(project.as_str()));
    assert_eq!(facts.service.as_deref(), Some("db"));

    let several = operation(&format!("docker inspect {missing} {name} {shared}"));
    let lookup = fixture.engine.look(&several).await.unwrap();
    let listed = fixture.engine.resolve(&several).await.unwrap();
    assert_eq!(shape(&lookup.resolved), shape(&listed));
    assert_eq!(lookup.read.len(), 1);
}

/// An inspect reports what was read when its targets were resolved (what the policy
/// decided on), not a second answer: the container stopped since still reads as running,
/// once; a target the listing resolved is inspected then.
#[tokio::test]
async fn an_inspect_reports_what_it_read_while_resolving() {
    let fixture = Fixture::start().await;
    let web = fixture.sleeper("web").await;
    let missing = fixture.name("nothing");
    let inspect = operation(&format!(
        "docker inspect -f '{{{{.Name}}}} {{{{.State.Running}}}}' {web} {missing}"
    ));
    let lookup = fixture.engine.look(&inspect).await.unwrap();
    fixture
        .docker
        .stop_container(
            &web,
            Some(bollard::query_parameters::StopContainerOptions {
                t: Some(1),
                signal: None,
            }),
        )
        .await
        .unwrap();
    assert!(!fixture.is_running(&web).await);

    let result = fixture
        .engine
        .perform_admitted(
            &inspect,
            &lookup,
            &crate::engine::Admission::default(),
            &Limits::default(),
        )
        .await
        .unwrap();

    assert!(
        result.output.contains(&format!("/{web} true")),
        "{result:?}"
    );
    assert!(!result.output.contains("false"), "{result:?}");
    assert_eq!(result.targets[0].name, web);
    assert!(result.targets[0].ok);
    assert_eq!(result.targets[1].name, missing);
    assert!(!result.targets[1].ok, "{result:?}");
}

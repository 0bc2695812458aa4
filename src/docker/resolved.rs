//! What Docker says the targets of an operation are: the facts the gateway's policy decides on.
//!
//! An operation names its targets as someone typed them: a container name, a prefix of a
//! container id, a compose project and services. A typed name proves nothing (compose names
//! end in `-1`, an id prefix names the same container as its name), so before the policy
//! decides, the gateway lists the Engine's containers ([`crate::engine::Engine::resolve`])
//! and this module matches the typed targets against that listing, the way the daemon does:
//! a full id, then an exact name, then an id prefix that matches one container only. The
//! result, [`Resolved`], carries each container's canonical name, full id and compose
//! labels; the policy decides on those, and the engine then acts on the full ids it decided
//! on, never on a name that could meanwhile point at another container.
//!
//! Matching is pure, so every rule has a unit test without an engine.

use serde::Serialize;

use crate::docker::operation::{ComposeOp, DockerOperation};

/// The compose label naming a container's project.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// The compose label naming a container's service.
pub const SERVICE_LABEL: &str = "com.docker.compose.service";

/// One container as the Engine lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerFacts {
    /// The full 64-hex-digit id.
    pub id: String,
    /// The canonical name, without the leading `/`.
    pub name: String,
    /// The `com.docker.compose.project` label, when the container has one.
    pub project: Option<String>,
    /// The `com.docker.compose.service` label, when the container has one.
    pub service: Option<String>,
}

/// What one typed container target turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "resolution", rename_all = "snake_case")]
pub enum Resolution {
    Found(ContainerFacts),
    /// No container has this id, name or id prefix.
    Missing,
    /// An id prefix shared by several containers: acting on one of them would be a guess.
    Ambiguous {
        matches: usize,
    },
}

/// A typed container target and what Docker says it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedTarget {
    pub typed: String,
    #[serde(flatten)]
    pub resolution: Resolution,
}

/// The targets of one operation, as Docker knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "targets", rename_all = "snake_case")]
pub enum Resolved {
    /// Each target of a container operation, in the order typed.
    Containers(Vec<ResolvedTarget>),
    /// Every container (running or not) labelled with the compose project, narrowed to the
    /// requested services, sorted by name.
    Compose(Vec<ContainerFacts>),
}

impl Resolved {
    /// Every container found, whatever the kind of operation.
    pub fn containers(&self) -> Vec<&ContainerFacts> {
        match self {
            Resolved::Containers(targets) => targets
                .iter()
                .filter_map(|target| match &target.resolution {
                    Resolution::Found(facts) => Some(facts),
                    _ => None,
                })
                .collect(),
            Resolved::Compose(members) => members.iter().collect(),
        }
    }
}

/// Matches the operation's targets against `listing` (every container of the Engine).
pub fn resolve(operation: &DockerOperation, listing: &[ContainerFacts]) -> Resolved {
    match operation {
        DockerOperation::Container(op) => Resolved::Containers(
            op.targets
                .iter()
                .map(|typed| ResolvedTarget {
                    typed: typed.clone(),
                    resolution: resolve_container(typed, listing),
                })
                .collect(),
        ),
        DockerOperation::Compose(op) => Resolved::Compose(compose_members(op, listing)),
        DockerOperation::Exec(op) => Resolved::Containers(vec![ResolvedTarget {
            typed: op.container.clone(),
            resolution: resolve_container(&op.container, listing),
        }]),
    }
}

/// The daemon's order: a full id, then an exact name, then an id prefix matching one
/// container only.
pub fn resolve_container(typed: &str, listing: &[ContainerFacts]) -> Resolution {
    let found = |facts: &ContainerFacts| Resolution::Found(facts.clone());
    if let Some(facts) = listing.iter().find(|facts| facts.id == typed) {
        return found(facts);
    }
    if let Some(facts) = listing.iter().find(|facts| facts.name == typed) {
        return found(facts);
    }
    let by_prefix: Vec<&ContainerFacts> = listing
        .iter()
        .filter(|facts| facts.id.starts_with(typed))
        .collect();
    match by_prefix.as_slice() {
        [] => Resolution::Missing,
        [facts] => found(facts),
        several => Resolution::Ambiguous {
            matches: several.len(),
        },
    }
}

/// The project's containers in the requested services (all when none are named), by name.
fn compose_members(op: &ComposeOp, listing: &[ContainerFacts]) -> Vec<ContainerFacts> {
    let mut members: Vec<ContainerFacts> = listing
        .iter()
        .filter(|facts| facts.project.as_deref() == Some(op.project.as_str()))
        .filter(|facts| {
            op.services.is_empty()
                || facts
                    .service
                    .as_ref()
                    .is_some_and(|service| op.services.contains(service))
        })
        .cloned()
        .collect();
    members.sort_by(|left, right| left.name.cmp(&right.name));
    members
}

/// The canonical name among the names the Engine lists for one container: `/web`, not a
/// legacy link alias such as `/other/web`.
pub fn canonical_name(names: &[String]) -> Option<String> {
    names
        .iter()
        .map(|name| name.strip_prefix('/').unwrap_or(name))
        .find(|name| !name.contains('/'))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::parse_command_line;

    fn facts(id: &str, name: &str, labels: Option<(&str, &str)>) -> ContainerFacts {
        ContainerFacts {
            id: id.repeat(64 / id.len()),
            name: name.into(),
            project: labels.map(|(project, _)| project.to_string()),
            service: labels.map(|(_, service)| service.to_string()),
        }
    }

    fn listing() -> Vec<ContainerFacts> {
        vec![
            facts("ab", "api", None),
            facts("ac", "worker", None),
            facts(
                "f0",
                "wingman-prd-postgres-1",
                Some(("wingman-prd", "postgres")),
            ),
            facts(
                "f1",
                "wingman-prd-gateway-1",
                Some(("wingman-prd", "gateway")),
            ),
            facts("e0", "shop-web-1", Some(("shop", "web"))),
        ]
    }

    fn name_of(resolution: Resolution) -> String {
        match resolution {
            Resolution::Found(facts) => facts.name,
            other => panic!("expected a container, got {other:?}"),
        }
    }

    #[test]
    fn a_name_resolves_to_its_container() {
        assert_eq!(name_of(resolve_container("api", &listing())), "api");
    }

    #[test]
    fn an_id_prefix_resolves_to_the_canonical_name_and_labels() {
        let Resolution::Found(found) = resolve_container("f0f0f", &listing()) else {
            panic!("expected a container");
        };
        assert_eq!(found.name, "wingman-prd-postgres-1");
        assert_eq!(found.project.as_deref(), Some("wingman-prd"));
        assert_eq!(found.service.as_deref(), Some("postgres"));
        assert_eq!(
            name_of(resolve_container(&"f1".repeat(32), &listing())),
            "wingman-prd-gateway-1"
        );
    }

    #[test]
    fn a_prefix_of_two_ids_is_ambiguous() {
        assert_eq!(
            resolve_container("a", &listing()),
            Resolution::Ambiguous { matches: 2 }
        );
    }

    #[test]
    fn an_exact_name_wins_over_an_id_prefix_like_the_daemon() {
        let mut listing = listing();
        listing.push(facts("99", "ab", None));
        assert_eq!(name_of(resolve_container("ab", &listing)), "ab");
    }

    #[test]
    fn a_full_id_wins_over_a_name() {
        let mut listing = listing();
        let id = "ab".repeat(32);
        listing.push(facts("77", &id, None));
        assert_eq!(name_of(resolve_container(&id, &listing)), "api");
    }

    #[test]
    fn an_unknown_target_is_missing() {
        assert_eq!(
            resolve_container("nothing", &listing()),
            Resolution::Missing
        );
        assert_eq!(resolve_container("api-1", &listing()), Resolution::Missing);
    }

    #[test]
    fn a_compose_operation_resolves_to_the_labelled_containers_of_its_services() {
        let all = resolve(
            &parse_command_line("docker compose -p wingman-prd down").unwrap(),
            &listing(),
        );
        let names: Vec<&str> = all.containers().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["wingman-prd-gateway-1", "wingman-prd-postgres-1"]);
        let one = resolve(
            &parse_command_line("docker compose -p wingman-prd stop postgres").unwrap(),
            &listing(),
        );
        let names: Vec<&str> = one.containers().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["wingman-prd-postgres-1"]);
    }

    #[test]
    fn a_container_operation_keeps_the_typed_order() {
        let resolved = resolve(
            &parse_command_line("docker stop worker nothing api").unwrap(),
            &listing(),
        );
        let Resolved::Containers(targets) = resolved else {
            panic!("expected container targets");
        };
        let typed: Vec<&str> = targets.iter().map(|t| t.typed.as_str()).collect();
        assert_eq!(typed, ["worker", "nothing", "api"]);
        assert_eq!(targets[1].resolution, Resolution::Missing);
    }

    #[test]
    fn the_canonical_name_skips_link_aliases() {
        let names = vec!["/other/db".to_string(), "/db".to_string()];
        assert_eq!(canonical_name(&names).as_deref(), Some("db"));
        assert_eq!(canonical_name(&[]), None);
    }
}

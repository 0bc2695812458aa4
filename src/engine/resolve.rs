//! Asks the Engine what an operation's targets are, for the gateway's policy.
//!
//! Lists every container (running or not) with its id, canonical name and compose labels,
//! and hands the listing to [`crate::docker::resolve`], which matches the typed targets the
//! way the daemon does. The gateway decides on the result and performs the operation on the
//! ids it decided on ([`Engine::perform_resolved`]).
//!
//! An `inspect` is the exception ([`Engine::look`]): inspecting a typed target is the
//! daemon resolving it (a full id, then an exact name, then an id prefix of one container
//! only — the order the listing is matched in), so its targets are resolved by inspecting
//! them, one Engine call instead of two. Its answer counts only when the container it
//! names is the one the listing's rules would name for what was typed (the typed text is
//! its full id, its canonical name, or a prefix of its id); anything else (missing,
//! ambiguous, another answer) is resolved from the listing as before. What was read is
//! kept in the [`Lookup`] and reported only once the gateway has decided and claimed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};

use crate::docker::{
    ContainerAction, ContainerFacts, ContainerOp, DockerOperation, PROJECT_LABEL, Resolution,
    Resolved, ResolvedTarget, SERVICE_LABEL, canonical_name, resolve_container,
};
use crate::engine::container::is_connection_problem;
use crate::engine::template::Template;
use crate::engine::{Engine, EngineError};

/// What the Engine says an operation's targets are ([`Engine::look`]), and for an
/// `inspect`, what it answered about them while saying so.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The targets, as the policy decides on them and the audit records them.
    pub resolved: Resolved,
    /// Inspect answers by full id: the operation's own reads, made while resolving.
    /// [`Engine::perform_admitted`] reports them instead of asking again.
    pub(crate) read: Vec<(String, ContainerInspectResponse)>,
    /// How long those reads took: the operation's Engine time, not the gateway's.
    pub read_took: Duration,
}

impl Lookup {
    /// Targets resolved from the listing, nothing read yet.
    pub fn resolved(resolved: Resolved) -> Self {
        Self {
            resolved,
            read: Vec::new(),
            read_took: Duration::ZERO,
        }
    }
}

impl Engine {
    /// What Docker says the operation's targets are.
    pub async fn resolve(&self, operation: &DockerOperation) -> Result<Resolved, EngineError> {
        let listing = self.listing().await?;
        Ok(crate::docker::resolve(operation, &listing))
    }

    /// What Docker says the operation's targets are, the same answer as
    /// [`Engine::resolve`]; an `inspect` is resolved by inspecting its targets (at once),
    /// with the listing only for a target the daemon's answer does not settle.
    pub async fn look(&self, operation: &DockerOperation) -> Result<Lookup, EngineError> {
        match operation {
            // A `--format` this gateway cannot render is refused before any call is made
            // (when performed), so it is not read while resolving either.
            DockerOperation::Container(op)
                if op.action == ContainerAction::Inspect
                    && op
                        .options
                        .format
                        .as_deref()
                        .is_none_or(|format| Template::parse(format).is_ok()) =>
            {
                self.look_by_inspecting(op).await
            }
            _ => Ok(Lookup::resolved(self.resolve(operation).await?)),
        }
    }

    async fn look_by_inspecting(&self, op: &ContainerOp) -> Result<Lookup, EngineError> {
        let query = InspectContainerOptions {
            size: op.options.size,
        };
        let began = Instant::now();
        let answers = futures::future::join_all(
            op.targets
                .iter()
                .map(|typed| self.docker.inspect_container(typed, Some(query.clone()))),
        )
        .await;
        let read_took = began.elapsed();
        let mut read = Vec::new();
        let mut found = Vec::with_capacity(op.targets.len());
        for (typed, answer) in op.targets.iter().zip(answers) {
            match answer {
                Ok(response) => match inspected_facts(&response) {
                    Some(facts) if names(typed, &facts) => {
                        read.push((facts.id.clone(), response));
                        found.push(Some(Resolution::Found(facts)));
                    }
                    _ => found.push(None),
                },
                Err(source) if is_connection_problem(&source) => {
                    return Err(self.unreachable(source));
                }
                // Missing, ambiguous or refused: the listing says which, as for any target.
                Err(_) => found.push(None),
            }
        }
        let listing = if found.iter().any(Option::is_none) {
            self.listing().await?
        } else {
            Vec::new()
        };
        let targets = op
            .targets
            .iter()
            .zip(found)
            .map(|(typed, found)| ResolvedTarget {
                typed: typed.clone(),
                resolution: found.unwrap_or_else(|| resolve_container(typed, &listing)),
            })
            .collect();
        Ok(Lookup {
            resolved: Resolved::Containers(targets),
            read,
            read_took,
        })
    }

    /// Every container of the Engine, running or not.
    async fn listing(&self) -> Result<Vec<ContainerFacts>, EngineError> {
        let listed = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..ListContainersOptions::default()
            }))
            .await
            .map_err(|source| {
                if is_connection_problem(&source) {
                    self.unreachable(source)
                } else {
                    EngineError::Docker {
                        call: "list_containers",
                        source,
                    }
                }
            })?;
        Ok(listed.into_iter().filter_map(facts).collect())
    }
}

/// Whether `typed` names the container of `facts` by the listing's rules: its full id, its
/// canonical name, or a prefix of its id. The daemon looks in the same order (an id, then a
/// name, then a prefix of one id only), so a container it answers with for `typed` that
/// passes this is the one [`resolve_container`] would find in a listing made at that moment:
/// an exact id or name elsewhere would have been the daemon's answer instead.
fn names(typed: &str, facts: &ContainerFacts) -> bool {
    typed == facts.id || typed == facts.name || (!typed.is_empty() && facts.id.starts_with(typed))
}

/// The facts of one listed container; `None` for an entry without an id or a name.
fn facts(summary: ContainerSummary) -> Option<ContainerFacts> {
    known(
        summary.id,
        summary.names.as_deref().unwrap_or_default(),
        summary.labels.as_ref(),
    )
}

/// The same facts from an inspect answer (its `Name` is the canonical one, its labels the
/// container's configuration's, as the listing shows them); `None` without an id or name.
fn inspected_facts(response: &ContainerInspectResponse) -> Option<ContainerFacts> {
    known(
        response.id.clone(),
        std::slice::from_ref(response.name.as_ref()?),
        response
            .config
            .as_ref()
            .and_then(|config| config.labels.as_ref()),
    )
}

fn known(
    id: Option<String>,
    names: &[String],
    labels: Option<&HashMap<String, String>>,
) -> Option<ContainerFacts> {
    let label = |key: &str| labels.and_then(|labels| labels.get(key)).cloned();
    Some(ContainerFacts {
        name: canonical_name(names)?,
        project: label(PROJECT_LABEL),
        service: label(SERVICE_LABEL),
        id: id?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str, name: &str) -> ContainerFacts {
        ContainerFacts {
            id: id.into(),
            name: name.into(),
            project: None,
            service: None,
        }
    }

    #[test]
    fn the_daemons_answer_counts_only_for_the_container_the_typed_text_names() {
        let web = container(&"ab".repeat(32), "web");
        assert!(names("web", &web));
        assert!(names(&"ab".repeat(32), &web));
        assert!(names("abab", &web));
        // The daemon also answers to a name with its slash, or a link alias: the listing
        // does not, so those are resolved from the listing.
        assert!(!names("/web", &web));
        assert!(!names("other/web", &web));
        assert!(!names("ba", &web));
        assert!(!names("", &web));
        assert!(!names("WEB", &web));
    }

    #[test]
    fn an_inspect_answer_gives_the_facts_a_listing_gives() {
        let response: ContainerInspectResponse = serde_json::from_value(serde_json::json!({
            "Id": "ab".repeat(32),
            "Name": "/shop-web-1",
            "Config": { "Labels": { PROJECT_LABEL: "shop", SERVICE_LABEL: "web", "x": "y" } },
        }))
        .unwrap();
        assert_eq!(
            inspected_facts(&response),
            Some(ContainerFacts {
                id: "ab".repeat(32),
                name: "shop-web-1".into(),
                project: Some("shop".into()),
                service: Some("web".into()),
            })
        );
        let nameless: ContainerInspectResponse =
            serde_json::from_value(serde_json::json!({ "Id": "ab".repeat(32) })).unwrap();
        assert_eq!(inspected_facts(&nameless), None);
    }
}

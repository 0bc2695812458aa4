//! Asks the Engine what an operation's targets are, for the gateway's policy.
//!
//! Lists every container (running or not) with its id, canonical name and compose labels,
//! and hands the listing to [`crate::docker::resolve`], which matches the typed targets the
//! way the daemon does. The gateway decides on the result and performs the operation on the
//! ids it decided on ([`Engine::perform_resolved`]).

use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptions;

use crate::docker::{
    ContainerFacts, DockerOperation, PROJECT_LABEL, Resolved, SERVICE_LABEL, canonical_name,
};
use crate::engine::container::is_connection_problem;
use crate::engine::{Engine, EngineError};

impl Engine {
    /// What Docker says the operation's targets are.
    pub async fn resolve(&self, operation: &DockerOperation) -> Result<Resolved, EngineError> {
        let listing = self.listing().await?;
        Ok(crate::docker::resolve(operation, &listing))
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

/// The facts of one listed container; `None` for an entry without an id or a name.
fn facts(summary: ContainerSummary) -> Option<ContainerFacts> {
    let label = |key: &str| {
        summary
            .labels
            .as_ref()
            .and_then(|labels| labels.get(key))
            .cloned()
    };
    Some(ContainerFacts {
        name: canonical_name(summary.names.as_deref().unwrap_or_default())?,
        project: label(PROJECT_LABEL),
        service: label(SERVICE_LABEL),
        id: summary.id?,
    })
}

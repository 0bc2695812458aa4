//! The gateway's per-environment policy (`config/policy.toml`): which operations may run
//! where, what is never touched, and limits. A refusal names the rule that refused it.
//!
//! The policy decides on what Docker says the targets are, never on the names a request
//! typed: the gateway resolves the targets through the Engine first
//! ([`crate::docker::Resolved`]: canonical names, full ids, compose project and service
//! labels), then asks [`Policy::check`], a pure function of the policy, the environment,
//! the operation and those facts. [`Policy::check_operation`] is the part that needs no
//! Docker, checked before resolving.
//!
//! Layout:
//! - this file: the policy file's shape, loading and its checks
//! - `decide`: the decision, rule by rule
//! - `projects`: registered compose projects and the `-f` / `--env-file` rule
//! - `probes`: their declared probes, the only argvs `docker exec` runs

mod decide;
mod probes;
mod projects;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::docker::{NameKind, OperationKind, check_name};
use crate::request::Environment;

pub use probes::{PrintEnvSpec, ProbeSpec};
pub use projects::RegisteredProject;

const DEFAULT_POLICY: &str = include_str!("../../config/policy.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub environments: BTreeMap<String, EnvironmentPolicy>,
    /// Compose projects whose files the gateway knows, by project name.
    #[serde(default)]
    pub projects: BTreeMap<String, RegisteredProject>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentPolicy {
    /// Operation names (`container_stop`, `compose_down`, …) allowed here.
    pub allow: Vec<String>,
    /// Canonical container names (as Docker names them: `shop-db-1`) no operation touches.
    #[serde(default)]
    pub protected_containers: Vec<String>,
    /// Compose services, by their project and service labels, no operation touches.
    #[serde(default)]
    pub protected_services: Vec<ServiceRef>,
    /// Compose projects, by their project label, no operation touches.
    #[serde(default)]
    pub protected_projects: Vec<String>,
    /// Wingman's own services: no mutating operation runs on them here, read-only ones do.
    #[serde(default)]
    pub control_plane: Option<ControlPlane>,
    /// A stop/restart timeout above this is refused.
    pub max_stop_timeout_secs: u32,
    /// Whether `rm -v` / `compose down -v` may delete volumes.
    #[serde(default)]
    pub allow_volume_removal: bool,
}

/// One compose service, as its containers' labels name it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRef {
    pub project: String,
    pub service: String,
}

/// Wingman's control plane: the services of its own compose project that the gateway must
/// never stop, since stopping them through Wingman would cut the branch it sits on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPlane {
    /// The compose project Wingman runs as (`-p` of `docker-compose.prd.yml`).
    pub project: String,
    /// Its services that make up the control plane (compose service names).
    pub services: Vec<String>,
}

/// Why the policy refused an operation: `rule` names the setting, `reason` says it plainly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by policy rule `{rule}`: {reason}")]
pub struct PolicyRefusal {
    pub rule: String,
    pub reason: String,
}

impl Policy {
    /// The shipped policy.
    ///
    /// # Panics
    /// Never: the shipped file is compiled in and parsed by a unit test.
    pub fn default_policy() -> Self {
        Self::from_toml(DEFAULT_POLICY).expect("the shipped policy parses")
    }

    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let policy: Policy =
            toml::from_str(text).map_err(|error| anyhow::anyhow!("policy file: {error}"))?;
        for (name, environment) in &policy.environments {
            let parsed = name
                .parse::<Environment>()
                .map_err(|error| anyhow::anyhow!("policy file: [environments.{name}]: {error}"))?;
            environment
                .validate(name, parsed)
                .map_err(|error| anyhow::anyhow!("policy file: environments.{name}.{error}"))?;
        }
        for (name, project) in &policy.projects {
            project
                .validate(name)
                .map_err(|error| anyhow::anyhow!("policy file: projects.{name}: {error}"))?;
        }
        Ok(policy)
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| anyhow::anyhow!("read the policy file {}: {error}", path.display()))?;
        Self::from_toml(&text).map_err(|error| anyhow::anyhow!("{}: {error:#}", path.display()))
    }

    /// The stop-timeout ceiling in `environment` (for the engine's limits).
    pub fn max_stop_timeout(&self, environment: Environment) -> u32 {
        self.environments
            .get(environment.as_str())
            .map_or(10, |policy| policy.max_stop_timeout_secs)
    }
}

impl EnvironmentPolicy {
    /// Checks the names in one `[environments.<name>]`; the error starts with the key.
    fn validate(&self, name: &str, environment: Environment) -> anyhow::Result<()> {
        for operation in &self.allow {
            anyhow::ensure!(
                OperationKind::from_name(operation).is_some(),
                "allow: unknown operation `{operation}` (known: {})",
                OperationKind::names_joined()
            );
        }
        let project = |key: &str, value: &str| {
            check_name(NameKind::Project, value).map_err(|error| anyhow::anyhow!("{key}: {error}"))
        };
        let service = |key: &str, value: &str| {
            check_name(NameKind::Service, value).map_err(|error| anyhow::anyhow!("{key}: {error}"))
        };
        for value in &self.protected_projects {
            project("protected_projects", value)?;
        }
        for value in &self.protected_containers {
            check_name(NameKind::Container, value)
                .map_err(|error| anyhow::anyhow!("protected_containers: {error}"))?;
        }
        for reference in &self.protected_services {
            project("protected_services", &reference.project)?;
            service("protected_services", &reference.service)?;
        }
        match &self.control_plane {
            Some(plane) => {
                project("control_plane.project", &plane.project)?;
                anyhow::ensure!(
                    !plane.services.is_empty(),
                    "control_plane.services: list Wingman's services (nats, postgres, gateway, …)"
                );
                for value in &plane.services {
                    service("control_plane.services", value)?;
                }
            }
            None => anyhow::ensure!(
                environment != Environment::Prd,
                "control_plane: required in {name}: name Wingman's own compose project and \
                 services, so the gateway never stops them"
            ),
        }
        Ok(())
    }
}

//! The gateway's per-environment policy (`config/policy.toml`): which operations may run
//! where, which containers and projects are never touched, and limits. A refusal names the
//! rule that refused it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::docker::DockerOperation;
use crate::request::Environment;

const DEFAULT_POLICY: &str = include_str!("../config/policy.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub environments: BTreeMap<String, EnvironmentPolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentPolicy {
    /// Operation names (`container_stop`, `compose_down`, …) allowed here.
    pub allow: Vec<String>,
    #[serde(default)]
    pub protected_containers: Vec<String>,
    #[serde(default)]
    pub protected_projects: Vec<String>,
    /// A stop/restart timeout above this is refused.
    pub max_stop_timeout_secs: u32,
    /// Whether `rm -v` / `compose down -v` may delete volumes.
    #[serde(default)]
    pub allow_volume_removal: bool,
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
            name.parse::<Environment>()
                .map_err(|error| anyhow::anyhow!("policy file: [environments.{name}]: {error}"))?;
            for operation in &environment.allow {
                anyhow::ensure!(
                    KNOWN_OPERATIONS.contains(&operation.as_str()),
                    "policy file: environments.{name}.allow: unknown operation `{operation}` (known: {})",
                    KNOWN_OPERATIONS.join(", ")
                );
            }
        }
        Ok(policy)
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| anyhow::anyhow!("read the policy file {}: {error}", path.display()))?;
        Self::from_toml(&text).map_err(|error| anyhow::anyhow!("{}: {error:#}", path.display()))
    }

    /// Allows the operation in `environment`, or says which rule refuses it.
    pub fn check(
        &self,
        environment: Environment,
        operation: &DockerOperation,
    ) -> Result<(), PolicyRefusal> {
        let refuse = |rule: String, reason: String| Err(PolicyRefusal { rule, reason });
        let env = environment.as_str();
        let Some(policy) = self.environments.get(env) else {
            return refuse(
                format!("environments.{env}"),
                format!("no policy for environment {env}: nothing may run there"),
            );
        };
        let name = operation.name();
        if !policy.allow.iter().any(|allowed| allowed == name) {
            return refuse(
                format!("environments.{env}.allow"),
                format!("{name} is not allowed in {env}"),
            );
        }
        // What the operation touches, and the limits every operation shares.
        let (volumes, timeout) = match operation {
            DockerOperation::Container(container) => {
                if let Some(target) = container
                    .targets
                    .iter()
                    .find(|t| policy.protected_containers.contains(t))
                {
                    return refuse(
                        format!("environments.{env}.protected_containers"),
                        format!("container {target} is protected in {env}"),
                    );
                }
                (container.options.volumes, container.options.timeout_secs)
            }
            DockerOperation::Compose(compose) => {
                if policy.protected_projects.contains(&compose.project) {
                    return refuse(
                        format!("environments.{env}.protected_projects"),
                        format!("compose project {} is protected in {env}", compose.project),
                    );
                }
                (compose.options.volumes, compose.options.timeout_secs)
            }
        };
        if volumes && !policy.allow_volume_removal {
            return refuse(
                format!("environments.{env}.allow_volume_removal"),
                format!("removing volumes is not allowed in {env}"),
            );
        }
        if let Some(timeout) = timeout.filter(|t| *t > policy.max_stop_timeout_secs) {
            return refuse(
                format!("environments.{env}.max_stop_timeout_secs"),
                format!(
                    "a {timeout} s stop timeout exceeds {} s in {env}",
                    policy.max_stop_timeout_secs
                ),
            );
        }
        Ok(())
    }

    /// The stop-timeout ceiling in `environment` (for the engine's limits).
    pub fn max_stop_timeout(&self, environment: Environment) -> u32 {
        self.environments
            .get(environment.as_str())
            .map_or(10, |policy| policy.max_stop_timeout_secs)
    }
}

const KNOWN_OPERATIONS: &[&str] = &[
    "container_stop",
    "container_start",
    "container_restart",
    "container_kill",
    "container_rm",
    "container_inspect",
    "container_logs",
    "compose_down",
    "compose_stop",
    "compose_start",
    "compose_restart",
    "compose_ps",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::parse_command_line;

    fn check(environment: Environment, line: &str) -> Result<(), PolicyRefusal> {
        Policy::default_policy().check(environment, &parse_command_line(line).unwrap())
    }

    #[test]
    fn the_shipped_policy_allows_ordinary_operations() {
        assert_eq!(
            check(Environment::Prd, "docker compose -p wingman-prd down"),
            Ok(())
        );
        assert_eq!(check(Environment::Dev, "docker kill api"), Ok(()));
    }

    #[test]
    fn a_refusal_names_the_rule() {
        let refusal = check(Environment::Prd, "docker kill api").unwrap_err();
        assert_eq!(refusal.rule, "environments.prd.allow");
        let refusal = check(Environment::Prd, "docker stop wingman-prd-postgres").unwrap_err();
        assert_eq!(refusal.rule, "environments.prd.protected_containers");
        let refusal = check(Environment::Prd, "docker compose -p shop down -v").unwrap_err();
        assert_eq!(refusal.rule, "environments.prd.allow_volume_removal");
        let refusal = check(Environment::Prd, "docker stop -t 300 api").unwrap_err();
        assert_eq!(refusal.rule, "environments.prd.max_stop_timeout_secs");
        assert!(
            refusal
                .to_string()
                .starts_with("refused by policy rule `environments.prd.max_stop_timeout_secs`")
        );
    }

    #[test]
    fn a_bad_policy_file_names_the_problem() {
        let error = Policy::from_toml(
            "[environments.prd]\nallow = [\"container_explode\"]\nmax_stop_timeout_secs = 1\n",
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("unknown operation `container_explode`"),
            "{error}"
        );
        let error =
            Policy::from_toml("[environments.staging]\nallow = []\nmax_stop_timeout_secs = 1\n")
                .unwrap_err();
        assert!(
            error.to_string().contains("unknown environment `staging`"),
            "{error}"
        );
    }
}

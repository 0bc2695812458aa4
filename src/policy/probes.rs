//! Declared probes (`[projects.<name>.probes]`): the only argvs `docker exec` runs.
//!
//! A probe is declared per registered project, in one of two shapes ([`ProbeSpec`]): an argv
//! run as is, or the names of environment variables to print. A request's exec argv must
//! equal a declared probe's argv exactly (`projects::probe_for`, on the compose project Docker says
//! the container belongs to); the engine then runs the [`Probe`] the policy found, never the
//! typed argv. Probes that would print secrets are refused when the policy loads.

use serde::Deserialize;

use crate::docker::{NameKind, check_name};
use crate::engine::{Probe, redact};

/// One declared probe: an argv run as is (`health = ["wget", "-qO-", "http://…/health"]`),
/// or named environment variables to print (`env = { print_env = ["VALIDATION_ENABLED"] }`),
/// requested as `docker exec <container> printenv VALIDATION_ENABLED`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ProbeSpec {
    Command(Vec<String>),
    PrintEnv(PrintEnvSpec),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintEnvSpec {
    /// Variable names (never secrets: a name that looks like one is refused at load).
    pub print_env: Vec<String>,
}

impl ProbeSpec {
    /// The argv a request types for this probe.
    pub fn argv(&self) -> Vec<String> {
        match self {
            ProbeSpec::Command(argv) => argv.clone(),
            ProbeSpec::PrintEnv(spec) => std::iter::once("printenv".to_string())
                .chain(spec.print_env.iter().cloned())
                .collect(),
        }
    }

    /// What the engine runs for it.
    pub fn to_probe(&self, name: &str) -> Probe {
        match self {
            ProbeSpec::Command(argv) => Probe::Command {
                name: name.to_string(),
                argv: argv.clone(),
            },
            ProbeSpec::PrintEnv(spec) => Probe::PrintEnv {
                name: name.to_string(),
                variables: spec.print_env.clone(),
            },
        }
    }

    pub(crate) fn validate(&self, name: &str) -> anyhow::Result<()> {
        check_name(NameKind::Service, name)
            .map_err(|error| anyhow::anyhow!("probes: `{name}`: {error}"))?;
        match self {
            ProbeSpec::Command(argv) => {
                let Some(program) = argv.first() else {
                    anyhow::bail!("probes.{name}: name the command and its arguments");
                };
                for arg in argv {
                    anyhow::ensure!(
                        !arg.is_empty() && !arg.chars().any(char::is_control),
                        "probes.{name}: `{}` is not an argument (empty or a control character)",
                        arg.escape_debug()
                    );
                }
                let base = program.rsplit('/').next().unwrap_or(program);
                anyhow::ensure!(
                    !matches!(base, "env" | "printenv" | "set" | "export"),
                    "probes.{name}: `{program}` prints environment variables, secrets included: \
                     declare `{name} = {{ print_env = [\"NAME\", …] }}` with the names to print"
                );
            }
            ProbeSpec::PrintEnv(spec) => {
                anyhow::ensure!(
                    !spec.print_env.is_empty(),
                    "probes.{name}.print_env: name at least one variable"
                );
                for variable in &spec.print_env {
                    let mut chars = variable.chars();
                    let valid = chars
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
                    anyhow::ensure!(
                        valid,
                        "probes.{name}.print_env: `{}` is not a variable name",
                        variable.escape_debug()
                    );
                    anyhow::ensure!(
                        !redact::looks_secret(variable),
                        "probes.{name}.print_env: `{variable}` looks like a secret: an env probe \
                         prints only non-secret variables"
                    );
                }
            }
        }
        Ok(())
    }
}

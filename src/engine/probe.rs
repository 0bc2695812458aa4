//! `docker exec` of a probe the policy declared, through the Engine's exec API.
//!
//! The gateway's policy matched the request's argv against the probes declared for the
//! container's compose project and hands the engine the [`Probe`] it found; the engine runs
//! only that, never the typed argv itself:
//! - [`Probe::Command`] runs its argv (no shell, no tty, no stdin, the container's user)
//!   and prints what it printed, redacted like logs;
//! - [`Probe::PrintEnv`] runs `env -0` (in busybox and coreutils alike; `printenv` is not in
//!   busybox) and prints `NAME=value` for the named variables only, `NAME is not set` for a
//!   missing one. Every other variable's value is dropped inside the gateway: NUL-separated
//!   entries cannot be forged by a value with a line break.
//!
//! A probe that exits non-zero is a failed target with its output. Reading is bounded and a
//! probe that runs past [`PROBE_TIMEOUT`] is reported as failed, not waited for.

use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use futures::StreamExt;
use serde::Serialize;

use crate::engine::container::Outcome;
use crate::engine::result::Report;
use crate::engine::{Engine, EngineError, redact};

/// How long a probe may run.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes of a probe's output read; `env -0` of a large environment included.
const READ_BOUND: usize = 256 * 1024;

/// A declared probe, as the policy found it for an exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Probe {
    /// Runs `argv` and prints its output.
    Command { name: String, argv: Vec<String> },
    /// Prints these environment variables of the container, and no others.
    PrintEnv {
        name: String,
        variables: Vec<String>,
    },
}

impl Probe {
    /// The probe's name in the policy (`health`, `env`).
    pub fn name(&self) -> &str {
        match self {
            Probe::Command { name, .. } | Probe::PrintEnv { name, .. } => name,
        }
    }
}

/// Runs `probe` in the container with the full id `id` (shown as `shown`).
pub(crate) async fn run(
    engine: &Engine,
    id: &str,
    shown: &str,
    probe: &Probe,
    report: &mut Report,
) -> Result<(), EngineError> {
    let argv = match probe {
        Probe::Command { argv, .. } => argv.clone(),
        Probe::PrintEnv { .. } => vec!["env".to_string(), "-0".to_string()],
    };
    let ran = tokio::time::timeout(PROBE_TIMEOUT, exec(engine, id, argv)).await;
    let (printed, exit_code) = match ran {
        Err(_) => {
            report.target(
                shown,
                format!(
                    "probe {} ran past {} s",
                    probe.name(),
                    PROBE_TIMEOUT.as_secs()
                ),
                false,
            );
            return Ok(());
        }
        Ok(Err(error)) => {
            return crate::engine::container::record(engine, report, shown, Err(error));
        }
        Ok(Ok(done)) => done,
    };
    let text = match probe {
        Probe::Command { .. } => redact::text(&String::from_utf8_lossy(&printed)),
        Probe::PrintEnv { variables, .. } => named_variables(&printed, variables),
    };
    let outcome = match exit_code {
        Some(0) => Outcome::done(format!("probe {} ok", probe.name())),
        Some(code) => Outcome::failed(format!("probe {} exited with {code}", probe.name())),
        None => Outcome::failed(format!("probe {} gave no exit code", probe.name())),
    };
    crate::engine::container::record(engine, report, shown, Ok(outcome))?;
    report.text(&text);
    Ok(())
}

/// Creates, starts and reads one exec; its output (bounded) and exit code.
async fn exec(
    engine: &Engine,
    id: &str,
    argv: Vec<String>,
) -> Result<(Vec<u8>, Option<i64>), bollard::errors::Error> {
    let created = engine
        .docker
        .create_exec(
            id,
            ExecConfig {
                cmd: Some(argv),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                attach_stdin: Some(false),
                tty: Some(false),
                ..ExecConfig::default()
            },
        )
        .await?;
    let mut printed = Vec::new();
    if let StartExecResults::Attached { mut output, .. } =
        engine.docker.start_exec(&created.id, None).await?
    {
        while let Some(chunk) = output.next().await {
            let message = match chunk? {
                LogOutput::StdOut { message }
                | LogOutput::StdErr { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message } => message,
            };
            let room = READ_BOUND.saturating_sub(printed.len());
            printed.extend_from_slice(&message[..message.len().min(room)]);
        }
    }
    let inspected = engine.docker.inspect_exec(&created.id).await?;
    Ok((printed, inspected.exit_code))
}

/// `NAME=value` for each of `variables` found in NUL-separated `env -0` output, in the
/// declared order, `NAME is not set` for the others; nothing else.
fn named_variables(printed: &[u8], variables: &[String]) -> String {
    let entries: Vec<(&[u8], &[u8])> = printed
        .split(|byte| *byte == 0)
        .filter_map(|entry| {
            let equals = entry.iter().position(|byte| *byte == b'=')?;
            Some((&entry[..equals], &entry[equals + 1..]))
        })
        .collect();
    let mut text = String::new();
    for variable in variables {
        match entries
            .iter()
            .find(|(name, _)| *name == variable.as_bytes())
        {
            Some((_, value)) => {
                let value = String::from_utf8_lossy(value);
                let line = format!("{variable}={}", value.escape_debug());
                text.push_str(&redact::text(&line));
            }
            None => text.push_str(&format!("{variable} is not set")),
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_variables_are_printed_in_the_declared_order() {
        let env = b"PATH=/bin\0DB_PASSWORD=hunter2\0VALIDATION_ROLLOUT_PERCENT=50\0VALIDATION_ENABLED=true\0";
        let names = [
            "VALIDATION_ENABLED".to_string(),
            "VALIDATION_ROLLOUT_PERCENT".into(),
        ];
        assert_eq!(
            named_variables(env, &names),
            "VALIDATION_ENABLED=true\nVALIDATION_ROLLOUT_PERCENT=50\n"
        );
    }

    #[test]
    fn a_value_with_a_line_break_cannot_forge_another_variable() {
        let env = b"NOTE=x\nVALIDATION_ENABLED=hunter2\0DB_PASSWORD=hunter2\0";
        let names = ["VALIDATION_ENABLED".to_string(), "NOTE".into()];
        let printed = named_variables(env, &names);
        assert_eq!(
            printed,
            "VALIDATION_ENABLED is not set\nNOTE=x\\nVALIDATION_ENABLED=hunter2\n"
        );
        assert!(!printed.contains("DB_PASSWORD"));
    }
}

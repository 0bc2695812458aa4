//! State changes of one container: stop, start, restart, kill and rm.
//!
//! Shared by container operations and compose operations. Each change first looks at
//! the container where that decides the outcome ("already stopped"), then makes one
//! Engine API call. Engine answers become the target's outcome; only a lost connection
//! becomes an [`EngineError`].

use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    KillContainerOptions, RemoveContainerOptions, RestartContainerOptions, StopContainerOptions,
};

use crate::engine::error::{server_message, status_code};
use crate::engine::result::Report;
use crate::engine::{Engine, EngineError};

/// One state change, with its options already clamped to the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Stop {
        timeout_secs: u32,
        signal: Option<String>,
    },
    Start,
    Restart {
        timeout_secs: u32,
        signal: Option<String>,
    },
    Kill {
        signal: Option<String>,
    },
    Remove {
        force: bool,
        volumes: bool,
    },
}

/// What one attempt on a target came to, when the engine answered.
pub(crate) struct Outcome {
    pub(crate) text: String,
    pub(crate) ok: bool,
}

impl Outcome {
    pub(crate) fn done(text: impl Into<String>) -> Self {
        Outcome {
            text: text.into(),
            ok: true,
        }
    }

    pub(crate) fn failed(text: impl Into<String>) -> Self {
        Outcome {
            text: text.into(),
            ok: false,
        }
    }
}

/// Applies `change` to the container with the full id `id` and records the outcome in
/// `report` under `shown` (the name the operation typed, or the container's name).
pub(crate) async fn apply(
    engine: &Engine,
    id: &str,
    shown: &str,
    change: &Change,
    report: &mut Report,
) -> Result<(), EngineError> {
    let attempt = match change {
        Change::Stop {
            timeout_secs,
            signal,
        } => stop(engine, id, *timeout_secs, signal.clone()).await,
        Change::Start => start(engine, id).await,
        Change::Restart {
            timeout_secs,
            signal,
        } => restart(engine, id, *timeout_secs, signal.clone()).await,
        Change::Kill { signal } => kill(engine, id, signal.as_deref()).await,
        Change::Remove { force, volumes } => remove(engine, id, *force, *volumes).await,
    };
    record(engine, report, shown, attempt)
}

/// Records an attempt: engine answers become the target's outcome (404 is "not found"),
/// a lost connection is returned as [`EngineError::Unreachable`].
pub(crate) fn record(
    engine: &Engine,
    report: &mut Report,
    name: &str,
    attempt: Result<Outcome, DockerError>,
) -> Result<(), EngineError> {
    let outcome = match attempt {
        Ok(outcome) => outcome,
        Err(error) if is_connection_problem(&error) => return Err(engine.unreachable(error)),
        Err(error) => match status_code(&error) {
            Some(404) => Outcome::failed("not found"),
            _ => Outcome::failed(format!(
                "failed: {}",
                server_message(&error)
                    .map(str::to_string)
                    .unwrap_or_else(|| error.to_string())
            )),
        },
    };
    report.target(name, outcome.text, outcome.ok);
    Ok(())
}

/// Whether the container runs (paused and restarting count as running).
pub(crate) async fn is_running(engine: &Engine, name: &str) -> Result<bool, DockerError> {
    let inspected = engine.docker.inspect_container(name, None).await?;
    Ok(inspected
        .state
        .and_then(|state| state.running)
        .unwrap_or(false))
}

pub(crate) async fn stop(
    engine: &Engine,
    name: &str,
    timeout_secs: u32,
    signal: Option<String>,
) -> Result<Outcome, DockerError> {
    if !is_running(engine, name).await? {
        return Ok(Outcome::done("already stopped"));
    }
    let options = StopContainerOptions {
        signal,
        t: Some(seconds(timeout_secs)),
    };
    engine
        .docker_waiting(timeout_secs)
        .stop_container(name, Some(options))
        .await?;
    Ok(Outcome::done("stopped"))
}

async fn start(engine: &Engine, name: &str) -> Result<Outcome, DockerError> {
    if is_running(engine, name).await? {
        return Ok(Outcome::done("already running"));
    }
    engine.docker.start_container(name, None).await?;
    Ok(Outcome::done("started"))
}

async fn restart(
    engine: &Engine,
    name: &str,
    timeout_secs: u32,
    signal: Option<String>,
) -> Result<Outcome, DockerError> {
    let options = RestartContainerOptions {
        signal,
        t: Some(seconds(timeout_secs)),
    };
    engine
        .docker_waiting(timeout_secs)
        .restart_container(name, Some(options))
        .await?;
    Ok(Outcome::done("restarted"))
}

async fn kill(engine: &Engine, name: &str, signal: Option<&str>) -> Result<Outcome, DockerError> {
    let signal = signal.unwrap_or("SIGKILL");
    if !is_running(engine, name).await? {
        // Killing to stop is already achieved; any other signal has nobody to go to.
        return Ok(if is_stop_signal(signal) {
            Outcome::done("already stopped")
        } else {
            Outcome::failed("not running")
        });
    }
    let options = KillContainerOptions {
        signal: signal.to_string(),
    };
    engine.docker.kill_container(name, Some(options)).await?;
    Ok(Outcome::done(if is_stop_signal(signal) {
        "killed".to_string()
    } else {
        format!("sent {signal}")
    }))
}

pub(crate) async fn remove(
    engine: &Engine,
    name: &str,
    force: bool,
    volumes: bool,
) -> Result<Outcome, DockerError> {
    let options = RemoveContainerOptions {
        v: volumes,
        force,
        link: false,
    };
    engine.docker.remove_container(name, Some(options)).await?;
    Ok(Outcome::done("removed"))
}

/// Signals whose default action ends a process, by name or number.
fn is_stop_signal(signal: &str) -> bool {
    matches!(
        signal,
        "SIGKILL" | "SIGTERM" | "SIGINT" | "SIGQUIT" | "9" | "15" | "2" | "3"
    )
}

/// The engine takes stop timeouts as `i32`; ours are clamped far below its range.
fn seconds(timeout_secs: u32) -> i32 {
    i32::try_from(timeout_secs).unwrap_or(i32::MAX)
}

/// Errors where the engine never answered, as opposed to answering with an error.
pub(crate) fn is_connection_problem(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::HyperLegacyError { .. }
            | DockerError::HyperResponseError { .. }
            | DockerError::IOError { .. }
            | DockerError::RequestTimeoutError
            | DockerError::SocketNotFoundError(_)
    )
}

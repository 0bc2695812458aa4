//! Performs a typed [`DockerOperation`] through the Docker Engine API.
//!
//! This is the gateway's hand on Docker: the only code that holds the socket. It takes an
//! operation that intake parsed, the validator allowed and a human approved, and performs
//! it with typed Engine API calls (bollard), never through a shell or the docker CLI. The
//! exceptions are `compose up` and `compose pull`, which need the compose model the Engine
//! API lacks: for those it runs the compose binary with an argv it builds itself, against
//! its own engine (`compose_cli`). It decides nothing about whether the operation should
//! run; that was settled upstream, and what the policy adds (the registered project, the
//! declared probe) comes in an [`Admission`].
//!
//! It also answers the question the gateway's policy decides on: what Docker says the
//! targets are ([`Engine::resolve`]; [`Engine::look`] for the gateway, which resolves an
//! `inspect` by inspecting and keeps what it read). [`Engine::perform_resolved`] then acts
//! on exactly the containers that were resolved, by full id; [`Engine::perform`] does both
//! at once.
//!
//! Every target gets a [`TargetResult`]; a missing container or a refused removal is a
//! failed target, not an [`EngineError`]. Targets are handled one at a time, in the order
//! given for containers and sorted by name for compose projects, so results read the same
//! on every run. A target already in the wanted state counts as done ("already stopped").
//!
//! Layout:
//! - `container`: stop, start, restart, kill and rm of one container
//! - `read`: inspect and logs
//! - `redact`: what inspect and logs read loses its secrets before it leaves the gateway
//! - `compose`: compose projects, found by their `com.docker.compose.*` labels
//! - `compose_cli`: `compose up` and `pull` through the compose binary
//! - `probe`: `docker exec` of a declared probe
//! - `resolve`: the listing the typed targets are matched against, and [`Lookup`]
//! - `result`: [`ExecutionResult`], [`TargetResult`], [`Limits`] and bounded output
//! - `since` and `template`: the client-side parts of `logs --since` and `inspect --format`
//! - `error`: [`EngineError`]

mod compose;
mod compose_cli;
mod container;
mod error;
mod probe;
mod read;
pub mod redact;
mod resolve;
mod result;
mod since;
mod template;

#[cfg(test)]
mod tests;

use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::ContainerInspectResponse;

use crate::docker::{ContainerAction, ContainerOp, DockerOperation, Resolution, Resolved};

pub use compose_cli::{
    ComposeBinary, ComposeFileDigests, ComposeProject, DEFAULT_COMPOSE_BIN,
    DEFAULT_COMPOSE_TIMEOUT, FileDigest, compose_argv,
};
pub use error::EngineError;
pub use probe::{PROBE_TIMEOUT, Probe};
pub use resolve::Lookup;
pub use result::{
    CUT_MARKER, DEFAULT_STOP_TIMEOUT_SECS, ExecutionResult, Limits, TargetResult, bounded,
};

use container::Change;
use result::Report;

/// The socket used when no host is configured.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Seconds any single Engine API call may take, on top of a stop timeout it waits for.
const CALL_TIMEOUT_SECS: u64 = 60;

/// A container target to act on: the name shown in the report (as typed), and the full id
/// it resolved to, or the outcome to report when it resolved to none.
pub(crate) struct Aim {
    pub(crate) shown: String,
    pub(crate) id: Result<String, String>,
}

/// What the gateway's policy adds to an operation it allowed: where a `compose up` or
/// `pull` runs from, which probe an exec runs. Both come from the policy, never the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// The registered project of a compose operation, when it has one.
    pub project: Option<ComposeProject>,
    /// The declared probe an exec matched.
    pub probe: Option<Probe>,
}

/// A connection to one Docker Engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    /// Where the engine listens, for error messages and the compose binary's `DOCKER_HOST`.
    host: String,
    /// The compose binary `compose up` and `pull` run.
    compose: ComposeBinary,
}

impl From<crate::config::ComposeSettings> for ComposeBinary {
    fn from(settings: crate::config::ComposeSettings) -> Self {
        Self {
            command: settings.command,
            timeout: settings.timeout,
        }
    }
}

impl Engine {
    /// Connects to `docker_host` (`unix:///path/to/docker.sock` or a bare socket path;
    /// [`DEFAULT_DOCKER_HOST`] when `None`) and negotiates the API version with it. Compose
    /// runs the default binary until [`with_compose`](Self::with_compose) names another.
    pub async fn connect(docker_host: Option<&str>) -> Result<Self, EngineError> {
        let host = docker_host.unwrap_or(DEFAULT_DOCKER_HOST).to_string();
        let is_unix = host
            .strip_prefix("unix://")
            .unwrap_or(&host)
            .starts_with('/');
        if !is_unix {
            return Err(EngineError::UnsupportedHost { host });
        }
        let unreachable = |source| EngineError::Unreachable {
            host: host.clone(),
            source,
        };
        let docker =
            Docker::connect_with_unix(&host, CALL_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
                .map_err(unreachable)?
                .negotiate_version()
                .await
                .map_err(unreachable)?;
        let version = docker.client_version();
        tracing::debug!(%host, api = %format!("{}.{}", version.major_version, version.minor_version), "connected to docker engine");
        Ok(Engine {
            docker,
            host,
            compose: ComposeBinary::from(crate::config::ComposeSettings::default()),
        })
    }

    /// The engine running `compose up` and `pull` with the binary and bound of `settings`
    /// (`WINGMAN_COMPOSE_BIN`, `WINGMAN_COMPOSE_TIMEOUT`: the gateway's settings).
    pub fn with_compose(mut self, settings: crate::config::ComposeSettings) -> Self {
        self.compose = ComposeBinary::from(settings);
        self
    }

    /// The same engine, running `compose up` and `pull` with `compose` instead.
    pub fn with_compose_binary(mut self, compose: ComposeBinary) -> Self {
        self.compose = compose;
        self
    }

    /// The compose binary `compose up` and `pull` run.
    pub fn compose_binary(&self) -> &ComposeBinary {
        &self.compose
    }

    /// Performs `operation` on what `lookup` found, with what the policy's `admission`
    /// adds: the registered project for `compose up` / `pull`, the probe for an exec; an
    /// `inspect` reports what `lookup` read of its targets (asking only for what it did not
    /// read). Every other operation is [`Engine::perform_resolved`].
    #[tracing::instrument(skip_all, fields(operation = operation.name()))]
    pub async fn perform_admitted(
        &self,
        operation: &DockerOperation,
        lookup: &Lookup,
        admission: &Admission,
        limits: &Limits,
    ) -> Result<ExecutionResult, EngineError> {
        let resolved = &lookup.resolved;
        match (operation, resolved) {
            (DockerOperation::Compose(op), _) if op.action.reads_compose_files() => {
                let project =
                    admission
                        .project
                        .as_ref()
                        .ok_or_else(|| EngineError::Unsupported {
                            what: format!(
                                "compose {} of project {} without its registration in the policy",
                                op.action.as_str(),
                                op.project
                            ),
                        })?;
                compose_cli::perform(&self.compose, &self.host, project, op, limits).await
            }
            (DockerOperation::Exec(op), Resolved::Containers(targets)) => {
                let mut report =
                    result::Report::new(format!("exec in container {}", op.container), limits);
                let Some(target) = targets.first() else {
                    report.target(&op.container, "not found", false);
                    return Ok(report.finish());
                };
                match (&target.resolution, &admission.probe) {
                    (Resolution::Found(facts), Some(probe)) => {
                        probe::run(self, &facts.id, &target.typed, probe, &mut report).await?;
                    }
                    (Resolution::Found(_), None) => {
                        return Err(EngineError::Unsupported {
                            what: "an exec without a probe the policy declared".to_string(),
                        });
                    }
                    (Resolution::Missing, _) => report.target(&target.typed, "not found", false),
                    (Resolution::Ambiguous { matches }, _) => report.target(
                        &target.typed,
                        format!("ambiguous: an id prefix of {matches} containers"),
                        false,
                    ),
                }
                Ok(report.finish())
            }
            _ => self.perform_reading(operation, lookup, limits).await,
        }
    }

    /// Checks that the engine answers.
    pub async fn ping(&self) -> Result<(), EngineError> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|source| self.unreachable(source))
    }

    /// Resolves the operation's targets and performs it on them within `limits`.
    pub async fn perform(
        &self,
        operation: &DockerOperation,
        limits: &Limits,
    ) -> Result<ExecutionResult, EngineError> {
        let resolved = self.resolve(operation).await?;
        self.perform_resolved(operation, &resolved, limits).await
    }

    /// Performs `operation` on the containers `resolved` found for it (by full id), within
    /// `limits`. A target that resolved to no container, or to several, is a failed target.
    ///
    /// Returns `Err` only when the operation could not be carried out as a whole (see
    /// [`EngineError`]); per-target failures are in the result.
    #[tracing::instrument(skip_all, fields(operation = operation.name()))]
    pub async fn perform_resolved(
        &self,
        operation: &DockerOperation,
        resolved: &Resolved,
        limits: &Limits,
    ) -> Result<ExecutionResult, EngineError> {
        self.perform_reading(operation, &Lookup::resolved(resolved.clone()), limits)
            .await
    }

    /// [`Engine::perform_resolved`] on `lookup`'s targets, reporting what it already read.
    async fn perform_reading(
        &self,
        operation: &DockerOperation,
        lookup: &Lookup,
        limits: &Limits,
    ) -> Result<ExecutionResult, EngineError> {
        match (operation, &lookup.resolved) {
            (DockerOperation::Container(op), Resolved::Containers(targets)) => {
                let aims = targets
                    .iter()
                    .map(|target| Aim {
                        shown: target.typed.clone(),
                        id: match &target.resolution {
                            Resolution::Found(facts) => Ok(facts.id.clone()),
                            Resolution::Missing => Err("not found".to_string()),
                            Resolution::Ambiguous { matches } => {
                                Err(format!("ambiguous: an id prefix of {matches} containers"))
                            }
                        },
                    })
                    .collect::<Vec<_>>();
                self.perform_container(op, &aims, &lookup.read, limits)
                    .await
            }
            (DockerOperation::Compose(op), Resolved::Compose(members))
                if !op.action.reads_compose_files() =>
            {
                compose::perform(self, op, members, limits).await
            }
            _ => Err(EngineError::Unsupported {
                what: format!(
                    "{} needs what the policy admitted (Engine::perform_admitted), or its \
                     targets were resolved for another kind of operation",
                    operation.name()
                ),
            }),
        }
    }

    async fn perform_container(
        &self,
        op: &ContainerOp,
        aims: &[Aim],
        read: &[(String, ContainerInspectResponse)],
        limits: &Limits,
    ) -> Result<ExecutionResult, EngineError> {
        let heading = format!(
            "{} {}",
            op.action.as_str(),
            DockerOperation::Container(op.clone()).targets_summary()
        );
        let mut report = Report::new(heading, limits);
        let options = &op.options;
        let change = match op.action {
            ContainerAction::Inspect => {
                read::inspect(self, aims, options, read, &mut report).await?;
                return Ok(report.finish());
            }
            ContainerAction::Logs => {
                read::logs(self, aims, options, limits, &mut report).await?;
                return Ok(report.finish());
            }
            ContainerAction::Stop => Change::Stop {
                timeout_secs: limits.stop_timeout_secs(options.timeout_secs),
                signal: options.signal.clone(),
            },
            ContainerAction::Start => Change::Start,
            ContainerAction::Restart => Change::Restart {
                timeout_secs: limits.stop_timeout_secs(options.timeout_secs),
                signal: options.signal.clone(),
            },
            ContainerAction::Kill => Change::Kill {
                signal: options.signal.clone(),
            },
            ContainerAction::Rm => Change::Remove {
                force: options.force,
                volumes: options.volumes,
            },
        };
        self.check_supported(&change)?;
        for aim in aims {
            match &aim.id {
                Ok(id) => container::apply(self, id, &aim.shown, &change, &mut report).await?,
                Err(outcome) => report.target(&aim.shown, outcome.clone(), false),
            }
        }
        Ok(report.finish())
    }

    /// Refuses options the negotiated API version would silently ignore.
    fn check_supported(&self, change: &Change) -> Result<(), EngineError> {
        let stop_signal = match change {
            Change::Stop { signal, .. } | Change::Restart { signal, .. } => signal.as_deref(),
            _ => None,
        };
        let version = self.docker.client_version();
        let before_1_42 = (version.major_version, version.minor_version) < (1, 42);
        match stop_signal {
            Some(signal) if before_1_42 => Err(EngineError::Unsupported {
                what: format!(
                    "stop/restart --signal {signal} needs engine API 1.42, this engine speaks {}.{}",
                    version.major_version, version.minor_version
                ),
            }),
            _ => Ok(()),
        }
    }

    /// A client whose calls may take `wait_secs` longer than usual, for stop and restart.
    fn docker_waiting(&self, wait_secs: u32) -> Docker {
        self.docker.clone().with_timeout(Duration::from_secs(
            CALL_TIMEOUT_SECS + u64::from(wait_secs),
        ))
    }

    fn unreachable(&self, source: DockerError) -> EngineError {
        EngineError::Unreachable {
            host: self.host.clone(),
            source,
        }
    }
}

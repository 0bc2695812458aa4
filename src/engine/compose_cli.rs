//! `compose up` and `compose pull`, performed by the compose binary the gateway runs itself.
//!
//! The Engine API has no compose model: it cannot build a project's images or create its
//! containers from a compose file. So for these two operations the gateway runs the real
//! compose binary (`WINGMAN_COMPOSE_BIN`, default `docker-compose`), with an argv it builds
//! itself from the parsed operation ([`compose_argv`]) and never through a shell:
//! - the compose files, the env file and the project directory come from the project's
//!   registration in the policy ([`ComposeProject`]), never from the request;
//! - from the operation it takes only what the parser checked: the project name, the
//!   services and the switches `--build` and `--remove-orphans`; with named services it adds
//!   `--no-deps`, so an approved `up -d api` never recreates the database `api` depends on;
//! - the child gets a clean environment: `PATH`, `HOME`, and `DOCKER_HOST` set to the
//!   gateway's own engine, so compose interpolates the registered env file, never the
//!   gateway's settings, and talks to no other daemon.
//!
//! What it prints (stdout and stderr, in arrival order) is read up to a bound, redacted like
//! logs ([`crate::engine::redact::text`]) and cut at [`Limits::max_output_bytes`]. A binary
//! that cannot start ran nothing: a failed target. A run past the timeout is killed and
//! reported as an [`EngineError`], since it may have changed part of the project.
//!
//! The approval covers a command line, but compose builds whatever the registered files say
//! when it runs: [`ComposeProject::digests`] reads them just before, so the audit records
//! the SHA-256 of each file the approved operation was performed with.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::docker::{ComposeAction, ComposeOp};
use crate::engine::result::Report;
use crate::engine::{EngineError, ExecutionResult, Limits, redact};

pub use crate::config::{DEFAULT_COMPOSE_BIN, DEFAULT_COMPOSE_TIMEOUT};

/// Bytes of compose output read before the rest is drained unread.
const READ_BOUND: usize = 256 * 1024;

/// A registered compose project, as the compose binary needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeProject {
    pub project: String,
    /// The absolute directory compose runs in.
    pub directory: PathBuf,
    /// `-f` files, in order, relative to `directory` (or absolute).
    pub files: Vec<String>,
    pub env_file: Option<String>,
}

/// One registered file as the gateway read it just before running compose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// The path compose is given (the registration's, under the project directory).
    pub path: String,
    /// The lowercase hex SHA-256 of its content (`sha256sum` prints the same); `null` when it
    /// could not be read.
    pub sha256: Option<String>,
    /// Why it could not be read (absent when it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The registered files of a project, each with its digest: what a `compose up` / `pull` ran
/// with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeFileDigests {
    /// The `-f` files, in order.
    pub compose_files: Vec<FileDigest>,
    /// The `--env-file`, when one is registered.
    pub env_file: Option<FileDigest>,
}

/// Which compose binary to run, and for how long at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeBinary {
    /// The program and its leading arguments: `["docker-compose"]` or `["docker", "compose"]`.
    pub command: Vec<String>,
    pub timeout: Duration,
}

impl Default for ComposeBinary {
    fn default() -> Self {
        ComposeBinary {
            command: vec![DEFAULT_COMPOSE_BIN.to_string()],
            timeout: DEFAULT_COMPOSE_TIMEOUT,
        }
    }
}

impl ComposeProject {
    /// Reads the registered compose files and env file as they are now and digests each: what
    /// compose is about to run with. A file that cannot be read is recorded with the error
    /// (compose will then fail on it too); this never fails.
    pub async fn digests(&self) -> ComposeFileDigests {
        let mut compose_files = Vec::with_capacity(self.files.len());
        for file in &self.files {
            compose_files.push(digest(&within(&self.directory, file)).await);
        }
        let env_file = match &self.env_file {
            Some(file) => Some(digest(&within(&self.directory, file)).await),
            None => None,
        };
        ComposeFileDigests {
            compose_files,
            env_file,
        }
    }
}

/// The SHA-256 of the file at `path` (a compose or env file: small, read whole).
async fn digest(path: &str) -> FileDigest {
    match tokio::fs::read(path).await {
        Ok(content) => FileDigest {
            path: path.to_string(),
            sha256: Some(hex::encode(Sha256::digest(&content))),
            error: None,
        },
        Err(error) => FileDigest {
            path: path.to_string(),
            sha256: None,
            error: Some(error.to_string()),
        },
    }
}

/// The argv the gateway runs for `op` on `project`, after the binary's own words.
///
/// # Panics
/// Never for the operations it is called with; `up` and `pull` are the only ones it knows.
pub fn compose_argv(project: &ComposeProject, op: &ComposeOp) -> Vec<String> {
    let mut argv = vec!["--ansi".to_string(), "never".to_string()];
    let directory = &project.directory;
    argv.push("--project-directory".to_string());
    argv.push(directory.display().to_string());
    for file in &project.files {
        argv.push("-f".to_string());
        argv.push(within(directory, file));
    }
    argv.push("-p".to_string());
    argv.push(project.project.clone());
    if let Some(env_file) = &project.env_file {
        argv.push("--env-file".to_string());
        argv.push(within(directory, env_file));
    }
    argv.push(op.action.as_str().to_string());
    if op.action == ComposeAction::Up {
        argv.push("--detach".to_string());
        if op.options.build {
            argv.push("--build".to_string());
        }
        if op.options.remove_orphans {
            argv.push("--remove-orphans".to_string());
        }
        if !op.services.is_empty() {
            argv.push("--no-deps".to_string());
        }
    }
    argv.extend(op.services.iter().cloned());
    argv
}

/// Runs `op` on the registered `project` with `binary`, against the engine at `docker_host`.
pub(crate) async fn perform(
    binary: &ComposeBinary,
    docker_host: &str,
    project: &ComposeProject,
    op: &ComposeOp,
    limits: &Limits,
) -> Result<ExecutionResult, EngineError> {
    let services = match op.services.as_slice() {
        [] => String::new(),
        services => format!(" (services {})", services.join(", ")),
    };
    let heading = format!(
        "compose {} project {}{services}",
        op.action.as_str(),
        op.project
    );
    let mut report = Report::new(heading, limits);
    let target = format!("project {}", op.project);
    let (program, leading) =
        binary
            .command
            .split_first()
            .ok_or_else(|| EngineError::Unsupported {
                what: "WINGMAN_COMPOSE_BIN is empty".to_string(),
            })?;
    let host = if docker_host.starts_with("unix://") {
        docker_host.to_string()
    } else {
        format!("unix://{docker_host}")
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(leading)
        .args(compose_argv(project, op))
        .current_dir(&project.directory)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .env("DOCKER_HOST", host)
        // The python compose builds through the Engine API, not a docker CLI on PATH.
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(home) = std::env::var_os("HOME") {
        command.env("HOME", home);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            report.target(
                &target,
                format!(
                    "could not start the compose binary `{}`: {error} (set WINGMAN_COMPOSE_BIN)",
                    binary.command.join(" ")
                ),
                false,
            );
            return Ok(report.finish());
        }
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let run = async {
        let (printed, status) = tokio::join!(read_both(stdout, stderr), child.wait());
        (printed, status)
    };
    let (printed, status) = match tokio::time::timeout(binary.timeout, run).await {
        Ok(done) => done,
        Err(_) => {
            let _ = child.kill().await;
            return Err(EngineError::ComposeTimedOut {
                action: op.action.as_str(),
                seconds: binary.timeout.as_secs(),
            });
        }
    };
    let status = status.map_err(|error| EngineError::Unsupported {
        what: format!("wait for the compose binary: {error}"),
    })?;
    match status.code() {
        Some(0) => report.target(&target, "done", true),
        Some(code) => report.target(&target, format!("compose exited with {code}"), false),
        None => report.target(&target, "compose was killed by a signal", false),
    }
    report.text(&redact::text(&printed.text));
    if printed.unread {
        report.mark_unread();
    }
    Ok(report.finish())
}

/// A path of the registration, under the project directory unless it is absolute.
fn within(directory: &Path, file: &str) -> String {
    directory.join(file).display().to_string()
}

struct Printed {
    text: String,
    /// The bound was reached: the rest was drained unread.
    unread: bool,
}

/// Reads stdout and stderr together, in arrival order, keeping at most [`READ_BOUND`] bytes
/// and draining the rest so the child never blocks on a full pipe.
async fn read_both(
    stdout: Option<impl AsyncRead + Unpin>,
    stderr: Option<impl AsyncRead + Unpin>,
) -> Printed {
    let mut kept = Vec::new();
    let mut unread = false;
    let mut out = stdout;
    let mut err = stderr;
    let mut out_buffer = [0u8; 8192];
    let mut err_buffer = [0u8; 8192];
    while out.is_some() || err.is_some() {
        let (read, from_out) = tokio::select! {
            read = async { out.as_mut().unwrap().read(&mut out_buffer).await }, if out.is_some() => (read, true),
            read = async { err.as_mut().unwrap().read(&mut err_buffer).await }, if err.is_some() => (read, false),
        };
        match read {
            Ok(0) | Err(_) => {
                if from_out {
                    out = None;
                } else {
                    err = None;
                }
            }
            Ok(count) => {
                let chunk = if from_out {
                    &out_buffer[..count]
                } else {
                    &err_buffer[..count]
                };
                let room = READ_BOUND.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..count.min(room)]);
                unread |= count > room;
            }
        }
    }
    Printed {
        text: String::from_utf8_lossy(&kept).into_owned(),
        unread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::{DockerOperation, parse_command_line};

    fn compose_op(line: &str) -> ComposeOp {
        match parse_command_line(line).expect(line) {
            DockerOperation::Compose(op) => op,
            other => panic!("not compose: {other:?}"),
        }
    }

    fn shop() -> ComposeProject {
        ComposeProject {
            project: "shop".into(),
            directory: "/srv/shop".into(),
            files: vec!["docker-compose.yml".into(), "prd.yml".into()],
            env_file: Some(".env.prd".into()),
        }
    }

    #[tokio::test]
    async fn the_digests_are_of_the_registered_files_as_they_are_now() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(
            directory.path().join("docker-compose.yml"),
            "services: {}\n",
        )
        .unwrap();
        let project = ComposeProject {
            directory: directory.path().into(),
            ..shop()
        };
        let digests = project.digests().await;
        let path = |file: &str| directory.path().join(file).display().to_string();
        assert_eq!(
            digests.compose_files[0],
            FileDigest {
                path: path("docker-compose.yml"),
                // `printf 'services: {}\n' | sha256sum`
                sha256: Some(
                    "fa6ccea1ca4e3a031d9e99f25cc05db803aa9bac642c000ddab14f6d9da54b52".into()
                ),
                error: None,
            }
        );
        // A file that is missing is recorded as such; compose will fail on it too.
        let missing = &digests.compose_files[1];
        assert_eq!(
            (missing.path.as_str(), missing.sha256.as_deref()),
            (path("prd.yml").as_str(), None)
        );
        assert!(
            missing.error.as_deref().unwrap().contains("No such file"),
            "{missing:?}"
        );
        let env_file = digests.env_file.unwrap();
        assert_eq!(env_file.path, path(".env.prd"));
        assert_eq!(env_file.sha256, None);
    }

    #[test]
    fn the_argv_takes_the_files_from_the_registration_and_the_switches_from_the_operation() {
        let op = compose_op("docker compose -p shop up -d --build --remove-orphans web");
        assert_eq!(
            compose_argv(&shop(), &op),
            [
                "--ansi",
                "never",
                "--project-directory",
                "/srv/shop",
                "-f",
                "/srv/shop/docker-compose.yml",
                "-f",
                "/srv/shop/prd.yml",
                "-p",
                "shop",
                "--env-file",
                "/srv/shop/.env.prd",
                "up",
                "--detach",
                "--build",
                "--remove-orphans",
                "--no-deps",
                "web",
            ]
        );
    }

    #[test]
    fn what_the_request_typed_for_files_never_reaches_the_argv() {
        let typed = compose_op(
            "docker compose -f docker-compose.yml -f prd.yml -p shop --env-file .env.prd \
             --project-directory /srv/shop up -d",
        );
        let bare = compose_op("docker compose -p shop up -d");
        assert_eq!(compose_argv(&shop(), &typed), compose_argv(&shop(), &bare));
        let argv = compose_argv(&shop(), &bare);
        assert!(!argv.contains(&"--build".to_string()), "{argv:?}");
        assert_eq!(argv.last().map(String::as_str), Some("--detach"));
    }

    #[test]
    fn pull_gets_only_the_services() {
        let mut project = shop();
        project.env_file = None;
        project.files = vec!["/etc/shop/compose.yml".into()];
        assert_eq!(
            compose_argv(&project, &compose_op("docker compose -p shop pull web db")),
            [
                "--ansi",
                "never",
                "--project-directory",
                "/srv/shop",
                "-f",
                "/etc/shop/compose.yml",
                "-p",
                "shop",
                "pull",
                "web",
                "db",
            ]
        );
    }

    #[tokio::test]
    async fn a_binary_that_cannot_start_is_a_failed_target_naming_the_setting() {
        let binary = ComposeBinary {
            command: vec!["/nonexistent/docker-compose".into()],
            timeout: Duration::from_secs(5),
        };
        let op = compose_op("docker compose -p shop up -d");
        let mut project = shop();
        project.directory = std::env::temp_dir();
        let result = perform(
            &binary,
            "/nonexistent.sock",
            &project,
            &op,
            &Limits::default(),
        )
        .await
        .expect("a result");
        assert!(!result.ok);
        assert!(
            result
                .summary
                .contains("could not start the compose binary"),
            "{}",
            result.summary
        );
        assert!(
            result.output.contains("WINGMAN_COMPOSE_BIN"),
            "{}",
            result.output
        );
    }

    #[tokio::test]
    async fn output_is_redacted_and_a_run_past_the_timeout_is_an_error() {
        // `sh -c` stands in for the compose binary: it receives the argv and prints.
        let binary = ComposeBinary {
            command: vec![
                "sh".into(),
                "-c".into(),
                "echo db_password=hunter2 building; echo step >&2; exit 3".into(),
            ],
            timeout: Duration::from_secs(5),
        };
        let op = compose_op("docker compose -p shop up -d");
        let mut project = shop();
        project.directory = std::env::temp_dir();
        let result = perform(&binary, "/x.sock", &project, &op, &Limits::default())
            .await
            .expect("a result");
        assert!(!result.ok);
        assert!(
            result.summary.ends_with("compose exited with 3"),
            "{}",
            result.summary
        );
        assert!(
            result.output.contains("db_password=<redacted>"),
            "{}",
            result.output
        );
        assert!(!result.output.contains("hunter2"));
        assert!(result.output.contains("step"), "{}", result.output);

        let slow = ComposeBinary {
            command: vec!["sh".into(), "-c".into(), "sleep 30".into()],
            timeout: Duration::from_millis(300),
        };
        let error = perform(&slow, "/x.sock", &project, &op, &Limits::default())
            .await
            .unwrap_err();
        assert!(
            matches!(error, EngineError::ComposeTimedOut { .. }),
            "{error}"
        );
    }
}

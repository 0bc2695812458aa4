//! The typed docker operation the gateway performs.
//!
//! An operation is what the gateway performs through the Docker Engine API. Every
//! spelling of one operation (`-t 5` or `--time=5`, `docker container stop` or
//! `docker stop`, `docker-compose` or `docker compose`) parses to the same value; its
//! canonical argv and hash live in `canonical`.
//!
//! Three tiers describe what an operation does, each containing the next:
//! - mutating ([`DockerOperation::is_mutating`]): changes state; everything but inspect,
//!   logs, compose ps and a probe exec
//! - destructive ([`DockerOperation::is_destructive`]): loses state that a later `start`
//!   cannot bring back: rm, kill (in-flight work dies without a graceful stop) and
//!   compose down (removes containers, networks and, with `-v`, volumes). Stop, start,
//!   restart, compose up (recreates from the project's files) and compose pull are
//!   mutating but not destructive.
//! - read-only ([`DockerOperation::is_read_only`]) is the complement of mutating. A probe
//!   exec counts as read-only: the gateway runs only an argv the policy declares as a probe
//!   of the container's project (a health check, named environment variables), never an
//!   arbitrary one.
//!
//! Every operation has a kind ([`DockerOperation::kind`]) and a name from
//! [`OperationKind::ALL`] (`kind`).

use serde::{Deserialize, Serialize};

use crate::docker::kind::OperationKind;
use crate::named::named_enum;

/// One docker operation the gateway knows how to perform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DockerOperation {
    Container(ContainerOp),
    Compose(ComposeOp),
    Exec(ExecOp),
}

/// `docker exec <container> <argv…>`: a probe, run only when the argv is one the policy
/// declares for the container's compose project (`[projects.<name>.probes]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    /// The container name or id, checked against docker's name rule.
    pub container: String,
    /// The command and its arguments, exactly as typed (no shell ever reads them).
    pub argv: Vec<String>,
}

/// `docker <action> [options] <container...>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerOp {
    pub action: ContainerAction,
    /// Container names or ids, each checked against docker's name rule, without repeats.
    pub targets: Vec<String>,
    pub options: ContainerOptions,
}

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ContainerAction {
        Stop => "stop",
        Start => "start",
        Restart => "restart",
        Kill => "kill",
        Rm => "rm",
        Inspect => "inspect",
        Logs => "logs",
    }
    /// Every action; `docker <subcommand>` is looked up here.
    const ALL;
    /// The docker subcommand, e.g. `stop`.
    fn as_str;
}

/// The flags of a container operation; only those valid for its action are ever set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerOptions {
    /// stop, restart: seconds to wait before killing.
    pub timeout_secs: Option<u32>,
    /// stop, restart, kill: normalised to `SIGNAME` or a number.
    pub signal: Option<String>,
    /// rm: remove a running container.
    pub force: bool,
    /// rm: also remove the container's anonymous volumes.
    pub volumes: bool,
    /// logs: number of lines from the end; `None` means all.
    pub tail: Option<u32>,
    /// logs: only lines since this timestamp or duration.
    pub since: Option<String>,
    /// logs: prefix lines with timestamps.
    pub timestamps: bool,
    /// inspect: Go template the output is rendered with.
    pub format: Option<String>,
    /// inspect: include size information.
    pub size: bool,
}

/// `docker compose -p <project> [global options] <action> [options] [service...]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeOp {
    pub action: ComposeAction,
    /// The `com.docker.compose.project` label the gateway selects containers by.
    pub project: String,
    /// Empty means every service of the project.
    pub services: Vec<String>,
    /// `-f` files in the order given, since later files override earlier ones.
    pub files: Vec<String>,
    pub env_file: Option<String>,
    pub options: ComposeOptions,
}

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ComposeAction {
        Down => "down",
        Stop => "stop",
        Start => "start",
        Restart => "restart",
        Ps => "ps",
        /// Create or recreate the project's containers from its registered files (`up -d`).
        Up => "up",
        /// Pull the images of the project's services from their registry.
        Pull => "pull",
    }
    /// Every action; `docker compose <subcommand>` is looked up here.
    const ALL;
    /// The docker compose subcommand, e.g. `down`.
    fn as_str;
}

/// The flags of a compose operation; only those valid for its action are ever set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComposeOptions {
    /// Global `--project-directory`.
    pub project_directory: Option<String>,
    /// down, stop, restart: seconds to wait before killing.
    pub timeout_secs: Option<u32>,
    /// down, up: also remove containers of services no longer in the compose files.
    pub remove_orphans: bool,
    /// up: run in the background (required: an attached `up` never ends).
    pub detach: bool,
    /// up: build images before starting containers.
    pub build: bool,
    /// down: also remove named and anonymous volumes.
    pub volumes: bool,
    /// ps: include stopped containers.
    pub all: bool,
    /// ps: print ids only.
    pub quiet: bool,
    /// ps: output format.
    pub format: Option<String>,
    /// ps: print service names only (`--services`).
    pub services_only: bool,
}

impl DockerOperation {
    /// The operation's kind.
    pub fn kind(&self) -> OperationKind {
        match self {
            DockerOperation::Container(op) => match op.action {
                ContainerAction::Stop => OperationKind::ContainerStop,
                ContainerAction::Start => OperationKind::ContainerStart,
                ContainerAction::Restart => OperationKind::ContainerRestart,
                ContainerAction::Kill => OperationKind::ContainerKill,
                ContainerAction::Rm => OperationKind::ContainerRm,
                ContainerAction::Inspect => OperationKind::ContainerInspect,
                ContainerAction::Logs => OperationKind::ContainerLogs,
            },
            DockerOperation::Compose(op) => match op.action {
                ComposeAction::Down => OperationKind::ComposeDown,
                ComposeAction::Stop => OperationKind::ComposeStop,
                ComposeAction::Start => OperationKind::ComposeStart,
                ComposeAction::Restart => OperationKind::ComposeRestart,
                ComposeAction::Ps => OperationKind::ComposePs,
                ComposeAction::Up => OperationKind::ComposeUp,
                ComposeAction::Pull => OperationKind::ComposePull,
            },
            DockerOperation::Exec(_) => OperationKind::ContainerExec,
        }
    }

    /// A small fixed label such as `container_stop` or `compose_down`, for metrics.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Only reads state: inspect, logs, compose ps, a probe exec.
    pub fn is_read_only(&self) -> bool {
        self.kind().is_read_only()
    }

    /// Changes state: everything that is not read-only.
    pub fn is_mutating(&self) -> bool {
        !self.is_read_only()
    }

    /// Loses state a later `start` cannot restore: rm, kill and compose down.
    pub fn is_destructive(&self) -> bool {
        matches!(
            self.kind(),
            OperationKind::ContainerRm | OperationKind::ContainerKill | OperationKind::ComposeDown
        )
    }

    /// What the operation acts on, for humans: `containers api, worker` or
    /// `compose project wingman-prd (all services)`.
    pub fn targets_summary(&self) -> String {
        match self {
            DockerOperation::Container(op) => {
                let noun = if op.targets.len() == 1 {
                    "container"
                } else {
                    "containers"
                };
                format!("{noun} {}", op.targets.join(", "))
            }
            DockerOperation::Compose(op) => match op.services.as_slice() {
                [] => format!("compose project {} (all services)", op.project),
                [service] => format!("compose project {} (service {service})", op.project),
                services => format!(
                    "compose project {} (services {})",
                    op.project,
                    services.join(", ")
                ),
            },
            DockerOperation::Exec(op) => format!("container {}", op.container),
        }
    }
}

impl ComposeAction {
    /// Whether the action needs the project's compose model, so the gateway runs the compose
    /// binary with the registered files (`up`, `pull`); the others act on the project's
    /// containers by label, through the Engine API.
    pub fn reads_compose_files(self) -> bool {
        matches!(self, ComposeAction::Up | ComposeAction::Pull)
    }
}

#[cfg(test)]
mod tests {
    use crate::docker::{DockerOperation, parse_command_line};

    fn parse(line: &str) -> DockerOperation {
        parse_command_line(line).expect(line)
    }

    /// The words of `doc` between `start` and the next `end`.
    fn words_between<'a>(doc: &'a str, start: &str, end: &str) -> Vec<&'a str> {
        let from = doc
            .find(start)
            .unwrap_or_else(|| panic!("`{start}` not found"))
            + start.len();
        let to = from + doc[from..].find(end).expect("the end of the list");
        doc[from..to]
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|word| !word.is_empty())
            .collect()
    }

    /// A publisher reads what the gateway supports in CONTRACTS.md and README.md: both lists
    /// name every container and compose action the parser knows.
    #[test]
    fn the_contract_and_the_readme_name_every_operation_the_gateway_supports() {
        use super::{ComposeAction, ContainerAction};
        let contracts = include_str!("../../CONTRACTS.md");
        let container = words_between(contracts, "operation the gateway supports (container", ";");
        let compose = words_between(contracts, "exec of a probe; compose", ")");
        let readme = include_str!("../../README.md");
        let readme_container =
            words_between(readme, "operation the gateway can perform (container", ",");
        let readme_compose = words_between(readme, "-p <project>`", ";");
        for action in ContainerAction::ALL.map(ContainerAction::as_str) {
            assert!(
                container.contains(&action),
                "CONTRACTS.md lacks container {action}"
            );
            assert!(
                readme_container.contains(&action),
                "README.md lacks container {action}"
            );
        }
        for action in ComposeAction::ALL.map(ComposeAction::as_str) {
            assert!(
                compose.contains(&action),
                "CONTRACTS.md lacks compose {action}"
            );
            assert!(
                readme_compose.contains(&action),
                "README.md lacks compose {action}"
            );
        }
    }

    #[test]
    fn names_are_small_fixed_labels() {
        let cases = [
            ("docker stop api", "container_stop"),
            ("docker start api", "container_start"),
            ("docker restart api", "container_restart"),
            ("docker kill api", "container_kill"),
            ("docker rm api", "container_rm"),
            ("docker inspect api", "container_inspect"),
            ("docker logs api", "container_logs"),
            ("docker exec api printenv A", "container_exec"),
            ("docker compose -p p down", "compose_down"),
            ("docker compose -p p stop", "compose_stop"),
            ("docker compose -p p start", "compose_start"),
            ("docker compose -p p restart", "compose_restart"),
            ("docker compose -p p ps", "compose_ps"),
            ("docker compose -p p up -d --build", "compose_up"),
            ("docker compose -p p pull", "compose_pull"),
        ];
        for (line, name) in cases {
            assert_eq!(parse(line).name(), name, "{line}");
        }
    }

    #[test]
    fn read_only_mutating_and_destructive_are_nested_tiers() {
        // (line, read-only, destructive)
        let cases = [
            ("docker inspect api", true, false),
            ("docker logs api", true, false),
            ("docker compose -p p ps", true, false),
            ("docker exec api printenv A", true, false),
            ("docker stop api", false, false),
            ("docker compose -p p up -d --build", false, false),
            ("docker compose -p p pull", false, false),
            ("docker start api", false, false),
            ("docker restart api", false, false),
            ("docker compose -p p stop", false, false),
            ("docker rm api", false, true),
            ("docker kill api", false, true),
            ("docker compose -p p down", false, true),
        ];
        for (line, read_only, destructive) in cases {
            let op = parse(line);
            assert_eq!(op.is_read_only(), read_only, "{line}");
            assert_eq!(op.is_mutating(), !read_only, "{line}");
            assert_eq!(op.is_destructive(), destructive, "{line}");
        }
    }

    #[test]
    fn summaries_name_the_targets_for_humans() {
        let cases = [
            ("docker stop api", "container api"),
            ("docker stop api worker", "containers api, worker"),
            (
                "docker compose -p wingman-prd down",
                "compose project wingman-prd (all services)",
            ),
            (
                "docker compose -p wingman-prd stop api",
                "compose project wingman-prd (service api)",
            ),
            (
                "docker compose -p wingman-prd restart api worker",
                "compose project wingman-prd (services api, worker)",
            ),
        ];
        for (line, summary) in cases {
            assert_eq!(parse(line).targets_summary(), summary, "{line}");
        }
    }
}

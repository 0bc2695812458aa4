//! [`OperationKind`]: the one list of operation names.
//!
//! Every operation the gateway performs has a kind, and every kind a name
//! (`container_stop`, `compose_up`, …). The policy's `allow`, the validators' operation
//! points and rules, the metrics labels and both shipped configs' docs are checked against
//! [`OperationKind::ALL`], so a new kind that one of them misses fails a test. The enum,
//! `ALL` and `name` are declared from one list (`named_enum!`), so they cannot drift apart.

use crate::named::named_enum;

named_enum! {
    /// The kind of an operation: what its name says, without targets or options.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum OperationKind {
        ContainerStop => "container_stop",
        ContainerStart => "container_start",
        ContainerRestart => "container_restart",
        ContainerKill => "container_kill",
        ContainerRm => "container_rm",
        ContainerInspect => "container_inspect",
        ContainerLogs => "container_logs",
        ContainerExec => "container_exec",
        ComposeDown => "compose_down",
        ComposeStop => "compose_stop",
        ComposeStart => "compose_start",
        ComposeRestart => "compose_restart",
        ComposePs => "compose_ps",
        ComposeUp => "compose_up",
        ComposePull => "compose_pull",
    }
    /// Every kind, in the order the docs list them. The policy's `allow`, the validators'
    /// operation points and rules, and the shipped configs are checked against this list.
    const ALL;
    /// The operation's name in configs, metrics and the audit: `container_stop`, ….
    fn name;
}

impl OperationKind {
    /// The kind named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<OperationKind> {
        OperationKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.name() == name)
    }

    /// Reads state only: inspect, logs, compose ps and a probe exec. Only these may be
    /// auto-approved in prd; the match has no wildcard, so a new kind must say which it is.
    pub fn is_read_only(self) -> bool {
        match self {
            OperationKind::ContainerInspect
            | OperationKind::ContainerLogs
            | OperationKind::ContainerExec
            | OperationKind::ComposePs => true,
            OperationKind::ContainerStop
            | OperationKind::ContainerStart
            | OperationKind::ContainerRestart
            | OperationKind::ContainerKill
            | OperationKind::ContainerRm
            | OperationKind::ComposeDown
            | OperationKind::ComposeStop
            | OperationKind::ComposeStart
            | OperationKind::ComposeRestart
            | OperationKind::ComposeUp
            | OperationKind::ComposePull => false,
        }
    }

    /// Every name of [`OperationKind::ALL`], joined with `, ` (for error messages).
    pub fn names_joined() -> String {
        OperationKind::ALL
            .iter()
            .map(|kind| kind.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::{DockerOperation, parse_command_line};

    fn parse(line: &str) -> DockerOperation {
        parse_command_line(line).expect(line)
    }

    /// One command line per kind; the match has no wildcard, so a new kind cannot be
    /// added without an example here.
    fn example(kind: OperationKind) -> &'static str {
        match kind {
            OperationKind::ContainerStop => "docker stop api",
            OperationKind::ContainerStart => "docker start api",
            OperationKind::ContainerRestart => "docker restart api",
            OperationKind::ContainerKill => "docker kill api",
            OperationKind::ContainerRm => "docker rm api",
            OperationKind::ContainerInspect => "docker inspect api",
            OperationKind::ContainerLogs => "docker logs api",
            OperationKind::ContainerExec => "docker exec api wget -qO- http://127.0.0.1/health",
            OperationKind::ComposeDown => "docker compose -p p down",
            OperationKind::ComposeStop => "docker compose -p p stop",
            OperationKind::ComposeStart => "docker compose -p p start",
            OperationKind::ComposeRestart => "docker compose -p p restart",
            OperationKind::ComposePs => "docker compose -p p ps",
            OperationKind::ComposeUp => "docker compose -p p up -d",
            OperationKind::ComposePull => "docker compose -p p pull",
        }
    }

    #[test]
    fn every_kind_is_listed_once_and_parses_from_its_example() {
        let names: std::collections::BTreeSet<&str> =
            OperationKind::ALL.iter().map(|kind| kind.name()).collect();
        assert_eq!(
            names.len(),
            OperationKind::ALL.len(),
            "a name is listed twice"
        );
        for kind in OperationKind::ALL {
            let line = example(kind);
            assert_eq!(parse(line).kind(), kind, "{line}");
            assert_eq!(OperationKind::from_name(kind.name()), Some(kind));
        }
        // Every subcommand the parser accepts yields a listed kind.
        for word in ["stop", "start", "restart", "kill", "rm", "inspect", "logs"] {
            let kind = parse(&format!("docker {word} api")).kind();
            assert!(OperationKind::ALL.contains(&kind), "{word}");
        }
        for word in ["down", "stop", "start", "restart", "ps", "up -d", "pull"] {
            let kind = parse(&format!("docker compose -p p {word}")).kind();
            assert!(OperationKind::ALL.contains(&kind), "{word}");
        }
    }
}

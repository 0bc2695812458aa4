//! Read-only or mutating: the decision the `docker` wrapper on a user's PATH makes.
//!
//! The wrapper passes read-only commands straight to docker and sends everything else
//! through the pipeline for approval. The decision comes from parsing the arguments
//! (docker's global options, then the subcommand path), never from matching substrings,
//! so `docker ps --format '{{.Names}}'` is read-only however its format reads. Anything
//! not known to be read-only is mutating: the wrapper fails closed.

use crate::docker::flags::{FlagSpec, Mode, ParsedFlag, read_flags};

/// What running a docker command would do to the daemon's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    ReadOnly,
    /// Changes state, or might; `reason` says why, for the user.
    Mutating {
        reason: String,
    },
}

/// Classifies the arguments of a docker invocation, without the leading `docker`.
pub fn classify(args: &[String]) -> Classification {
    let Ok(global) = read_flags(args, DOCKER_GLOBAL_FLAGS, "", Mode::StopAtFirstPositional) else {
        return mutating("unknown docker global option, treated as destructive");
    };
    if asks_for_help_or_version(&global.flags) {
        return Classification::ReadOnly;
    }
    let Some((command, rest)) = global.positionals.split_first() else {
        return Classification::ReadOnly;
    };
    if command == "compose" {
        return classify_compose(rest);
    }
    if MANAGEMENT_COMMANDS.contains(&command.as_str()) {
        return match rest.split_first() {
            None => Classification::ReadOnly,
            Some((sub, _)) if sub == "--help" || sub == "-h" => Classification::ReadOnly,
            Some((sub, sub_args)) => {
                let read_only = MANAGEMENT_READ_ONLY
                    .iter()
                    .any(|(group, subs)| group == command && subs.contains(&sub.as_str()));
                classify_leaf(&format!("{command} {sub}"), sub, sub_args, read_only)
            }
        };
    }
    let read_only = TOP_LEVEL_READ_ONLY.contains(&command.as_str());
    classify_leaf(command, command, rest, read_only)
}

/// Global options of the docker CLI, which come before the subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    Skipped,
    HelpOrVersion,
}

const DOCKER_GLOBAL_FLAGS: &[FlagSpec<Global>] = &[
    skip_value(Some('c'), &["context"]),
    skip_value(Some('H'), &["host"]),
    skip_value(Some('l'), &["log-level"]),
    skip_value(None, &["config", "tlscacert", "tlscert", "tlskey"]),
    skip_switch(Some('D'), &["debug", "tls", "tlsverify"]),
    FlagSpec::switch(Global::HelpOrVersion, Some('h'), &["help"]).repeatable(),
    FlagSpec::switch(Global::HelpOrVersion, Some('v'), &["version"]).repeatable(),
];

/// Global options of `docker compose`, which come before its action.
const COMPOSE_GLOBAL_FLAGS: &[FlagSpec<Global>] = &[
    skip_value(Some('f'), &["file"]),
    skip_value(Some('p'), &["project-name"]),
    skip_value(None, &["env-file", "project-directory", "profile"]),
    skip_value(None, &["ansi", "progress", "parallel"]),
    skip_switch(None, &["compatibility", "dry-run", "all-resources"]),
    FlagSpec::switch(Global::HelpOrVersion, Some('h'), &["help"]).repeatable(),
    FlagSpec::switch(Global::HelpOrVersion, Some('v'), &["version"]).repeatable(),
];

/// Docker commands that group subcommands (`docker system prune`).
pub(crate) const MANAGEMENT_COMMANDS: &[&str] = &[
    "builder",
    "buildx",
    "checkpoint",
    "config",
    "container",
    "context",
    "image",
    "manifest",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "stack",
    "swarm",
    "system",
    "trust",
    "volume",
];

const TOP_LEVEL_READ_ONLY: &[&str] = &[
    "ps", "images", "inspect", "logs", "version", "info", "stats", "top", "port", "diff", "events",
    "history", "search", "help",
];

const MANAGEMENT_READ_ONLY: &[(&str, &[&str])] = &[
    (
        "container",
        &[
            "ls", "list", "ps", "inspect", "logs", "stats", "top", "port", "diff",
        ],
    ),
    ("image", &["ls", "list", "inspect", "history"]),
    ("volume", &["ls", "list", "inspect"]),
    ("network", &["ls", "list", "inspect"]),
    ("context", &["ls", "list", "show", "inspect"]),
    ("system", &["df", "info", "events"]),
];

const COMPOSE_READ_ONLY: &[&str] = &[
    "ps", "logs", "config", "ls", "images", "top", "version", "port", "events",
];

const fn skip_value(short: Option<char>, long: &'static [&'static str]) -> FlagSpec<Global> {
    FlagSpec::value(Global::Skipped, short, long).repeatable()
}

const fn skip_switch(short: Option<char>, long: &'static [&'static str]) -> FlagSpec<Global> {
    FlagSpec::switch(Global::Skipped, short, long).repeatable()
}

fn classify_compose(args: &[String]) -> Classification {
    let Ok(global) = read_flags(args, COMPOSE_GLOBAL_FLAGS, "", Mode::StopAtFirstPositional) else {
        return mutating("unknown docker compose option, treated as destructive");
    };
    if asks_for_help_or_version(&global.flags) {
        return Classification::ReadOnly;
    }
    match global.positionals.split_first() {
        None => Classification::ReadOnly,
        Some((action, action_args)) => {
            let read_only = COMPOSE_READ_ONLY.contains(&action.as_str());
            classify_leaf(&format!("compose {action}"), action, action_args, read_only)
        }
    }
}

/// Classifies a full subcommand path such as `system prune`; `verb` is its last word.
fn classify_leaf(path: &str, verb: &str, args: &[String], read_only: bool) -> Classification {
    // `--help` right after the subcommand prints help; later it may belong to the command
    // a `run` or `exec` starts, so only this position counts.
    if read_only || args.first().is_some_and(|arg| arg == "--help") {
        return Classification::ReadOnly;
    }
    let effect = match verb {
        "rm" | "remove" | "rmi" => "removes docker objects",
        "prune" => "deletes unused docker objects",
        "down" => "removes the project's containers and networks",
        "stop" | "start" | "restart" | "kill" | "pause" | "unpause" | "update" | "rename"
        | "scale" => "changes container state",
        "up" => "creates or recreates the project's containers",
        "exec" => "runs a command in a container (Wingman runs only a probe its policy declares)",
        "run" | "create" | "attach" | "cp" | "commit" | "watch" => {
            "runs, creates or changes containers"
        }
        "build" | "pull" | "push" | "tag" | "load" | "import" => "creates or changes images",
        "connect" | "disconnect" | "use" => "changes docker configuration",
        _ => return mutating("unknown docker subcommand, treated as destructive"),
    };
    mutating(&format!("`docker {path}` {effect}"))
}

fn asks_for_help_or_version(flags: &[ParsedFlag<Global>]) -> bool {
    flags.iter().any(|flag| flag.flag == Global::HelpOrVersion)
}

fn mutating(reason: &str) -> Classification {
    Classification::Mutating {
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_line(line: &str) -> Classification {
        let args = shlex::split(line).expect("balanced quotes");
        classify(&args)
    }

    fn reason(line: &str) -> String {
        match classify_line(line) {
            Classification::Mutating { reason } => reason,
            Classification::ReadOnly => panic!("`{line}` was classified read-only"),
        }
    }

    #[test]
    fn read_only_commands_are_read_only_whatever_their_flags() {
        let lines = [
            "",
            "--help",
            "-h",
            "-v",
            "ps --format '{{.Names}} rm prune'",
            "ps -a",
            "--context prod ps",
            "-H unix:///var/run/docker.sock --log-level=debug -D images",
            "--config=/tmp/cfg inspect api",
            "logs -f --tail 10 api",
            "version",
            "info",
            "stats --no-stream",
            "top api",
            "events --since 1h",
            "container ls -a",
            "container inspect api",
            "image ls",
            "volume inspect data",
            "network ls",
            "context show",
            "system df",
            "container",
            "container --help",
            "compose -p wingman-prd ps",
            "compose -f docker-compose.prd.yml -p wingman-prd logs -f api",
            "compose config",
            "compose ls",
            "compose --help",
            "compose -p wingman-prd down --help",
            "stop --help",
            "system prune --help",
        ];
        for line in lines {
            assert_eq!(classify_line(line), Classification::ReadOnly, "{line:?}");
        }
    }

    #[test]
    fn state_changing_commands_are_mutating_with_a_reason() {
        let cases = [
            ("stop api", "`docker stop` changes container state"),
            ("rm -f api", "`docker rm` removes docker objects"),
            ("kill api", "`docker kill` changes container state"),
            ("rmi alpine", "`docker rmi` removes docker objects"),
            (
                "system prune -af",
                "`docker system prune` deletes unused docker objects",
            ),
            (
                "volume rm data",
                "`docker volume rm` removes docker objects",
            ),
            (
                "network rm backend",
                "`docker network rm` removes docker objects",
            ),
            (
                "container prune",
                "`docker container prune` deletes unused docker objects",
            ),
            (
                "image prune -a",
                "`docker image prune` deletes unused docker objects",
            ),
            (
                "exec api sh",
                "`docker exec` runs a command in a container (Wingman runs only a probe its policy declares)",
            ),
            (
                "run --rm alpine",
                "`docker run` runs, creates or changes containers",
            ),
            (
                "update --memory 1g api",
                "`docker update` changes container state",
            ),
            (
                "compose -p wingman-prd down",
                "`docker compose down` removes the project's containers and networks",
            ),
            (
                "compose -f a.yml up -d --build",
                "`docker compose up` creates or recreates the project's containers",
            ),
            (
                "--context prod stop api",
                "`docker stop` changes container state",
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(reason(line), expected, "{line}");
        }
    }

    #[test]
    fn unknown_subcommands_and_options_fail_closed() {
        for line in [
            "frobnicate",
            "container frobnicate",
            "compose -p p frobnicate",
            "swarm leave",
        ] {
            assert_eq!(
                reason(line),
                "unknown docker subcommand, treated as destructive",
                "{line}"
            );
        }
        assert_eq!(
            reason("--bogus ps"),
            "unknown docker global option, treated as destructive"
        );
        assert_eq!(
            reason("compose --bogus ps"),
            "unknown docker compose option, treated as destructive"
        );
    }

    #[test]
    fn help_deep_inside_a_command_does_not_make_it_read_only() {
        assert!(matches!(
            classify_line("exec api sh -c 'x --help'"),
            Classification::Mutating { .. }
        ));
        assert!(matches!(
            classify_line("run -h myhost alpine"),
            Classification::Mutating { .. }
        ));
        assert!(matches!(
            classify_line("stop api --help"),
            Classification::Mutating { .. }
        ));
    }
}

//! From a docker argv to a [`DockerOperation`]: checks the program, then hands the
//! arguments to the container or compose parser.
//!
//! Everything outside the allowlist (stop, start, restart, kill, rm, inspect, logs, exec
//! and compose down|stop|start|restart|ps|up|pull) is refused here, with the subcommand
//! named.

use crate::docker::classify::MANAGEMENT_COMMANDS;
use crate::docker::error::CommandError;
use crate::docker::operation::DockerOperation;
use crate::docker::{compose, container, exec};

/// The longest command line (or argv, joined with spaces) accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 4096;

/// Parses a docker argv, starting with the program (`docker`, `/usr/bin/docker` or
/// `docker-compose`).
pub fn parse_argv(argv: &[String]) -> Result<DockerOperation, CommandError> {
    let joined_len = argv
        .iter()
        .map(|arg| arg.len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
    if joined_len > MAX_LINE_BYTES {
        return Err(CommandError::TooLong {
            len: joined_len,
            max: MAX_LINE_BYTES,
        });
    }
    parse_canonical(argv)
}

/// Parses an argv without the input length limit: for re-reading a canonical argv, which
/// spells flags long (`-fv` → `--force --volumes`) and may outgrow the line it came from.
pub fn parse_canonical(argv: &[String]) -> Result<DockerOperation, CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::Empty)?;
    if is_program(program, "docker") {
        parse_docker_args(args)
    } else if is_program(program, "docker-compose") {
        compose::parse(args).map(DockerOperation::Compose)
    } else {
        Err(CommandError::NotDocker {
            program: program.clone(),
        })
    }
}

fn parse_docker_args(args: &[String]) -> Result<DockerOperation, CommandError> {
    let (subcommand, rest) = args
        .split_first()
        .ok_or_else(|| CommandError::MissingSubcommand {
            context: "docker".to_string(),
        })?;
    if subcommand.starts_with('-') {
        return Err(CommandError::GlobalOption {
            flag: subcommand.clone(),
        });
    }
    if subcommand == "compose" {
        return compose::parse(rest).map(DockerOperation::Compose);
    }
    if subcommand == "container" {
        let (action_word, action_args) =
            rest.split_first()
                .ok_or_else(|| CommandError::MissingSubcommand {
                    context: "docker container".to_string(),
                })?;
        if action_word == "exec" {
            return exec::parse(action_args).map(DockerOperation::Exec);
        }
        let label = format!("container {action_word}");
        let action = container::action(action_word).ok_or_else(|| CommandError::Unsupported {
            subcommand: label.clone(),
        })?;
        return container::parse(action, action_args, &label).map(DockerOperation::Container);
    }
    if subcommand == "exec" {
        return exec::parse(rest).map(DockerOperation::Exec);
    }
    match container::action(subcommand) {
        Some(action) => container::parse(action, rest, subcommand).map(DockerOperation::Container),
        None => Err(CommandError::Unsupported {
            subcommand: unsupported_label(subcommand, rest),
        }),
    }
}

/// `system prune` for a docker management command followed by a word, else the
/// subcommand alone.
fn unsupported_label(subcommand: &str, rest: &[String]) -> String {
    match rest.first() {
        Some(next) if MANAGEMENT_COMMANDS.contains(&subcommand) && !next.starts_with('-') => {
            format!("{subcommand} {next}")
        }
        _ => subcommand.to_string(),
    }
}

/// `docker`, or any path ending in `/docker`.
fn is_program(program: &str, name: &str) -> bool {
    program == name
        || program
            .strip_suffix(name)
            .is_some_and(|path| path.ends_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::operation::{ComposeAction, ContainerAction, ContainerOp, ContainerOptions};
    use crate::docker::parse_command_line;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| word.to_string()).collect()
    }

    fn refusal(line: &str) -> CommandError {
        parse_command_line(line).expect_err(line)
    }

    #[test]
    fn a_simple_stop_parses_to_a_container_operation() {
        let op = parse_command_line("docker stop -t 5 api").expect("parses");
        assert_eq!(
            op,
            DockerOperation::Container(ContainerOp {
                action: ContainerAction::Stop,
                targets: vec!["api".into()],
                options: ContainerOptions {
                    timeout_secs: Some(5),
                    ..ContainerOptions::default()
                },
            })
        );
    }

    #[test]
    fn every_container_action_parses_in_short_and_long_form() {
        for word in ContainerAction::ALL.map(ContainerAction::as_str) {
            let short = parse_command_line(&format!("docker {word} api")).expect(word);
            let long = parse_command_line(&format!("docker container {word} api")).expect(word);
            assert_eq!(short, long, "{word}");
        }
    }

    #[test]
    fn the_seed_runbook_lines_parse() {
        let base = "docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd";
        for line in [
            format!("{base} down"),
            format!("{base} down --remove-orphans"),
        ] {
            let op = parse_command_line(&line).expect(&line);
            assert_eq!(op.name(), "compose_down");
            assert_eq!(
                op.targets_summary(),
                "compose project wingman-prd (all services)"
            );
        }
        let op = parse_command_line(&format!("{base} up -d --build")).expect("stage C");
        assert_eq!(op.name(), "compose_up");
        let op = parse_command_line("docker exec wingman-prd-api printenv VALIDATION_ENABLED")
            .expect("stage D");
        assert_eq!(op.name(), "container_exec");
        let error = refusal("docker compose -p wingman-prd build");
        assert_eq!(error.code(), "unsupported");
        assert_eq!(
            error.to_string(),
            "unsupported docker subcommand `compose build`: the gateway cannot express it as a \
             typed operation (supported: stop, start, restart, kill, rm, inspect, logs, exec of a \
             declared probe, compose down|stop|start|restart|ps|up|pull)"
        );
    }

    #[test]
    fn exec_parses_in_short_and_long_form() {
        let short = parse_command_line("docker exec api wget -qO- http://127.0.0.1/health")
            .expect("parses");
        let long =
            parse_command_line("docker container exec api wget -qO- http://127.0.0.1/health")
                .expect("parses");
        assert_eq!(short, long);
        assert_eq!(refusal("docker exec -u root api id").code(), "unsupported");
    }

    #[test]
    fn legacy_docker_compose_is_the_same_operation() {
        let legacy = parse_command_line("docker-compose -p wingman-prd stop api").expect("parses");
        let plugin =
            parse_command_line("/usr/bin/docker compose -p wingman-prd stop api").expect("parses");
        assert_eq!(legacy, plugin);
        assert_eq!(legacy.name(), "compose_stop");
        assert!(
            matches!(&legacy, DockerOperation::Compose(op) if op.action == ComposeAction::Stop)
        );
    }

    #[test]
    fn unsupported_subcommands_are_named_with_their_second_word() {
        let cases = [
            ("docker run alpine", "run"),
            ("docker rmi alpine", "rmi"),
            ("docker build .", "build"),
            ("docker system prune -af", "system prune"),
            ("docker volume rm data", "volume rm"),
            ("docker container attach api", "container attach"),
            ("docker compose -p p build", "compose build"),
        ];
        for (line, subcommand) in cases {
            let expected = CommandError::Unsupported {
                subcommand: subcommand.into(),
            };
            assert_eq!(refusal(line), expected, "{line}");
        }
    }

    #[test]
    fn not_docker_names_the_program() {
        assert_eq!(
            refusal("rm -rf /").to_string(),
            "`rm` is not docker: the command must start with `docker` or `docker-compose`"
        );
        assert_eq!(refusal("/usr/bin/notdocker ps").code(), "not_docker");
    }

    #[test]
    fn global_options_are_refused_by_name() {
        assert_eq!(
            refusal("docker -H tcp://elsewhere:2375 stop api").to_string(),
            "docker global option `-H` is not allowed: the gateway talks to its own docker daemon"
        );
    }

    #[test]
    fn an_argv_longer_than_the_line_limit_is_refused() {
        let mut words = argv(&["docker", "stop"]);
        words.extend((0..2100).map(|index| format!("c{index}")));
        assert_eq!(parse_argv(&words).unwrap_err().code(), "too_long");
        assert_eq!(parse_argv(&[]).unwrap_err(), CommandError::Empty);
    }
}

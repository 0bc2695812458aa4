//! From a docker command line to a [`DockerOperation`], without a shell.
//!
//! A command line is split into words the way a POSIX shell would quote them
//! (`shlex`), but nothing else a shell does happens: any chaining, redirection,
//! substitution or expansion syntax is refused, because the gateway runs no shell and
//! a publisher who wrote it expected something the gateway will not do.

use crate::docker::command::{MAX_LINE_BYTES, parse_argv};
use crate::docker::error::CommandError;
use crate::docker::operation::DockerOperation;

/// Parses one docker command line without a shell.
///
/// Quotes and backslashes work as in a POSIX shell; `;`, `&`, `|`, `<`, `>`, `$`,
/// backticks and line breaks are refused wherever they appear, even quoted, as is a line
/// over [`MAX_LINE_BYTES`]. The words then go through [`parse_argv`].
pub fn parse_command_line(line: &str) -> Result<DockerOperation, CommandError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(CommandError::TooLong {
            len: line.len(),
            max: MAX_LINE_BYTES,
        });
    }
    if line.contains("$(") {
        return Err(shell_syntax_in_raw_line(line, "$("));
    }
    if let Some(control) = line.chars().find(|c| matches!(c, '\n' | '\r' | '\0')) {
        return Err(CommandError::ShellSyntax {
            token: control.to_string(),
        });
    }
    let argv = shlex::split(line).ok_or(CommandError::UnbalancedQuotes)?;
    if let Some(token) = argv.iter().find(|token| token.contains(SHELL_CHARACTERS)) {
        return Err(CommandError::ShellSyntax {
            token: token.clone(),
        });
    }
    // shlex drops `#` comments; refuse shell syntax hidden in one as well.
    if let Some(character) = line.chars().find(|c| SHELL_CHARACTERS.contains(c)) {
        return Err(shell_syntax_in_raw_line(line, &character.to_string()));
    }
    parse_argv(&argv)
}

/// Characters that mean shell syntax: chaining, pipes, redirection, substitution, and
/// line breaks (`shlex` would silently treat a newline as a space).
const SHELL_CHARACTERS: &[char] = &[';', '&', '|', '<', '>', '$', '`', '\n', '\r', '\0'];

/// Names the whitespace-separated word of `line` that holds `needle`.
fn shell_syntax_in_raw_line(line: &str, needle: &str) -> CommandError {
    let token = line
        .split_whitespace()
        .find(|word| word.contains(needle))
        .unwrap_or(needle);
    CommandError::ShellSyntax {
        token: token.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| word.to_string()).collect()
    }

    fn refusal(line: &str) -> CommandError {
        parse_command_line(line).expect_err(line)
    }

    #[test]
    fn shell_chaining_and_substitution_are_refused() {
        let cases = [
            ("docker stop a; rm -rf /", "a;"),
            ("docker stop a && docker rm a", "&&"),
            ("docker stop $(docker ps -q)", "$(docker"),
            ("docker stop `docker ps -q`", "`docker"),
            ("docker ps -q | xargs docker rm", "|"),
            ("docker logs api > /tmp/out", ">"),
            ("docker stop \"$NAME\"", "$NAME"),
            ("docker stop 'a;b'", "a;b"),
            ("docker stop api # ; rm -rf /", ";"),
        ];
        for (line, token) in cases {
            let error = refusal(line);
            assert_eq!(
                error,
                CommandError::ShellSyntax {
                    token: token.into()
                },
                "{line}"
            );
            assert_eq!(error.code(), "shell_syntax");
        }
    }

    #[test]
    fn a_newline_cannot_smuggle_a_second_command() {
        let error = refusal("docker stop a\nrm -rf /");
        assert_eq!(
            error.to_string(),
            "shell syntax is not allowed: `\\n`; the gateway runs no shell, send one docker command"
        );
    }

    #[test]
    fn malformed_lines_are_refused_with_their_own_codes() {
        let too_long = format!("docker stop {}", "a ".repeat(MAX_LINE_BYTES));
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("# only a comment", "empty"),
            ("docker stop 'api", "unbalanced_quotes"),
            ("docker stop api\\", "unbalanced_quotes"),
            (too_long.as_str(), "too_long"),
            ("sudo docker stop api", "not_docker"),
            ("podman stop api", "not_docker"),
            ("docker", "missing_subcommand"),
            ("docker container", "missing_subcommand"),
            ("docker --context prod stop api", "unsupported"),
            ("docker stop", "missing_target"),
            ("docker stop -rf", "unknown_flag"),
            ("docker stop api*", "invalid_name"),
            ("docker compose down", "compose_project_required"),
            ("docker stop -t soon api", "bad_value"),
        ];
        for (line, code) in cases {
            assert_eq!(refusal(line).code(), code, "{line:?}");
        }
    }

    #[test]
    fn an_argv_is_parsed_like_the_line_it_would_come_from() {
        let from_argv = parse_argv(&argv(&[
            "docker",
            "inspect",
            "--format",
            "{{json .}}",
            "api",
        ]));
        let from_line = parse_command_line("docker inspect --format '{{json .}}' api");
        assert_eq!(from_argv, from_line);
        assert!(from_argv.is_ok());
    }
}

//! Why a docker command line was refused.
//!
//! Intake and the validator turn a [`CommandError`] into a permanent rejection: the
//! message goes back to the publisher, and [`CommandError::code`] goes to metrics and the
//! audit log. User-supplied text is shown escaped, so a message is always one clean line.

use std::fmt;

/// A docker command line that cannot become a typed operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("empty command line: send one docker command")]
    Empty,

    #[error("command line is {len} bytes, longer than the {max}-byte limit")]
    TooLong { len: usize, max: usize },

    #[error("unbalanced quotes or trailing backslash in command line")]
    UnbalancedQuotes,

    #[error(
        "shell syntax is not allowed: `{}`; the gateway runs no shell, send one docker command",
        shown(.token)
    )]
    ShellSyntax { token: String },

    #[error(
        "`{}` is not docker: the command must start with `docker` or `docker-compose`",
        shown(.program)
    )]
    NotDocker { program: String },

    #[error(
        "docker global option `{}` is not allowed: the gateway talks to its own docker daemon",
        shown(.flag)
    )]
    GlobalOption { flag: String },

    #[error("`{context}` needs a subcommand: send one docker command")]
    MissingSubcommand { context: String },

    #[error(
        "unsupported docker subcommand `{}`: the gateway cannot express it as a typed operation \
         (supported: stop, start, restart, kill, rm, inspect, logs, exec of a declared probe, \
         compose down|stop|start|restart|ps|up|pull)",
        shown(.subcommand)
    )]
    Unsupported { subcommand: String },

    #[error("unknown flag `{}` for `docker {subcommand}`", shown(.flag))]
    UnknownFlag { flag: String, subcommand: String },

    #[error(
        "flag `{}` of `docker {subcommand}` is not supported: {reason}",
        shown(.flag)
    )]
    UnsupportedFlag {
        flag: String,
        subcommand: String,
        reason: &'static str,
    },

    #[error("flag `{}` of `docker {subcommand}` needs a value", shown(.flag))]
    MissingValue { flag: String, subcommand: String },

    #[error(
        "flag `{}` of `docker {subcommand}` is given more than once",
        shown(.flag)
    )]
    DuplicateFlag { flag: String, subcommand: String },

    #[error(
        "invalid value `{}` for `{}`: expected {expected}",
        shown(.value),
        shown(.flag)
    )]
    BadValue {
        flag: String,
        value: String,
        expected: &'static str,
    },

    #[error("invalid {kind} `{}`: {}", shown(.name), .kind.rule())]
    InvalidName { kind: NameKind, name: String },

    #[error("`docker {subcommand}` needs at least one container name or id")]
    MissingTarget { subcommand: String },

    #[error(
        "docker compose needs `-p <project>`: the gateway finds containers by the \
         com.docker.compose.project label"
    )]
    ComposeProjectRequired,

    #[error(
        "`docker compose up` needs `-d`: an attached up never ends, so the gateway could not \
         finish the operation"
    )]
    DetachRequired,

    #[error(
        "`docker exec` takes no options (`{}`): the gateway runs only a probe the policy \
         declares, as declared",
        shown(.flag)
    )]
    ExecOption { flag: String },

    #[error("`docker exec` needs a container and the probe's command")]
    ExecCommandMissing,

    #[error("operation is not in canonical form, expected `{}`", shown(.canonical))]
    NotCanonical { canonical: String },
}

/// Which naming rule a refused name broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Container,
    Service,
    Project,
}

impl CommandError {
    /// A short reason code from a small fixed set, for metric labels and audit records.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::Empty => "empty",
            CommandError::TooLong { .. } => "too_long",
            CommandError::UnbalancedQuotes => "unbalanced_quotes",
            CommandError::ShellSyntax { .. } => "shell_syntax",
            CommandError::NotDocker { .. } => "not_docker",
            CommandError::MissingSubcommand { .. } => "missing_subcommand",
            CommandError::Unsupported { .. }
            | CommandError::UnsupportedFlag { .. }
            | CommandError::GlobalOption { .. } => "unsupported",
            CommandError::UnknownFlag { .. } => "unknown_flag",
            CommandError::MissingValue { .. }
            | CommandError::DuplicateFlag { .. }
            | CommandError::BadValue { .. }
            | CommandError::NotCanonical { .. } => "bad_value",
            CommandError::InvalidName { .. } => "invalid_name",
            CommandError::MissingTarget { .. } => "missing_target",
            CommandError::ComposeProjectRequired => "compose_project_required",
            CommandError::DetachRequired => "detach_required",
            CommandError::ExecOption { .. } => "unsupported",
            CommandError::ExecCommandMissing => "missing_target",
        }
    }
}

impl NameKind {
    /// The rule a name of this kind must follow, as shown in error messages.
    pub fn rule(self) -> &'static str {
        match self {
            NameKind::Container | NameKind::Service => {
                "must match [a-zA-Z0-9][a-zA-Z0-9_.-]* and be at most 128 characters"
            }
            NameKind::Project => {
                "must match [a-z0-9][a-z0-9_-]* (lowercase) and be at most 128 characters"
            }
        }
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            NameKind::Container => "container name or id",
            NameKind::Service => "compose service name",
            NameKind::Project => "compose project name",
        })
    }
}

/// User text as shown in a message: escaped onto one line, and cut after 80 characters
/// so a 4 KiB token cannot flood a log line or a chat message.
fn shown(text: &str) -> String {
    const LIMIT: usize = 80;
    let escaped: String = text.escape_debug().collect();
    match escaped.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_have_no_trailing_period() {
        let errors = [
            CommandError::Empty,
            CommandError::TooLong {
                len: 5000,
                max: 4096,
            },
            CommandError::UnbalancedQuotes,
            CommandError::ShellSyntax { token: ";".into() },
            CommandError::Unsupported {
                subcommand: "up".into(),
            },
            CommandError::ComposeProjectRequired,
            CommandError::InvalidName {
                kind: NameKind::Project,
                name: "Bad".into(),
            },
        ];
        for error in errors {
            let message = error.to_string();
            let first = message.chars().next().unwrap_or('x');
            assert!(!first.is_uppercase(), "{message}");
            assert!(!message.ends_with('.'), "{message}");
        }
    }

    #[test]
    fn user_text_in_messages_is_escaped_onto_one_line() {
        let error = CommandError::ShellSyntax {
            token: "a\nrm -rf /".into(),
        };
        assert_eq!(
            error.to_string(),
            "shell syntax is not allowed: `a\\nrm -rf /`; the gateway runs no shell, send one docker command"
        );
    }

    #[test]
    fn long_user_text_is_cut_in_messages() {
        let error = CommandError::Unsupported {
            subcommand: "x".repeat(500),
        };
        let message = error.to_string();
        assert!(
            message.contains(&format!("`{}…`", "x".repeat(80))),
            "{message}"
        );
        assert!(message.len() < 300, "{message}");
    }

    #[test]
    fn invalid_name_messages_name_the_kind_and_the_rule() {
        let error = CommandError::InvalidName {
            kind: NameKind::Container,
            name: "-rf".into(),
        };
        assert_eq!(
            error.to_string(),
            "invalid container name or id `-rf`: must match [a-zA-Z0-9][a-zA-Z0-9_.-]* and be at most 128 characters"
        );
        assert_eq!(error.code(), "invalid_name");
    }

    #[test]
    fn unsupported_flags_share_the_unsupported_code() {
        let error = CommandError::UnsupportedFlag {
            flag: "--rmi".into(),
            subcommand: "compose down".into(),
            reason: "removing images is outside the gateway's allowlist",
        };
        assert_eq!(error.code(), "unsupported");
        assert_eq!(
            error.to_string(),
            "flag `--rmi` of `docker compose down` is not supported: removing images is outside the gateway's allowlist"
        );
    }
}

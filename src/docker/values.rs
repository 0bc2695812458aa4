//! Checks and normalisation for names and flag values.
//!
//! Every value that ends up in a [`crate::docker::DockerOperation`] passes through one of
//! these functions, so a typed operation never carries a control character (the argv hash
//! joins arguments with NUL bytes) and two spellings of one value normalise alike.

use crate::docker::error::{CommandError, NameKind};

const MAX_NAME_CHARS: usize = 128;
const MAX_TEXT_BYTES: usize = 1024;

/// Checks a container, service or project name against its naming rule.
pub(crate) fn name(kind: NameKind, value: &str) -> Result<String, CommandError> {
    let valid = match kind {
        NameKind::Container | NameKind::Service => follows_rule(
            value,
            |c| c.is_ascii_alphanumeric(),
            |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
        ),
        NameKind::Project => {
            let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
            follows_rule(value, lower_alnum, |c| {
                lower_alnum(c) || matches!(c, '_' | '-')
            })
        }
    };
    if valid {
        Ok(value.to_string())
    } else {
        Err(CommandError::InvalidName {
            kind,
            name: value.to_string(),
        })
    }
}

/// Checks each name and drops repeats, keeping the first occurrence's position.
pub(crate) fn names(kind: NameKind, values: &[String]) -> Result<Vec<String>, CommandError> {
    let mut checked: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let value = name(kind, value)?;
        if !checked.contains(&value) {
            checked.push(value);
        }
    }
    Ok(checked)
}

/// A whole number of seconds, as for `--time` and `--timeout`.
pub(crate) fn seconds(flag: &str, value: &str) -> Result<u32, CommandError> {
    whole_number(value).ok_or_else(|| bad_value(flag, value, "a whole number of seconds"))
}

/// A `--tail` line count; `all` means no limit and is stored as `None`.
pub(crate) fn tail(flag: &str, value: &str) -> Result<Option<u32>, CommandError> {
    if value == "all" {
        return Ok(None);
    }
    whole_number(value)
        .map(Some)
        .ok_or_else(|| bad_value(flag, value, "a whole number of lines or `all`"))
}

/// A signal name or number, normalised the way the Docker daemon reads it: `kill`,
/// `KILL` and `SIGKILL` all become `SIGKILL`.
pub(crate) fn signal(flag: &str, value: &str) -> Result<String, CommandError> {
    let expected = "a signal name like SIGTERM or a number from 1 to 64";
    if value.bytes().all(|byte| byte.is_ascii_digit()) {
        return match whole_number(value) {
            Some(number @ 1..=64) => Ok(number.to_string()),
            _ => Err(bad_value(flag, value, expected)),
        };
    }
    let upper = value.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let valid = bare.len() <= 16
        && bare.starts_with(|c: char| c.is_ascii_uppercase())
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-');
    if valid {
        Ok(format!("SIG{bare}"))
    } else {
        Err(bad_value(flag, value, expected))
    }
}

/// A `--since` value: a timestamp (`2024-01-02T13:23:37Z`), a unix time or a relative
/// duration (`10m`).
pub(crate) fn since(flag: &str, value: &str) -> Result<String, CommandError> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-'));
    if valid {
        Ok(value.to_string())
    } else {
        Err(bad_value(flag, value, "a timestamp or a duration like 10m"))
    }
}

/// Free text such as a Go template or a file path: not empty, at most 1024 bytes, and
/// free of control characters.
pub(crate) fn text(flag: &str, value: &str) -> Result<String, CommandError> {
    let valid =
        !value.is_empty() && value.len() <= MAX_TEXT_BYTES && !value.chars().any(char::is_control);
    if valid {
        Ok(value.to_string())
    } else {
        Err(bad_value(
            flag,
            value,
            "non-empty text of at most 1024 bytes without control characters",
        ))
    }
}

fn follows_rule(value: &str, first: impl Fn(char) -> bool, rest: impl Fn(char) -> bool) -> bool {
    let mut chars = value.chars();
    value.len() <= MAX_NAME_CHARS && chars.next().is_some_and(first) && chars.all(rest)
}

fn whole_number(value: &str) -> Option<u32> {
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn bad_value(flag: &str, value: &str, expected: &'static str) -> CommandError {
    CommandError::BadValue {
        flag: flag.to_string(),
        value: value.to_string(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_dockers_rule() {
        for valid in ["api", "wingman-prd-api-1", "a", "A.b_c-1", "0f3c9a"] {
            assert!(name(NameKind::Container, valid).is_ok(), "{valid}");
        }
        let too_long = "a".repeat(129);
        for invalid in [
            "",
            "-rf",
            "_api",
            ".api",
            "/api",
            "api*",
            "a b",
            "api;",
            too_long.as_str(),
        ] {
            let error = name(NameKind::Container, invalid).unwrap_err();
            assert_eq!(error.code(), "invalid_name", "{invalid}");
        }
    }

    #[test]
    fn project_names_must_be_lowercase() {
        assert!(name(NameKind::Project, "wingman-prd").is_ok());
        assert!(name(NameKind::Project, "wingman_prd2").is_ok());
        for invalid in ["Wingman", "wingman.prd", "-prd", ""] {
            assert!(name(NameKind::Project, invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn repeated_names_are_kept_once_in_first_position() {
        let values: Vec<String> = ["b", "a", "b"].iter().map(|v| v.to_string()).collect();
        assert_eq!(
            names(NameKind::Container, &values).expect("valid"),
            vec!["b", "a"]
        );
    }

    #[test]
    fn seconds_must_be_a_plain_whole_number() {
        assert_eq!(seconds("-t", "30"), Ok(30));
        for invalid in ["", "-1", "+5", "1.5", "5s", "99999999999"] {
            assert!(seconds("-t", invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn tail_all_means_no_limit() {
        assert_eq!(tail("--tail", "all"), Ok(None));
        assert_eq!(tail("--tail", "100"), Ok(Some(100)));
        assert!(tail("--tail", "many").is_err());
    }

    #[test]
    fn signal_spellings_normalise_like_the_daemon() {
        for spelling in ["kill", "KILL", "SIGKILL", "sigkill"] {
            assert_eq!(signal("-s", spelling).as_deref(), Ok("SIGKILL"));
        }
        assert_eq!(signal("-s", "SIGRTMIN+3").as_deref(), Ok("SIGRTMIN+3"));
        assert_eq!(signal("-s", "09").as_deref(), Ok("9"));
        for invalid in ["", "SIG", "0", "65", "KILL;", "1KILL"] {
            assert!(signal("-s", invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn text_values_refuse_control_characters() {
        assert!(text("--format", "{{json .}}").is_ok());
        assert!(text("--format", "a\u{0}b").is_err());
        assert!(text("--format", "").is_err());
        assert!(since("--since", "2024-01-02T13:23:37Z").is_ok());
        assert!(since("--since", "10m").is_ok());
        assert!(since("--since", "10 m").is_err());
    }
}

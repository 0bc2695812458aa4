//! The `wingman` command's subcommands (the binary in `src/bin/wingman.rs` only parses).
//!
//! Output is for people by default and one JSON document with `--json`. Errors are one line;
//! the exit code says how it ended (see [`ExitCode`]).

pub mod approve;
pub mod approvers;
pub mod audit;
pub mod explain;
pub mod health;
pub mod list;
pub mod nats_passwords;
pub mod rollout;
pub mod setup;
pub mod submit;
pub mod watch;

use chrono::{DateTime, Duration as ChronoDuration, Utc};

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done: submitted, approved, or executed successfully.
    Ok = 0,
    /// Something went wrong (bad input, unreachable service); `rollout report`: NO-GO.
    Error = 1,
    /// `rollout report`: HOLD or INSUFFICIENT DATA.
    Hold = 2,
    /// The request was refused: invalid, rejected, auto-rejected or expired.
    Denied = 3,
    /// The command ran and failed, or its outcome is unknown (INDETERMINATE).
    Failed = 4,
    /// Still not settled when the wait timed out.
    TimedOut = 5,
}

/// Parses `30m`, `24h`, `7d` (or an RFC 3339 time) into the instant that long ago.
pub fn parse_since(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    Ok(Utc::now() - parse_duration(text)?)
}

/// Parses `90s`, `30m`, `24h`, `7d`.
pub fn parse_duration(text: &str) -> anyhow::Result<ChronoDuration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("`{text}` is not a duration (use e.g. 90s, 30m, 24h, 7d)"))?;
    match unit {
        "s" => Ok(ChronoDuration::seconds(number)),
        "m" => Ok(ChronoDuration::minutes(number)),
        "h" | "" => Ok(ChronoDuration::hours(number)),
        "d" => Ok(ChronoDuration::days(number)),
        _ => anyhow::bail!("`{text}` has an unknown unit `{unit}` (use s, m, h or d)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("90s").unwrap(), ChronoDuration::seconds(90));
        assert_eq!(parse_duration("24h").unwrap(), ChronoDuration::hours(24));
        assert_eq!(parse_duration("7d").unwrap(), ChronoDuration::days(7));
        assert!(parse_duration("soon").is_err());
        assert!(
            parse_duration("5w")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
    }
}

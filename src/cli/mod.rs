//! The `wingman` command's subcommands (the binary in `src/bin/wingman.rs` only parses).
//!
//! Output is for people by default and one JSON document with `--json`. Errors are one line;
//! the exit code says how it ended (see [`ExitCode`]).

pub mod apikey;
pub mod approve;
pub mod approvers;
pub mod audit;
pub mod cancel;
pub mod completions;
pub mod explain;
pub mod health;
pub mod ids;
pub mod keygen;
pub mod list;
pub mod migrate;
pub mod nats_passwords;
pub mod request;
pub mod rollout;
pub mod setup;
pub mod status;
pub mod submit;

use crate::bus::Bus;
use crate::config::Settings;

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done: submitted, approved, or executed successfully.
    Ok = 0,
    /// Something went wrong (bad input, unreachable service); `rollout report`: NO-GO;
    /// a rollout change the watcher refused (`rollout::error_exit_code`).
    Error = 1,
    /// `rollout report`: HOLD or INSUFFICIENT DATA.
    Hold = 2,
    /// The request was refused: invalid, rejected, auto-rejected, expired or cancelled (or a
    /// vote or a withdrawal was not applied).
    Denied = 3,
    /// The command ran and failed, or its outcome is unknown (INDETERMINATE); any error of
    /// `wingman rollout` (no verdict, no change), whose 1 is a verdict.
    Failed = 4,
    /// Still not settled when the wait timed out.
    TimedOut = 5,
}

/// Connects to NATS as the CLI: a few attempts, not a worker's patience.
pub async fn connect(settings: &Settings) -> anyhow::Result<Bus> {
    let mut nats = settings.nats.clone();
    nats.connect_attempts = nats.connect_attempts.min(3);
    Bus::connect(&nats, "wingman-cli").await
}

//! `wingman`: submit requests and follow them, list them, and run the database migrations;
//! the deploy helpers (`setup-nats`, `apikey`, `health`). This file only parses the command
//! line and maps the outcome to an exit code: each command lives in `wingman::cli::<command>`.

use std::process::ExitCode as ProcessExit;

use clap::{CommandFactory as _, Parser, Subcommand};
use wingman::cli::{self, ExitCode};
use wingman::config::Settings;

/// Shown under every command's `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  done: submitted, approved, executed successfully, or the check holds
  1  error: bad input, a service unreachable, not ready
  2  usage: an unknown flag or an invalid value (the message names it)
  3  refused: invalid, rejected, auto-rejected, expired, cancelled, or a vote or withdrawal not applied
  4  failed: the command ran and failed or its outcome is unknown; a broken audit chain
  5  timed out: still not settled when the wait ended (the request goes on)
`wingman rollout` differs: report 0 GO, 1 NO-GO, 2 HOLD; a change 1 when refused; any error 4
(see `wingman rollout --help`).

Durations everywhere (flags, WINGMAN_WAIT, ?since=): 90s, 30m, 1h30m, 7d; a bare number is seconds.
Every command takes --json (one JSON document; `request`/`status --wait` stream one per stage).";

#[derive(Parser)]
#[command(
    name = "wingman",
    version = wingman::metrics::version_line(),
    about = "Approval-gated execution of destructive infrastructure commands",
    after_help = EXIT_CODES,
    after_long_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Every subcommand: its one-line help here, its arguments and behaviour in `cli::<command>`.
#[derive(Subcommand)]
enum Command {
    /// Submit a request and follow it until it settles: wingman request --env prd --title … --description … -- docker stop api
    Request(cli::request::RequestArgs),
    /// Show the latest status of a request (from its status subject).
    Status(cli::status::StatusArgs),
    /// List recent requests (reads Postgres: DATABASE_URL).
    List(cli::list::ListArgs),
    /// Requests waiting for a human decision (and recent auto-rejections a human may override).
    Pending(cli::approve::PendingArgs),
    /// Approve a request as the console approver ($WINGMAN_APPROVER); overriding an
    /// auto-rejection needs --note with the reason.
    Approve(cli::approve::ApproveArgs),
    /// Reject a request as the console approver; a reason is required.
    Reject(cli::approve::RejectArgs),
    /// Withdraw a request you submitted while it waits for a decision (audited; refused with
    /// exit 3 when it is not yours, already decided or expired): wingman cancel 0191e5a0 --reason "not needed"
    Cancel(cli::cancel::CancelArgs),
    /// Approver identities: make your key, register or revoke approvers (admin), list them.
    Approvers {
        #[command(subcommand)]
        action: cli::approvers::ApproversAction,
    },
    /// The tamper-evident audit log: verify the chain, sign a checkpoint, show a request's story.
    Audit {
        #[command(subcommand)]
        action: cli::audit::AuditAction,
    },
    /// Run the validators on a request without submitting it (reads FILE, or stdin); also
    /// shows the gateway policy's verdict on its operation and whether it falls in the live
    /// rollout's cohort (read from the bus when reachable).
    Explain(cli::explain::ExplainArgs),
    /// Show or change the live validation rollout, or report on it (exit codes: see below).
    #[command(after_help = cli::rollout::EXIT_CODES)]
    Rollout {
        #[command(subcommand)]
        action: cli::rollout::RolloutAction,
    },
    /// Write a token key pair: <NAME>.key (signing, mode 0600, for the authority only) and
    /// <NAME>.pub (verification, for the gateway).
    Keygen(cli::keygen::KeygenArgs),
    /// Apply the database migrations (the recorder also does at start, unless
    /// WINGMAN_MIGRATE=0), then let the application roles log in with the passwords in
    /// WINGMAN_DB_WRITER_PASSWORD(_FILE) and WINGMAN_DB_READER_PASSWORD(_FILE), when set.
    Migrate(cli::migrate::MigrateArgs),
    /// Create or update the NATS streams, consumers and KV buckets declared in nats/, and
    /// apply VALIDATION_ENABLED / VALIDATION_ROLLOUT_PERCENT to the rollout flags when they
    /// changed since last applied (an unchanged environment keeps a live `rollout set`). Run
    /// once per deploy as the NATS admin; workers then run with WINGMAN_ENSURE_TOPOLOGY=0.
    SetupNats(cli::setup::SetupNatsArgs),
    /// Make an API key: prints the key once on stdout, and its entry (a SHA-256 hash, not
    /// the key) for the WINGMAN_API_KEYS_FILE, appended to --file when given.
    Apikey(cli::apikey::ApikeyArgs),
    /// Print the NATS server's password file: a bcrypt hash of each user's password, read
    /// from <DIR>/nats_<USER>_password (scripts/prd-secrets writes it to
    /// secrets/nats_passwords.conf, which nats/auth.conf includes).
    NatsPasswords(cli::nats_passwords::NatsPasswordsArgs),
    /// Print a shell completion script: `wingman completions bash > /etc/bash_completion.d/wingman`,
    /// `wingman completions zsh > "${fpath[1]}/_wingman"`, `wingman completions fish >
    /// ~/.config/fish/completions/wingman.fish`.
    Completions(cli::completions::CompletionsArgs),
    /// Exit 0 when GET <URL> answers 2xx within the timeout (the containers' health probe).
    Health(cli::health::HealthArgs),
}

#[tokio::main]
async fn main() -> ProcessExit {
    wingman::telemetry::init("wingman-cli", "warn");
    let cli = Cli::parse();
    // `rollout`'s 1 is a verdict (NO-GO, a refused change): its errors exit otherwise.
    let error_exit_code: fn(&anyhow::Error) -> ExitCode = match &cli.command {
        Command::Rollout { .. } => cli::rollout::error_exit_code,
        _ => |_| ExitCode::Error,
    };
    match run(cli.command).await {
        Ok(code) => ProcessExit::from(code as u8),
        Err(error) => {
            eprintln!("error: {error:#}");
            ProcessExit::from(error_exit_code(&error) as u8)
        }
    }
}

/// Runs the command. Each reads the settings on first use, if at all, so the health probe
/// depends on no other setting.
async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Request(args) => cli::request::run(args).await,
        Command::Status(args) => cli::status::run(args).await,
        Command::List(args) => cli::list::run(args).await,
        Command::Pending(args) => cli::approve::run_pending(args).await,
        Command::Approve(args) => cli::approve::run_approve(args).await,
        Command::Reject(args) => cli::approve::run_reject(args).await,
        Command::Cancel(args) => cli::cancel::run(args, &Settings::from_env()?).await,
        Command::Approvers { action } => cli::approvers::run(action).await,
        Command::Audit { action } => cli::audit::run(action).await,
        Command::Explain(args) => cli::explain::run(args).await,
        Command::Rollout { action } => cli::rollout::run(action).await,
        Command::Keygen(args) => cli::keygen::run(args),
        Command::Migrate(args) => cli::migrate::run(args).await,
        Command::SetupNats(args) => cli::setup::run(args).await,
        Command::Apikey(args) => cli::apikey::run(args),
        Command::NatsPasswords(args) => cli::nats_passwords::run(args),
        Command::Completions(args) => cli::completions::run(args, Cli::command()),
        Command::Health(args) => cli::health::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}

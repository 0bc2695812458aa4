//! `wingman status <id>`: a request's latest status, read from its status subject; with
//! `--wait`, followed until it settles (the follower is `cli::submit`'s).

use std::time::Duration;

use crate::bus::status_feed::{Goal, last_status};
use crate::cli::ExitCode;
use crate::cli::ids::IdArg;
use crate::cli::submit;
use crate::config::Settings;

/// `wingman status`'s arguments.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The request's id, or a unique prefix of it (at least 4 hex digits; needs
    /// DATABASE_URL to look it up).
    pub request_id: IdArg,
    /// Follow it until it settles (exit 0 done, 3 refused, 4 failed, 5 timed out).
    #[arg(long)]
    pub wait: bool,
    /// Print the latest status event as JSON; with --wait, one per stage (NDJSON).
    #[arg(long)]
    pub json: bool,
    /// Stop waiting after this long (e.g. 90s, 30m, 1h30m; a bare number is seconds).
    #[arg(long, default_value = "1h", value_parser = crate::duration::parse)]
    pub timeout: Duration,
}

/// Prints the latest status, or follows the request with `--wait`.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let request_id = args
        .request_id
        .resolve(|| Settings::from_env()?.database.pool())
        .await?;
    let bus = crate::cli::connect(&Settings::from_env()?).await?;
    let Some(event) = last_status(&bus, request_id).await? else {
        anyhow::bail!(
            "no status for {request_id} in NATS: not submitted yet (is intake running?), or older than the status stream keeps (a day, or WINGMAN_REQUEST_RETENTION): `wingman audit show {request_id}` or GET /requests/{request_id} read the record"
        );
    };
    if args.wait {
        // The latest event may not say whether there is a command: learn it from the
        // request's events, which the follower reads from the first.
        return submit::wait_for(&bus, request_id, Goal::FromEvents, args.timeout, args.json).await;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&event)?);
    } else {
        println!("{}", submit::describe(&event));
    }
    Ok(ExitCode::Ok)
}

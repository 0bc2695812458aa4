//! `wingman request`'s arguments, and how they become a request: the description from stdin
//! on `-`, the requester from the login, the docker command after `--` quoted back into one
//! line. Submitting and following it is `cli::submit`'s.

use std::io::Read as _;
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::ExitCode;
use crate::cli::submit::{self, ApiTarget, Submission};
use crate::config::Settings;
use crate::envelope::RequestId;
use crate::request::{Environment, Execution, RiskLevel};

/// `wingman request`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// Environment the command runs in.
    #[arg(long = "env", value_name = "ENV")]
    pub environment: Environment,
    /// One line: what and why (shown first to the approver).
    #[arg(long)]
    pub title: String,
    /// Why, what it touches, how to roll back, how to verify. `-` reads it from stdin.
    #[arg(long)]
    pub description: String,
    /// Who asks (default: $WINGMAN_REQUESTER, else $USER).
    #[arg(long, env = "WINGMAN_REQUESTER")]
    pub requester: Option<String>,
    /// How risky you judge it (the validators weigh it).
    #[arg(long)]
    pub risk_level: Option<RiskLevel>,
    /// Idempotency key: the same id submitted again is the same request.
    #[arg(long = "id")]
    pub request_id: Option<RequestId>,
    /// Return once submitted instead of following the request.
    #[arg(long)]
    pub no_wait: bool,
    /// Print only the request id (`id=$(wingman request -q --no-wait …)`); when waiting,
    /// nothing else: the exit code tells how it ended.
    #[arg(short, long, conflicts_with = "json")]
    pub quiet: bool,
    /// Print one JSON object per stage as it happens (NDJSON; the settling one last)
    /// instead of progress lines; with --no-wait, {"request_id", "status": "SUBMITTED"}.
    #[arg(long)]
    pub json: bool,
    /// Stop waiting after this long (e.g. 90s, 30m, 1h30m; a bare number is seconds); the
    /// request goes on.
    #[arg(long, default_value = "1h", value_parser = crate::duration::parse)]
    pub timeout: Duration,
    /// Manual execution: once approved, the token is minted for you and nothing runs
    /// until you fetch it (POST /gateway/token) and run it (POST /gateway/execute) with the
    /// API key that submitted it; so it is submitted through the API (--api-url).
    #[arg(long, requires = "api_url")]
    pub manual: bool,
    /// Submit through the HTTP API at this URL with the key in $WINGMAN_API_KEY (or the
    /// file $WINGMAN_API_KEY_FILE) instead of over NATS; the request is then the key's.
    #[arg(long, env = "WINGMAN_API_URL")]
    pub api_url: Option<String>,
    /// The command to run once approved, after `--` (omit for an instruction approval).
    #[arg(last = true, value_name = "DOCKER COMMAND")]
    pub command: Vec<String>,
}

/// Builds the request, submits it and (unless `--no-wait`) follows it until it settles.
pub async fn run(args: RequestArgs) -> anyhow::Result<ExitCode> {
    let description = if args.description == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("read the description from stdin")?;
        text
    } else {
        args.description
    };
    let requester = args
        .requester
        .or_else(crate::config::login_name)
        .unwrap_or_else(|| "unknown".to_string());
    let command_line = if args.command.is_empty() {
        None
    } else {
        Some(
            shlex::try_join(args.command.iter().map(String::as_str))
                .context("quote the command")?,
        )
    };
    let mut request = submit::request_json(
        &requester,
        args.environment.as_str(),
        &args.title,
        &description,
        args.risk_level.map(RiskLevel::as_str),
        args.request_id,
        command_line.as_deref(),
    );
    if args.manual {
        request["execution"] = serde_json::json!(Execution::Manual.as_str());
    }
    let api = args
        .api_url
        .map(|url| ApiTarget::from_env(&url))
        .transpose()?;
    let bus = crate::cli::connect(&Settings::from_env()?).await?;
    submit::run(
        &bus,
        Submission {
            request,
            wait: !args.no_wait,
            json: args.json,
            quiet: args.quiet,
            timeout: args.timeout,
            api,
        },
    )
    .await
}

//! `wingman`: submit requests and follow them, list them, and run the database migrations;
//! the deploy helpers (`setup-nats`, `apikey`, `health`).

use std::io::Read;
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use wingman::approval::Verdict;
use wingman::bus::Bus;
use wingman::cli::{self, ExitCode, ids::IdArg, rollout::Change, submit::Submission};
use wingman::config::Settings;
use wingman::envelope::RequestId;
use wingman::request::{Environment, Execution, RiskLevel};
use wingman::status::Status;
use wingman::store::requests::ListFilter;
use wingman::validation::{ValidationConfig, Validator};

/// Shown under every command's `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  done: submitted, approved, executed successfully, or the check holds
  1  error: bad input, a service unreachable, not ready
  2  usage: an unknown flag or an invalid value (the message names it)
  3  refused: invalid, rejected, auto-rejected, expired, cancelled, or a vote or withdrawal not applied
  4  failed: the command ran and failed or its outcome is unknown; a broken audit chain
  5  timed out: still not settled when the wait ended (the request goes on)

Durations everywhere (flags, WINGMAN_WAIT, ?since=): 90s, 30m, 1h30m, 7d; a bare number is seconds.
Every command takes --json (one JSON document; `request`/`status --wait` stream one per stage).";

#[derive(Parser)]
#[command(
    name = "wingman",
    version,
    about = "Approval-gated execution of destructive infrastructure commands",
    after_help = EXIT_CODES,
    after_long_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Submit a request and follow it until it settles: wingman request --env prd --title … --description … -- docker stop api
    Request {
        /// Environment the command runs in.
        #[arg(long = "env", value_name = "ENV")]
        environment: Environment,
        /// One line: what and why (shown first to the approver).
        #[arg(long)]
        title: String,
        /// Why, what it touches, how to roll back, how to verify. `-` reads it from stdin.
        #[arg(long)]
        description: String,
        /// Who asks (default: $WINGMAN_REQUESTER, else $USER).
        #[arg(long, env = "WINGMAN_REQUESTER")]
        requester: Option<String>,
        /// How risky you judge it (the validators weigh it).
        #[arg(long)]
        risk_level: Option<RiskLevel>,
        /// Idempotency key: the same id submitted again is the same request.
        #[arg(long = "id")]
        request_id: Option<RequestId>,
        /// Return once submitted instead of following the request.
        #[arg(long)]
        no_wait: bool,
        /// Print only the request id (`id=$(wingman request -q --no-wait …)`); when waiting,
        /// nothing else: the exit code tells how it ended.
        #[arg(short, long, conflicts_with = "json")]
        quiet: bool,
        /// Print one JSON object per stage as it happens (NDJSON; the settling one last)
        /// instead of progress lines; with --no-wait, {"request_id", "status": "SUBMITTED"}.
        #[arg(long)]
        json: bool,
        /// Stop waiting after this long (e.g. 90s, 30m, 1h30m; a bare number is seconds); the
        /// request goes on.
        #[arg(long, default_value = "1h", value_parser = wingman::duration::parse)]
        timeout: Duration,
        /// Manual execution: once approved, the token is minted for you and nothing runs
        /// until you fetch it (POST /gateway/token) and run it (POST /gateway/execute) with the
        /// API key that submitted it; so it is submitted through the API (--api-url).
        #[arg(long, requires = "api_url")]
        manual: bool,
        /// Submit through the HTTP API at this URL with the key in $WINGMAN_API_KEY (or the
        /// file $WINGMAN_API_KEY_FILE) instead of over NATS; the request is then the key's.
        #[arg(long, env = "WINGMAN_API_URL")]
        api_url: Option<String>,
        /// The command to run once approved, after `--` (omit for an instruction approval).
        #[arg(last = true, value_name = "DOCKER COMMAND")]
        command: Vec<String>,
    },
    /// Show the latest status of a request (from its status subject).
    Status {
        /// The request's id, or a unique prefix of it (at least 4 hex digits; needs
        /// DATABASE_URL to look it up).
        request_id: IdArg,
        /// Follow it until it settles (exit 0 done, 3 refused, 4 failed, 5 timed out).
        #[arg(long)]
        wait: bool,
        /// Print the latest status event as JSON; with --wait, one per stage (NDJSON).
        #[arg(long)]
        json: bool,
        /// Stop waiting after this long (e.g. 90s, 30m, 1h30m; a bare number is seconds).
        #[arg(long, default_value = "1h", value_parser = wingman::duration::parse)]
        timeout: Duration,
    },
    /// List recent requests (reads Postgres: DATABASE_URL).
    List {
        /// A decision (RECEIVED, AUTO_APPROVED, AUTO_REJECTED, PENDING, APPROVED, REJECTED,
        /// EXPIRED) filters the decision, whether or not the request ran; an execution word
        /// (EXECUTING, SUCCEEDED, FAILED, INDETERMINATE) filters how it ran.
        #[arg(long)]
        status: Option<Status>,
        /// Only requests newer than this: a duration ago (24h, 7d) or an RFC 3339 time.
        #[arg(long, value_parser = wingman::duration::since)]
        since: Option<DateTime<Utc>>,
        /// At most this many rows, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print the rows as a JSON array.
        #[arg(long)]
        json: bool,
        /// Print only the request ids, one per line.
        #[arg(short, long, conflicts_with = "json")]
        quiet: bool,
    },
    /// Requests waiting for a human decision (and recent auto-rejections a human may override).
    Pending {
        /// Print the rows as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Approve a request as the console approver ($WINGMAN_APPROVER); overriding an
    /// auto-rejection needs --note with the reason.
    Approve {
        /// The request's id, or a unique prefix of it (at least 4 hex digits; needs
        /// DATABASE_URL to look it up).
        request_id: IdArg,
        /// Why (required to override an auto-rejection); shown in the audit trail.
        #[arg(long)]
        note: Option<String>,
        /// Print {"request_id", "applied", "message"|"error"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reject a request as the console approver; a reason is required.
    Reject {
        /// The request's id, or a unique prefix of it (at least 4 hex digits; needs
        /// DATABASE_URL to look it up).
        request_id: IdArg,
        /// Why; shown to the requester and in the audit trail.
        #[arg(long)]
        reason: String,
        /// Print {"request_id", "applied", "message"|"error"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a request you submitted while it waits for a decision (audited; refused with
    /// exit 3 when it is not yours, already decided or expired): wingman cancel 0191e5a0 --reason "not needed"
    Cancel(cli::cancel::CancelArgs),
    /// Approver identities: make your key, register or revoke approvers (admin), list them.
    Approvers {
        #[command(subcommand)]
        action: ApproversAction,
    },
    /// The tamper-evident audit log: verify the chain, sign a checkpoint, show a request's story.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Run the validators on a request without submitting it (reads FILE, or stdin); also
    /// shows the gateway policy's verdict on its operation and whether it falls in the live
    /// rollout's cohort (read from the bus when reachable).
    Explain {
        /// A request's JSON (as submitted); stdin when omitted.
        file: Option<std::path::PathBuf>,
        /// Print {"decision", "validator_scores", "policy", "cohort"} as JSON.
        #[arg(long)]
        json: bool,
        /// A validation config file (default: $WINGMAN_VALIDATION_CONFIG, else the shipped one).
        #[arg(long, env = "WINGMAN_VALIDATION_CONFIG")]
        config: Option<std::path::PathBuf>,
        /// The gateway policy file (default: $WINGMAN_POLICY_FILE, else the shipped one).
        #[arg(long, env = "WINGMAN_POLICY_FILE")]
        policy: Option<std::path::PathBuf>,
    },
    /// Show or change the live validation rollout, or report on it.
    Rollout {
        #[command(subcommand)]
        action: RolloutAction,
    },
    /// Write a token key pair: <NAME>.key (signing, mode 0600, for the authority only) and
    /// <NAME>.pub (verification, for the gateway).
    Keygen {
        /// Where to write the two files.
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        /// The files' base name.
        #[arg(long, default_value = "wingman")]
        name: String,
        /// Print {"signing_key", "verification_key"} (their paths) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply the database migrations (the recorder also does at start, unless
    /// WINGMAN_MIGRATE=0), then let the application roles log in with the passwords in
    /// WINGMAN_DB_WRITER_PASSWORD(_FILE) and WINGMAN_DB_READER_PASSWORD(_FILE), when set.
    Migrate {
        /// Print {"migrated": true, "roles_may_log_in": [...]} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create or update the NATS streams, consumers and KV buckets declared in nats/, and
    /// apply VALIDATION_ENABLED / VALIDATION_ROLLOUT_PERCENT to the rollout flags when they
    /// changed since last applied (an unchanged environment keeps a live `rollout set`). Run
    /// once per deploy as the NATS admin; workers then run with WINGMAN_ENSURE_TOPOLOGY=0.
    SetupNats {
        /// Print the counts, the rollout flags and what the environment did, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make an API key: prints the key once on stdout, and its entry (a SHA-256 hash, not
    /// the key) for the WINGMAN_API_KEYS_FILE, appended to --file when given.
    Apikey {
        /// Who or what uses the key (shown in audit events of refused calls).
        #[arg(long)]
        name: String,
        /// submit, read or decide; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<wingman::access::Role>,
        /// Append the entry to this key file (created mode 0600 when missing).
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// Print {"name", "roles", "key", "entry"} as JSON (the key is in it: keep it secret).
        #[arg(long)]
        json: bool,
    },
    /// Print the NATS server's password file: a bcrypt hash of each user's password, read
    /// from <DIR>/nats_<USER>_password (scripts/prd-secrets writes it to
    /// secrets/nats_passwords.conf, which nats/auth.conf includes).
    NatsPasswords {
        /// Where the nats_<USER>_password files are.
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        /// The NATS users to include (e.g. intake recorder approvals …).
        #[arg(required = true)]
        users: Vec<String>,
        /// Print {"file": TEXT, "users": [...]} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `wingman completions bash > /etc/bash_completion.d/wingman`,
    /// `wingman completions zsh > "${fpath[1]}/_wingman"`, `wingman completions fish >
    /// ~/.config/fish/completions/wingman.fish`.
    Completions { shell: clap_complete::Shell },
    /// Exit 0 when GET <URL> answers 2xx within the timeout (the containers' health probe).
    Health {
        /// e.g. http://127.0.0.1:9106/health
        url: String,
        /// Print {"url", "status", "ready"} as JSON (also when it is not ready).
        #[arg(long)]
        json: bool,
        /// How long to wait for the answer (e.g. 5s, 500ms).
        #[arg(long, default_value = "5s", value_parser = wingman::duration::parse)]
        timeout: Duration,
    },
}

#[derive(Subcommand)]
enum ApproversAction {
    /// Make your approver key (`approver.key`, mode 0600, in --dir) and print its public
    /// key, for an admin to register with `wingman approvers add`.
    Keygen {
        /// Default: ~/.config/wingman (where `wingman approve` looks).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Register an approver, or add credentials to one (as the NATS admin): e.g.
    /// wingman approvers add anna --console-key k4.public.… --telegram 4242
    Add {
        /// The person's name: what audit rows show and what a vote counts as.
        name: String,
        /// A public key from `wingman approvers keygen` (repeatable).
        #[arg(long = "console-key")]
        console_keys: Vec<String>,
        /// A Telegram user id (the bot's /whoami shows it; repeatable).
        #[arg(long = "telegram")]
        telegram_ids: Vec<i64>,
        /// The name of an API key with the decide role that is this person (repeatable).
        #[arg(long = "api-key")]
        api_keys: Vec<String>,
        /// A publisher principal that is this person, beside nats:<name> and api:<name>
        /// (nats:<user> or api:<key>; repeatable): their requests are their own.
        #[arg(long = "publisher")]
        publishers: Vec<wingman::identity::Principal>,
        /// Print the approver as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an approver and every credential of theirs (as the NATS admin).
    Remove {
        /// The approver's name, as `wingman approvers list` shows it.
        name: String,
        /// Print {"removed": NAME} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Everyone who may decide, and what proves them.
    List {
        /// Print the roster as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Walk the hash chain and name the first broken or missing link.
    Verify {
        /// A checkpoint file from `wingman audit checkpoint`: also detects truncation after it.
        #[arg(long)]
        against: Option<std::path::PathBuf>,
        /// The checkpoint verification key (from `wingman keygen --name audit`).
        #[arg(long, env = "WINGMAN_AUDIT_VERIFY_KEY_FILE")]
        key: Option<std::path::PathBuf>,
        /// Print {"ok", "rows", "head", "checkpoint"} (or {"ok": false, "broken_at",
        /// "problem"}) as JSON; the exit code is the same (0 holds, 4 broken).
        #[arg(long)]
        json: bool,
    },
    /// Print a signed checkpoint of the chain's head, to keep off this machine.
    Checkpoint {
        /// The checkpoint signing key (from `wingman keygen --name audit`).
        #[arg(long, env = "WINGMAN_AUDIT_KEY_FILE")]
        key: std::path::PathBuf,
        /// Print {"checkpoint": SIGNED, "seq", "hash"} as JSON (the file `verify --against`
        /// reads is the "checkpoint" value).
        #[arg(long)]
        json: bool,
    },
    /// One request's whole story: submitted, validated, decided, token minted, executed.
    Show {
        /// The request's id, or a unique prefix of it (at least 4 hex digits; needs
        /// DATABASE_URL to look it up).
        request_id: IdArg,
        /// Print the events as a JSON array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RolloutAction {
    /// The current flags.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Validate this percent of requests (0, 10, 50, 100 …). A raise of the enforced percent
    /// passes the promote gate (see `promote`) or needs --force with --reason.
    Set {
        percent: u8,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Turn validation on (at the current percent); a raise, so it passes the promote gate.
    Enable {
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Turn validation off: every request goes to a human (and is still scored: shadow mode).
    Disable {
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Move to the next phase (shadow → 10 → 50 → 100 %) — only when the current phase's
    /// verdict is GO after its minimum duration (72 h at 10 %, 96 h at 50 %, 24 h of shadow;
    /// WINGMAN_ROLLOUT_MIN_DURATION) on at least 30 requests (WINGMAN_ROLLOUT_MIN_SAMPLES).
    /// The watcher judges it. --force --reason "…" promotes anyway, audited.
    Promote {
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// The seed's rates, the verdict and the promote gate of the current phase (or --phase N,
    /// --all, or a --since window). Exit code: 0 GO, 1 NO-GO, 2 HOLD or INSUFFICIENT DATA
    /// (an error also exits 1).
    Report {
        /// Report on phase N (1 = the first recorded; see --all).
        #[arg(long, conflicts_with_all = ["all", "since"])]
        phase: Option<usize>,
        /// Report on every phase, oldest first; exits with the current phase's verdict.
        #[arg(long, conflicts_with = "since")]
        all: bool,
        /// A window instead of a phase: a duration ago (24h, 72h, 7d) or an RFC 3339 time
        /// (it may mix phases).
        #[arg(long, value_parser = wingman::duration::since)]
        since: Option<DateTime<Utc>>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct ChangeArgs {
    /// Who makes the change where the bus has no authentication (default: $USER); the NATS
    /// user otherwise.
    #[arg(long)]
    by: Option<String>,
    /// Why (kept in the audit and the phase history; required with --force).
    #[arg(long)]
    reason: Option<String>,
    /// Raise the rollout although the promote gate refuses (audited with --reason).
    #[arg(long, requires = "reason")]
    force: bool,
    /// Print the watcher's answer as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ProcessExit {
    wingman::telemetry::init("wingman-cli", "warn");
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(code) => ProcessExit::from(code as u8),
        Err(error) => {
            eprintln!("error: {error:#}");
            ProcessExit::from(ExitCode::Error as u8)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    // Read on first use, so the health probe depends on no other setting.
    let settings = Settings::from_env;
    match command {
        Command::Request {
            environment,
            title,
            description,
            requester,
            risk_level,
            request_id,
            no_wait,
            json,
            quiet,
            timeout,
            manual,
            api_url,
            command,
        } => {
            let description = if description == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("read the description from stdin")?;
                text
            } else {
                description
            };
            let requester = requester
                .or_else(wingman::config::login_name)
                .unwrap_or_else(|| "unknown".to_string());
            let command_line = if command.is_empty() {
                None
            } else {
                Some(
                    shlex::try_join(command.iter().map(String::as_str))
                        .context("quote the command")?,
                )
            };
            let mut request = cli::submit::request_json(
                &requester,
                environment.as_str(),
                &title,
                &description,
                risk_level.map(RiskLevel::as_str),
                request_id,
                command_line.as_deref(),
            );
            if manual {
                request["execution"] = serde_json::json!(Execution::Manual.as_str());
            }
            let api = api_url
                .map(|url| cli::submit::ApiTarget::from_env(&url))
                .transpose()?;
            let bus = connect(&settings()?).await?;
            cli::submit::run(
                &bus,
                Submission {
                    request,
                    wait: !no_wait,
                    json,
                    quiet,
                    timeout,
                    api,
                },
            )
            .await
        }
        Command::Status {
            request_id,
            wait,
            json,
            timeout,
        } => {
            let request_id = request_id.resolve(|| settings()?.database.pool()).await?;
            let bus = connect(&settings()?).await?;
            let Some(event) = wingman::bus::status_feed::last_status(&bus, request_id).await?
            else {
                anyhow::bail!(
                    "no status for {request_id} yet (is it submitted? is intake running?)"
                );
            };
            if wait {
                // The latest event may not say whether there is a command: learn it from
                // the request's events, which the follower reads from the first.
                return cli::submit::wait_for(
                    &bus,
                    request_id,
                    wingman::bus::status_feed::Goal::FromEvents,
                    timeout,
                    json,
                )
                .await;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&event)?);
            } else {
                println!("{}", cli::submit::describe(&event));
            }
            Ok(ExitCode::Ok)
        }
        Command::List {
            status,
            since,
            limit,
            json,
            quiet,
        } => {
            let pool = settings()?.database.pool()?;
            cli::list::run(
                &pool,
                ListFilter {
                    status,
                    since,
                    limit,
                },
                json,
                quiet,
            )
            .await?;
            Ok(ExitCode::Ok)
        }
        Command::Explain {
            file,
            json,
            config,
            policy,
        } => {
            let payload = match file {
                Some(path) => {
                    std::fs::read(&path).with_context(|| format!("read {}", path.display()))?
                }
                None => {
                    let mut bytes = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut bytes)
                        .context("read the request from stdin")?;
                    bytes
                }
            };
            let config = match config {
                Some(path) => ValidationConfig::load(&path)?,
                None => ValidationConfig::default_config(),
            };
            let validator = Validator::new(config).context("validation config")?;
            let policy = match policy {
                Some(path) => wingman::policy::Policy::load(&path)?,
                None => wingman::policy::Policy::default_policy(),
            };
            let flags = live_flags().await;
            let flags = match &flags {
                Ok(flags) => Ok(flags),
                Err(why) => Err(why.as_str()),
            };
            cli::explain::run(&validator, &policy, flags, &payload, json)?;
            Ok(ExitCode::Ok)
        }
        Command::Rollout { action } => rollout(&settings()?, action).await,
        Command::Cancel(args) => cli::cancel::run(args, &settings()?).await,
        Command::Approvers { action } => approvers(&settings, action).await,
        Command::Audit { action } => {
            let pool = settings()?.database.pool()?;
            match action {
                AuditAction::Verify { against, key, json } => {
                    let pair = match (&against, &key) {
                        (Some(checkpoint), Some(key)) => {
                            Some((checkpoint.as_path(), key.as_path()))
                        }
                        (Some(_), None) => anyhow::bail!(
                            "--against needs --key (or WINGMAN_AUDIT_VERIFY_KEY_FILE)"
                        ),
                        _ => None,
                    };
                    cli::audit::verify(&pool, pair, json).await
                }
                AuditAction::Checkpoint { key, json } => {
                    cli::audit::checkpoint(&pool, &key, json).await
                }
                AuditAction::Show { request_id, json } => {
                    let request_id = request_id.resolve(|| Ok(pool.clone())).await?;
                    cli::audit::show(&pool, request_id, json).await
                }
            }
        }
        Command::Pending { json } => {
            cli::approve::pending(&settings()?.database.pool()?, json).await?;
            Ok(ExitCode::Ok)
        }
        Command::Approve {
            request_id,
            note,
            json,
        } => {
            let request_id = request_id.resolve(|| settings()?.database.pool()).await?;
            cli::approve::vote(
                &connect(&settings()?).await?,
                request_id,
                Verdict::Approve,
                note,
                json,
            )
            .await
        }
        Command::Reject {
            request_id,
            reason,
            json,
        } => {
            let request_id = request_id.resolve(|| settings()?.database.pool()).await?;
            cli::approve::vote(
                &connect(&settings()?).await?,
                request_id,
                Verdict::Reject,
                Some(reason),
                json,
            )
            .await
        }
        Command::Keygen { dir, name, json } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let (secret, public) = wingman::token::write_keypair(&dir, &name)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"signing_key": secret, "verification_key": public})
                );
                return Ok(ExitCode::Ok);
            }
            println!(
                "signing key (authority only, mode 0600): {}",
                secret.display()
            );
            println!(
                "verification key (gateway):              {}",
                public.display()
            );
            Ok(ExitCode::Ok)
        }
        Command::Migrate { json } => {
            let pool = settings()?.database.pool()?;
            wingman::store::migrate(&pool).await?;
            if !json {
                println!("migrations applied");
            }
            let mut may_log_in = Vec::new();
            let passwords = [
                (
                    wingman::store::WRITER_ROLE,
                    wingman::config::secret_var("WINGMAN_DB_WRITER_PASSWORD")?,
                ),
                (
                    wingman::store::READER_ROLE,
                    wingman::config::secret_var("WINGMAN_DB_READER_PASSWORD")?,
                ),
            ];
            for (role, password) in passwords {
                if let Some(password) = password {
                    wingman::store::set_role_password(&pool, role, &password).await?;
                    if !json {
                        println!("{role} may log in");
                    }
                    may_log_in.push(role);
                }
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"migrated": true, "roles_may_log_in": may_log_in})
                );
            }
            Ok(ExitCode::Ok)
        }
        Command::SetupNats { json } => {
            let bus = connect(&settings()?).await?;
            cli::setup::run(&bus, json).await?;
            Ok(ExitCode::Ok)
        }
        Command::Apikey {
            name,
            roles,
            file,
            json,
        } => {
            let key = wingman::access::generate_key();
            let entry = wingman::access::entry_toml(&name, &key, &roles);
            if let Some(path) = &file {
                append_private(path, &format!("\n{entry}"))?;
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"name": name, "roles": roles, "key": key, "entry": entry, "file": file})
                );
                return Ok(ExitCode::Ok);
            }
            match &file {
                Some(path) => eprintln!("entry for `{name}` appended to {}", path.display()),
                None => eprint!("{entry}"),
            }
            println!("{key}");
            Ok(ExitCode::Ok)
        }
        Command::NatsPasswords { dir, users, json } => {
            let passwords = cli::nats_passwords::read_passwords(&dir, &users)?;
            let file = cli::nats_passwords::password_file(&passwords, cli::nats_passwords::COST)?;
            if json {
                println!("{}", serde_json::json!({ "file": file, "users": users }));
                return Ok(ExitCode::Ok);
            }
            print!("{file}");
            Ok(ExitCode::Ok)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "wingman",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::Ok)
        }
        Command::Health { url, timeout, json } => {
            let answer = cli::health::probe(&url, timeout).await;
            if json {
                let shown = match &answer {
                    Ok(code) => serde_json::json!({
                        "url": url, "status": code, "ready": (200..300).contains(code)
                    }),
                    Err(error) => serde_json::json!({
                        "url": url, "status": null, "ready": false, "error": format!("{error:#}")
                    }),
                };
                println!("{shown}");
                let ready = shown["ready"] == true;
                return Ok(if ready { ExitCode::Ok } else { ExitCode::Error });
            }
            let code = answer?;
            anyhow::ensure!((200..300).contains(&code), "{url} answered {code}");
            Ok(ExitCode::Ok)
        }
    }
}

async fn rollout_change(settings: &Settings, what: Change, args: ChangeArgs) -> anyhow::Result<()> {
    let who = args
        .by
        .or_else(wingman::config::login_name)
        .unwrap_or_else(|| "unknown".into());
    let why = cli::rollout::Why {
        reason: args.reason,
        force: args.force,
    };
    cli::rollout::change(&connect(settings).await?, &who, what, why, args.json).await?;
    Ok(())
}

async fn rollout(settings: &Settings, action: RolloutAction) -> anyhow::Result<ExitCode> {
    match action {
        RolloutAction::Show { json } => {
            cli::rollout::show(&connect(settings).await?, json).await?;
        }
        RolloutAction::Set { percent, change } => {
            rollout_change(settings, Change::Percent(percent), change).await?;
        }
        RolloutAction::Enable { change } => {
            rollout_change(settings, Change::Enable, change).await?;
        }
        RolloutAction::Disable { change } => {
            rollout_change(settings, Change::Disable, change).await?;
        }
        RolloutAction::Promote { change } => {
            rollout_change(settings, Change::Promote, change).await?;
        }
        RolloutAction::Report {
            phase,
            all,
            since,
            json,
        } => {
            let which = match (phase, all) {
                (Some(number), _) => cli::rollout::Which::Number(number),
                (None, true) => cli::rollout::Which::All,
                (None, false) => cli::rollout::Which::Current,
            };
            let bus = connect(settings).await.ok();
            let verdict =
                cli::rollout::report(&settings.database.pool()?, bus.as_ref(), which, since, json)
                    .await?;
            return Ok(match verdict.exit_code() {
                0 => ExitCode::Ok,
                1 => ExitCode::Error,
                _ => ExitCode::Hold,
            });
        }
    }
    Ok(ExitCode::Ok)
}

async fn approvers(
    settings: &dyn Fn() -> anyhow::Result<Settings>,
    action: ApproversAction,
) -> anyhow::Result<ExitCode> {
    use cli::approvers;
    match action {
        ApproversAction::Keygen { dir } => {
            let dir = match dir {
                Some(dir) => dir,
                None => cli::approve::config_dir()?,
            };
            println!("{}", approvers::keygen(&dir)?);
        }
        ApproversAction::Add {
            name,
            console_keys,
            telegram_ids,
            api_keys,
            publishers,
            json,
        } => {
            let store = approvers::store(&connect(&settings()?).await?).await?;
            let credentials = approvers::Credentials {
                console_keys,
                telegram_ids,
                api_keys,
                publishers,
            };
            let approver = approvers::add(&store, &name, credentials).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&approver)?);
            } else {
                println!("{}", approvers::describe(&approver));
            }
        }
        ApproversAction::Remove { name, json } => {
            let store = approvers::store(&connect(&settings()?).await?).await?;
            approvers::remove(&store, &name).await?;
            if json {
                println!("{}", serde_json::json!({ "removed": name }));
            } else {
                println!("removed {name}: their credentials no longer decide anything");
            }
        }
        ApproversAction::List { json } => {
            let store = approvers::store(&connect(&settings()?).await?).await?;
            approvers::list(&store, json).await?;
        }
    }
    Ok(ExitCode::Ok)
}

/// The live rollout flags for `explain`, or why they could not be read (within 5 s).
async fn live_flags() -> Result<wingman::rollout::Rollout, String> {
    let read = async {
        let bus = connect(&Settings::from_env()?).await?;
        let (flags, _) = wingman::rollout::RolloutStore::open(&bus)
            .await?
            .current()
            .await?;
        anyhow::Ok(flags)
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), read).await {
        Ok(Ok(flags)) => Ok(flags),
        Ok(Err(error)) => Err(format!("cannot read the rollout flags: {error:#}")),
        Err(_) => Err("the bus did not answer within 5 s".into()),
    }
}

async fn connect(settings: &Settings) -> anyhow::Result<Bus> {
    let mut nats = settings.nats.clone();
    nats.connect_attempts = nats.connect_attempts.min(3);
    Bus::connect(&nats, "wingman-cli").await
}

/// Appends to a file that only its owner may read (created mode 0600).
fn append_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

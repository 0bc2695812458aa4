//! Each worker's settings, typed, read from the environment once at start, in one place.
//!
//! [`crate::config`] holds what every process shares (NATS, Postgres) and the readers of one
//! variable (`var`, `parse_var`, `flag_var`, …); this module holds one section per worker
//! ([`IntakeSettings`], [`GatewaySettings`], …) plus the part every worker shares
//! ([`WorkerSettings`]). A worker's main reads its section, and its stage's builder
//! (`IntakeDeps::open`, …) takes it; the tests build the same section by hand and call the
//! same builder. No other module of the library reads a worker's variable (the CLI reads its
//! own; `architecture::settings_are_read_in_the_settings_modules_only`).
//!
//! Yes/no variables have one dialect, [`flag_var`]: `1`/`true`/`yes` or `0`/`false`/`no`,
//! anything else is an error naming the variable. Every name is documented in
//! `.env.prd.example` (`deploy::every_env_var_the_code_reads_is_documented_in_env_prd_example`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};

use crate::access::{ApiKeys, KEYS_FILE_VAR};
use crate::approval::Rules;
use crate::config::{
    ComposeSettings, ConsoleSettings, duration_var, flag_var, parse_var, secret_var, var,
};
use crate::policy::Policy;
use crate::report::PhaseMinimums;
use crate::request::Environment;
use crate::rollout::Rollout;
use crate::token::{SigningKey, VerifyKey};
use crate::validation::ValidationConfig;

/// A TCP address to listen on: `host` (default loopback) and `port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub host: String,
    pub port: u16,
}

impl Listen {
    /// `host_var` (default `127.0.0.1`) and `port_var` (default `port`).
    fn from_env(host_var: &str, port_var: &str, port: u16) -> anyhow::Result<Self> {
        Ok(Self {
            host: var(host_var).unwrap_or_else(|| "127.0.0.1".to_string()),
            port: parse_var::<u16>(port_var)?.unwrap_or(port),
        })
    }

    /// Binds the address; the error names it.
    pub async fn bind(&self) -> anyhow::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("bind {}:{}", self.host, self.port))
    }
}

/// What every worker shares beside NATS and Postgres ([`crate::config::Settings`]).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `WINGMAN_ENSURE_TOPOLOGY` (default yes): create the declared streams, consumers and
    /// buckets at start. In production no (`wingman setup-nats` does it as the NATS admin).
    pub ensure_topology: bool,
    /// `/metrics` and `/health`: `METRICS_HOST`, `METRICS_PORT` (default: the stage's port in
    /// [`crate::worker::WORKERS`]; 0 picks a free one).
    pub ops: Listen,
    /// `WINGMAN_CONSUME_BATCH` and `WINGMAN_CONSUME_IN_FLIGHT`: replace the stage's own
    /// batch size and batches in flight.
    pub consume_batch: Option<usize>,
    pub consume_in_flight: Option<usize>,
    /// `HOSTNAME`, for the actor name (`stage@host:pid`); else `/etc/hostname`.
    pub hostname: Option<String>,
}

impl WorkerSettings {
    pub fn from_env(ops_port: u16) -> anyhow::Result<Self> {
        Ok(Self {
            ensure_topology: flag_var("WINGMAN_ENSURE_TOPOLOGY", true)?,
            ops: Listen::from_env("METRICS_HOST", "METRICS_PORT", ops_port)?,
            consume_batch: parse_var::<usize>("WINGMAN_CONSUME_BATCH")?,
            consume_in_flight: parse_var::<usize>("WINGMAN_CONSUME_IN_FLIGHT")?,
            hostname: var("HOSTNAME"),
        })
    }
}

/// How many heaps a worker caps glibc's allocator at: one per runtime thread, unless
/// `MALLOC_ARENA_MAX` (glibc's own variable, which it applies itself) is set: `None`.
pub fn allocator_arenas(runtime_threads: usize) -> Option<usize> {
    std::env::var_os("MALLOC_ARENA_MAX")
        .is_none()
        .then_some(runtime_threads)
}

/// `WINGMAN_WORKER_THREADS` (default 1): the worker runtime's threads.
///
/// # Errors
/// When it is not a positive number.
pub fn worker_threads() -> anyhow::Result<usize> {
    let threads = parse_var::<usize>("WINGMAN_WORKER_THREADS")?.unwrap_or(1);
    anyhow::ensure!(threads >= 1, "WINGMAN_WORKER_THREADS must be at least 1");
    Ok(threads)
}

/// The Telegram bot: `TELEGRAM_BOT_TOKEN` (or `_FILE`), the chats it posts to
/// (`TELEGRAM_CHAT_ID`, comma-separated) and `TELEGRAM_API_URL`. Approvals and the watcher
/// read it with the same rule: no token, no bot; a token without chats, or a chat id that is
/// no number, stops the worker with the variable named.
#[derive(Clone)]
pub struct TelegramSettings {
    token: SecretString,
    pub chats: Vec<i64>,
    pub api_url: Option<String>,
}

impl std::fmt::Debug for TelegramSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramSettings")
            .field("token", &"<secret>")
            .field("chats", &self.chats)
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl TelegramSettings {
    pub fn new(token: impl Into<String>, chats: Vec<i64>, api_url: Option<String>) -> Self {
        Self {
            token: SecretString::from(token.into()),
            chats,
            api_url,
        }
    }

    pub fn token(&self) -> &str {
        self.token.expose_secret()
    }

    pub fn from_env() -> anyhow::Result<Option<Self>> {
        let Some(token) = secret_var("TELEGRAM_BOT_TOKEN")? else {
            return Ok(None);
        };
        let chats = parse_chat_ids(&var("TELEGRAM_CHAT_ID").context(
            "TELEGRAM_CHAT_ID must name the approver chat(s) when TELEGRAM_BOT_TOKEN is set",
        )?)?;
        Ok(Some(Self::new(token, chats, var("TELEGRAM_API_URL"))))
    }
}

/// `TELEGRAM_CHAT_ID`'s value: chat ids, comma-separated, at least one.
///
/// # Errors
/// Names the first id that is no number.
pub fn parse_chat_ids(text: &str) -> anyhow::Result<Vec<i64>> {
    let chats = text
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| {
            id.parse::<i64>()
                .map_err(|_| anyhow::anyhow!("TELEGRAM_CHAT_ID: `{id}` is not a chat id"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!chats.is_empty(), "TELEGRAM_CHAT_ID names no chat");
    Ok(chats)
}

/// The keys of `WINGMAN_API_KEYS_FILE` (the API and the gateway's HTTP edge).
///
/// # Errors
/// When the variable is unset (the edge fails closed), or the file is unreadable, invalid or
/// holds no key.
pub fn api_keys() -> anyhow::Result<ApiKeys> {
    let path = var(KEYS_FILE_VAR).with_context(|| {
        format!(
            "{KEYS_FILE_VAR} must name the API key file (every HTTP call needs a key of the \
             right role; create keys with `wingman apikey`); refusing to start without keys"
        )
    })?;
    ApiKeys::load(path.as_ref())
}

/// The policy of `WINGMAN_POLICY_FILE`, else the shipped one.
///
/// # Errors
/// When the file cannot be read or is not a valid policy.
pub fn policy() -> anyhow::Result<Policy> {
    match var("WINGMAN_POLICY_FILE") {
        Some(path) => Policy::load(path.as_ref()).context("WINGMAN_POLICY_FILE"),
        None => Ok(Policy::default_policy()),
    }
}

/// The rollout flags the environment asks for: `VALIDATION_ENABLED` (default no) and
/// `VALIDATION_ROLLOUT_PERCENT` (default 100). The seed's safe start: disabled, everything
/// goes to a human. Applied to the live flags by `wingman setup-nats` (or intake, where it
/// creates the topology) when they changed since last applied.
///
/// # Errors
/// A value that does not parse, or a percent above 100.
pub fn rollout() -> anyhow::Result<Rollout> {
    let enabled = flag_var("VALIDATION_ENABLED", false)?;
    let percent = parse_var::<u8>("VALIDATION_ROLLOUT_PERCENT")?.unwrap_or(100);
    anyhow::ensure!(
        percent <= 100,
        "VALIDATION_ROLLOUT_PERCENT: {percent} is above 100"
    );
    Ok(Rollout {
        enabled,
        percent,
        updated_by: "environment".into(),
        updated_at: crate::envelope::now(),
    })
}

/// The rollout phases' minimums: the defaults, changed by `WINGMAN_ROLLOUT_MIN_SAMPLES` and
/// `WINGMAN_ROLLOUT_MIN_DURATION` (`shadow=24h,10=72h,50=96h,100=7d`, any subset).
///
/// # Errors
/// A value that does not parse, named with its variable and phase.
pub fn phase_minimums() -> anyhow::Result<PhaseMinimums> {
    let mut minimums = PhaseMinimums::default();
    if let Some(samples) = parse_var::<i64>("WINGMAN_ROLLOUT_MIN_SAMPLES")? {
        anyhow::ensure!(
            samples >= 1,
            "WINGMAN_ROLLOUT_MIN_SAMPLES: must be at least 1, got {samples}"
        );
        minimums.samples = samples;
    }
    if let Some(text) = var("WINGMAN_ROLLOUT_MIN_DURATION") {
        minimums
            .apply_durations(&text)
            .context("WINGMAN_ROLLOUT_MIN_DURATION")?;
    }
    Ok(minimums)
}

/// Intake: the validators' config, how long a human has to answer, the rollout flags of the
/// environment.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// `WINGMAN_VALIDATION_CONFIG` (default: the shipped one).
    pub validation: ValidationConfig,
    /// `WINGMAN_APPROVAL_TTL` (default 1 h).
    pub approval_ttl: Duration,
    /// How long the validators may take on one request before it goes to a human (2 s).
    pub validation_timeout: Duration,
    /// What the environment asks of the rollout flags (see [`rollout`]).
    pub rollout: Rollout,
}

impl Default for IntakeSettings {
    /// The shipped validation config, a human's answer due within 1 h, 2 s for the
    /// validators, and the seed's safe start for the rollout (disabled).
    fn default() -> Self {
        Self {
            validation: ValidationConfig::default_config(),
            approval_ttl: Duration::from_secs(3600),
            validation_timeout: Duration::from_millis(2000),
            rollout: Rollout {
                enabled: false,
                percent: 100,
                updated_by: "environment".into(),
                updated_at: crate::envelope::now(),
            },
        }
    }
}

impl IntakeSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let validation = match var("WINGMAN_VALIDATION_CONFIG") {
            Some(path) => ValidationConfig::load(path.as_ref())
                .with_context(|| format!("WINGMAN_VALIDATION_CONFIG: {path}"))?,
            None => ValidationConfig::default_config(),
        };
        let defaults = Self::default();
        Ok(Self {
            validation,
            approval_ttl: duration_var("WINGMAN_APPROVAL_TTL")?.unwrap_or(defaults.approval_ttl),
            rollout: rollout()?,
            ..defaults
        })
    }
}

/// The authority: its signing key and how long a token lives.
#[derive(Clone)]
pub struct AuthoritySettings {
    /// From `WINGMAN_SIGNING_KEY_FILE` (`wingman keygen`); it never leaves the process.
    pub signing_key: Arc<SigningKey>,
    /// `WINGMAN_TOKEN_TTL` (default 10 min).
    pub token_ttl: Duration,
}

impl AuthoritySettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let path = var("WINGMAN_SIGNING_KEY_FILE").context(
            "WINGMAN_SIGNING_KEY_FILE must name the token signing key (create one with `wingman keygen`)",
        )?;
        let signing_key =
            crate::token::read_signing_key(path.as_ref()).context("WINGMAN_SIGNING_KEY_FILE")?;
        Ok(Self {
            signing_key: Arc::new(signing_key),
            token_ttl: duration_var("WINGMAN_TOKEN_TTL")?.unwrap_or(Duration::from_secs(600)),
        })
    }
}

/// The gateway: what it verifies tokens with, where it may act, what it may run, and its
/// HTTP edge.
#[derive(Clone)]
pub struct GatewaySettings {
    /// From `WINGMAN_VERIFY_KEY_FILE`: verifies tokens; the gateway cannot mint.
    pub verify_key: VerifyKey,
    /// `ALLOWED_ENVIRONMENTS` (required, e.g. `prd`).
    pub allowed_environments: Vec<Environment>,
    /// `WINGMAN_POLICY_FILE` (default: the shipped policy).
    pub policy: Policy,
    /// `DOCKER_HOST` (default: the local socket).
    pub docker_host: Option<String>,
    /// `WINGMAN_GATEWAY_LEASE_SECS`: a claim started more recently may still be running in
    /// another copy.
    pub running_lease: Duration,
    /// `GATEWAY_HOST`, `GATEWAY_PORT` (5001).
    pub http: Listen,
    /// `WINGMAN_COMPOSE_BIN`, `WINGMAN_COMPOSE_TIMEOUT`: what runs `compose up` and `pull`.
    pub compose: ComposeSettings,
}

/// A gateway claim `started` less than this ago may still be running in another copy.
pub const GATEWAY_RUNNING_LEASE: Duration = Duration::from_secs(150);

impl GatewaySettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let key_file = var("WINGMAN_VERIFY_KEY_FILE")
            .context("WINGMAN_VERIFY_KEY_FILE must name the token verification key")?;
        let verify_key =
            crate::token::read_verify_key(key_file.as_ref()).context("WINGMAN_VERIFY_KEY_FILE")?;
        let allowed_environments = var("ALLOWED_ENVIRONMENTS")
            .context(
                "ALLOWED_ENVIRONMENTS must list the environments this gateway acts on (e.g. prd)",
            )?
            .split(',')
            .map(|name| {
                name.trim()
                    .parse::<Environment>()
                    .map_err(|error| anyhow::anyhow!("ALLOWED_ENVIRONMENTS: {error}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            verify_key,
            allowed_environments,
            policy: policy()?,
            docker_host: var("DOCKER_HOST"),
            running_lease: parse_var::<u64>("WINGMAN_GATEWAY_LEASE_SECS")?
                .map_or(GATEWAY_RUNNING_LEASE, Duration::from_secs),
            http: Listen::from_env("GATEWAY_HOST", "GATEWAY_PORT", 5001)?,
            compose: ComposeSettings::from_env()?,
        })
    }
}

/// Approvals: the approval rules, the bot, the console's address for links.
#[derive(Debug, Clone)]
pub struct ApprovalsSettings {
    /// `TELEGRAM_APPROVER_IDS`, `WINGMAN_PRD_APPROVALS`.
    pub rules: Rules,
    /// None: no bot token; the console approver still works.
    pub telegram: Option<TelegramSettings>,
    /// `WINGMAN_CONSOLE_URL`: prompts link to the request's page.
    pub console: ConsoleSettings,
}

impl ApprovalsSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            rules: rules()?,
            telegram: TelegramSettings::from_env()?,
            console: ConsoleSettings::from_env()?,
        })
    }
}

/// The approval rules of the environment: `TELEGRAM_APPROVER_IDS` (Telegram user ids,
/// comma-separated) and `WINGMAN_PRD_APPROVALS` (1 to 5, default 1). Console approvers are in
/// the roster (`wingman approvers add`), not in the environment.
///
/// # Errors
/// An id that is no number, a count out of range, or the retired `WINGMAN_CONSOLE_APPROVERS`.
pub fn rules() -> anyhow::Result<Rules> {
    let mut telegram_ids = Vec::new();
    for id in var("TELEGRAM_APPROVER_IDS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        telegram_ids.push(id.parse::<i64>().map_err(|_| {
            anyhow::anyhow!("TELEGRAM_APPROVER_IDS: `{id}` is not a Telegram user id")
        })?);
    }
    anyhow::ensure!(
        var("WINGMAN_CONSOLE_APPROVERS").is_none(),
        "WINGMAN_CONSOLE_APPROVERS is gone: a name in the environment proves nobody. Register \
         each console approver's key with `wingman approvers add <name> --console-key <k4.public…>`"
    );
    let prd_approvals = parse_var::<usize>("WINGMAN_PRD_APPROVALS")?.unwrap_or(1);
    anyhow::ensure!(
        (1..=5).contains(&prd_approvals),
        "WINGMAN_PRD_APPROVALS must be 1 to 5, got {prd_approvals}"
    );
    Ok(Rules {
        telegram_ids,
        prd_approvals,
    })
}

/// The rollout guard (`WINGMAN_GUARD_*`, the watcher). At 0 % (shadow mode) it judges the
/// shadow decisions instead: nothing to lower, but approvers are told when validation would
/// have auto-approved what they reject, or rejected what they approve, too often.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// `WINGMAN_GUARD_ENABLED` (default yes).
    pub enabled: bool,
    /// The window the false-positive rate is computed over (`WINGMAN_GUARD_WINDOW`, 24 h).
    pub window: Duration,
    /// Auto-rejections needed before the rate is trusted (`WINGMAN_GUARD_MIN_SAMPLES`, 10).
    pub min_auto_rejected: i64,
    /// Above this false-positive rate (%) the rollout is lowered
    /// (`WINGMAN_GUARD_CRITICAL_PERCENT`, 10, the seed's critical).
    pub critical_rate: f64,
    /// How often the guard looks (`WINGMAN_GUARD_EVERY`, 60 s).
    pub every: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(24 * 3600),
            min_auto_rejected: 10,
            critical_rate: 10.0,
            every: Duration::from_secs(60),
        }
    }
}

impl GuardSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::default();
        Ok(Self {
            enabled: flag_var("WINGMAN_GUARD_ENABLED", defaults.enabled)?,
            window: duration_var("WINGMAN_GUARD_WINDOW")?.unwrap_or(defaults.window),
            min_auto_rejected: parse_var::<i64>("WINGMAN_GUARD_MIN_SAMPLES")?
                .unwrap_or(defaults.min_auto_rejected),
            critical_rate: parse_var::<f64>("WINGMAN_GUARD_CRITICAL_PERCENT")?
                .unwrap_or(defaults.critical_rate),
            every: duration_var("WINGMAN_GUARD_EVERY")?.unwrap_or(defaults.every),
        })
    }
}

/// The watcher: the clock, the rollout guard, the phase minimums, its bot.
#[derive(Debug, Clone)]
pub struct WatcherSettings {
    pub guard: GuardSettings,
    /// The guard's and the clock's messages to the approver chat; None: logs only.
    pub telegram: Option<TelegramSettings>,
    pub phases: PhaseMinimums,
    /// How often the clock looks for expired requests (`WINGMAN_WATCH_INTERVAL`, 5 s).
    pub interval: Duration,
}

impl WatcherSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            guard: GuardSettings::from_env()?,
            telegram: TelegramSettings::from_env()?,
            phases: phase_minimums()?,
            interval: duration_var("WINGMAN_WATCH_INTERVAL")?.unwrap_or(Duration::from_secs(5)),
        })
    }
}

/// The recorder.
#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// `WINGMAN_MIGRATE` (default yes): apply the migrations at start. In production no
    /// (`wingman migrate` does it as the schema owner; the recorder's role cannot).
    pub migrate: bool,
}

impl RecorderSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            migrate: flag_var("WINGMAN_MIGRATE", true)?,
        })
    }
}

/// The API worker: its address, its keys, the console.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `API_HOST`, `API_PORT` (8080).
    pub http: Listen,
    /// `WINGMAN_CONSOLE_URL`, `WINGMAN_CONSOLE_SESSION_TTL`.
    pub console: ConsoleSettings,
    /// The policy the console shows verdicts of (`WINGMAN_POLICY_FILE`); None when it could
    /// not be read (the console then says so; the gateway refuses to start instead).
    pub policy: Option<Policy>,
}

impl Default for ApiSettings {
    /// Loopback port 8080, the console without a public URL, the shipped policy.
    fn default() -> Self {
        Self {
            http: Listen {
                host: "127.0.0.1".into(),
                port: 8080,
            },
            console: ConsoleSettings::default(),
            policy: Some(Policy::default_policy()),
        }
    }
}

impl ApiSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let policy = match policy() {
            Ok(policy) => Some(policy),
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "the console cannot show policy verdicts");
                None
            }
        };
        Ok(Self {
            http: Listen::from_env("API_HOST", "API_PORT", 8080)?,
            console: ConsoleSettings::from_env()?,
            policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_ids_are_numbers_and_at_least_one() {
        assert_eq!(parse_chat_ids("-100123, 42").unwrap(), vec![-100123, 42]);
        let error = parse_chat_ids("-100123,ops").unwrap_err().to_string();
        assert!(
            error.contains("TELEGRAM_CHAT_ID") && error.contains("`ops`"),
            "{error}"
        );
        assert!(parse_chat_ids(" , ").is_err());
    }
}

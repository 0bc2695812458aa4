//! Typed settings, read once from the environment (the seed's names; every one is documented in `.env.prd.example`).
//!
//! Secrets (database URL, NATS password) are wrapped so that they never print.

use std::time::Duration;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};

pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/wingman";

/// The subject prefix of a deployment that sets none (`WINGMAN_SUBJECT_PREFIX`).
pub const DEFAULT_PREFIX: &str = "wingman";

/// Knobs an operator (or a test) may turn without editing `nats/`.
#[derive(Debug, Clone, Default)]
pub struct TopologyOverrides {
    /// Replaces every consumer's `ack_wait` (env `WINGMAN_ACK_WAIT_SECS`).
    pub ack_wait: Option<Duration>,
    /// Replaces every stream's replica count (env `WINGMAN_STREAM_REPLICAS`; 3 on a cluster).
    pub replicas: Option<usize>,
    /// Caps every stream's and bucket's byte limit (env `WINGMAN_STREAM_MAX_BYTES`). JetStream
    /// reserves a stream's `max_bytes` in the server's store when it is created, so tests,
    /// which make many topologies on one shared server, make theirs small. Not for production.
    pub max_bytes: Option<i64>,
    /// Caps how long the homes of per-request subjects keep them: the claims and approvals
    /// buckets and the status stream (env `WINGMAN_REQUEST_RETENTION`, a duration; declared:
    /// a day). Each request adds subjects there, and nats-server holds an index entry per
    /// live subject in memory, so at a sustained rate r it holds about r × this many.
    pub request_retention: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub nats: NatsSettings,
    pub database: DatabaseSettings,
}

#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// The server, or the nodes of a cluster, comma-separated (`NATS_URL`).
    pub url: String,
    /// Subject prefix (`WINGMAN_SUBJECT_PREFIX`, default `wingman`); tests isolate with it.
    pub prefix: String,
    pub overrides: TopologyOverrides,
    pub credentials: Option<NatsCredentials>,
    /// How many times to try the first connection before giving up.
    pub connect_attempts: usize,
}

#[derive(Debug, Clone)]
pub struct NatsCredentials {
    pub user: String,
    password: SecretString,
}

impl NatsCredentials {
    pub fn new(user: String, password: String) -> Self {
        Self {
            user,
            password: SecretString::from(password),
        }
    }

    pub fn password(&self) -> &str {
        self.password.expose_secret()
    }

    /// The prefix of this user's reply subjects, `_INBOX_<user>`: each user gets its own, so
    /// the server can let it subscribe to its replies only (a token the authority sends the
    /// gateway is not readable by anyone else). `nats/server-prd.conf` grants the same.
    pub fn inbox_prefix(&self) -> String {
        let user: String = self
            .user
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("_INBOX_{user}")
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    url: SecretString,
    /// Replaces the URL's password (`DATABASE_PASSWORD` or `DATABASE_PASSWORD_FILE`), so the
    /// URL, with its role, can be plain configuration and the password a Docker secret.
    password: Option<SecretString>,
    pub max_connections: u32,
}

impl DatabaseSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            password: None,
            max_connections: 8,
        }
    }

    pub fn with_password(mut self, password: Option<String>) -> Self {
        self.password = password.map(SecretString::from);
        self
    }

    /// A lazily connecting pool: a worker starts even while Postgres is still coming up.
    ///
    /// Every statement is planned with its own parameters (`plan_cache_mode =
    /// force_custom_plan`): a prepared statement's generic plan, made once while
    /// `audit_events` was small, kept scanning the whole table for every batch as it grew
    /// wherever statistics were not refreshed (autovacuum off: the 30-minute soak fell
    /// behind after three minutes, one sequential scan of 350 000 rows per batch). Planned
    /// each time, the recorder's lookup of events recorded already (after a batch met the
    /// unique key) probes the unique index however stale the statistics are. The one
    /// exception is the recorder's append and insert of received requests, whose plans cannot
    /// depend on the tables' size ([`audit::begin_locked`](crate::store::audit::begin_locked),
    /// and `wingman_record_received`, which sets its own mode).
    pub fn pool(&self) -> anyhow::Result<sqlx::PgPool> {
        let options: sqlx::postgres::PgConnectOptions = self
            .url
            .expose_secret()
            .parse()
            .context("DATABASE_URL is not a valid postgres:// URL")?;
        let options = options.options([("plan_cache_mode", "force_custom_plan")]);
        // Each connection tells `pg_stat_activity` which program holds it (`wingman-recorder`,
        // `wingman`), unless the URL names it already.
        let options = match (options.get_application_name(), program_name()) {
            (None, Some(program)) => options.application_name(&program),
            _ => options,
        };
        let options = match &self.password {
            Some(password) => options.password(password.expose_secret()),
            None => options,
        };
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options))
    }

    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }
}

/// The running program's file name (`wingman-recorder`), if it has one.
fn program_name() -> Option<String> {
    let program = std::env::args_os().next()?;
    let name = std::path::Path::new(&program).file_name()?;
    Some(name.to_string_lossy().into_owned())
}

impl Settings {
    /// Reads every setting from the environment, with local defaults.
    pub fn from_env() -> anyhow::Result<Self> {
        let nats = NatsSettings {
            url: var("NATS_URL").unwrap_or_else(|| DEFAULT_NATS_URL.to_string()),
            prefix: var("WINGMAN_SUBJECT_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.to_string()),
            overrides: TopologyOverrides {
                ack_wait: parse_var::<u64>("WINGMAN_ACK_WAIT_SECS")?.map(Duration::from_secs),
                replicas: parse_var::<usize>("WINGMAN_STREAM_REPLICAS")?,
                max_bytes: parse_var::<i64>("WINGMAN_STREAM_MAX_BYTES")?,
                request_retention: duration_var("WINGMAN_REQUEST_RETENTION")?,
            },
            credentials: match var("NATS_USER") {
                None => None,
                Some(user) => Some(NatsCredentials::new(
                    user,
                    secret_var("NATS_PASSWORD")?.unwrap_or_default(),
                )),
            },
            connect_attempts: parse_var::<usize>("WINGMAN_NATS_CONNECT_ATTEMPTS")?.unwrap_or(10),
        };
        let database = DatabaseSettings::new(
            secret_var("DATABASE_URL")?.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()),
        )
        .with_password(secret_var("DATABASE_PASSWORD")?);
        Ok(Self { nats, database })
    }
}

/// The compose binary the gateway runs for `compose up` and `compose pull`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeSettings {
    /// `WINGMAN_COMPOSE_BIN`, split like a shell word list (`docker-compose`, or
    /// `/usr/libexec/docker/cli-plugins/docker-compose`); default `docker-compose`.
    pub command: Vec<String>,
    /// `WINGMAN_COMPOSE_TIMEOUT` (`100s`, `5m`); keep it below the gateway consumer's ack
    /// wait (`nats/consumers/gateway.json`, 120 s). Default 100 s.
    pub timeout: Duration,
}

/// The default compose binary: Debian bookworm's `docker-compose` package (1.29).
pub const DEFAULT_COMPOSE_BIN: &str = "docker-compose";

/// The default bound on one compose run, below the gateway consumer's ack wait (120 s).
pub const DEFAULT_COMPOSE_TIMEOUT: Duration = Duration::from_secs(100);

impl Default for ComposeSettings {
    fn default() -> Self {
        Self {
            command: vec![DEFAULT_COMPOSE_BIN.to_string()],
            timeout: DEFAULT_COMPOSE_TIMEOUT,
        }
    }
}

impl ComposeSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let command = match var("WINGMAN_COMPOSE_BIN") {
            None => vec![DEFAULT_COMPOSE_BIN.to_string()],
            Some(text) => shlex::split(&text)
                .filter(|words| !words.is_empty())
                .with_context(|| {
                    format!("WINGMAN_COMPOSE_BIN: `{text}` is not a program and its arguments")
                })?,
        };
        let timeout = duration_var("WINGMAN_COMPOSE_TIMEOUT")?.unwrap_or(DEFAULT_COMPOSE_TIMEOUT);
        Ok(Self { command, timeout })
    }
}

/// The web console (served by the API worker, `crate::console`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// `WINGMAN_CONSOLE_URL`: the console's base URL as approvers reach it
    /// (`https://wingman.example.com`), without a trailing slash. Telegram prompts link to a
    /// request's page under it; with `https` the session cookie is `Secure`.
    pub url: Option<String>,
    /// `WINGMAN_CONSOLE_SESSION_TTL` (`8h`, `30m`): how long a login lasts. Default 8 h.
    pub session_ttl: Duration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            url: None,
            session_ttl: Duration::from_secs(8 * 3600),
        }
    }
}

impl ConsoleSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let url = match var("WINGMAN_CONSOLE_URL") {
            None => None,
            Some(text) => Some(console_url(&text).context("WINGMAN_CONSOLE_URL")?),
        };
        let session_ttl =
            duration_var("WINGMAN_CONSOLE_SESSION_TTL")?.unwrap_or(Self::default().session_ttl);
        Ok(Self { url, session_ttl })
    }

    /// Whether the console is reached over https (its cookie is then `Secure`).
    pub fn secure(&self) -> bool {
        self.url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }

    /// The page of one request, when the base URL is known.
    pub fn request_page(&self, request_id: &str) -> Option<String> {
        self.url
            .as_deref()
            .map(|base| format!("{base}/console/requests/{request_id}"))
    }
}

/// A console base URL: `http(s)://host[:port][/path]`, no query, no quotes or spaces; the
/// trailing slash is dropped.
///
/// # Errors
/// Says what is wrong with the text.
pub fn console_url(text: &str) -> anyhow::Result<String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .with_context(|| format!("`{text}` must start with http:// or https://"))?;
    anyhow::ensure!(
        !rest.is_empty() && !rest.starts_with('/'),
        "`{text}` names no host"
    );
    anyhow::ensure!(
        !text.chars().any(|c| c.is_whitespace()
            || c.is_control()
            || matches!(c, '"' | '<' | '>' | '\\' | '?' | '#' | '\'')),
        "`{text}` must be a plain base URL (no spaces, quotes, query or fragment)"
    );
    Ok(text.trim_end_matches('/').to_string())
}

/// `WINGMAN_LOG_FORMAT=json`: one JSON object per log line (read before anything else, by
/// [`crate::telemetry::init`]).
pub fn log_json() -> bool {
    var("WINGMAN_LOG_FORMAT").as_deref() == Some("json")
}

/// A non-empty environment variable.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// A variable parsed as `T`, with an error naming the variable and the value.
pub fn parse_var<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match var(name) {
        None => Ok(None),
        Some(text) => text.parse::<T>().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "{name}: `{text}` is not a valid {}",
                std::any::type_name::<T>()
            )
        }),
    }
}

/// A secret from `NAME`, or from the file named by `NAME_FILE` (Docker secrets).
pub fn secret_var(name: &str) -> anyhow::Result<Option<String>> {
    if let Some(value) = var(name) {
        return Ok(Some(value));
    }
    match var(&format!("{name}_FILE")) {
        None => Ok(None),
        Some(path) => std::fs::read_to_string(&path)
            .map(|text| Some(text.trim().to_string()))
            .with_context(|| format!("{name}_FILE: cannot read {path}")),
    }
}

/// A yes/no variable: `1`/`true`/`yes` or `0`/`false`/`no`; `default` when unset.
pub fn flag_var(name: &str, default: bool) -> anyhow::Result<bool> {
    var(name).map_or(Ok(default), |text| parse_flag(name, &text))
}

/// The one yes/no dialect: `1`/`true`/`yes` or `0`/`false`/`no`, in any case.
///
/// # Errors
/// Anything else, naming the variable and the value.
pub fn parse_flag(name: &str, text: &str) -> anyhow::Result<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => anyhow::bail!("{name}: `{text}` is not yes or no (1/true/yes, 0/false/no)"),
    }
}

/// A duration variable in the one duration syntax ([`crate::duration`]): `90s`, `30m`,
/// `1h30m`, `2d`, or a bare number of seconds.
pub fn duration_var(name: &str) -> anyhow::Result<Option<Duration>> {
    var(name)
        .map(|text| {
            crate::duration::parse(&text).map_err(|error| anyhow::anyhow!("{name}: {error}"))
        })
        .transpose()
}

/// The login name of whoever runs this process: `$USER`, `$LOGNAME`, else the passwd entry of
/// the process's uid (shells started by services often set neither variable).
pub fn login_name() -> Option<String> {
    if let Some(name) = var("USER").or_else(|| var("LOGNAME")) {
        return Some(name);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").ok()?.uid();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 2 && fields[2].parse::<u32>().ok() == Some(uid))
                .then(|| fields[0].to_string())
        })
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_yes_no_variable_speaks_one_dialect_and_anything_else_is_named() {
        for yes in ["1", "true", "YES", "True"] {
            assert!(parse_flag("WINGMAN_GUARD_ENABLED", yes).unwrap(), "{yes}");
        }
        for no in ["0", "false", "no", "NO"] {
            assert!(!parse_flag("WINGMAN_GUARD_ENABLED", no).unwrap(), "{no}");
        }
        for bad in ["2", "off", "enabled", ""] {
            let error = parse_flag("WINGMAN_MIGRATE", bad).unwrap_err().to_string();
            assert!(
                error.contains("WINGMAN_MIGRATE") && error.contains(&format!("`{bad}`")),
                "{error}"
            );
        }
    }

    #[test]
    fn a_console_url_is_a_plain_http_base_without_its_trailing_slash() {
        assert_eq!(
            console_url("https://wingman.example.com/").unwrap(),
            "https://wingman.example.com"
        );
        assert_eq!(
            console_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "wingman.example.com",
            "https://",
            "https://x.example/\"><script>",
            "https://x.example/?q=1",
            "javascript:alert(1)",
        ] {
            assert!(console_url(bad).is_err(), "{bad} was accepted");
        }
    }
}

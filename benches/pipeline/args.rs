//! The bench's command line, read by clap: `--help` lists every flag with its default (full
//! and `--quick`), and a value that does not parse stops the bench with the flag named.
//! `cargo bench` adds `--bench`; it is accepted and ignored. Tested in
//! `tests/it/bench_parts.rs`, which includes this file: a `harness = false` bench's own tests
//! never run.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The flags as typed. Those whose default depends on `--quick` are `Option`s here and get
/// their default in [`Options::from`].
#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    // `--faults-rate -5` is a bad value of that flag, not an unknown flag `-5`.
    allow_negative_numbers = true,
    about = "Wingman's pipeline benchmark: the raw JetStream floor, full load, an open-loop rate \
             sweep, the command path, memory; or the fault suite, or the soak.",
    after_help = "Run it on an idle machine: `cargo build --release --workspace --bins && \
                  cargo bench --bench pipeline -- [FLAGS]`. README.md, \"Tests\", says what \
                  each phase prints; BENCHMARKS.md keeps earlier runs."
)]
struct Cli {
    /// Shorter phases (a smoke run); the defaults below in brackets are --quick's.
    #[arg(long)]
    quick: bool,
    /// Added by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Run the fault suite (SIGKILL each worker, restart NATS, stop PostgreSQL 20 s) instead
    /// of the figures. It stops the machine's PostgreSQL: run it alone.
    #[arg(long)]
    faults: bool,
    /// Requests per second of the fault suite's load [default: 1000; 200].
    #[arg(long, value_name = "PER_SECOND", value_parser = positive::<u32>)]
    faults_rate: Option<u32>,
    /// Requests of the full-load (closed-loop) phase [default: 50000; 2000].
    #[arg(long, value_name = "N", value_parser = positive::<usize>)]
    requests: Option<usize>,
    /// Restarts one at a time on the real engine (the idle command path) [default: 20; 3].
    #[arg(long, value_name = "N")]
    executions: Option<usize>,
    /// The open-loop rates of the sweep, per second, comma-separated.
    #[arg(long, value_name = "RATES", value_delimiter = ',', value_parser = positive::<u32>,
          default_value = "500,1000,2000,5000")]
    sweep: Vec<u32>,
    /// Measured seconds per sweep step and of the command phase [default: 20; 2].
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    rate_seconds: Option<f64>,
    /// Unmeasured seconds at each step's rate before it is measured [default: 5; 1].
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    warmup_seconds: Option<f64>,
    /// Requests (with their audit rows, hash chain included) inserted before the run.
    #[arg(long, value_name = "N", default_value_t = 0)]
    preload: usize,
    /// Percent of the command phase's requests that carry `docker inspect` (0: no phase).
    #[arg(long, value_name = "PERCENT", value_parser = percent, default_value_t = 5.0)]
    command_share: f64,
    /// The command phase's open-loop rate, per second [default: 1000; 200].
    #[arg(long, value_name = "PER_SECOND", value_parser = positive::<u32>)]
    command_rate: Option<u32>,
    /// Run the soak instead of the figures, for this long (90s, 30m, 2h) at --rate.
    #[arg(long, value_name = "DURATION", value_parser = wingman::duration::parse)]
    soak: Option<Duration>,
    /// The soak's rate, per second.
    #[arg(long, value_name = "PER_SECOND", value_parser = positive::<u32>, default_value_t = 1000)]
    rate: u32,
    /// How often the soak samples RSS [default: 60s; 2s].
    #[arg(long, value_name = "DURATION", value_parser = wingman::duration::parse)]
    sample_every: Option<Duration>,
    /// Where to write every figure as JSON, to compare runs.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    /// Run the fault suite instead of the figures.
    pub faults: bool,
    /// Requests per second of the fault suite's load.
    pub faults_rate: u32,
    /// Requests of the full-load (closed-loop) phase.
    pub requests: usize,
    /// Sequential restarts on the real engine (the idle command path).
    pub executions: usize,
    /// The open-loop rates of the sweep, per second.
    pub sweep: Vec<u32>,
    /// Measured time per sweep step (and of the command phase).
    pub rate_seconds: f64,
    /// Unmeasured time at each step's rate before it is measured.
    pub warmup_seconds: f64,
    /// Requests (with their audit rows) inserted before the run.
    pub preload: usize,
    /// Percent of the command phase's requests that carry `docker inspect` (0: no phase).
    pub command_share: f64,
    /// The command phase's open-loop rate.
    pub command_rate: u32,
    /// Run the soak instead of the figures, for this long, at `rate`.
    pub soak: Option<Duration>,
    /// The soak's rate.
    pub rate: u32,
    /// How often the soak samples RSS.
    pub sample_every: Duration,
    /// Where to write every figure as JSON.
    pub json: Option<PathBuf>,
}

impl From<Cli> for Options {
    fn from(cli: Cli) -> Self {
        let quick = cli.quick;
        fn pick<T>(quick: bool, full: T, short: T) -> T {
            if quick { short } else { full }
        }
        Self {
            quick,
            faults: cli.faults,
            faults_rate: cli.faults_rate.unwrap_or(pick(quick, 1000, 200)),
            requests: cli.requests.unwrap_or(pick(quick, 50_000, 2_000)),
            executions: cli.executions.unwrap_or(pick(quick, 20, 3)),
            sweep: cli.sweep,
            rate_seconds: cli.rate_seconds.unwrap_or(pick(quick, 20.0, 2.0)),
            warmup_seconds: cli.warmup_seconds.unwrap_or(pick(quick, 5.0, 1.0)),
            preload: cli.preload,
            command_share: cli.command_share,
            command_rate: cli.command_rate.unwrap_or(pick(quick, 1000, 200)),
            soak: cli.soak,
            rate: cli.rate,
            sample_every: cli
                .sample_every
                .unwrap_or(Duration::from_secs(pick(quick, 60, 2))),
            json: cli.json,
        }
    }
}

/// Parses the process's arguments; `--help` prints the flags and exits 0, a bad flag or value
/// prints clap's error naming it and exits 2.
pub fn parse() -> Options {
    try_parse_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
}

/// The options these arguments (the program's name first) ask for, or clap's error naming
/// the flag.
pub fn try_parse_from<I, T>(args: I) -> Result<Options, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args).map(Options::from)
}

fn positive<T: std::str::FromStr + Default + PartialEq>(value: &str) -> Result<T, String> {
    match value.trim().parse::<T>() {
        Ok(parsed) if parsed == T::default() => Err(format!("`{value}` must be above 0")),
        Ok(parsed) => Ok(parsed),
        Err(_) => Err(format!("`{value}` is not a whole number")),
    }
}

fn seconds(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(parsed) if parsed.is_finite() && parsed > 0.0 => Ok(parsed),
        _ => Err(format!("`{value}` must be a number of seconds above 0")),
    }
}

fn percent(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(parsed) if (0.0..=100.0).contains(&parsed) => Ok(parsed),
        _ => Err(format!("`{value}` is not a percentage (0 to 100)")),
    }
}

//! The bench's command line: every flag, its default (full and `--quick`), and a clear error
//! naming the flag when a value does not parse. `cargo bench` adds `--bench`; it is ignored.

use std::path::PathBuf;
use std::time::Duration;

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

impl Options {
    fn defaults(quick: bool) -> Self {
        Self {
            quick,
            faults: false,
            faults_rate: if quick { 200 } else { 1000 },
            requests: if quick { 2_000 } else { 50_000 },
            executions: if quick { 3 } else { 20 },
            sweep: vec![500, 1000, 2000, 5000],
            rate_seconds: if quick { 2.0 } else { 20.0 },
            warmup_seconds: if quick { 1.0 } else { 5.0 },
            preload: 0,
            command_share: 5.0,
            command_rate: if quick { 200 } else { 1000 },
            soak: None,
            rate: 1000,
            sample_every: Duration::from_secs(if quick { 2 } else { 60 }),
            json: None,
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options::defaults(args.iter().any(|arg| arg == "--quick"));
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .ok_or_else(|| anyhow::anyhow!("{flag}: a value is missing"))
        };
        match flag.as_str() {
            "--quick" | "--bench" => {}
            "--faults" => options.faults = true,
            "--faults-rate" => options.faults_rate = positive(flag, value()?)?,
            "--requests" => options.requests = positive(flag, value()?)?,
            "--executions" => options.executions = number(flag, value()?)?,
            "--sweep" => {
                options.sweep = value()?
                    .split(',')
                    .map(|rate| positive(flag, rate))
                    .collect::<anyhow::Result<_>>()?
            }
            "--rate-seconds" => options.rate_seconds = seconds(flag, value()?)?,
            "--warmup-seconds" => options.warmup_seconds = seconds(flag, value()?)?,
            "--preload" => options.preload = number(flag, value()?)?,
            "--command-share" => {
                let share: f64 = number(flag, value()?)?;
                anyhow::ensure!(
                    (0.0..=100.0).contains(&share),
                    "{flag}: {share} is not a percentage (0 to 100)"
                );
                options.command_share = share;
            }
            "--command-rate" => options.command_rate = positive(flag, value()?)?,
            "--soak" => options.soak = Some(duration(flag, value()?)?),
            "--rate" => options.rate = positive(flag, value()?)?,
            "--sample-every" => options.sample_every = duration(flag, value()?)?,
            "--json" => options.json = Some(PathBuf::from(value()?)),
            other => anyhow::bail!(
                "{other}: unknown flag (the flags are listed in README.md, Benchmark)"
            ),
        }
    }
    Ok(options)
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> anyhow::Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag}: `{value}` is not a number"))
}

fn positive<T: std::str::FromStr + Default + PartialOrd>(
    flag: &str,
    value: &str,
) -> anyhow::Result<T> {
    let parsed: T = number(flag, value)?;
    anyhow::ensure!(parsed > T::default(), "{flag}: `{value}` must be above 0");
    Ok(parsed)
}

fn seconds(flag: &str, value: &str) -> anyhow::Result<f64> {
    let parsed: f64 = number(flag, value)?;
    anyhow::ensure!(
        parsed.is_finite() && parsed > 0.0,
        "{flag}: `{value}` must be a number of seconds above 0"
    );
    Ok(parsed)
}

/// `90`, `90s`, `30m` or `2h`.
fn duration(flag: &str, value: &str) -> anyhow::Result<Duration> {
    let (digits, unit) = match value.trim().char_indices().last() {
        Some((at, 's')) => (&value[..at], 1.0),
        Some((at, 'm')) => (&value[..at], 60.0),
        Some((at, 'h')) => (&value[..at], 3600.0),
        _ => (value, 1.0),
    };
    let amount = seconds(flag, digits)
        .map_err(|_| anyhow::anyhow!("{flag}: `{value}` is not a duration like 90s, 30m or 2h"))?;
    Ok(Duration::from_secs_f64(amount * unit))
}

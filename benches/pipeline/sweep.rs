//! The open-loop rate sweep: for each rate, every consumer drained, a warm-up at that rate,
//! then a measured window; visible and durable latency from the intended send time, and the
//! highest rate whose durable p99 stays within 10 ms.

use std::time::{Duration, Instant};

use serde::Serialize;
use wingman::metrics;

use crate::cpu;
use crate::harness::{self, Pipeline};
use crate::openloop::{self, Mix};
use crate::report::{Latencies, percentiles};
use crate::trace::{self, Trace};
use crate::watch::{Marks, Watch};

/// The bound the issue sets on durable p99.
pub const DURABLE_P99_BOUND_MS: f64 = 10.0;

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub rate: u32,
    /// Requests sent in the measured window.
    pub sent: usize,
    pub sent_per_s: f64,
    /// Measured requests durably recorded per second (first intended send → last commit).
    pub recorded_per_s: f64,
    pub visible: Latencies,
    pub durable: Latencies,
    /// Measured requests whose decision never showed (within the patience).
    pub not_visible: usize,
    pub not_durable: usize,
    pub publish_errors: u64,
    /// Each request's durable latency cut into its hops ([`trace`]); its last two hops (the
    /// recorder transaction's start → its write → commit seen) cross-check the durable mark.
    pub trace: Trace,
    /// Seconds it took every consumer to drain before the step.
    pub drain_s: f64,
    /// Seconds it took the machine to write the earlier phases' dirty pages to disk (`sync`)
    /// before the step.
    pub flush_s: f64,
    /// The CPU the step cost (warm-up and window, until the last commit), per request sent.
    pub cpu: cpu::Spent,
    /// Where the time went, from the workers' histograms (stage, part, p50 / p99 bounds, s).
    pub path: Vec<(String, String, f64, f64)>,
    /// Mean messages per batch of each worker over the step (warm-up and window): how much
    /// of a hop's per-batch work a request shares at this rate.
    pub batches: Vec<(String, f64)>,
}

/// Sends `rate`/s for `warmup + seconds` and measures the part after the warm-up.
pub async fn step(
    run: &Pipeline,
    watch: &Watch,
    rate: u32,
    warmup: f64,
    seconds: f64,
    mix: &Mix,
) -> anyhow::Result<(Step, Vec<(openloop::Sent, Marks)>)> {
    let drain_s = run.drain(Duration::from_secs(300)).await?.as_secs_f64();
    let flush_s = flush().await;
    let path_before = decision_path(run).await;
    let batches_before = run.batch_totals().await;
    let warm = (f64::from(rate) * warmup).round() as usize;
    let measured = (f64::from(rate) * seconds).round().max(1.0) as usize;
    let groups = run.process_groups().await;
    let cpu_before = cpu::sample(&groups);
    let start = Instant::now() + Duration::from_millis(20);
    let sending = openloop::send(run, f64::from(rate), start, 0, warm + measured, mix).await;
    let (warming, window) = sending.sent.split_at(warm.min(sending.sent.len()));
    let ids: Vec<_> = window.iter().map(|sent| sent.id).collect();
    watch.wait_durable(&ids, Duration::from_secs(30)).await;
    let commands: Vec<_> = window
        .iter()
        .filter(|sent| sent.command)
        .map(|sent| sent.id)
        .collect();
    watch
        .wait_executed(&commands, Duration::from_secs(30))
        .await;
    let cpu = cpu::spent(
        &cpu_before,
        &cpu::sample(&groups),
        sending.sent.len(),
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    let path_after = decision_path(run).await;
    let batches = crate::batches::mean_batches(&run.batch_totals().await, &batches_before);
    watch.take(&warming.iter().map(|sent| sent.id).collect::<Vec<_>>());
    let marks = watch.take(&ids);
    let window_start = window.first().map_or(start, |sent| sent.intended);
    let since = |at: Option<Instant>, sent: &openloop::Sent| {
        at.map(|at| at.saturating_duration_since(sent.intended).as_secs_f64() * 1e3)
    };
    let visible: Vec<f64> = window
        .iter()
        .zip(&marks)
        .filter_map(|(sent, mark)| since(mark.visible, sent))
        .collect();
    let durable: Vec<f64> = window
        .iter()
        .zip(&marks)
        .filter_map(|(sent, mark)| since(mark.durable, sent))
        .collect();
    let last_commit = marks.iter().filter_map(|mark| mark.durable).max();
    let trace = trace::trace(run, window, &marks).await?;
    let recorded_span = last_commit.map_or(Duration::ZERO, |at| at - window_start);
    let sending_span = window
        .last()
        .map_or(Duration::ZERO, |last| last.intended - window_start)
        + Duration::from_secs_f64(1.0 / f64::from(rate));
    let path = path_after
        .iter()
        .zip(&path_before)
        .map(|((stage, part, after), (.., before))| {
            let (p50, p99) = harness::quantiles(after, before).unwrap_or((f64::NAN, f64::NAN));
            (stage.to_string(), part.to_string(), p50, p99)
        })
        .collect();
    let step = Step {
        rate,
        sent: window.len(),
        sent_per_s: window.len() as f64 / sending_span.as_secs_f64().max(f64::MIN_POSITIVE),
        recorded_per_s: durable.len() as f64 / recorded_span.as_secs_f64().max(f64::MIN_POSITIVE),
        not_visible: window.len() - visible.len(),
        not_durable: window.len() - durable.len(),
        visible: percentiles(visible, sending_span),
        durable: percentiles(durable, sending_span),
        publish_errors: sending.errors,
        trace,
        drain_s,
        flush_s,
        cpu,
        path,
        batches,
    };
    Ok((step, window.iter().copied().zip(marks).collect()))
}

/// Writes every dirty page of the machine to disk and returns how long it took. The phases
/// before a step (the full load above all) write into JetStream's and Postgres' files faster
/// than the kernel writes them back. Without this, the per-request trace of three runs showed
/// the slowest 1 % at 500/s in 4–6 slices of 100 ms, all in the recorder's hops (its
/// commits); with it, in four runs, 13–20 slices and no hop ahead of the others. That the
/// write-back is the cause is our reading of that change, not a trace of the disk. A step
/// measures its own rate, so it starts from a disk that holds what came before, as it starts
/// from drained consumers.
pub async fn flush() -> f64 {
    let started = Instant::now();
    if let Err(error) = tokio::process::Command::new("sync").status().await {
        println!("WARNING: `sync` did not run ({error}); the step may see earlier phases' writes");
    }
    started.elapsed().as_secs_f64()
}

/// Runs every step of the sweep, printing each as it ends.
pub async fn run(
    run: &Pipeline,
    watch: &Watch,
    rates: &[u32],
    warmup: f64,
    seconds: f64,
) -> anyhow::Result<Vec<Step>> {
    println!(
        "{:>6} {:>9} {:>10} | {:^34} | {:^34} | {:>7}",
        "rate/s",
        "sent/s",
        "recorded/s",
        "visible p50 / p99 / max",
        "durable p50 / p99 / max",
        "missing"
    );
    let mut steps = Vec::new();
    for &rate in rates {
        let (step, _) = self::step(run, watch, rate, warmup, seconds, &Mix::default()).await?;
        println!(
            "{:>6} {:>9.0} {:>10.0} | {} | {} | {:>7}{}",
            step.rate,
            step.sent_per_s,
            step.recorded_per_s,
            step.visible.cells(),
            step.durable.cells(),
            step.not_durable.max(step.not_visible),
            if step.publish_errors > 0 {
                format!("  ({} publish errors)", step.publish_errors)
            } else {
                String::new()
            }
        );
        steps.push(step);
    }
    match highest_bounded(&steps) {
        Some(rate) => println!(
            "highest rate whose durable p99 ≤ {DURABLE_P99_BOUND_MS} ms (every request recorded): {rate}/s"
        ),
        None => println!(
            "no rate kept durable p99 ≤ {DURABLE_P99_BOUND_MS} ms with every request recorded"
        ),
    }
    for step in &steps {
        println!(
            "  at {}/s, before the step: consumers drained in {:.1} s, earlier writes flushed to disk in {:.1} s",
            step.rate, step.drain_s, step.flush_s
        );
        println!("  at {}/s, CPU: {}", step.rate, step.cpu.line());
        println!(
            "  at {}/s, messages per batch (warm-up and window): {}",
            step.rate,
            step.batches
                .iter()
                .map(|(stage, mean)| format!("{stage} {mean:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        step.trace.print(step.rate);
        println!(
            "  where it goes at {}/s (p50 / p99 bucket bounds, from the workers' histograms):",
            step.rate
        );
        for (stage, part, p50, p99) in &step.path {
            println!(
                "    {stage:<10} {part:<34} ≤ {:>7.2} ms / ≤ {:>7.2} ms",
                p50 * 1e3,
                p99 * 1e3
            );
        }
    }
    Ok(steps)
}

/// The highest rate whose durable p99 stayed within the bound with nothing missing.
pub fn highest_bounded(steps: &[Step]) -> Option<u32> {
    steps
        .iter()
        .filter(|step| {
            step.not_durable == 0
                && step.durable.count > 0
                && step.durable.p99 <= DURABLE_P99_BOUND_MS
        })
        .map(|step| step.rate)
        .max()
}

/// Snapshots of the histograms along the path to a decision: for intake (which decides), the
/// wait in JetStream, the handling, and the publishing of its outputs (the decision's status
/// event included).
pub async fn decision_path(run: &Pipeline) -> Vec<(&'static str, &'static str, Vec<(f64, f64)>)> {
    let mut out = Vec::new();
    for stage in ["intake"] {
        for (part, metric) in [
            ("waiting in JetStream", metrics::QUEUE_WAIT),
            ("handling (per message)", metrics::HANDLE_DURATION),
            ("publishing + acking (per batch)", metrics::SETTLE_DURATION),
        ] {
            let filter = format!("stage=\"{stage}\"");
            out.push((stage, part, run.buckets(stage, metric, &filter).await));
        }
    }
    out
}

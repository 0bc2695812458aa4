//! The pipeline benchmark: `cargo build --release --workspace --bins && cargo bench --bench
//! pipeline [-- --quick] [-- --requests N]`.
//!
//! 1. The raw floor on the same NATS server: JetStream publish with ack, then consume + ack,
//!    of 512-byte messages.
//! 2. The pipeline: real worker processes (intake, validator, approvals, authority, gateway,
//!    recorder) under a private subject prefix and a fresh database; N auto-decided requests
//!    (instruction approvals, validated) and a few executing ones (a restart on the real Docker
//!    Engine). Prints end-to-end throughput of decisions durably recorded in Postgres, submit
//!    → decision and submit → executed latency (p50/p99/max), the ratio to the raw floor, each
//!    stage's handling latency (from the workers' histograms), and each worker's RSS.
//! 3. The same requests at a fixed rate (`--rate`, 500/s by default, for `--rate-seconds`):
//!    submit → decision latency at that load.
//! 4. Where the CPU went during step 2, per process (see `cpu`), and the gateway's overhead
//!    beside its Docker Engine call, with the same restart made straight through the API.
//!
//! `-- --faults` runs the fault-injection suite instead (see `faults`): it stops the machine's
//! PostgreSQL for 20 s, so it is a command to run on purpose, not part of CI.
//!
//! Needs what the tests need (scripts/test starts it): NATS on 127.0.0.1:4222, Postgres on
//! 127.0.0.1:5432, and the private Docker Engine with the test image.

mod cpu;
mod faults;
mod harness;
mod load;

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, stream};
use futures::StreamExt;
use uuid::Uuid;

use harness::Pipeline;

const NATS: &str = "nats://127.0.0.1:4222";
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
const WORKERS: [&str; 6] = [
    "intake",
    "validator",
    "approvals",
    "authority",
    "gateway",
    "recorder",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    if args.iter().any(|arg| arg == "--faults") {
        return faults::run(quick).await;
    }
    let requests: usize = value_of(&args, "--requests").unwrap_or(if quick { 300 } else { 5000 });
    let executions: usize = value_of(&args, "--executions").unwrap_or(if quick { 3 } else { 20 });
    let rate: u32 = value_of(&args, "--rate").unwrap_or(500);
    let rate_seconds: u32 = value_of(&args, "--rate-seconds").unwrap_or(if quick { 2 } else { 10 });
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "wingman pipeline benchmark ({} mode, {cores} cores): {requests} auto-decided requests, \
         {} at {rate}/s, {executions} executions",
        if quick { "quick" } else { "full" },
        rate * rate_seconds
    );

    let floor = raw_floor(if quick { 5_000 } else { 50_000 }).await?;
    println!(
        "raw floor (JetStream, 512 B): publish+ack {:.0} msg/s, consume+ack {:.0} msg/s",
        floor.0, floor.1
    );

    let run = Pipeline::start(NATS).await?;
    let idle_rss = run.rss();
    let cpu_before = cpu::sample(&run.pids());
    let decided = run.decisions(requests).await?;
    let cpu_after = cpu::sample(&run.pids());
    let (stored, delivered) = run.message_counts().await?;
    let path_before = decision_path(&run).await;
    let paced = run.paced(rate, rate_seconds).await?;
    let path_after = decision_path(&run).await;
    let executed = run.executions(executions).await?;
    let raw = load::raw_restarts(executions).await?;
    let stages = run.stage_latencies().await;
    let batches = run.batch_sizes().await;
    let overhead = run
        .histogram("gateway", "gateway_overhead_seconds", "")
        .await;
    let engine = run
        .histogram("gateway", "execution_duration_seconds", "container_restart")
        .await;
    let peak_rss = run.rss_peak();
    run.stop().await;

    println!();
    println!(
        "end-to-end: {:.0} decisions/s durably recorded ({requests} in {:.2} s); {:.1} % of the raw publish floor",
        decided.throughput,
        decided.elapsed.as_secs_f64(),
        decided.throughput * 100.0 / floor.0
    );
    let (stored_each, delivered_each) = (
        stored as f64 / requests as f64,
        delivered as f64 / requests as f64,
    );
    println!(
        "JetStream work per request: {stored_each:.1} messages stored, {delivered_each:.1} deliveries to consumers; \
         at the raw floor's rates that alone allows {:.0} requests/s",
        1.0 / (stored_each / floor.0 + delivered_each / floor.1)
    );
    println!(
        "submit → decision, full load:  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        decided.p50, decided.p99, decided.max
    );
    println!(
        "submit → decision at {:>4.0}/s:   p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        paced.throughput, paced.p50, paced.p99, paced.max
    );
    println!("  where it goes at {rate}/s (p50 / p99 bounds, from the workers' histograms):");
    for ((stage, part, after), (.., before)) in path_after.iter().zip(&path_before) {
        let (p50, p99) = harness::quantiles(after, before).unwrap_or((f64::NAN, f64::NAN));
        println!(
            "    {stage:<10} {part:<34} ≤ {:>7.2} ms / ≤ {:>7.2} ms",
            p50 * 1e3,
            p99 * 1e3
        );
    }
    println!(
        "submit → executed:             p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  ({executions} restarts on the real engine)",
        executed.p50, executed.p99, executed.max
    );
    println!(
        "raw Engine API restart:        p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  (bollard, nothing around it)",
        raw.p50, raw.p99, raw.max
    );
    let bound = |quantiles: Option<(f64, f64)>| {
        quantiles.map_or("no samples".to_string(), |(p50, p99)| {
            format!("p50 ≤ {:.2} ms  p99 ≤ {:.2} ms", p50 * 1e3, p99 * 1e3)
        })
    };
    println!(
        "gateway, per executed job: Docker call {}; everything else (overhead) {}",
        bound(engine),
        bound(overhead)
    );
    println!("stage handling latency (per message, from each worker's histogram):");
    for (stage, (p50, p99)) in &stages {
        println!("  {stage:<10} p50 ≤ {p50:>8.4} s  p99 ≤ {p99:>8.4} s");
    }
    println!(
        "mean messages per batch: {}",
        batches
            .iter()
            .map(|(stage, mean)| format!("{stage} {mean:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    cpu::report(&cpu_before, &cpu_after, requests, cores);
    println!("worker RSS (MiB):       idle   peak");
    for name in WORKERS {
        println!(
            "  {name:<12}       {:>6.1} {:>6.1}",
            idle_rss.get(name).copied().unwrap_or(0.0),
            peak_rss.get(name).copied().unwrap_or(0.0)
        );
    }
    Ok(())
}

/// Snapshots of the histograms along the path to a decision: for intake and validator, the
/// wait in JetStream, the handling, and the publishing of their outputs (the validator's
/// includes the decision's status event).
async fn decision_path(run: &Pipeline) -> Vec<(&'static str, &'static str, Vec<(f64, f64)>)> {
    let mut out = Vec::new();
    for stage in ["intake", "validator"] {
        for (part, metric) in [
            ("waiting in JetStream", "pipeline_queue_wait_seconds"),
            ("handling (per message)", "pipeline_handle_duration_seconds"),
            (
                "publishing + acking (per batch)",
                "pipeline_settle_duration_seconds",
            ),
        ] {
            let filter = format!("stage=\"{stage}\"");
            out.push((stage, part, run.buckets(stage, metric, &filter).await));
        }
    }
    out
}

fn value_of<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<T> {
    args.iter()
        .position(|arg| arg == flag)
        .and_then(|index| args.get(index + 1))
        .and_then(|value| value.parse().ok())
}

/// (publish+ack msg/s, consume+ack msg/s) for `count` 512-byte messages.
async fn raw_floor(count: usize) -> anyhow::Result<(f64, f64)> {
    let client = async_nats::connect(NATS).await?;
    let js = jetstream::new(client);
    let name = format!("BENCH_FLOOR_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let subject = format!("bench.{}", name.to_lowercase());
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let payload = bytes::Bytes::from(vec![b'x'; 512]);
    let started = Instant::now();
    let mut acks = futures::stream::FuturesUnordered::new();
    for index in 0..count {
        let ack = js
            .send_publish(
                subject.clone(),
                PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(index.to_string()),
            )
            .await?;
        acks.push(ack.into_future());
        if acks.len() >= 256 {
            acks.next().await.transpose()?;
        }
    }
    while acks.next().await.transpose()?.is_some() {}
    let publish = count as f64 / started.elapsed().as_secs_f64();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("floor".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(500)
        .messages()
        .await?;
    for _ in 0..count {
        let message = messages
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("floor stream ended"))?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let consume = count as f64 / started.elapsed().as_secs_f64();
    js.delete_stream(&name).await?;
    Ok((publish, consume))
}

pub struct Latencies {
    pub throughput: f64,
    pub elapsed: Duration,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn percentiles(mut millis: Vec<f64>, elapsed: Duration) -> Latencies {
    millis.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        millis
            .get(((millis.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Latencies {
        throughput: millis.len() as f64 / elapsed.as_secs_f64(),
        elapsed,
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
    }
}

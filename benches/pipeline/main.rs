//! The pipeline benchmark: `cargo build --release --workspace --bins && cargo bench --bench
//! pipeline [-- --quick] [-- flags]` (every flag in `args`; the README explains each figure).
//!
//! 0. The NATS server (see `nats`): one of the bench's own, run with the Go settings of the
//!    compose file's `nats` service, unless `WINGMAN_BENCH_NATS` names one.
//! 1. The raw floor on the same NATS server: JetStream publish with ack, then consume + ack,
//!    of 512-byte messages; and the host's floor (see `host`): how late an idle core wakes.
//! 2. The pipeline: real worker processes (intake, approvals, authority, gateway,
//!    recorder) under a private subject prefix and a fresh database (optionally preloaded
//!    with `--preload N` requests and their audit rows, see `preload`). The machine's idle
//!    CPU is read first.
//! 3. Full load (`--requests`, closed loop): decisions per second durably recorded, the CPU
//!    per request of each process and of everything else on the machine, messages stored and
//!    delivered per request, redeliveries per consumer, RSS at load.
//! 4. The open-loop rate sweep (`--sweep`, see `sweep`): visible and durable latency from the
//!    intended send time, and the highest rate whose durable p99 ≤ 10 ms.
//! 5. The command path under load (`--command-share`, see `command`), then restarts one at a
//!    time beside the same restart through the Engine API.
//! 6. Each stage's handling latency, batch sizes, worker and nats-server memory.
//!
//! `--faults` runs the fault-injection suite instead (see `faults`; it stops the machine's
//! PostgreSQL for 20 s, so it is a command to run on purpose), `--soak 30m` the soak (see
//! `soak`). `--json FILE` writes every figure.
//!
//! Needs what the tests need (scripts/test starts it): Debian's `nats-server` binary (or a
//! server at `WINGMAN_BENCH_NATS`), Postgres on 127.0.0.1:5432, and the private Docker Engine
//! with the test image.

mod args;
mod batches;
mod bodies;
mod command;
mod consumers;
mod containers;
mod cpu;
mod faults;
mod floor;
mod growth;
mod harness;
mod host;
mod load;
mod memory;
mod nats;
mod openloop;
mod preload;
mod procs;
mod report;
mod soak;
mod sweep;
mod trace;
mod watch;

use std::time::Duration;

use serde_json::json;

use harness::Pipeline;
use report::{Report, heading};

/// The Postgres server (no database name): `WINGMAN_TEST_POSTGRES`, like the tests; a
/// password from the URL, `PGPASSWORD` or `~/.pgpass`.
fn postgres() -> String {
    std::env::var("WINGMAN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}
const WORKERS: [&str; 5] = ["intake", "approvals", "authority", "gateway", "recorder"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = args::parse();
    if options.faults {
        return faults::run(&options).await;
    }
    if let Some(duration) = options.soak {
        return soak::run(&options, duration).await;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "wingman pipeline benchmark ({} mode, {cores} cores): {} requests at full load, sweep {:?}/s \
         ({} s each after {} s of warm-up), {} % commands at {}/s, {} preloaded",
        if options.quick { "quick" } else { "full" },
        options.requests,
        options.sweep,
        options.rate_seconds,
        options.warmup_seconds,
        options.command_share,
        options.command_rate,
        options.preload
    );
    let mut report = Report::default();
    report.put(
        "options",
        json!({
            "quick": options.quick, "cores": cores, "requests": options.requests,
            "sweep": options.sweep, "rate_seconds": options.rate_seconds,
            "warmup_seconds": options.warmup_seconds, "preload": options.preload,
            "command_share": options.command_share, "command_rate": options.command_rate,
        }),
    );

    let nats = nats::Server::start().await?;
    println!("NATS: {}", nats.described);
    report.put(
        "nats",
        json!({ "url": nats.url, "described": nats.described }),
    );
    let floor = floor::measure(&nats.url, if options.quick { 5_000 } else { 50_000 }).await?;
    heading("raw floor");
    println!(
        "JetStream, 512 B, same server: publish+ack {:.0} msg/s, consume+ack {:.0} msg/s",
        floor.publish_per_s, floor.consume_per_s
    );
    report.put("floor", &floor);
    let seconds = if options.quick { 2.0 } else { 10.0 };
    let host = tokio::task::spawn_blocking(move || host::measure(seconds, cores)).await?;
    host.print();
    report.put("host_floor", &host);

    let run = Pipeline::start(&nats.url).await?;
    let outcome = figures(&run, &options, cores, &floor, &mut report).await;
    run.stop().await;
    if let Some(path) = &options.json {
        report.write(path)?;
    }
    outcome
}

/// Every phase on one pipeline.
async fn figures(
    run: &Pipeline,
    options: &args::Options,
    cores: usize,
    floor: &floor::Floor,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut memory = memory::Memory::idle(run);
    let idle = idle_machine(run, cores).await;
    report.put("idle_machine", json!({ "everything_else_cores": idle }));
    // With a preload, the same full load first runs on the empty database, on the same
    // pipeline just before the preload: these shared hosts drift by a quarter from one minute
    // to the next, so the comparison is made within one run, with the CPU of the processes
    // whose work the tables cannot change beside it as the host's control.
    let empty = if options.preload > 0 {
        let watch = watch::Watch::start(run).await?;
        heading("full load on the empty database, for comparison (closed loop, 256 in flight)");
        let empty = full_load(run, &watch, options, cores, floor, idle).await;
        watch.finish(run).await?;
        let empty = empty?;
        report.put("full_load_empty", &empty.report);
        heading("preload");
        report.put("preload", preload::run(run, options.preload).await?);
        Some(empty)
    } else {
        None
    };
    let watch = watch::Watch::start(run).await?;

    heading("full load (closed loop, 256 in flight)");
    let full = full_load(run, &watch, options, cores, floor, idle).await?;
    memory.at_load(run);
    report.put("full_load", &full.report);
    if let Some(empty) = &empty {
        let comparison = TablesGrown::of(empty, &full);
        comparison.print();
        report.put("tables_grown", &comparison);
    }

    heading("open-loop rate sweep (latency from the intended send time)");
    let steps = sweep::run(
        run,
        &watch,
        &options.sweep,
        options.warmup_seconds,
        options.rate_seconds,
    )
    .await?;
    report.put(
        "sweep",
        json!({ "steps": steps, "highest_rate_durable_p99_within_10ms": sweep::highest_bounded(&steps) }),
    );

    if options.command_share > 0.0 {
        heading("the command path under load");
        let path = command::run(
            run,
            &watch,
            options.command_rate,
            options.command_share,
            options.warmup_seconds,
            options.rate_seconds,
        )
        .await?;
        path.print(options.command_rate);
        report.put("command_path", &path);
    }
    watch.stop();

    heading("restarts one at a time (idle command path)");
    let executed = run.executions(options.executions).await?;
    let raw = load::raw_calls("restart", options.executions).await?;
    println!("{:<42} {:>9} {:>9} {:>9}", "", "p50", "p99", "max");
    println!(
        "{:<42} {}",
        "submit → executed (restart, real engine)",
        executed.cells()
    );
    println!("{:<42} {}", "raw Engine API restart (bollard)", raw.cells());
    report.put(
        "restarts",
        json!({ "submit_to_executed": executed, "raw_engine": raw }),
    );

    heading("stages and memory");
    let stages = run.stage_latencies().await;
    println!("stage handling latency (per message, bucket bounds from each worker's histogram):");
    for (stage, (p50, p99)) in &stages {
        println!("  {stage:<10} p50 ≤ {p50:>8.4} s  p99 ≤ {p99:>8.4} s");
    }
    let batches = run.batch_sizes().await;
    println!(
        "mean messages per batch: {}",
        batches
            .iter()
            .map(|(stage, mean)| format!("{stage} {mean:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    memory.end(run);
    memory.print();
    if options.preload > 0 {
        let chain = wingman::store::chain::verify(&run.pool).await?;
        println!(
            "audit chain over {} rows, preloaded ones included: {}",
            chain.rows,
            chain
                .broken
                .as_ref()
                .map_or("verifies".to_string(), |(seq, problem)| format!(
                    "BROKEN at {seq}: {problem}"
                ))
        );
        report.put("chain", &chain);
    }
    report.put(
        "stages",
        json!({ "handling_p50_p99_s": stages, "mean_batch": batches }),
    );
    report.put("memory", &memory);
    Ok(())
}

/// One full-load phase's figures: printed as it ends, kept for the report and the comparison.
struct FullLoad {
    decisions_per_s: f64,
    spent: cpu::Spent,
    report: serde_json::Value,
}

/// The full-load phase: `--requests` submitted as fast as JetStream takes them, each until
/// its decision is committed; throughput, CPU per request by process, JetStream's work and
/// each consumer's redeliveries.
async fn full_load(
    run: &Pipeline,
    watch: &watch::Watch,
    options: &args::Options,
    cores: usize,
    floor: &floor::Floor,
    idle: f64,
) -> anyhow::Result<FullLoad> {
    let consumers_before = run.consumers().await?;
    let groups = run.process_groups().await;
    let cpu_before = cpu::sample(&groups);
    let (stored_before, delivered_before) = run.message_counts().await?;
    let redelivered = tokio_util::sync::CancellationToken::new();
    let (full, max_redelivered) = tokio::join!(
        async {
            let full = run.decisions(watch, options.requests).await;
            redelivered.cancel();
            full
        },
        max_redelivered(run, &redelivered)
    );
    let full = full?;
    let cpu_after = cpu::sample(&run.process_groups().await);
    let (stored, delivered) = run.message_counts().await?;
    let consumers_after = run.consumers().await?;
    let spent = cpu::spent(&cpu_before, &cpu_after, full.requests, cores);
    println!(
        "{:.0} decisions/s durably recorded ({} in {:.2} s); {:.1} % of the raw publish floor ({:.0}/s)",
        full.decisions_per_s,
        full.requests,
        full.elapsed_s,
        full.decisions_per_s * 100.0 / floor.publish_per_s,
        floor.publish_per_s
    );
    let stored_each = (stored - stored_before) as f64 / full.requests as f64;
    let delivered_each = (delivered - delivered_before) as f64 / full.requests as f64;
    println!(
        "JetStream work per request: {stored_each:.1} messages stored, {delivered_each:.1} deliveries; \
         at the floor's rates that alone allows {:.0} requests/s",
        1.0 / (stored_each / floor.publish_per_s + delivered_each / floor.consume_per_s)
    );
    println!(
        "backlog at full load (not latency): visible p50/p99/max {} | durable {}",
        full.visible.cells(),
        full.durable.cells()
    );
    spent.print("the full-load phase");
    cpu::warn_if_busy("before the run", idle);
    cpu::warn_if_busy("during the full-load phase", spent.everything_else_cores);
    let consumers = consumer_table(&consumers_before, &consumers_after, &max_redelivered);
    let report = json!({
        "figures": full, "cpu": spent, "stored_per_request": stored_each,
        "delivered_per_request": delivered_each, "consumers": consumers,
        "machine_not_idle": idle > cpu::NOT_IDLE_CORES || spent.everything_else_cores > cpu::NOT_IDLE_CORES,
    });
    Ok(FullLoad {
        decisions_per_s: full.decisions_per_s,
        spent,
        report,
    })
}

/// The processes whose work per request the tables' size cannot change (no query of theirs
/// reads or writes Postgres): what they spend moves only with the host's speed.
const TABLE_BLIND: &[&str] = &[cpu::NATS_SERVER, "wingman-intake", cpu::PUBLISHER];
/// The processes that write and index the rows.
const TABLE_BOUND: &[&str] = &[cpu::POSTGRES, "wingman-recorder"];

/// The full load on the preloaded database against the same full load on the empty one just
/// before the preload (same pipeline, same run).
#[derive(serde::Serialize)]
struct TablesGrown {
    decisions_per_s: (f64, f64),
    decisions_change_percent: f64,
    table_blind_us: (f64, f64),
    table_blind_change_percent: f64,
    table_bound_us: (f64, f64),
    table_bound_change_percent: f64,
    /// The table-bound change divided by the table-blind one: the rows' own cost, on the
    /// estimate that the host's drift slows every process alike.
    table_bound_net_of_drift_percent: f64,
}

impl TablesGrown {
    fn of(empty: &FullLoad, preloaded: &FullLoad) -> Self {
        let sum = |load: &FullLoad, names: &[&str]| -> f64 {
            load.spent
                .per_request_us
                .iter()
                .filter(|(group, _)| names.contains(&group.as_str()))
                .map(|(_, micros)| micros)
                .sum()
        };
        let change =
            |before: f64, after: f64| (after / before.max(f64::MIN_POSITIVE) - 1.0) * 100.0;
        let blind = (sum(empty, TABLE_BLIND), sum(preloaded, TABLE_BLIND));
        let bound = (sum(empty, TABLE_BOUND), sum(preloaded, TABLE_BOUND));
        Self {
            decisions_per_s: (empty.decisions_per_s, preloaded.decisions_per_s),
            decisions_change_percent: change(empty.decisions_per_s, preloaded.decisions_per_s),
            table_blind_us: blind,
            table_blind_change_percent: change(blind.0, blind.1),
            table_bound_us: bound,
            table_bound_change_percent: change(bound.0, bound.1),
            table_bound_net_of_drift_percent: change(bound.0 * blind.1, bound.1 * blind.0),
        }
    }

    fn print(&self) {
        println!(
            "against the empty database just before the preload: {:.0} → {:.0} decisions/s ({:+.1} %)",
            self.decisions_per_s.0, self.decisions_per_s.1, self.decisions_change_percent
        );
        println!(
            "  CPU µs a request of what the tables cannot change ({}): {:.0} → {:.0} ({:+.1} %, the host's drift)",
            TABLE_BLIND.join(", "),
            self.table_blind_us.0,
            self.table_blind_us.1,
            self.table_blind_change_percent
        );
        println!(
            "  CPU µs a request of what writes and indexes the rows ({}): {:.0} → {:.0} ({:+.1} %)",
            TABLE_BOUND.join(", "),
            self.table_bound_us.0,
            self.table_bound_us.1,
            self.table_bound_change_percent
        );
        println!(
            "  the rows' own cost, net of the host's drift (the second change over the first): {:+.1} %",
            self.table_bound_net_of_drift_percent
        );
    }
}

/// The CPU of everything else on the machine over 2 s with the pipeline idle, in cores.
async fn idle_machine(run: &Pipeline, cores: usize) -> f64 {
    let groups = run.process_groups().await;
    let before = cpu::sample(&groups);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = cpu::sample(&groups);
    cpu::spent(&before, &after, 1, cores).everything_else_cores
}

/// The highest `num_redelivered` of each consumer, sampled every second until `done`.
async fn max_redelivered(
    run: &Pipeline,
    done: &tokio_util::sync::CancellationToken,
) -> std::collections::BTreeMap<String, usize> {
    let mut highest = std::collections::BTreeMap::new();
    while !done.is_cancelled() {
        if let Ok(consumers) = run.consumers().await {
            for (name, info) in consumers {
                let seen = highest.entry(name).or_insert(0);
                *seen = (*seen).max(info.num_redelivered);
            }
        }
        tokio::select! {
            _ = done.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    highest
}

/// Per consumer: deliveries during the phase, and redeliveries (the server's
/// `num_redelivered`: messages awaiting an ack that were delivered more than once, the most
/// seen in the per-second samples and at the end).
fn consumer_table(
    before: &[(String, async_nats::jetstream::consumer::Info)],
    after: &[(String, async_nats::jetstream::consumer::Info)],
    highest: &std::collections::BTreeMap<String, usize>,
) -> serde_json::Value {
    println!("consumer            deliveries  redelivered (most seen / at end)  pending at end");
    let mut rows = Vec::new();
    for (name, info) in after {
        let earlier = before
            .iter()
            .find(|(other, _)| other == name)
            .map_or(0, |(_, info)| info.delivered.consumer_sequence);
        let deliveries = info.delivered.consumer_sequence - earlier;
        let most = highest
            .get(name)
            .copied()
            .unwrap_or(0)
            .max(info.num_redelivered);
        println!(
            "  {name:<18} {deliveries:>10}  {most:>14} / {:<14}  {}",
            info.num_redelivered,
            info.num_pending + info.num_ack_pending as u64
        );
        rows.push(json!({
            "consumer": name, "deliveries": deliveries, "redelivered_most_seen": most,
            "redelivered_at_end": info.num_redelivered,
        }));
    }
    serde_json::Value::Array(rows)
}

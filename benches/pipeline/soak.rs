//! The soak: `--soak 30m --rate 1000` sends an open-loop load at a fixed rate for that long,
//! samples every worker's RSS (and nats-server's) every `--sample-every` (a minute), prints
//! each sample with that interval's durable latency, then the RSS growth of each worker after
//! the first 5 minutes (a sixth of the soak when it is shorter than 30 minutes), the errors,
//! and whether every request is final in Postgres at the end.
//!
//! The growth is the last sample's RSS against the one at 5 minutes. A worker's RSS is mostly
//! its binary's pages (file-backed, constant) plus a few MiB of heap that rise and fall with
//! what is in flight at the instant of the sample, so two single samples differ by that much
//! without any leak: the soak also prints the median of the last samples against the median
//! of the first ones after settling, and the anonymous part (`RssAnon`: heap and stacks) of
//! both, where a leak would show.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::args::Options;
use crate::growth::{Growth, Memory};
use crate::harness::Pipeline;
use crate::openloop::{self, Mix, Sent};
use crate::report::{Latencies, Report, percentiles};
use crate::watch::Watch;
use crate::{memory, nats};

#[derive(Debug, Clone, Serialize)]
struct Sample {
    #[serde(flatten)]
    memory: Memory,
    sent: usize,
    publish_errors: u64,
    durable: Latencies,
    not_durable: usize,
    nats_server_mib: Option<f64>,
}

pub async fn run(options: &Options, duration: Duration) -> anyhow::Result<()> {
    let nats = nats::Server::start().await?;
    println!("NATS: {}", nats.described);
    let mut run = Pipeline::start(&nats.url).await?;
    let outcome = soak(&mut run, options, duration).await;
    run.stop().await;
    outcome
}

async fn soak(run: &mut Pipeline, options: &Options, duration: Duration) -> anyhow::Result<()> {
    let watch = Watch::start(run).await?;
    let rate = f64::from(options.rate);
    let settled_after = duration.div_f64(6.0).min(Duration::from_secs(300));
    println!(
        "soak: {}/s for {:.0} s, RSS sampled every {:.0} s, growth measured after {:.0} s",
        options.rate,
        duration.as_secs_f64(),
        options.sample_every.as_secs_f64(),
        settled_after.as_secs_f64()
    );
    println!(
        "{:>7} {:>8} {:>6} {:>6} | {:^34} | RSS MiB: {}  nats-server",
        "at s",
        "sent",
        "errors",
        "late",
        "durable p50 / p99 / max",
        crate::WORKERS.join(" ")
    );
    let per_sample = (rate * options.sample_every.as_secs_f64()).round().max(1.0) as usize;
    let total = (rate * duration.as_secs_f64()).round() as usize;
    let start = Instant::now() + Duration::from_millis(20);
    let (mut samples, mut exits, mut previous) = (Vec::new(), Vec::new(), Vec::<Sent>::new());
    let mut sent_total = 0;
    while sent_total < total {
        let count = per_sample.min(total - sent_total);
        let sending =
            openloop::send(run, rate, start, sent_total as u64, count, &Mix::default()).await;
        sent_total += count;
        // The interval before this one has had a whole interval to settle.
        let sample = measure(run, &watch, &previous, start, sending.errors).await;
        previous = sending.sent;
        exits.extend(run.exited()?);
        samples.push(sample);
    }
    let ids: Vec<_> = previous.iter().map(|sent| sent.id).collect();
    watch.wait_durable(&ids, Duration::from_secs(60)).await;
    samples.push(measure(run, &watch, &previous, start, 0).await);
    watch.stop();
    let (rows, not_final): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'RECEIVED') FROM approval_requests",
    )
    .fetch_one(&run.pool)
    .await?;
    let settled_at = settled_after.as_secs_f64();
    let memory: Vec<Memory> = samples.iter().map(|sample| sample.memory.clone()).collect();
    let growth = Growth::of(&memory, settled_at);
    let publish_errors: u64 = samples.iter().map(|sample| sample.publish_errors).sum();
    let lost = sent_total as i64 - rows;
    growth.print();
    println!(
        "errors: {publish_errors} publishes refused or not acked, {} worker exits {:?}, {lost} requests missing in Postgres",
        exits.len(),
        exits
    );
    println!(
        "at the end: {rows} requests in Postgres, {not_final} not final — {}",
        if not_final == 0 && lost == 0 {
            "every request is final"
        } else {
            "NOT every request is final"
        }
    );
    if let Some(path) = &options.json {
        let mut report = Report::default();
        report.put(
            "soak",
            json!({
                "rate": options.rate, "seconds": duration.as_secs_f64(), "sent": sent_total,
                "samples": samples, "rss_growth_percent_after_settling": growth.single,
                "rss_growth_percent_of_medians": growth.medians,
                "anon_mib_medians": growth.anon,
                "settled_after_s": settled_after.as_secs_f64(), "publish_errors": publish_errors,
                "worker_exits": exits, "rows": rows, "not_final": not_final, "lost": lost,
            }),
        );
        report.write(path)?;
    }
    Ok(())
}

/// One line of the soak: the durable latency of `interval` (then forgotten), RSS now.
async fn measure(
    run: &Pipeline,
    watch: &Watch,
    interval: &[Sent],
    start: Instant,
    publish_errors: u64,
) -> Sample {
    let ids: Vec<_> = interval.iter().map(|sent| sent.id).collect();
    let marks = watch.take(&ids);
    let durable: Vec<f64> = interval
        .iter()
        .zip(&marks)
        .filter_map(|(sent, mark)| {
            mark.durable
                .map(|at| at.saturating_duration_since(sent.intended).as_secs_f64() * 1e3)
        })
        .collect();
    let rss_mib = memory::owned(run.rss());
    let anon_mib = memory::owned(run.rss_anon());
    let nats_server_mib = memory::nats_rss(run);
    let sample = Sample {
        memory: Memory {
            at_s: start.elapsed().as_secs_f64(),
            rss_mib,
            anon_mib,
        },
        sent: interval.len(),
        publish_errors,
        not_durable: interval.len() - durable.len(),
        durable: percentiles(durable, Duration::from_secs(1)),
        nats_server_mib,
    };
    println!(
        "{:>7.0} {:>8} {:>6} {:>6} | {} | {} {}",
        sample.memory.at_s,
        sample.sent,
        sample.publish_errors,
        sample.not_durable,
        sample.durable.cells(),
        crate::WORKERS
            .iter()
            .map(|name| format!(
                "{:.1}",
                sample.memory.rss_mib.get(*name).copied().unwrap_or(0.0)
            ))
            .collect::<Vec<_>>()
            .join(" "),
        sample
            .nats_server_mib
            .map_or("?".into(), |mib| format!("{mib:.1}"))
    );
    sample
}

//! The command path under load: an open-loop mix where a share of the requests carry
//! `docker inspect <container>` (read-only, on a container the bench starts on the private
//! Engine with no network), auto-approved in dev, minted, and run by the gateway.
//!
//! The gateway's overhead is read three ways, each finer than its histogram's bounds:
//! - per job, from its own audit rows: `execution_started.at` → `execution_finished.at`
//!   (microseconds; publishing EXECUTING, the KV claim, the Engine call, the claim update),
//!   beside the same inspect made straight through the Engine API by the bench;
//! - the exact mean of `wingman_gateway_overhead_seconds` (its `_sum` / `_count` over the phase);
//! - that histogram's p50 / p99 bucket bounds, as before.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;
use wingman::metrics;

use crate::containers::{remove_container, start_container};
use crate::harness::{self, Pipeline};
use crate::load::raw_calls;
use crate::openloop::Mix;
use crate::report::{Latencies, percentiles};
use crate::sweep::{self, Step};
use crate::watch::Watch;

#[derive(Debug, Clone, Serialize)]
pub struct CommandPath {
    pub share_percent: f64,
    /// The decisions of the whole mix (with and without a command).
    pub decisions: Step,
    pub commands: usize,
    pub executed: usize,
    pub executed_per_s: f64,
    /// Final statuses of the requests with a command, from Postgres.
    pub outcomes: BTreeMap<String, i64>,
    /// Intended send → the SUCCEEDED/FAILED status event.
    pub submit_to_executed: Latencies,
    /// Per job, `execution_started.at` → `execution_finished.at` from the audit rows.
    pub gateway_span: Latencies,
    /// The same inspect, straight through the Engine API.
    pub raw_engine: Latencies,
    /// Exact mean of `wingman_gateway_overhead_seconds` over the phase, ms.
    pub overhead_mean_ms: f64,
    /// `wingman_gateway_overhead_seconds` bucket bounds (p50, p99), ms.
    pub overhead_bounds_ms: Option<(f64, f64)>,
}

pub async fn run(
    run: &Pipeline,
    watch: &Watch,
    rate: u32,
    share: f64,
    warmup: f64,
    seconds: f64,
) -> anyhow::Result<CommandPath> {
    let container = start_container("wi")?;
    let mix = Mix {
        command_share: share,
        container: Some(container.clone()),
    };
    let overhead_before = overhead_totals(run).await;
    let buckets_before = run.buckets("gateway", metrics::GATEWAY_OVERHEAD, "").await;
    let measured = sweep::step(run, watch, rate, warmup, seconds, &mix).await;
    remove_container(&container);
    let (decisions, window) = measured?;
    let overhead_after = overhead_totals(run).await;
    let buckets_after = run.buckets("gateway", metrics::GATEWAY_OVERHEAD, "").await;
    let commands: Vec<_> = window.iter().filter(|(sent, _)| sent.command).collect();
    let ids: Vec<Uuid> = commands.iter().map(|(sent, _)| sent.id).collect();
    let executed_ms: Vec<f64> = commands
        .iter()
        .filter_map(|(sent, marks)| {
            marks
                .executed
                .map(|at| at.saturating_duration_since(sent.intended).as_secs_f64() * 1e3)
        })
        .collect();
    let window_start = window.first().map(|(sent, _)| sent.intended);
    let last_executed = commands
        .iter()
        .filter_map(|(_, marks)| marks.executed)
        .max();
    let executing_span = match (window_start, last_executed) {
        (Some(start), Some(end)) => end - start,
        _ => Duration::ZERO,
    };
    let outcomes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT COALESCE(execution_status, status), count(*) FROM approval_requests WHERE request_id = ANY($1) GROUP BY 1",
    )
    .bind(&ids)
    .fetch_all(&run.pool)
    .await?;
    let spans: Vec<f64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM (f.at - s.at)) * 1000)::float8
         FROM audit_events s JOIN audit_events f
           ON f.request_id = s.request_id AND f.kind = 'execution_finished'
         WHERE s.kind = 'execution_started' AND s.request_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&run.pool)
    .await?;
    let raw_engine = raw_calls("inspect", commands.len().clamp(20, 500)).await?;
    let (sum, count) = (
        overhead_after.0 - overhead_before.0,
        overhead_after.1 - overhead_before.1,
    );
    Ok(CommandPath {
        share_percent: share,
        decisions,
        commands: commands.len(),
        executed: executed_ms.len(),
        executed_per_s: executed_ms.len() as f64
            / executing_span.as_secs_f64().max(f64::MIN_POSITIVE),
        outcomes: outcomes.into_iter().collect(),
        submit_to_executed: percentiles(executed_ms, executing_span),
        gateway_span: percentiles(spans, executing_span),
        raw_engine,
        overhead_mean_ms: if count > 0.0 {
            sum / count * 1e3
        } else {
            f64::NAN
        },
        overhead_bounds_ms: harness::quantiles(&buckets_after, &buckets_before)
            .map(|(p50, p99)| (p50 * 1e3, p99 * 1e3)),
    })
}

/// (`_sum`, `_count`) of the gateway's overhead histogram.
async fn overhead_totals(run: &Pipeline) -> (f64, f64) {
    (
        run.metric_sum("gateway", &format!("{}_sum", metrics::GATEWAY_OVERHEAD))
            .await,
        run.metric_sum("gateway", &format!("{}_count", metrics::GATEWAY_OVERHEAD))
            .await,
    )
}

impl CommandPath {
    pub fn print(&self, rate: u32) {
        let step = &self.decisions;
        println!(
            "mix at {rate}/s with {} % carrying `docker inspect`: sent {:.0}/s, decisions recorded {:.0}/s",
            self.share_percent, step.sent_per_s, step.recorded_per_s
        );
        println!("{:<42} {:>9} {:>9} {:>9}", "", "p50", "p99", "max");
        println!(
            "{:<42} {}",
            "submit → decision visible (whole mix)",
            step.visible.cells()
        );
        println!(
            "{:<42} {}",
            "submit → decision durable (whole mix)",
            step.durable.cells()
        );
        println!(
            "{:<42} {}",
            format!(
                "submit → executed ({}/{} commands)",
                self.executed, self.commands
            ),
            self.submit_to_executed.cells()
        );
        println!(
            "{:<42} {}",
            "gateway span per job (its audit rows)",
            self.gateway_span.cells()
        );
        println!(
            "{:<42} {}",
            "raw Engine API inspect (bollard)",
            self.raw_engine.cells()
        );
        println!(
            "executed {:.1}/s; outcomes {:?}; gateway overhead: exact mean {:.3} ms, bucket bounds {}",
            self.executed_per_s,
            self.outcomes,
            self.overhead_mean_ms,
            self.overhead_bounds_ms
                .map_or("no samples".into(), |(p50, p99)| format!(
                    "p50 ≤ {p50:.2} ms, p99 ≤ {p99:.2} ms"
                ))
        );
        println!(
            "gateway span − raw Engine call: p50 {:+.2} ms, p99 {:+.2} ms (different samples: an estimate)",
            self.gateway_span.p50 - self.raw_engine.p50,
            self.gateway_span.p99 - self.raw_engine.p99
        );
    }
}

//! Where each request's durable latency went, request by request: the open-loop window cut
//! at four marks that every request leaves, so the slowest ones can be read apart from the
//! rest (a histogram per stage cannot say which hop made *this* request late).
//!
//! The marks, all on this machine's clocks:
//! - **intended**: when the schedule said to send it (this process);
//! - **sent**: when the publish left this process's client (this process);
//! - **decided**: `at` of its `request_validated` audit row — intake stamps it after the
//!   request was delivered, parsed, claimed in KV and scored, as it builds its outputs;
//! - **transaction**: `recorded_at` of that row — `now()` of the recorder's transaction;
//! - **written**: `clock_timestamp()` of the statement that wrote its decision into
//!   `approval_requests`, carried by the commit notification (after the wait for the chain's
//!   lock and the audit rows; before the commit);
//! - **commit seen**: the commit notification's arrival here ([`crate::watch`]).
//!
//! Monotonic instants are mapped to wall-clock time by one reading of both clocks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::harness::Pipeline;
use crate::openloop::Sent;
use crate::report::{Latencies, percentiles};
use crate::watch::Marks;

/// The hops between the marks, in order.
pub const HOPS: [&str; 5] = [
    "intended → sent (the load's own lag)",
    "sent → decided (JetStream, intake: claim, score)",
    "decided → recorder transaction (publish, audit stream)",
    "transaction → written (chain lock, audit rows)",
    "written → commit seen (commit, notify)",
];

#[derive(Debug, Clone, Default, Serialize)]
pub struct Trace {
    /// Requests with every mark.
    pub traced: usize,
    /// Each hop over every traced request, in [`HOPS`] order.
    pub hops: Vec<Latencies>,
    /// The slowest 1 % by durable latency: how many, their durable latency from, and each
    /// hop's mean over them (ms), in [`HOPS`] order.
    pub tail_count: usize,
    pub tail_from_ms: f64,
    pub tail_hop_mean_ms: Vec<f64>,
    /// The same means over the other 99 %, to set the tail against.
    pub body_hop_mean_ms: Vec<f64>,
    /// In how many distinct 100 ms slices of the schedule the tail's requests were due: few
    /// slices means a stall that held every request in flight, many means scattered delays.
    pub tail_slices_100ms: usize,
    /// Where those slices start, in seconds from the window's first request.
    pub tail_slices_at_s: Vec<f64>,
}

/// Reads the two audit marks of every request of the window and cuts each durable latency
/// into its hops.
pub async fn trace(run: &Pipeline, window: &[Sent], marks: &[Marks]) -> anyhow::Result<Trace> {
    let ids: Vec<Uuid> = window.iter().map(|sent| sent.id).collect();
    let rows: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT request_id, at, recorded_at FROM audit_events
         WHERE kind = 'request_validated' AND request_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&run.pool)
    .await?;
    let audit: HashMap<Uuid, (DateTime<Utc>, DateTime<Utc>)> = rows
        .into_iter()
        .map(|(id, at, recorded)| (id, (at, recorded)))
        .collect();
    let (wall_now, instant_now) = (Utc::now(), Instant::now());
    let wall = |at: Instant| wall_now - (instant_now - at);
    let millis = |from: DateTime<Utc>, to: DateTime<Utc>| {
        (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3
    };
    // (intended offset in the window, durable ms, hops ms)
    let mut rows: Vec<(Duration, f64, [f64; 5])> = Vec::new();
    let window_start = window
        .first()
        .map_or_else(Instant::now, |sent| sent.intended);
    for (sent, mark) in window.iter().zip(marks) {
        let (Some(durable), Some(written), Some(&(decided, transaction))) =
            (mark.durable, mark.written, audit.get(&sent.id))
        else {
            continue;
        };
        let (intended, sent_at, seen) = (wall(sent.intended), wall(sent.sent), wall(durable));
        rows.push((
            sent.intended - window_start,
            millis(intended, seen),
            [
                millis(intended, sent_at),
                millis(sent_at, decided),
                millis(decided, transaction),
                millis(transaction, written),
                millis(written, seen),
            ],
        ));
    }
    let mut trace = Trace {
        traced: rows.len(),
        hops: (0..HOPS.len())
            .map(|hop| {
                percentiles(
                    rows.iter().map(|row| row.2[hop]).collect(),
                    Duration::from_secs(1),
                )
            })
            .collect(),
        ..Trace::default()
    };
    if rows.is_empty() {
        return Ok(trace);
    }
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let tail_count = rows.len().div_ceil(100);
    let (tail, body) = rows.split_at(tail_count);
    let mean = |rows: &[(Duration, f64, [f64; 5])], hop: usize| {
        rows.iter().map(|row| row.2[hop]).sum::<f64>() / rows.len().max(1) as f64
    };
    trace.tail_count = tail_count;
    trace.tail_from_ms = tail.last().map_or(0.0, |row| row.1);
    trace.tail_hop_mean_ms = (0..HOPS.len()).map(|hop| mean(tail, hop)).collect();
    trace.body_hop_mean_ms = (0..HOPS.len()).map(|hop| mean(body, hop)).collect();
    let mut slices: Vec<u128> = tail.iter().map(|row| row.0.as_millis() / 100).collect();
    slices.sort_unstable();
    slices.dedup();
    trace.tail_slices_100ms = slices.len();
    trace.tail_slices_at_s = slices.iter().map(|slice| *slice as f64 / 10.0).collect();
    Ok(trace)
}

impl Trace {
    /// The hops as lines of a table.
    pub fn print(&self, rate: u32) {
        println!(
            "  at {rate}/s, per request ({} traced): hop p50 / p99 / max, and its mean over the slowest 1 % ({}, durable ≥ {:.2} ms, due in {} distinct 100 ms slices) against the other 99 %:",
            self.traced, self.tail_count, self.tail_from_ms, self.tail_slices_100ms
        );
        let slices: Vec<String> = self
            .tail_slices_at_s
            .iter()
            .map(|at| format!("{at:.1}"))
            .collect();
        println!(
            "    slices of the slowest 1 % (s into the window): {}",
            slices.join(" ")
        );
        for (hop, name) in HOPS.iter().enumerate() {
            let (Some(all), Some(tail), Some(body)) = (
                self.hops.get(hop),
                self.tail_hop_mean_ms.get(hop),
                self.body_hop_mean_ms.get(hop),
            ) else {
                continue;
            };
            println!(
                "    {name:<56} {} | slowest 1 % {tail:>7.2} ms, others {body:>6.2} ms",
                all.cells()
            );
        }
    }
}

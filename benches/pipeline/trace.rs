//! Where each request's durable latency went, request by request: the open-loop window cut
//! at four marks that every request leaves, so the slowest ones can be read apart from the
//! rest (a histogram per stage cannot say which hop made *this* request late).
//!
//! The marks, all on this machine's clocks:
//! - **intended**: when the schedule said to send it (this process);
//! - **sent**: when the publish left this process's client (this process);
//! - **stored**, for the slowest 1 % and a sample of the others: when nats-server stored it in
//!   the submissions stream (read back by its sequence), which cuts "sent → decided" into the
//!   load's client and nats-server, then intake;
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
    /// When the window's first request was due, on the wall clock: to set the slices beside
    /// another process's log (a nats-server's `GODEBUG=gctrace=1`, Postgres' checkpoints).
    pub window_start: Option<DateTime<Utc>>,
    /// "sent → decided" cut at the time JetStream stored the request (the submissions
    /// stream's own timestamp): (sent → stored, stored → decided), mean ms over the slowest
    /// 1 % and over a sample of the others ([`STORED_SAMPLE`]); `None` when none was read.
    pub tail_stored_split_ms: Option<(f64, f64)>,
    pub body_stored_split_ms: Option<(f64, f64)>,
    /// How many of the other 99 % the second split is over.
    pub body_stored_sampled: usize,
}

/// At most this many of the other 99 % have their stored time read (one request to the server
/// each): enough for a mean, few enough to take a second or two.
pub const STORED_SAMPLE: usize = 1000;

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
    // (intended offset in the window, durable ms, hops ms, (sent, decided, stream sequence))
    type Row = (
        Duration,
        f64,
        [f64; 5],
        (DateTime<Utc>, DateTime<Utc>, Option<u64>),
    );
    let mut rows: Vec<Row> = Vec::new();
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
            (sent_at, decided, sent.sequence),
        ));
    }
    let mut trace = Trace {
        window_start: Some(wall(window_start)),
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
    let mean = |rows: &[Row], hop: usize| {
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
    let stream = run
        .js
        .get_stream(
            wingman::bus::subjects::Subjects::new(&run.prefix)?
                .localize_name("WINGMAN_SUBMISSIONS"),
        )
        .await?;
    let split = async |rows: &[&Row]| -> Option<(f64, f64)> {
        let (mut to_stored, mut to_decided, mut count) = (0.0, 0.0, 0usize);
        for (_, _, _, (sent_at, decided, sequence)) in rows {
            let Some(sequence) = sequence else {
                continue;
            };
            let Ok(stored) = stream.get_raw_message(*sequence).await else {
                continue;
            };
            to_stored += millis(*sent_at, stored.time);
            to_decided += millis(stored.time, *decided);
            count += 1;
        }
        (count > 0).then(|| (to_stored / count as f64, to_decided / count as f64))
    };
    let step = body.len().div_ceil(STORED_SAMPLE).max(1);
    let sampled: Vec<&Row> = body.iter().step_by(step).collect();
    trace.tail_stored_split_ms = split(&tail.iter().collect::<Vec<_>>()).await;
    trace.body_stored_split_ms = split(&sampled).await;
    trace.body_stored_sampled = sampled.len();
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
        let began = self.window_start.map_or_else(String::new, |at| {
            format!(", which began at {}", at.format("%H:%M:%S%.3f UTC"))
        });
        println!(
            "    slices of the slowest 1 % (s into the window{began}): {}",
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
            if hop == 1
                && let (Some((tail_in, tail_out)), Some((body_in, body_out))) =
                    (self.tail_stored_split_ms, self.body_stored_split_ms)
            {
                println!(
                    "      of it, sent → stored in JetStream / stored → decided (means): slowest 1 % {tail_in:.2} / {tail_out:.2} ms, {} of the others {body_in:.2} / {body_out:.2} ms",
                    self.body_stored_sampled
                );
            }
        }
    }
}

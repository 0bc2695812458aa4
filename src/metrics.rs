//! Every metric Wingman exports, declared once, one function per event.
//!
//! Label values come from small fixed sets (stage words, outcome words, reason codes), never
//! from ids or error text. Histograms have explicit buckets so they aggregate across copies.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::events::{AuditKind, Stage};

pub const MESSAGES_TOTAL: &str = "pipeline_messages_total";
pub const HANDLE_DURATION: &str = "pipeline_handle_duration_seconds";
pub const DLQ_TOTAL: &str = "pipeline_dlq_messages_total";
pub const REQUESTS_RECEIVED: &str = "requests_received_total";
pub const REQUESTS_INVALID: &str = "requests_invalid_total";
pub const AUDIT_RECORDED: &str = "audit_events_recorded_total";
pub const API_REQUESTS: &str = "api_requests_total";

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 900.0, 3600.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()
        .or_else(|error| HANDLE.get().cloned().ok_or(error))?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Renders the text exposition, running the exporter's upkeep first.
pub fn render(handle: &PrometheusHandle) -> String {
    handle.run_upkeep();
    handle.render()
}

/// A message was settled by the consume loop: `forwarded`, `done`, `retried`,
/// `dead_lettered` or `unsettled`.
pub fn message_settled(stage: Stage, outcome: &'static str) {
    counter!(MESSAGES_TOTAL, "stage" => stage.as_str(), "outcome" => outcome).increment(1);
}

/// A batch of `count` messages was handled in `elapsed`; recorded per message.
pub fn batch_handled(stage: Stage, elapsed: Duration, count: usize) {
    let per_message = elapsed.as_secs_f64() / count.max(1) as f64;
    let histogram = histogram!(HANDLE_DURATION, "stage" => stage.as_str());
    for _ in 0..count {
        histogram.record(per_message);
    }
}

pub fn dead_lettered(stage: Stage, reason: &'static str) {
    counter!(DLQ_TOTAL, "stage" => stage.as_str(), "reason" => reason).increment(1);
}

pub fn request_received(environment: &'static str) {
    counter!(REQUESTS_RECEIVED, "environment" => environment).increment(1);
}

pub fn request_invalid(reason: &'static str) {
    counter!(REQUESTS_INVALID, "reason" => reason).increment(1);
}

pub fn audit_recorded(kind: AuditKind) {
    counter!(AUDIT_RECORDED, "kind" => kind.as_str()).increment(1);
}

pub fn api_request(route: &'static str, status: u16) {
    let class = match status {
        200..=299 => "2xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    counter!(API_REQUESTS, "route" => route, "class" => class).increment(1);
}

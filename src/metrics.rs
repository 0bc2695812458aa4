//! Every metric Wingman exports, declared once, one function per event.
//!
//! Label values come from small fixed sets (stage words, outcome words, reason codes), never
//! from ids or error text. Histograms have explicit buckets so they aggregate across copies.

use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::events::{AuditKind, Stage};

pub const MESSAGES_TOTAL: &str = "wingman_pipeline_messages_total";
pub const HANDLE_DURATION: &str = "wingman_pipeline_handle_duration_seconds";
pub const BATCH_MESSAGES: &str = "wingman_pipeline_batch_messages";
pub const QUEUE_WAIT: &str = "wingman_pipeline_queue_wait_seconds";
pub const SETTLE_DURATION: &str = "wingman_pipeline_settle_duration_seconds";
pub const DLQ_TOTAL: &str = "wingman_pipeline_dlq_messages_total";
pub const REQUESTS_RECEIVED: &str = "wingman_requests_received_total";
pub const REQUESTS_INVALID: &str = "wingman_requests_invalid_total";
pub const AUDIT_RECORDED: &str = "wingman_audit_events_recorded_total";
pub const API_REQUESTS: &str = "wingman_api_requests_total";
pub const ACCESS_DENIED: &str = "wingman_access_denied_total";
pub const VALIDATION_OUTCOMES: &str = "wingman_validation_outcomes_total";
pub const VALIDATION_ERRORS: &str = "wingman_validation_errors_total";
pub const VALIDATOR_SCORE: &str = "wingman_validator_score";
pub const ROLLOUT_PERCENT: &str = "wingman_validation_rollout_percent";
pub const ROLLOUT_ENABLED: &str = "wingman_validation_enabled";

pub const CONSUMER_PENDING: &str = "wingman_pipeline_consumer_pending";
pub const FALSE_POSITIVES: &str = "wingman_false_positives_total";
pub const APPROVAL_DECISIONS: &str = "wingman_approval_decisions_total";
pub const APPROVAL_LATENCY: &str = "wingman_approval_latency_seconds";
pub const REQUESTS_EXPIRED: &str = "wingman_requests_expired_total";
pub const REQUESTS_CANCELLED: &str = "wingman_requests_cancelled_total";
pub const TOKENS_MINTED: &str = "wingman_tokens_minted_total";
pub const TOKEN_REJECTIONS: &str = "wingman_token_rejections_total";
pub const EXECUTIONS: &str = "wingman_executions_total";
pub const EXECUTION_DURATION: &str = "wingman_execution_duration_seconds";
pub const DOCKER_CALLS: &str = "wingman_gateway_docker_calls_total";
pub const GATEWAY_OVERHEAD: &str = "wingman_gateway_overhead_seconds";
pub const ROLLOUT_GUARD_ACTIONS: &str = "wingman_rollout_guard_actions_total";
pub const APPROVALS_PENDING: &str = "wingman_approvals_pending";
pub const APPROVALS_OLDEST_PENDING_AGE: &str = "wingman_approvals_oldest_pending_age_seconds";
pub const APPROVALS_EXPIRING_SOON: &str = "wingman_approvals_expiring_soon";
pub const TELEGRAM_SENDS: &str = "wingman_telegram_sends_total";
pub const BUILD_INFO: &str = "wingman_build_info";

/// The version this binary was built from (Cargo's) and its git revision, when the build set
/// `WINGMAN_REVISION` (the Dockerfile passes it as a build argument), else `unknown`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = match option_env!("WINGMAN_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

/// What `wingman --version` prints after the name, e.g. `0.1.0 (revision 494b973)`: the two
/// halves of the image tag (`scripts/image-tag`), so an operator can tell which image runs.
pub fn version_line() -> &'static str {
    static LINE: LazyLock<String> = LazyLock::new(|| format!("{VERSION} (revision {REVISION})"));
    LINE.as_str()
}
pub const SHADOW_DECISIONS: &str = "wingman_validation_shadow_decisions_total";
pub const ROLLOUT_REVISION: &str = "wingman_validation_rollout_revision";
pub const PHASE_PERCENT: &str = "wingman_rollout_phase_percent";
pub const PHASE_STARTED: &str = "wingman_rollout_phase_started_timestamp_seconds";
pub const PHASE_SAMPLES: &str = "wingman_rollout_phase_samples";
pub const PHASE_RATE: &str = "wingman_rollout_phase_rate_percent";
pub const PHASE_VERDICT: &str = "wingman_rollout_phase_verdict";
pub const SHADOW_DIVERGENCE: &str = "wingman_rollout_phase_shadow_divergence";
pub const MIN_SAMPLES: &str = "wingman_rollout_min_samples";

/// Every metric Wingman exports: name, type, labels, help. Dashboards and alert rules may
/// only use these (a test checks it).
pub const CATALOGUE: &[(&str, &str, &[&str], &str)] = &[
    (
        BUILD_INFO,
        "gauge",
        &["version", "revision"],
        "1, labelled with the version and git revision this process was built from",
    ),
    (
        MESSAGES_TOTAL,
        "counter",
        &["stage", "outcome"],
        "messages settled by the consume loop: forwarded, done, retried, dead_lettered, unsettled",
    ),
    (
        HANDLE_DURATION,
        "histogram",
        &["stage"],
        "time a stage spent handling one message",
    ),
    (
        QUEUE_WAIT,
        "histogram",
        &["stage"],
        "time a message waited in JetStream before its stage took it (first deliveries; the server's clock against the worker's)",
    ),
    (
        SETTLE_DURATION,
        "histogram",
        &["stage"],
        "time to publish a batch's outputs, awaiting JetStream's acks, and ack its messages",
    ),
    (
        BATCH_MESSAGES,
        "histogram",
        &["stage"],
        "messages a stage handled together in one batch",
    ),
    (
        DLQ_TOTAL,
        "counter",
        &["stage", "reason"],
        "messages dead-lettered, by reason code",
    ),
    (
        CONSUMER_PENDING,
        "gauge",
        &["stage"],
        "messages waiting for a stage's consumer (reported by the watcher)",
    ),
    (
        REQUESTS_RECEIVED,
        "counter",
        &["environment"],
        "valid requests accepted by intake",
    ),
    (
        REQUESTS_INVALID,
        "counter",
        &["reason"],
        "submitted messages intake refused",
    ),
    (
        AUDIT_RECORDED,
        "counter",
        &["kind"],
        "audit events persisted by the recorder",
    ),
    (
        API_REQUESTS,
        "counter",
        &["route", "class"],
        "HTTP API requests by route and status class",
    ),
    (
        ACCESS_DENIED,
        "counter",
        &["edge", "audited"],
        "calls refused for want of a valid key or an approver id (audited=false: over the per-source audit limit, summarised)",
    ),
    (
        VALIDATION_OUTCOMES,
        "counter",
        &["profile", "decision", "applied"],
        "validator decisions (applied=false: outside the rollout cohort)",
    ),
    (
        VALIDATION_ERRORS,
        "counter",
        &["reason"],
        "validations that errored or timed out (the request went to a human)",
    ),
    (
        VALIDATOR_SCORE,
        "histogram",
        &["validator"],
        "scores given by each validator (0-100)",
    ),
    (
        ROLLOUT_PERCENT,
        "gauge",
        &[],
        "VALIDATION_ROLLOUT_PERCENT as the validator applies it",
    ),
    (
        ROLLOUT_ENABLED,
        "gauge",
        &[],
        "VALIDATION_ENABLED as the validator applies it (0/1)",
    ),
    (
        FALSE_POSITIVES,
        "counter",
        &["environment"],
        "auto-rejected requests later approved by a human (override)",
    ),
    (
        APPROVAL_DECISIONS,
        "counter",
        &["decision", "via"],
        "human decisions: approved/rejected via telegram, cli (signed console vote) or api (decide key, web console)",
    ),
    (
        APPROVAL_LATENCY,
        "histogram",
        &["environment"],
        "time from PENDING to a human decision",
    ),
    (
        REQUESTS_EXPIRED,
        "counter",
        &["environment"],
        "PENDING requests that expired without a decision",
    ),
    (
        REQUESTS_CANCELLED,
        "counter",
        &["environment"],
        "PENDING requests their requester withdrew (wingman cancel, POST /requests/{id}/cancel)",
    ),
    (
        TOKENS_MINTED,
        "counter",
        &["environment"],
        "capability tokens minted by the authority",
    ),
    (
        TOKEN_REJECTIONS,
        "counter",
        &["reason"],
        "capability tokens or executions the gateway refused, by reason",
    ),
    (
        EXECUTIONS,
        "counter",
        &["operation", "environment", "result"],
        "operations the gateway performed: succeeded, failed, indeterminate",
    ),
    (
        EXECUTION_DURATION,
        "histogram",
        &["operation"],
        "time the gateway spent performing an operation",
    ),
    (
        GATEWAY_OVERHEAD,
        "histogram",
        &[],
        "time the gateway spent on a performed job besides the Docker Engine call: parsing, token check, claim, resolving the targets, EXECUTING events, the claim's update",
    ),
    (
        DOCKER_CALLS,
        "counter",
        &["action", "result"],
        "Docker Engine API calls made by the gateway",
    ),
    (
        ROLLOUT_GUARD_ACTIONS,
        "counter",
        &["action"],
        "rollout guard checks: lowered, insufficient_data, ok, shadow_no_go, shadow_ok",
    ),
    (
        SHADOW_DECISIONS,
        "counter",
        &["decision"],
        "what validation would have decided for requests outside the rollout cohort (shadow mode; not enforced)",
    ),
    (
        ROLLOUT_REVISION,
        "gauge",
        &[],
        "the KV revision of the rollout flags as last announced (changes on every rollout change: the dashboard's annotation)",
    ),
    (
        PHASE_PERCENT,
        "gauge",
        &[],
        "the current rollout phase: the percent validation is enforced for (0: shadow), from the watcher",
    ),
    (
        PHASE_STARTED,
        "gauge",
        &[],
        "when the current rollout phase started (unix seconds; 0 when no change was ever recorded)",
    ),
    (
        PHASE_SAMPLES,
        "gauge",
        &["basis"],
        "requests in the current phase: basis=cohort (validated and enforced), shadow (scored, not enforced), judged (what the phase's rates are over: cohort, or shadow in shadow mode)",
    ),
    (
        PHASE_RATE,
        "gauge",
        &["rate"],
        "the seed's rates over the current phase's judged requests: auto_reject, auto_approve, manual_review, false_positive",
    ),
    (
        PHASE_VERDICT,
        "gauge",
        &[],
        "the current phase's verdict, as `wingman rollout report` exits: 0 GO, 1 NO-GO, 2 HOLD or insufficient data",
    ),
    (
        MIN_SAMPLES,
        "gauge",
        &[],
        "the fewest judged requests a rate is trusted on (WINGMAN_ROLLOUT_MIN_SAMPLES, default 30), from the watcher: the report's and the promote gate's minimum, and the bar of the dashboards' rate panels and the rate alerts",
    ),
    (
        SHADOW_DIVERGENCE,
        "gauge",
        &["kind"],
        "shadow decisions a human contradicted in the current phase: would_auto_approve_human_rejected, would_auto_reject_human_approved",
    ),
    (
        APPROVALS_PENDING,
        "gauge",
        &["environment"],
        "PENDING requests waiting for a human, read from Postgres by the watcher on every tick",
    ),
    (
        APPROVALS_OLDEST_PENDING_AGE,
        "gauge",
        &["environment"],
        "age of the oldest PENDING request (0 when none), read by the watcher on every tick",
    ),
    (
        APPROVALS_EXPIRING_SOON,
        "gauge",
        &["environment"],
        "PENDING requests whose deadline is within 15 minutes (they expire, default deny, unless a human decides)",
    ),
    (
        TELEGRAM_SENDS,
        "counter",
        &["kind", "result"],
        "messages the bot sent or edited on Telegram (kind prompt, outcome, notice; result sent, failed)",
    ),
];

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// The gateway's overhead, whose target is a p99 of 2 ms: quarter milliseconds up to 5 ms, so
/// a quantile read from the buckets is bounded to 0.25 ms where it matters.
const OVERHEAD_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.00075, 0.001, 0.00125, 0.0015, 0.00175, 0.002, 0.0025, 0.003, 0.0035, 0.004,
    0.0045, 0.005, 0.006, 0.007, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 5.0, 30.0,
];

const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

const SCORE_BUCKETS: &[f64] = &[
    10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 85.0, 90.0, 95.0, 100.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
/// Held while the recorder is installed, so two threads asking at once (tests spawn several
/// stages in one process) never both try: the second waits and gets the first one's handle.
static INSTALLING: Mutex<()> = Mutex::new(());

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let _installing = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        // A full name is matched before a suffix (the exporter sorts its matchers).
        .set_buckets_for_metric(Matcher::Full(GATEWAY_OVERHEAD.into()), OVERHEAD_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(VALIDATOR_SCORE.into()), SCORE_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(BATCH_MESSAGES.into()), BATCH_BUCKETS)?
        .install_recorder()?;
    let handle = HANDLE.get_or_init(|| handle).clone();
    keep_up(handle.clone());
    describe_catalogue();
    gauge!(BUILD_INFO, "version" => VERSION, "revision" => REVISION).set(1.0);
    Ok(handle)
}

/// How often the exporter folds the samples histograms recorded into their buckets.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Runs the exporter's upkeep every [`UPKEEP_EVERY`] for the life of the process.
///
/// `install_recorder` (unlike the exporter's own HTTP `install`) starts no upkeep task: each
/// histogram keeps every sample it recorded until a scrape renders it. A worker nobody
/// scrapes (Prometheus down, a dev machine without one) then grew by every sample of every
/// message — intake by ~160 bytes per request, 9 MiB a minute at 1 000 requests/s in the
/// soak. A plain thread, so it runs whichever runtime (or none) the process has.
fn keep_up(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "metrics upkeep thread not started: histograms grow until scraped");
    }
}

/// Gives every catalogued metric its type and help text in the exposition.
fn describe_catalogue() {
    for (name, kind, _, help) in CATALOGUE {
        match *kind {
            "counter" => metrics::describe_counter!(*name, *help),
            "gauge" => metrics::describe_gauge!(*name, *help),
            _ => metrics::describe_histogram!(*name, *help),
        }
    }
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

/// A message reached its stage `waited` after JetStream stored it.
pub fn queue_waited(stage: Stage, waited: Duration) {
    histogram!(QUEUE_WAIT, "stage" => stage.as_str()).record(waited.as_secs_f64());
}

/// A batch's outputs were published and its messages acked in `elapsed`.
pub fn batch_settled(stage: Stage, elapsed: Duration) {
    histogram!(SETTLE_DURATION, "stage" => stage.as_str()).record(elapsed.as_secs_f64());
}

/// A batch of `count` messages was handled in `elapsed`; recorded per message.
pub fn batch_handled(stage: Stage, elapsed: Duration, count: usize) {
    let per_message = elapsed.as_secs_f64() / count.max(1) as f64;
    histogram!(BATCH_MESSAGES, "stage" => stage.as_str()).record(count as f64);
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
    counter!(API_REQUESTS, "route" => route, "class" => status_class(status)).increment(1);
}

/// The `class` label of an HTTP status: a redirect (the console's login and vote forms answer
/// 303) is no server error.
fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A caller was refused at `edge` (api, gateway, console for forged or sessionless forms,
/// approvals for Telegram strangers);
/// `audited` is false when its audit event was left to the window's summary.
pub fn access_denied(edge: &'static str, audited: bool) {
    let audited = if audited { "true" } else { "false" };
    counter!(ACCESS_DENIED, "edge" => edge, "audited" => audited).increment(1);
}

/// A request left the validator: `decision` is AUTO_APPROVED, AUTO_REJECTED or PENDING;
/// `profile` is operational, deployment, or `none` when validation was not applied.
pub fn validation_outcome(profile: &'static str, decision: &'static str, applied: bool) {
    let applied = if applied { "true" } else { "false" };
    counter!(VALIDATION_OUTCOMES, "profile" => profile, "decision" => decision, "applied" => applied).increment(1);
}

/// A validator errored or timed out (the request went to a human).
pub fn validation_error(reason: &'static str) {
    counter!(VALIDATION_ERRORS, "reason" => reason).increment(1);
}

pub fn validator_score(validator: &'static str, score: f64) {
    histogram!(VALIDATOR_SCORE, "validator" => validator).record(score);
}

/// The rollout flags the validator is applying.
pub fn rollout(enabled: bool, percent: u8) {
    gauge!(ROLLOUT_ENABLED).set(if enabled { 1.0 } else { 0.0 });
    gauge!(ROLLOUT_PERCENT).set(f64::from(percent));
}

pub fn token_minted(environment: &'static str) {
    counter!(TOKENS_MINTED, "environment" => environment).increment(1);
}

/// The gateway refused a job: `reason` is a token error code, `policy`, `command_mismatch`…
pub fn token_rejected(reason: &'static str) {
    counter!(TOKEN_REJECTIONS, "reason" => reason).increment(1);
}

/// The gateway performed an operation: `result` is succeeded, failed or indeterminate.
pub fn execution(
    operation: &'static str,
    environment: &'static str,
    result: &'static str,
    elapsed: Duration,
) {
    counter!(EXECUTIONS, "operation" => operation, "environment" => environment, "result" => result).increment(1);
    histogram!(EXECUTION_DURATION, "operation" => operation).record(elapsed.as_secs_f64());
}

/// What a performed job cost the gateway on top of the Docker Engine call itself.
pub fn gateway_overhead(overhead: Duration) {
    histogram!(GATEWAY_OVERHEAD).record(overhead.as_secs_f64());
}

pub fn docker_call(action: &'static str, result: &'static str) {
    counter!(DOCKER_CALLS, "action" => action, "result" => result).increment(1);
}

/// A human decision: `decision` APPROVED or REJECTED, `via` telegram, cli or api.
pub fn approval_decided(decision: &'static str, via: &'static str) {
    counter!(APPROVAL_DECISIONS, "decision" => decision, "via" => via).increment(1);
}

/// An auto-rejected request approved by a human: a false positive of the validators.
pub fn false_positive(environment: &'static str) {
    counter!(FALSE_POSITIVES, "environment" => environment).increment(1);
}

pub fn approval_latency(environment: &'static str, waited: Duration) {
    histogram!(APPROVAL_LATENCY, "environment" => environment).record(waited.as_secs_f64());
}

pub fn request_expired(environment: &'static str) {
    counter!(REQUESTS_EXPIRED, "environment" => environment).increment(1);
}

pub fn request_cancelled(environment: &'static str) {
    counter!(REQUESTS_CANCELLED, "environment" => environment).increment(1);
}

pub fn consumer_pending(stage: &str, pending: u64) {
    gauge!(CONSUMER_PENDING, "stage" => stage.to_string()).set(pending as f64);
}

pub fn rollout_guard(action: &'static str) {
    counter!(ROLLOUT_GUARD_ACTIONS, "action" => action).increment(1);
}

/// The human backlog of one environment as Postgres has it now: how many requests wait,
/// how long the oldest has waited, and how many expire within the warning window.
pub fn human_backlog(
    environment: &'static str,
    pending: u64,
    oldest: Duration,
    expiring_soon: u64,
) {
    gauge!(APPROVALS_PENDING, "environment" => environment).set(pending as f64);
    gauge!(APPROVALS_OLDEST_PENDING_AGE, "environment" => environment).set(oldest.as_secs_f64());
    gauge!(APPROVALS_EXPIRING_SOON, "environment" => environment).set(expiring_soon as f64);
}

/// A Telegram send or edit: `kind` is prompt, outcome or notice; `sent` false when it failed.
pub fn telegram_send(kind: &'static str, sent: bool) {
    let result = if sent { "sent" } else { "failed" };
    counter!(TELEGRAM_SENDS, "kind" => kind, "result" => result).increment(1);
}

/// What validation would have decided for a request outside the cohort (not enforced).
pub fn shadow_decision(decision: &'static str) {
    counter!(SHADOW_DECISIONS, "decision" => decision).increment(1);
}

/// The KV revision of the rollout flags, as a watch announced it.
pub fn rollout_revision(revision: u64) {
    gauge!(ROLLOUT_REVISION).set(revision as f64);
}

/// The current rollout phase as the watcher last judged it, in numbers
/// (`report::PhaseReport::gauges` makes it).
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseGauges {
    pub effective_percent: u8,
    /// Unix seconds; 0 before the first phase.
    pub started_at: f64,
    pub cohort_samples: i64,
    pub shadow_samples: i64,
    pub judged_samples: i64,
    pub auto_reject: f64,
    pub auto_approve: f64,
    pub manual_review: f64,
    pub false_positive: f64,
    /// As `wingman rollout report` exits: 0 GO, 1 NO-GO, 2 HOLD or insufficient data.
    pub verdict_exit_code: u8,
    pub shadow_false_approvals: i64,
    pub shadow_false_positives: i64,
}

/// The configured minimum sample size (`PhaseMinimums::samples`), which the dashboards' rate
/// panels and the rate alerts compare with instead of a literal 30.
pub fn rollout_min_samples(samples: i64) {
    gauge!(MIN_SAMPLES).set(samples as f64);
}

/// Sets the current phase's gauges.
pub fn rollout_phase(phase: &PhaseGauges) {
    gauge!(PHASE_PERCENT).set(f64::from(phase.effective_percent));
    gauge!(PHASE_STARTED).set(phase.started_at);
    gauge!(PHASE_SAMPLES, "basis" => "cohort").set(phase.cohort_samples as f64);
    gauge!(PHASE_SAMPLES, "basis" => "shadow").set(phase.shadow_samples as f64);
    gauge!(PHASE_SAMPLES, "basis" => "judged").set(phase.judged_samples as f64);
    for (name, value) in [
        ("auto_reject", phase.auto_reject),
        ("auto_approve", phase.auto_approve),
        ("manual_review", phase.manual_review),
        ("false_positive", phase.false_positive),
    ] {
        gauge!(PHASE_RATE, "rate" => name).set(value);
    }
    gauge!(PHASE_VERDICT).set(f64::from(phase.verdict_exit_code));
    gauge!(SHADOW_DIVERGENCE, "kind" => "would_auto_approve_human_rejected")
        .set(phase.shadow_false_approvals as f64);
    gauge!(SHADOW_DIVERGENCE, "kind" => "would_auto_reject_human_approved")
        .set(phase.shadow_false_positives as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Prometheus shared with other services scrapes their `executions_total` and
    /// `api_requests_total` too: without the one prefix, a dashboard sum would add theirs to
    /// ours. Every name is also listed once, so no two catalogue rows describe one series.
    #[test]
    fn every_catalogued_metric_name_starts_with_the_application_prefix_and_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (name, ..) in CATALOGUE {
            assert!(
                name.starts_with("wingman_"),
                "{name} lacks the wingman_ prefix"
            );
            let lower_case = name
                .bytes()
                .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_'));
            assert!(
                lower_case && name.len() > "wingman_".len(),
                "{name} is not a lower-case Prometheus name"
            );
            assert!(seen.insert(*name), "{name} is catalogued twice");
        }
    }

    #[test]
    fn a_redirect_is_counted_as_a_redirect_not_a_server_error() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(303), "3xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
    }

    /// The target is a p99 of 2 ms: with the latency buckets a 1.6 ms overhead read as
    /// "≤ 2.5 ms" (0.002 was the only bound between 1 and 2.5 ms). Its own buckets bound it to
    /// the quarter millisecond.
    #[test]
    fn the_gateway_overhead_is_read_to_the_quarter_millisecond() {
        let handle = install().unwrap();
        gateway_overhead(Duration::from_micros(1_600));
        handle.run_upkeep();
        let text = handle.render();
        let bucket = |bound: &str| {
            let prefix = format!("{GATEWAY_OVERHEAD}_bucket{{le=\"{bound}\"}} ");
            text.lines()
                .find_map(|line| line.strip_prefix(prefix.as_str()))
                .map(|count| count.parse::<u64>().unwrap())
                .unwrap_or_else(|| panic!("no bucket le={bound} in\n{text}"))
        };
        assert!(
            bucket("0.00175") > bucket("0.0015"),
            "1.6 ms is counted between 1.5 and 1.75 ms"
        );
        for bound in [
            "0.00025", "0.0005", "0.00075", "0.001", "0.00125", "0.002", "0.005",
        ] {
            bucket(bound);
        }
    }

    /// Tests start several stages in one process at once; each asks for the recorder. Before the
    /// install was serialised, two first callers both tried to install and one failed with
    /// "attempted to set a recorder after the metrics system was already initialized".
    #[test]
    fn stages_starting_at_once_in_one_process_all_get_the_one_recorder() {
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    install().map(|_| ()).map_err(|error| error.to_string())
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.join().unwrap(), Ok(()));
        }
    }
}

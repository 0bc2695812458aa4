//! The streams, consumers and KV buckets declared as data in `nats/`, and their creation.
//!
//! The JSON files are NATS's own config formats, compiled into every binary so a worker needs
//! no files at run time. Every worker calls [`Topology::ensure`] at start: it creates what is
//! missing and updates what changed, and is safe when N copies start at once.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull, kv, stream};
use backon::{ExponentialBuilder, Retryable};
use serde::Deserialize;

use crate::bus::subjects::Subjects;
pub use crate::config::TopologyOverrides;

/// In creation order: `requests` gives up the submit subjects (older deployments) before
/// `submissions` takes them, since two streams may not share a subject.
/// The approvals worker's durable consumer that edits Telegram prompts with each request's
/// outcome; started only with a bot token (the watcher does not count its backlog without).
pub const PROMPT_UPDATES: &str = "approvals-updates";

const STREAMS: &[(&str, &str)] = &[
    ("requests", include_str!("../../nats/streams/requests.json")),
    (
        "submissions",
        include_str!("../../nats/streams/submissions.json"),
    ),
    (
        "approvals",
        include_str!("../../nats/streams/approvals.json"),
    ),
    ("exec", include_str!("../../nats/streams/exec.json")),
    ("audit", include_str!("../../nats/streams/audit.json")),
    ("status", include_str!("../../nats/streams/status.json")),
    ("dlq", include_str!("../../nats/streams/dlq.json")),
    ("output", include_str!("../../nats/streams/output.json")),
];

const CONSUMERS: &[(&str, &str)] = &[
    ("intake", include_str!("../../nats/consumers/intake.json")),
    (
        "recorder",
        include_str!("../../nats/consumers/recorder.json"),
    ),
    (
        "authority",
        include_str!("../../nats/consumers/authority.json"),
    ),
    (
        "authority-auto",
        include_str!("../../nats/consumers/authority-auto.json"),
    ),
    ("gateway", include_str!("../../nats/consumers/gateway.json")),
    (
        "approvals",
        include_str!("../../nats/consumers/approvals.json"),
    ),
    (
        "approvals-updates",
        include_str!("../../nats/consumers/approvals-updates.json"),
    ),
];

const BUCKETS: &[(&str, &str)] = &[
    ("claims", include_str!("../../nats/kv/claims.json")),
    ("rollout", include_str!("../../nats/kv/rollout.json")),
    ("approvals", include_str!("../../nats/kv/approvals.json")),
    ("approvers", include_str!("../../nats/kv/approvers.json")),
];

/// The files whose subjects are one per request (`status.<id>`, `output.<principal>.<id>`,
/// the claims' and approvals' keys): [`TopologyOverrides::request_retention`] caps their age,
/// since nats-server keeps an index entry in memory for every live subject.
const PER_REQUEST_STREAMS: &[&str] = &["status", "output"];
const PER_REQUEST_BUCKETS: &[&str] = &["claims", "approvals"];

/// A durable pull consumer declared in `nats/consumers/<name>.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConsumerDef {
    pub stream: String,
    pub config: pull::Config,
}

/// A KV bucket declared in `nats/kv/<name>.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct BucketDef {
    pub bucket: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "one")]
    pub history: i64,
    /// Seconds a key lives; 0 keeps it forever.
    #[serde(default)]
    pub max_age_secs: u64,
    /// Bytes the bucket may hold (-1: no limit). When full, new keys are refused (the bucket
    /// discards new writes, never old claims).
    #[serde(default = "no_limit")]
    pub max_bytes: i64,
    /// Replicas of the bucket's stream (1; `WINGMAN_STREAM_REPLICAS` overrides it like the
    /// streams', so a claim survives a node of a cluster).
    #[serde(default = "one_replica")]
    pub replicas: usize,
}

fn no_limit() -> i64 {
    -1
}

fn one_replica() -> usize {
    1
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub streams: Vec<stream::Config>,
    pub consumers: Vec<ConsumerDef>,
    pub buckets: Vec<BucketDef>,
    /// Durable consumers of earlier layouts, removed by [`Topology::ensure`] (stream,
    /// consumer): intake used to read submissions from the requests stream, and validation was
    /// a worker of its own reading `wingman.requests.accepted` (now intake decides in the same
    /// hop).
    pub retired_consumers: Vec<(String, String)>,
}

impl Topology {
    /// The declared topology, renamed for `subjects`' prefix.
    ///
    /// # Panics
    /// When a file in `nats/` does not parse; they are compiled in and covered by tests.
    pub fn declared(subjects: &Subjects, overrides: &TopologyOverrides) -> Self {
        let streams = STREAMS
            .iter()
            .map(|(name, text)| {
                let mut config: stream::Config = serde_json::from_str(text)
                    .unwrap_or_else(|error| panic!("nats/streams/{name}.json: {error}"));
                config.name = subjects.localize_name(&config.name);
                config.subjects = config
                    .subjects
                    .iter()
                    .map(|s| subjects.localize(s))
                    .collect();
                if let Some(replicas) = overrides.replicas {
                    config.num_replicas = replicas;
                }
                config.max_bytes = capped(config.max_bytes, overrides.max_bytes);
                if PER_REQUEST_STREAMS.contains(name)
                    && let Some(retention) = overrides.request_retention
                {
                    config.max_age = config.max_age.min(retention);
                    // nats-server refuses a duplicate window longer than the messages live.
                    config.duplicate_window = config.duplicate_window.min(config.max_age);
                }
                config
            })
            .collect();
        let consumers = CONSUMERS
            .iter()
            .map(|(name, text)| {
                let mut def: ConsumerDef = serde_json::from_str(text)
                    .unwrap_or_else(|error| panic!("nats/consumers/{name}.json: {error}"));
                def.stream = subjects.localize_name(&def.stream);
                def.config.filter_subject = subjects.localize(&def.config.filter_subject);
                if let Some(ack_wait) = overrides.ack_wait {
                    def.config.ack_wait = ack_wait;
                }
                def
            })
            .collect();
        let buckets = BUCKETS
            .iter()
            .map(|(name, text)| {
                let mut def: BucketDef = serde_json::from_str(text)
                    .unwrap_or_else(|error| panic!("nats/kv/{name}.json: {error}"));
                def.bucket = subjects.localize_name(&def.bucket);
                if let Some(replicas) = overrides.replicas {
                    def.replicas = replicas;
                }
                def.max_bytes = capped(def.max_bytes, overrides.max_bytes);
                if PER_REQUEST_BUCKETS.contains(name)
                    && let Some(retention) = overrides.request_retention
                {
                    def.max_age_secs = def.max_age_secs.min(retention.as_secs().max(1));
                }
                def
            })
            .collect();
        Self {
            streams,
            consumers,
            buckets,
            retired_consumers: vec![
                (
                    subjects.localize_name("WINGMAN_REQUESTS"),
                    "intake".to_string(),
                ),
                (
                    subjects.localize_name("WINGMAN_REQUESTS"),
                    "validator".to_string(),
                ),
            ],
        }
    }

    pub fn consumer(&self, durable: &str) -> anyhow::Result<&ConsumerDef> {
        self.consumers
            .iter()
            .find(|def| def.config.durable_name.as_deref() == Some(durable))
            .with_context(|| format!("no consumer `{durable}` is declared in nats/consumers"))
    }

    pub fn bucket(&self, declared: &str, subjects: &Subjects) -> anyhow::Result<&BucketDef> {
        let name = subjects.localize_name(declared);
        self.buckets
            .iter()
            .find(|def| def.bucket == name)
            .with_context(|| format!("no bucket `{declared}` is declared in nats/kv"))
    }

    /// Creates or updates every stream, consumer and bucket.
    pub async fn ensure(&self, js: &jetstream::Context) -> anyhow::Result<()> {
        let policy = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(8)
            .with_jitter();
        for config in &self.streams {
            (|| async { ensure_stream(js, config.clone()).await })
                .retry(policy)
                .notify(|error, delay| tracing::warn!(%error, ?delay, stream = %config.name, "retrying stream setup"))
                .await
                .with_context(|| format!("create or update stream {}", config.name))?;
        }
        for (stream, consumer) in &self.retired_consumers {
            // Best effort: it may never have existed here.
            if let Ok(stream) = js.get_stream(stream).await {
                let _ = stream.delete_consumer(consumer).await;
            }
        }
        for def in &self.consumers {
            (|| async { ensure_consumer(js, def).await })
                .retry(policy)
                .await
                .with_context(|| {
                    format!(
                        "create or update consumer {:?} on {}",
                        def.config.durable_name, def.stream
                    )
                })?;
        }
        for def in &self.buckets {
            (|| async { ensure_bucket(js, def).await })
                .retry(policy)
                .await
                .with_context(|| format!("create KV bucket {}", def.bucket))?;
        }
        Ok(())
    }

    /// Deletes every stream of this topology (tests clean up with it).
    pub async fn delete_all(&self, js: &jetstream::Context) {
        for config in &self.streams {
            let _ = js.delete_stream(&config.name).await;
        }
        for def in &self.buckets {
            let _ = js.delete_stream(format!("KV_{}", def.bucket)).await;
        }
    }
}

/// `declared` bytes, at most `cap` (a declared -1, no limit, becomes the cap).
fn capped(declared: i64, cap: Option<i64>) -> i64 {
    match cap {
        Some(cap) if declared < 0 || declared > cap => cap,
        _ => declared,
    }
}

async fn ensure_stream(js: &jetstream::Context, config: stream::Config) -> anyhow::Result<()> {
    match js.get_stream(&config.name).await {
        Ok(mut existing) => {
            let info = existing.info().await?;
            if !same_stream_config(&info.config, &config) {
                js.update_stream(config).await?;
            }
            Ok(())
        }
        Err(_) => {
            js.create_stream(config).await?;
            Ok(())
        }
    }
}

/// The fields we declare; the server fills in others we must not fight over.
fn same_stream_config(current: &stream::Config, wanted: &stream::Config) -> bool {
    current.subjects == wanted.subjects
        && current.max_age == wanted.max_age
        && current.max_bytes == wanted.max_bytes
        && current.max_messages == wanted.max_messages
        && current.discard == wanted.discard
        && current.max_messages_per_subject == wanted.max_messages_per_subject
        && current.duplicate_window == wanted.duplicate_window
        && current.max_message_size == wanted.max_message_size
        && current.description == wanted.description
}

async fn ensure_consumer(js: &jetstream::Context, def: &ConsumerDef) -> anyhow::Result<()> {
    let stream = js.get_stream(&def.stream).await?;
    // A consumer whose filter subject changed is made anew: nats-server 2.9 accepts the
    // update but keeps waking the consumer on its old subject, so a waiting pull hears of a
    // new message only when the client renews it (seconds later). What it held on the old
    // subject is what no stage publishes any more (drain before upgrading, README).
    if let Some(durable) = def.config.durable_name.as_deref()
        && let Ok(mut existing) = stream
            .get_consumer::<jetstream::consumer::pull::Config>(durable)
            .await
        && existing.info().await?.config.filter_subject != def.config.filter_subject
    {
        tracing::warn!(
            consumer = durable,
            stream = %def.stream,
            filter = %def.config.filter_subject,
            "the consumer's filter subject changed; making it anew"
        );
        stream.delete_consumer(durable).await?;
    }
    // Creating with an identical config is a no-op on the server; a changed config updates
    // the editable fields.
    stream.create_consumer(def.config.clone()).await?;
    Ok(())
}

/// Whether a bucket's reads may be served by any replica (JetStream's direct get). With one
/// replica that is the leader itself; with more, a follower that has not applied the last
/// write yet would answer "no such key" right after a create (a claim's winner, the rollout
/// flags just seeded), so replicated buckets are read through their leader.
fn direct_reads(replicas: usize) -> bool {
    replicas <= 1
}

/// Creates a KV bucket's backing stream directly: async-nats 0.51's `create_key_value`
/// calls an account-info API whose reply nats-server 2.9 shapes differently. An existing
/// bucket gets the declared key lifetime, byte limit and read path (and keeps everything
/// else).
async fn ensure_bucket(js: &jetstream::Context, def: &BucketDef) -> anyhow::Result<()> {
    let name = format!("KV_{}", def.bucket);
    let allow_direct = direct_reads(def.replicas);
    if let Ok(mut existing) = js.get_stream(&name).await {
        let mut config = existing.info().await?.config.clone();
        let max_age = Duration::from_secs(def.max_age_secs);
        if config.max_age != max_age
            || config.max_bytes != def.max_bytes
            || config.allow_direct != allow_direct
        {
            config.max_age = max_age;
            if !max_age.is_zero() {
                // nats-server refuses a duplicate window longer than the keys live.
                config.duplicate_window = config.duplicate_window.min(max_age);
            }
            config.max_bytes = def.max_bytes;
            config.allow_direct = allow_direct;
            js.update_stream(config).await?;
        }
        return Ok(());
    }
    let config = stream::Config {
        name,
        description: Some(def.description.clone()),
        subjects: vec![format!("$KV.{}.>", def.bucket)],
        max_messages_per_subject: def.history,
        max_age: Duration::from_secs(def.max_age_secs),
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct,
        discard: stream::DiscardPolicy::New,
        num_replicas: def.replicas,
        max_bytes: def.max_bytes,
        max_messages: -1,
        max_consumers: -1,
        ..Default::default()
    };
    js.create_stream(config).await?;
    Ok(())
}

/// Opens a bucket created by [`Topology::ensure`].
pub async fn open_bucket(js: &jetstream::Context, bucket: &str) -> anyhow::Result<kv::Store> {
    js.get_key_value(bucket)
        .await
        .with_context(|| format!("open KV bucket {bucket}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether every subject `filter` matches is one `pattern` matches (NATS wildcards: `*`
    /// one token, `>` the rest).
    fn covers(pattern: &str, filter: &str) -> bool {
        let (mut pattern, mut filter) = (pattern.split('.'), filter.split('.'));
        loop {
            match (pattern.next(), filter.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(token)) if token != ">" => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    #[test]
    fn a_replicated_bucket_is_read_through_its_leader() {
        // One replica: the leader answers direct gets; three: a follower could answer with
        // a key it has not applied yet.
        assert!(direct_reads(1));
        assert!(!direct_reads(3));
    }

    #[test]
    fn every_declared_file_parses_and_each_consumer_reads_a_declared_stream() {
        let subjects = Subjects::new("wingman").unwrap();
        let topology = Topology::declared(&subjects, &TopologyOverrides::default());
        assert_eq!(topology.streams.len(), STREAMS.len());
        for def in &topology.consumers {
            let stream = topology
                .streams
                .iter()
                .find(|s| s.name == def.stream)
                .expect("consumer on a declared stream");
            let filter = &def.config.filter_subject;
            assert!(
                stream
                    .subjects
                    .iter()
                    .any(|pattern| covers(pattern, filter)),
                "{filter} is not among the subjects of {}",
                stream.name
            );
            assert_eq!(
                def.config.ack_policy,
                jetstream::consumer::AckPolicy::Explicit
            );
            assert!(def.config.max_deliver > 1);
        }
    }

    /// `max_file_store` of the production server configs, in bytes.
    fn max_file_store() -> i64 {
        let config = include_str!("../../nats/server-prd.conf");
        let line = config
            .lines()
            .find_map(|line| line.trim().strip_prefix("max_file_store:"))
            .expect("server-prd.conf sets max_file_store");
        let gigabytes: i64 = line.trim().trim_end_matches("GB").parse().unwrap();
        gigabytes * 1_000_000_000
    }

    #[test]
    fn every_stream_and_bucket_is_bounded_and_all_fit_in_the_server_store() {
        let subjects = Subjects::new("wingman").unwrap();
        let topology = Topology::declared(&subjects, &TopologyOverrides::default());
        for stream in &topology.streams {
            assert!(stream.max_bytes > 0, "{} has no byte limit", stream.name);
            assert!(
                !stream.max_age.is_zero(),
                "{} keeps messages forever",
                stream.name
            );
        }
        let status = topology
            .streams
            .iter()
            .find(|stream| stream.name == "WINGMAN_STATUS")
            .unwrap();
        assert!(
            status.max_messages_per_subject > 0,
            "one request's status subject is bounded"
        );
        for bucket in &topology.buckets {
            assert!(bucket.max_bytes > 0, "{} has no byte limit", bucket.bucket);
        }
        let total: i64 = topology.streams.iter().map(|s| s.max_bytes).sum::<i64>()
            + topology.buckets.iter().map(|b| b.max_bytes).sum::<i64>();
        assert!(
            total <= max_file_store(),
            "the limits add up to {total} bytes, more than max_file_store"
        );
    }

    #[test]
    fn claims_outlive_every_wait_they_guard_and_per_request_subjects_expire_within_a_day() {
        let subjects = Subjects::new("wingman").unwrap();
        let topology = Topology::declared(&subjects, &TopologyOverrides::default());
        // A claim must outlive the waits the workers check at start (a human's answer, a
        // token's life: `claims::ensure_outlives`) within the claims' horizon, at their
        // defaults; a message older than that is refused (`bus::consume`), so the claims need
        // not outlive the streams.
        let defaults =
            crate::settings::IntakeSettings::default().approval_ttl + Duration::from_secs(600);
        for declared in ["wingman_claims", "wingman_approvals"] {
            let bucket = topology.bucket(declared, &subjects).unwrap();
            let horizon =
                crate::bus::consume::claims_horizon(Duration::from_secs(bucket.max_age_secs));
            assert!(
                defaults < horizon,
                "{declared} keeps a key {}s: the default waits ({defaults:?}) outlast it",
                bucket.max_age_secs
            );
            assert!(
                bucket.max_age_secs <= 86_400,
                "{declared} keeps its per-request keys longer than a day"
            );
        }
        for name in ["WINGMAN_STATUS", "WINGMAN_OUTPUT"] {
            let stream = topology.streams.iter().find(|s| s.name == name).unwrap();
            assert!(
                stream.max_age <= Duration::from_secs(86_400),
                "{name} keeps its per-request subjects longer than a day"
            );
        }
        // The live rollout flags never expire (a lost key would reset them).
        let rollout = topology.bucket("wingman_rollout", &subjects).unwrap();
        assert_eq!(rollout.max_age_secs, 0);
    }

    #[test]
    fn request_retention_caps_only_the_homes_of_per_request_subjects() {
        let subjects = Subjects::new("wingman").unwrap();
        let declared = Topology::declared(&subjects, &TopologyOverrides::default());
        let overrides = TopologyOverrides {
            request_retention: Some(Duration::from_secs(300)),
            ..TopologyOverrides::default()
        };
        let capped = Topology::declared(&subjects, &overrides);
        for (before, after) in declared.streams.iter().zip(&capped.streams) {
            if ["WINGMAN_STATUS", "WINGMAN_OUTPUT"].contains(&after.name.as_str()) {
                assert_eq!(after.max_age, Duration::from_secs(300), "{}", after.name);
                assert!(after.duplicate_window <= after.max_age, "{}", after.name);
            } else {
                assert_eq!(
                    after.max_age, before.max_age,
                    "{} keeps its age",
                    after.name
                );
            }
        }
        for (before, after) in declared.buckets.iter().zip(&capped.buckets) {
            let expected =
                if after.bucket == "wingman_claims" || after.bucket == "wingman_approvals" {
                    300
                } else {
                    before.max_age_secs
                };
            assert_eq!(after.max_age_secs, expected, "{}", after.bucket);
        }
    }

    #[test]
    fn overrides_replace_ack_wait_and_replicas() {
        let subjects = Subjects::new("wt_x").unwrap();
        let overrides = TopologyOverrides {
            ack_wait: Some(Duration::from_secs(2)),
            replicas: Some(3),
            max_bytes: Some(1024),
            request_retention: None,
        };
        let topology = Topology::declared(&subjects, &overrides);
        assert!(
            topology
                .consumers
                .iter()
                .all(|c| c.config.ack_wait == Duration::from_secs(2))
        );
        assert!(
            topology
                .streams
                .iter()
                .all(|s| s.num_replicas == 3 && s.name.starts_with("WT_X_"))
        );
        assert!(topology.buckets.iter().all(|b| b.replicas == 3));
        assert!(topology.streams.iter().all(|s| s.max_bytes == 1024));
        assert!(topology.buckets.iter().all(|b| b.max_bytes == 1024));
    }
}

//! The NATS JetStream bus: subjects, the declared topology, publishing and the consume loop.

pub mod consume;
pub mod publish;
pub mod reply;
pub mod status_feed;
pub mod step;
pub mod subjects;
pub mod topology;

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::PullConsumer};
use backon::{BackoffBuilder, ExponentialBuilder, Retryable};

use crate::config::NatsSettings;
use crate::envelope::{Envelope, RequestId};
use crate::events::ExecutionOutput;
use crate::principal::Principal;
use subjects::Subjects;
use topology::Topology;

/// A connection to the bus with the names of this deployment.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub subjects: Subjects,
    pub topology: Topology,
    /// Who this connection submits as: its NATS user, or anonymous without credentials
    /// (requests go to `subjects.submitted(&bus.principal)`).
    pub principal: Principal,
}

impl Bus {
    /// Connects (retrying with backoff for a while), and reconnects with jittered backoff.
    pub async fn connect(settings: &NatsSettings, name: &str) -> anyhow::Result<Self> {
        let subjects = Subjects::new(&settings.prefix)?;
        let topology = Topology::declared(&subjects, &settings.overrides);
        let connect = || async {
            let mut options = async_nats::ConnectOptions::new()
                .name(name)
                .reconnect_delay_callback(reconnect_delay);
            if let Some(credentials) = &settings.credentials {
                options = options
                    .user_and_password(credentials.user.clone(), credentials.password().to_string())
                    .custom_inbox_prefix(credentials.inbox_prefix());
            }
            // `NATS_URL` may list the nodes of a cluster, comma-separated.
            let servers: Vec<&str> = settings.url.split(',').map(str::trim).collect();
            options.connect(servers).await
        };
        let client = connect
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_secs(2))
                    .with_max_times(settings.connect_attempts)
                    .with_jitter(),
            )
            .notify(
                |error, delay| tracing::warn!(%error, ?delay, "NATS not reachable yet; retrying"),
            )
            .await
            .with_context(|| format!("connect to NATS at {}", settings.url))?;
        let js = jetstream::new(client.clone());
        let principal = settings
            .credentials
            .as_ref()
            .map_or(Principal::Anonymous, |credentials| {
                Principal::Nats(credentials.user.clone())
            });
        Ok(Self {
            client,
            js,
            subjects,
            topology,
            principal,
        })
    }

    /// Creates or updates the declared streams, consumers and buckets.
    pub async fn ensure_topology(&self) -> anyhow::Result<()> {
        self.topology.ensure(&self.js).await
    }

    /// The durable pull consumer declared for `durable`.
    pub async fn consumer(&self, durable: &str) -> anyhow::Result<PullConsumer> {
        let def = self.topology.consumer(durable)?;
        let stream = self
            .js
            .get_stream(&def.stream)
            .await
            .with_context(|| format!("open stream {}", def.stream))?;
        stream
            .get_consumer(durable)
            .await
            .map_err(|error| anyhow::anyhow!("open consumer {durable} on {}: {error}", def.stream))
    }

    /// The stream holding `subject`'s messages, by its declared short name (`status`, …).
    pub async fn stream(&self, declared: &str) -> anyhow::Result<jetstream::stream::Stream> {
        let name = self.subjects.localize_name(declared);
        self.js
            .get_stream(&name)
            .await
            .with_context(|| format!("open stream {name}"))
    }
}

impl Bus {
    /// What request `request_id`, submitted by `principal`, printed when it ran, if anything:
    /// the last message on `wingman.output.<principal>.<id>`. A publisher's NATS user may read
    /// its own output subjects only, so this reads by subject (`DIRECT.GET`), without the
    /// stream's info. Kept a day; the audit log keeps the record.
    pub async fn output(
        &self,
        principal: &Principal,
        request_id: RequestId,
    ) -> anyhow::Result<Option<String>> {
        let name = self.subjects.localize_name("WINGMAN_OUTPUT");
        let stream = self
            .js
            .get_stream_no_info(&name)
            .await
            .with_context(|| format!("open stream {name}"))?;
        let subject = self.subjects.output(principal, request_id);
        match stream.direct_get_last_for_subject(&subject).await {
            Ok(message) => {
                let envelope: Envelope<ExecutionOutput> =
                    serde_json::from_slice(&message.payload).context("decode the output")?;
                Ok(Some(envelope.body.output))
            }
            Err(error) if error.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                Ok(None)
            }
            Err(error) => Err(anyhow::anyhow!(
                "read the output of {request_id} on {subject}: {error}"
            )),
        }
    }
}

fn reconnect_delay(attempts: usize) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempts)
        .unwrap_or(Duration::from_secs(5))
}

//! The pipeline's JetStream side as the server counts it: each consumer's info, waiting
//! until every consumer is drained, and the messages stored and delivered so far.

use std::time::Duration;

use async_nats::jetstream;

use crate::harness::Pipeline;

impl Pipeline {
    /// Every consumer of this pipeline's topology: (durable name, its info).
    /// The durable consumers a worker reads: the bench runs without Telegram, so the approvals
    /// worker does not start the prompt-updates consumer (its backlog is nobody's work).
    pub async fn consumers(&self) -> anyhow::Result<Vec<(String, jetstream::consumer::Info)>> {
        let subjects = wingman::bus::subjects::Subjects::new(&self.prefix)?;
        let topology = wingman::bus::topology::Topology::declared(&subjects, &Default::default());
        let mut out = Vec::new();
        for def in &topology.consumers {
            let name = def.config.durable_name.clone().unwrap_or_default();
            if name == wingman::bus::topology::PROMPT_UPDATES {
                continue;
            }
            let mut consumer: jetstream::consumer::PullConsumer =
                self.js.get_consumer_from_stream(&name, &def.stream).await?;
            out.push((name, consumer.info().await?.clone()));
        }
        Ok(out)
    }

    /// Waits until every consumer has nothing pending and nothing awaiting an ack (checked
    /// twice in a row, 50 ms apart); returns how long that took.
    pub async fn drain(&self, patience: Duration) -> anyhow::Result<Duration> {
        let started = std::time::Instant::now();
        let mut quiet = 0;
        while quiet < 2 {
            let backlog: u64 = self
                .consumers()
                .await?
                .iter()
                .map(|(_, info)| info.num_pending + info.num_ack_pending as u64)
                .sum();
            quiet = if backlog == 0 { quiet + 1 } else { 0 };
            anyhow::ensure!(
                started.elapsed() < patience,
                "the consumers still hold {backlog} messages after {patience:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(started.elapsed())
    }

    /// (messages stored, deliveries to durable consumers) so far in this pipeline's streams
    /// and KV buckets, from the server's own counts.
    pub async fn message_counts(&self) -> anyhow::Result<(u64, u64)> {
        let subjects = wingman::bus::subjects::Subjects::new(&self.prefix)?;
        let topology = wingman::bus::topology::Topology::declared(&subjects, &Default::default());
        let mut names: Vec<String> = topology
            .streams
            .iter()
            .map(|config| config.name.clone())
            .collect();
        names.extend(
            topology
                .buckets
                .iter()
                .map(|def| format!("KV_{}", def.bucket)),
        );
        let (mut stored, mut delivered) = (0, 0);
        for name in names {
            let mut stream = self.js.get_stream(&name).await?;
            stored += stream.info().await?.state.messages;
        }
        for def in &topology.consumers {
            let mut consumer: jetstream::consumer::PullConsumer = self
                .js
                .get_consumer_from_stream(
                    &def.config.durable_name.clone().unwrap_or_default(),
                    &def.stream,
                )
                .await?;
            delivered += consumer.info().await?.delivered.consumer_sequence;
        }
        Ok((stored, delivered))
    }
}

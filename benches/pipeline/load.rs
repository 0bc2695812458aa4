//! The load the benchmark drives through the pipeline: auto-decided instruction approvals as
//! fast as JetStream takes them (full load), and restarts on the real engine one at a time.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use futures::StreamExt;
use serde::Deserialize as _;
use serde_json::Value;
use uuid::Uuid;
use wingman::events::PublicStatus;
use wingman::status::Status;

use crate::bodies::restart;
use crate::containers::{docker_host, remove_container, start_container};
use crate::harness::Pipeline;
use crate::openloop::Mix;
use crate::report::{Latencies, percentiles};
use crate::watch::Watch;

/// The closed-loop phase's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FullLoad {
    pub requests: usize,
    /// Decisions durably recorded per second (first send → last commit).
    pub decisions_per_s: f64,
    pub elapsed_s: f64,
    /// Submit → status event and submit → commit: at full load, these measure the backlog.
    pub visible: Latencies,
    pub durable: Latencies,
}

/// Publishes `body` on `subject` with its request id as the message id; returns the ack to
/// await.
async fn publish(
    js: &jetstream::Context,
    subject: &str,
    id: Uuid,
    body: &Value,
) -> anyhow::Result<jetstream::context::PublishAckFuture> {
    Ok(js
        .send_publish(
            subject.to_string(),
            PublishMessage::build()
                .payload(body.to_string().into())
                .message_id(id.to_string()),
        )
        .await?)
}

impl Pipeline {
    fn submitted_subject(&self) -> String {
        format!("{}.requests.submitted.bench", self.prefix)
    }

    /// How many of `ids` have a decision recorded in Postgres: one index probe each, so the
    /// check costs the same whatever the table holds (a count of the whole table read 1.8 GB
    /// twice inside the measured CPU of a run with 1 M rows preloaded).
    pub async fn recorded_of(&self, ids: &[Uuid]) -> anyhow::Result<usize> {
        let recorded: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM approval_requests WHERE request_id = ANY($1) AND status <> 'RECEIVED'",
        )
        .bind(ids)
        .fetch_one(&self.pool)
        .await?;
        Ok(usize::try_from(recorded).unwrap_or(0))
    }

    /// Submits `count` instruction approvals as fast as JetStream acks them (256 in flight,
    /// a closed loop: full load) and waits until each decision is committed in Postgres;
    /// throughput ends at the last commit. Its latencies measure the backlog, not latency.
    pub async fn decisions(&self, watch: &Watch, count: usize) -> anyhow::Result<FullLoad> {
        let subject = self.submitted_subject();
        let mix = Mix::default();
        let mut sent = Vec::with_capacity(count);
        let started = Instant::now();
        let mut acks = futures::stream::FuturesUnordered::new();
        for index in 0..count {
            let id = Uuid::now_v7();
            let (body, _) = mix.body(id, index as u64);
            sent.push((id, Instant::now()));
            acks.push(publish(&self.js, &subject, id, &body).await?.into_future());
            if acks.len() >= 256 {
                acks.next().await.transpose()?;
            }
        }
        while acks.next().await.transpose()?.is_some() {}
        let ids: Vec<Uuid> = sent.iter().map(|(id, _)| *id).collect();
        watch.wait_durable(&ids, Duration::from_secs(60)).await;
        let marks = watch.take(&ids);
        let last_commit = marks.iter().filter_map(|mark| mark.durable).max();
        let elapsed = last_commit.map_or(started.elapsed(), |at| at - started);
        let recorded = self.recorded_of(&ids).await?;
        let since = |at: Option<Instant>, sent: Instant| {
            at.map(|at| at.saturating_duration_since(sent).as_secs_f64() * 1e3)
        };
        let visible: Vec<f64> = sent
            .iter()
            .zip(&marks)
            .filter_map(|((_, at), mark)| since(mark.visible, *at))
            .collect();
        let durable: Vec<f64> = sent
            .iter()
            .zip(&marks)
            .filter_map(|((_, at), mark)| since(mark.durable, *at))
            .collect();
        anyhow::ensure!(
            recorded == count && durable.len() == count,
            "of {count} requests, Postgres holds {recorded} decisions and {} commits were seen",
            durable.len()
        );
        Ok(FullLoad {
            requests: count,
            decisions_per_s: count as f64 / elapsed.as_secs_f64(),
            elapsed_s: elapsed.as_secs_f64(),
            visible: percentiles(visible, elapsed),
            durable: percentiles(durable, elapsed),
        })
    }

    /// `count` well-explained restarts of one container in dev (auto-approved, executed),
    /// one after another.
    pub async fn executions(&self, count: usize) -> anyhow::Result<Latencies> {
        let name = start_container("wb")?;
        let subject = self.submitted_subject();
        let started = Instant::now();
        let mut millis = Vec::new();
        for _ in 0..count {
            let id = Uuid::now_v7();
            let mut status = self
                .client
                .subscribe(format!("{}.status.{id}", self.prefix))
                .await?;
            let sent = Instant::now();
            publish(&self.js, &subject, id, &restart(id, "bench", &name))
                .await?
                .await?;
            loop {
                let message = tokio::time::timeout(Duration::from_secs(60), status.next())
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("status closed"))?;
                let event: Value = serde_json::from_slice(&message.payload)?;
                match PublicStatus::deserialize(&event["status"]).ok() {
                    Some(PublicStatus::Request(Status::Succeeded)) => break,
                    Some(
                        other @ (PublicStatus::Request(
                            Status::Failed
                            | Status::Indeterminate
                            | Status::AutoRejected
                            | Status::Pending,
                        )
                        | PublicStatus::Refused),
                    ) => anyhow::bail!("bench restart ended {other}: {event}"),
                    _ => {}
                }
            }
            millis.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
        remove_container(&name);
        Ok(percentiles(millis, started.elapsed()))
    }
}

/// `docker <verb> <container>` `count` times straight through the Docker Engine API
/// (bollard, what the gateway uses) on a container of its own, with nothing around it: the
/// baseline of the gateway's overhead.
pub async fn raw_calls(verb: &str, count: usize) -> anyhow::Result<Latencies> {
    let name = start_container("wr")?;
    let engine = wingman::engine::Engine::connect(Some(&docker_host())).await?;
    let operation = wingman::docker::parse_command_line(&format!("docker {verb} {name}"))?;
    let limits = wingman::engine::Limits::default();
    let started = Instant::now();
    let mut millis = Vec::with_capacity(count);
    for _ in 0..count {
        let began = Instant::now();
        let result = engine.perform(&operation, &limits).await?;
        anyhow::ensure!(result.ok, "raw {verb} failed: {result:?}");
        millis.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    remove_container(&name);
    Ok(percentiles(millis, started.elapsed()))
}

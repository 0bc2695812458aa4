//! The load the benchmark drives through the pipeline: auto-decided instruction approvals as
//! fast as JetStream takes them, the same at a fixed rate, and restarts on the real engine.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::harness::Pipeline;
use crate::{Latencies, percentiles};

/// A well-explained instruction approval (no command): the validator auto-approves it.
pub fn instruction(id: Uuid, requester: &str, environment: &str, container: &str) -> Value {
    json!({
        "request_id": id, "requester": requester, "environment": environment,
        "title": format!("Restart the container {container} to reload its config"),
        "description": format!("{container} caches its config at start and the log level changed, so it must restart. \
            Only {container} is touched. Rollback: docker start {container}. Verify: docker inspect shows {container} running."),
    })
}

/// The same request with the command: auto-approved in dev, then executed by the gateway.
pub fn restart(id: Uuid, requester: &str, container: &str) -> Value {
    let mut body = instruction(id, requester, "dev", container);
    body["command"] = Value::String(format!("docker restart {container}"));
    body
}

/// Starts a long-running test container on the private engine; returns its name.
pub fn start_container(prefix: &str) -> anyhow::Result<String> {
    let name = format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let created = Command::new("docker")
        .args(["-H", &docker_host(), "run", "-d", "--name", &name])
        .args(["--network", "none", "--init", "wingman-test/busybox"])
        .args(["sleep", "3600"])
        .output()?;
    anyhow::ensure!(
        created.status.success(),
        "start the container {name}: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    Ok(name)
}

pub fn remove_container(name: &str) {
    let _ = Command::new("docker")
        .args(["-H", &docker_host(), "rm", "-f", name])
        .output();
}

pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .unwrap_or_else(|_| "unix:///var/run/wingman-docker/docker.sock".into())
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

/// Records when each request's decision (AUTO_APPROVED, AUTO_REJECTED or PENDING) reached
/// the status subject, until `count` are in or nothing came for a minute.
fn collect_decisions(
    mut status: async_nats::Subscriber,
    count: usize,
) -> JoinHandle<HashMap<String, Instant>> {
    tokio::spawn(async move {
        let mut decided: HashMap<String, Instant> = HashMap::new();
        while decided.len() < count {
            let Ok(Some(message)) =
                tokio::time::timeout(Duration::from_secs(60), status.next()).await
            else {
                break;
            };
            let event: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
            if matches!(
                event["status"].as_str(),
                Some("AUTO_APPROVED" | "AUTO_REJECTED" | "PENDING")
            ) {
                decided
                    .entry(event["request_id"].as_str().unwrap_or_default().to_string())
                    .or_insert_with(Instant::now);
            }
        }
        decided
    })
}

fn latencies_ms(
    sent_at: &HashMap<String, Instant>,
    decided: &HashMap<String, Instant>,
) -> Vec<f64> {
    decided
        .iter()
        .filter_map(|(id, at)| {
            sent_at
                .get(id)
                .map(|sent| at.duration_since(*sent).as_secs_f64() * 1000.0)
        })
        .collect()
}

impl Pipeline {
    fn submitted_subject(&self) -> String {
        format!("{}.requests.submitted.bench", self.prefix)
    }

    async fn status_feed(&self) -> anyhow::Result<async_nats::Subscriber> {
        Ok(self
            .client
            .subscribe(format!("{}.status.>", self.prefix))
            .await?)
    }

    /// How many requests have a decision recorded in Postgres.
    pub async fn recorded_decisions(&self) -> anyhow::Result<usize> {
        let recorded: i64 =
            sqlx::query_scalar("SELECT count(*) FROM approval_requests WHERE status <> 'RECEIVED'")
                .fetch_one(&self.pool)
                .await?;
        Ok(usize::try_from(recorded).unwrap_or(0))
    }

    /// Decisions the recorder has committed, from its own counter (cheap to poll, unlike a
    /// count over the table, which would add the bench's queries to the load it measures).
    async fn committed_decisions(&self) -> usize {
        self.metric_sum(
            "recorder",
            "audit_events_recorded_total{kind=\"request_validated\"",
        )
        .await as usize
    }

    /// Submits `count` instruction approvals as fast as JetStream acks them (256 in flight)
    /// and waits until each decision is in Postgres; `elapsed` ends at the last one.
    pub async fn decisions(&self, count: usize) -> anyhow::Result<Latencies> {
        let already = self.committed_decisions().await;
        let in_postgres = self.recorded_decisions().await?;
        let collector = collect_decisions(self.status_feed().await?, count);
        let subject = self.submitted_subject();
        let mut sent_at = HashMap::with_capacity(count);
        let started = Instant::now();
        let mut acks = futures::stream::FuturesUnordered::new();
        for index in 0..count {
            let id = Uuid::now_v7();
            let body = instruction(
                id,
                "bench",
                ["dev", "test", "prd"][index % 3],
                "billing-cache",
            );
            sent_at.insert(id.to_string(), Instant::now());
            acks.push(publish(&self.js, &subject, id, &body).await?.into_future());
            if acks.len() >= 256 {
                acks.next().await.transpose()?;
            }
        }
        while acks.next().await.transpose()?.is_some() {}
        while self.committed_decisions().await - already < count {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "only {} of {count} decisions recorded after 10 min",
                self.committed_decisions().await - already
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let elapsed = started.elapsed();
        let recorded = self.recorded_decisions().await? - in_postgres;
        anyhow::ensure!(
            recorded == count,
            "the recorder counted {count} decisions but Postgres holds {recorded}"
        );
        let decided = collector.await?;
        Ok(percentiles(latencies_ms(&sent_at, &decided), elapsed))
    }

    /// Submits instruction approvals at a fixed `rate` per second for `seconds`; submit →
    /// decision latency at that load (the decision's arrival on the status subject).
    pub async fn paced(&self, rate: u32, seconds: u32) -> anyhow::Result<Latencies> {
        let count = (rate * seconds) as usize;
        let collector = collect_decisions(self.status_feed().await?, count);
        let subject = self.submitted_subject();
        let (acks_to_check, mut acks) =
            tokio::sync::mpsc::unbounded_channel::<jetstream::context::PublishAckFuture>();
        let checker = tokio::spawn(async move {
            while let Some(ack) = acks.recv().await {
                ack.await?;
            }
            anyhow::Ok(())
        });
        let mut sent_at = HashMap::with_capacity(count);
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let started = Instant::now();
        for _ in 0..count {
            ticker.tick().await;
            let id = Uuid::now_v7();
            let body = instruction(id, "bench", "test", "billing-cache");
            sent_at.insert(id.to_string(), Instant::now());
            let _ = acks_to_check.send(publish(&self.js, &subject, id, &body).await?);
        }
        let submitting = started.elapsed();
        drop(acks_to_check);
        checker.await??;
        let decided = collector.await?;
        anyhow::ensure!(
            decided.len() == count,
            "only {} of {count} paced requests were decided",
            decided.len()
        );
        Ok(percentiles(latencies_ms(&sent_at, &decided), submitting))
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
                match event["status"].as_str() {
                    Some("SUCCEEDED") => break,
                    Some(
                        other @ ("FAILED" | "INDETERMINATE" | "REFUSED" | "AUTO_REJECTED"
                        | "PENDING"),
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

/// The same restart `count` times straight through the Docker Engine API (bollard, what the
/// gateway uses), with nothing around it: the baseline of the gateway's overhead.
pub async fn raw_restarts(count: usize) -> anyhow::Result<Latencies> {
    let name = start_container("wr")?;
    let engine = wingman::engine::Engine::connect(Some(&docker_host())).await?;
    let operation = wingman::docker::parse_command_line(&format!("docker restart {name}"))?;
    let limits = wingman::engine::Limits::default();
    let started = Instant::now();
    let mut millis = Vec::with_capacity(count);
    for _ in 0..count {
        let began = Instant::now();
        let result = engine.perform(&operation, &limits).await?;
        anyhow::ensure!(result.ok, "raw restart failed: {result:?}");
        millis.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    remove_container(&name);
    Ok(percentiles(millis, started.elapsed()))
}

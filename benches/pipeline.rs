//! The pipeline benchmark: `cargo build --release --workspace --bins && cargo bench --bench
//! pipeline [-- --quick] [-- --requests N]`.
//!
//! 1. The raw floor on the same NATS server: JetStream publish with ack, then consume + ack,
//!    of 512-byte messages.
//! 2. The pipeline: real worker processes (intake, validator, approvals, authority, gateway,
//!    recorder) under a private subject prefix and a fresh database; N auto-decided requests
//!    (instruction approvals, validated) and a few executing ones (a restart on the real Docker
//!    Engine). Prints end-to-end throughput of decisions durably recorded in Postgres, submit
//!    → decision and submit → executed latency (p50/p99/max), the ratio to the raw floor, each
//!    stage's handling latency (from the workers' histograms), and each worker's RSS.
//!
//! Needs what the tests need (scripts/test starts it): NATS on 127.0.0.1:4222, Postgres on
//! 127.0.0.1:5432, and the private Docker Engine with the test image.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, stream};
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

const NATS: &str = "nats://127.0.0.1:4222";
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
const WORKERS: [(&str, u16); 6] = [
    ("intake", 0),
    ("validator", 0),
    ("approvals", 0),
    ("authority", 0),
    ("gateway", 0),
    ("recorder", 0),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let requests: usize = value_of(&args, "--requests").unwrap_or(if quick { 300 } else { 5000 });
    let executions: usize = value_of(&args, "--executions").unwrap_or(if quick { 3 } else { 20 });
    println!(
        "wingman pipeline benchmark ({} mode): {requests} auto-decided requests, {executions} executions",
        if quick { "quick" } else { "full" }
    );

    let floor = raw_floor(if quick { 5_000 } else { 50_000 }).await?;
    println!(
        "raw floor (JetStream, 512 B): publish+ack {:.0} msg/s, consume+ack {:.0} msg/s",
        floor.0, floor.1
    );

    let run = Pipeline::start().await?;
    let idle_rss = run.rss();
    let decided = run.decisions(requests).await?;
    let executed = run.executions(executions).await?;
    let stages = run.stage_latencies().await;
    let peak_rss = run.rss_peak();
    run.stop().await;

    println!();
    println!(
        "end-to-end: {:.0} decisions/s durably recorded ({requests} in {:.2} s); {:.1} % of the raw publish floor",
        decided.throughput,
        decided.elapsed.as_secs_f64(),
        decided.throughput * 100.0 / floor.0
    );
    println!(
        "submit → decision:  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        decided.p50, decided.p99, decided.max
    );
    println!(
        "submit → executed:  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} restarts on the real engine)",
        executed.p50, executed.p99, executed.max, executions
    );
    println!("stage handling latency (per message, from each worker's histogram):");
    for (stage, (p50, p99)) in &stages {
        println!("  {stage:<10} p50 ≤ {p50:>8.4} s  p99 ≤ {p99:>8.4} s");
    }
    println!("worker RSS (MiB):       idle   peak");
    for (name, _) in WORKERS {
        println!(
            "  {name:<12}       {:>6.1} {:>6.1}",
            idle_rss.get(name).copied().unwrap_or(0.0),
            peak_rss.get(name).copied().unwrap_or(0.0)
        );
    }
    Ok(())
}

fn value_of<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<T> {
    args.iter()
        .position(|arg| arg == flag)
        .and_then(|index| args.get(index + 1))
        .and_then(|value| value.parse().ok())
}

/// (publish+ack msg/s, consume+ack msg/s) for `count` 512-byte messages.
async fn raw_floor(count: usize) -> anyhow::Result<(f64, f64)> {
    let client = async_nats::connect(NATS).await?;
    let js = jetstream::new(client);
    let name = format!("BENCH_FLOOR_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let subject = format!("bench.{}", name.to_lowercase());
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let payload = bytes::Bytes::from(vec![b'x'; 512]);
    let started = Instant::now();
    let mut acks = futures::stream::FuturesUnordered::new();
    for index in 0..count {
        let ack = js
            .send_publish(
                subject.clone(),
                PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(index.to_string()),
            )
            .await?;
        acks.push(ack.into_future());
        if acks.len() >= 256 {
            acks.next().await.transpose()?;
        }
    }
    while acks.next().await.transpose()?.is_some() {}
    let publish = count as f64 / started.elapsed().as_secs_f64();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("floor".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(500)
        .messages()
        .await?;
    for _ in 0..count {
        let message = messages
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("floor stream ended"))?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let consume = count as f64 / started.elapsed().as_secs_f64();
    js.delete_stream(&name).await?;
    Ok((publish, consume))
}

struct Latencies {
    throughput: f64,
    elapsed: Duration,
    p50: f64,
    p99: f64,
    max: f64,
}

fn percentiles(mut millis: Vec<f64>, elapsed: Duration) -> Latencies {
    millis.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        millis
            .get(((millis.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Latencies {
        throughput: millis.len() as f64 / elapsed.as_secs_f64(),
        elapsed,
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
    }
}

struct Pipeline {
    prefix: String,
    database: String,
    client: async_nats::Client,
    js: jetstream::Context,
    pool: sqlx::PgPool,
    children: Vec<(String, Child, u16)>,
    _keys: tempfile::TempDir,
}

impl Pipeline {
    async fn start() -> anyhow::Result<Self> {
        let id = Uuid::new_v4().simple().to_string();
        let prefix = format!("wb_{}", &id[..10]);
        let database = prefix.clone();
        let admin = sqlx::PgPool::connect(&format!("{POSTGRES}/postgres")).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&admin)
            .await?;
        let keys = tempfile::tempdir()?;
        wingman::token::write_keypair(keys.path(), "wingman")?;
        let bin = bin_dir();
        let mut children = Vec::new();
        for (index, (name, _)) in WORKERS.iter().enumerate() {
            let port = 19_600 + index as u16;
            let mut command = Command::new(bin.join(format!("wingman-{name}")));
            command
                .env("NATS_URL", NATS)
                .env("WINGMAN_SUBJECT_PREFIX", &prefix)
                .env("DATABASE_URL", format!("{POSTGRES}/{database}"))
                .env("METRICS_PORT", port.to_string())
                .env("RUST_LOG", "warn")
                .env("VALIDATION_ENABLED", "1")
                .env("VALIDATION_ROLLOUT_PERCENT", "100")
                .env("WINGMAN_CONSOLE_APPROVERS", "bench")
                .env("ALLOWED_ENVIRONMENTS", "dev")
                .env("GATEWAY_PORT", "0")
                .env(
                    "DOCKER_HOST",
                    std::env::var("DOCKER_HOST")
                        .unwrap_or_else(|_| "unix:///var/run/wingman-docker/docker.sock".into()),
                )
                .env("WINGMAN_SIGNING_KEY_FILE", keys.path().join("wingman.key"))
                .env("WINGMAN_VERIFY_KEY_FILE", keys.path().join("wingman.pub"))
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            if *name == "gateway" {
                let file = keys.path().join("api_keys.toml");
                std::fs::write(
                    &file,
                    wingman::access::entry_toml(
                        "bench",
                        "wmk_bench",
                        &[wingman::access::Role::Submit],
                    ),
                )?;
                command.env("WINGMAN_API_KEYS_FILE", file);
            }
            children.push((name.to_string(), command.spawn()?, port));
        }
        let client = async_nats::connect(NATS).await?;
        let js = jetstream::new(client.clone());
        for (_, _, port) in &children {
            wait_healthy(*port).await?;
        }
        let pool = sqlx::PgPool::connect(&format!("{POSTGRES}/{database}")).await?;
        Ok(Self {
            prefix,
            database,
            client,
            js,
            pool,
            children,
            _keys: keys,
        })
    }

    fn rss(&self) -> HashMap<&'static str, f64> {
        self.read_status("VmRSS:")
    }

    fn rss_peak(&self) -> HashMap<&'static str, f64> {
        self.read_status("VmHWM:")
    }

    fn read_status(&self, field: &str) -> HashMap<&'static str, f64> {
        let mut out = HashMap::new();
        for ((name, _), (_, child, _)) in WORKERS.iter().zip(&self.children) {
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
            let kib: f64 = status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0.0);
            out.insert(*name, kib / 1024.0);
        }
        out
    }

    /// Submits `count` instruction approvals and waits until each decision is in Postgres.
    async fn decisions(&self, count: usize) -> anyhow::Result<Latencies> {
        let mut status = self
            .client
            .subscribe(format!("{}.status.>", self.prefix))
            .await?;
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
        let mut sent_at = HashMap::with_capacity(count);
        let started = Instant::now();
        let collector = tokio::spawn(async move {
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
        });
        let mut acks = futures::stream::FuturesUnordered::new();
        for (index, id) in ids.iter().enumerate() {
            let environment = ["dev", "test", "prd"][index % 3];
            let body = json!({
                "request_id": id, "requester": "bench", "environment": environment,
                "title": "Rotate the nightly report cache of the billing service",
                "description": "The billing report cache is stale after yesterday's schema change. Rollback: restore the previous cache \
                    snapshot. Verify: the nightly report totals match the ledger and the health check is green.",
            });
            sent_at.insert(id.to_string(), Instant::now());
            let ack = self
                .js
                .send_publish(
                    format!("{}.requests.submitted", self.prefix),
                    PublishMessage::build()
                        .payload(body.to_string().into())
                        .message_id(id.to_string()),
                )
                .await?;
            acks.push(ack.into_future());
            if acks.len() >= 256 {
                acks.next().await.transpose()?;
            }
        }
        while acks.next().await.transpose()?.is_some() {}
        loop {
            let recorded: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM approval_requests WHERE status <> 'RECEIVED'",
            )
            .fetch_one(&self.pool)
            .await?;
            if recorded as usize >= count {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "only {recorded} of {count} decisions recorded after 10 min"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed();
        let decided = collector.await?;
        let millis = decided
            .iter()
            .filter_map(|(id, at)| {
                sent_at
                    .get(id)
                    .map(|sent| at.duration_since(*sent).as_secs_f64() * 1000.0)
            })
            .collect();
        Ok(percentiles(millis, elapsed))
    }

    /// `count` well-explained restarts of one container in dev (auto-approved, executed).
    async fn executions(&self, count: usize) -> anyhow::Result<Latencies> {
        let name = format!("wb-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let docker_host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/wingman-docker/docker.sock".into());
        let created = Command::new("docker")
            .args([
                "-H",
                &docker_host,
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "none",
                "--init",
                "wingman-test/busybox",
                "sleep",
                "3600",
            ])
            .output()?;
        anyhow::ensure!(
            created.status.success(),
            "start the bench container: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let started = Instant::now();
        let mut millis = Vec::new();
        for _ in 0..count {
            let id = Uuid::now_v7();
            let mut status = self
                .client
                .subscribe(format!("{}.status.{id}", self.prefix))
                .await?;
            let body = json!({
                "request_id": id, "requester": "bench", "environment": "dev", "command": format!("docker restart {name}"),
                "title": format!("Restart the container {name} to reload its config"),
                "description": format!("{name} caches its config at start and the log level changed, so it must restart. Only {name} is touched. \
                    Rollback: docker start {name}. Verify: docker inspect shows {name} running."),
            });
            let sent = Instant::now();
            self.js
                .send_publish(
                    format!("{}.requests.submitted", self.prefix),
                    PublishMessage::build()
                        .payload(body.to_string().into())
                        .message_id(id.to_string()),
                )
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
        let _ = Command::new("docker")
            .args(["-H", &docker_host, "rm", "-f", &name])
            .output();
        Ok(percentiles(millis, started.elapsed()))
    }

    /// (p50, p99) upper bounds per stage from each worker's handling histogram.
    async fn stage_latencies(&self) -> Vec<(String, (f64, f64))> {
        let mut out = Vec::new();
        for (name, _, port) in &self.children {
            let Ok(text) = reqwest_get(*port).await else {
                continue;
            };
            let mut buckets: Vec<(f64, f64)> = text
                .lines()
                .filter(|line| {
                    line.starts_with("pipeline_handle_duration_seconds_bucket{")
                        && line.contains(&format!("stage=\"{name}\""))
                })
                .filter_map(|line| {
                    let le = line.split("le=\"").nth(1)?.split('"').next()?;
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().ok()?
                    };
                    let count: f64 = line.rsplit(' ').next()?.parse().ok()?;
                    Some((le, count))
                })
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let Some(total) = buckets
                .last()
                .map(|(_, count)| *count)
                .filter(|total| *total > 0.0)
            else {
                continue;
            };
            let quantile = |q: f64| {
                buckets
                    .iter()
                    .find(|(_, count)| *count >= total * q)
                    .map_or(f64::INFINITY, |(le, _)| *le)
            };
            out.push((name.clone(), (quantile(0.5), quantile(0.99))));
        }
        out
    }

    async fn stop(mut self) {
        for (_, child, _) in &mut self.children {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        self.pool.close().await;
        if let Ok(admin) = sqlx::PgPool::connect(&format!("{POSTGRES}/postgres")).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            )))
            .execute(&admin)
            .await;
        }
        let subjects = wingman::bus::subjects::Subjects::new(&self.prefix).unwrap();
        wingman::bus::topology::Topology::declared(&subjects, &Default::default())
            .delete_all(&self.js)
            .await;
    }
}

async fn reqwest_get(port: u16) -> anyhow::Result<String> {
    Ok(reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await?
        .text()
        .await?)
}

async fn wait_healthy(port: u16) -> anyhow::Result<()> {
    for _ in 0..300 {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/health")).await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("a worker on ops port {port} never became healthy")
}

/// Where the worker binaries are: next to this bench's profile directory.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a target dir")
        .to_path_buf();
    assert!(
        dir.join("wingman-intake").exists(),
        "build the workers first: cargo build --release --workspace --bins (looked in {})",
        dir.display()
    );
    dir
}

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
//! `-- --faults` runs the fault-injection suite instead (see `faults`): it stops the machine's
//! PostgreSQL for 20 s, so it is a command to run on purpose, not part of CI.
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
    if args.iter().any(|arg| arg == "--faults") {
        return faults::run(quick).await;
    }
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

    let run = Pipeline::start(NATS).await?;
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
    nats_url: String,
    client: async_nats::Client,
    js: jetstream::Context,
    pool: sqlx::PgPool,
    children: Vec<(String, Child, u16)>,
    keys: tempfile::TempDir,
}

impl Pipeline {
    async fn start(nats_url: &str) -> anyhow::Result<Self> {
        let id = Uuid::new_v4().simple().to_string();
        let prefix = format!("wb_{}", &id[..10]);
        let database = prefix.clone();
        let admin = sqlx::PgPool::connect(&format!("{POSTGRES}/postgres")).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&admin)
            .await?;
        let keys = tempfile::tempdir()?;
        wingman::token::write_keypair(keys.path(), "wingman")?;
        let api_keys = keys.path().join("api_keys.toml");
        std::fs::write(
            &api_keys,
            wingman::access::entry_toml("bench", "wmk_bench", &[wingman::access::Role::Submit]),
        )?;
        let client = async_nats::connect(nats_url).await?;
        let js = jetstream::new(client.clone());
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy(&format!("{POSTGRES}/{database}"))?;
        let mut pipeline = Self {
            prefix,
            database,
            nats_url: nats_url.to_string(),
            client,
            js,
            pool,
            children: Vec::new(),
            keys,
        };
        for (index, (name, _)) in WORKERS.iter().enumerate() {
            let port = 19_600 + index as u16;
            let child = pipeline.spawn_worker(name, port)?;
            pipeline.children.push((name.to_string(), child, port));
        }
        for (_, _, port) in &pipeline.children {
            wait_healthy(*port).await?;
        }
        Ok(pipeline)
    }

    fn spawn_worker(&self, name: &str, port: u16) -> anyhow::Result<Child> {
        let docker_host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/wingman-docker/docker.sock".into());
        let child = Command::new(bin_dir().join(format!("wingman-{name}")))
            .env("NATS_URL", &self.nats_url)
            .env("WINGMAN_SUBJECT_PREFIX", &self.prefix)
            .env("DATABASE_URL", format!("{POSTGRES}/{}", self.database))
            .env("METRICS_PORT", port.to_string())
            .env("RUST_LOG", "error")
            .env("VALIDATION_ENABLED", "1")
            .env("VALIDATION_ROLLOUT_PERCENT", "100")
            .env("WINGMAN_CONSOLE_APPROVERS", "bench")
            .env("ALLOWED_ENVIRONMENTS", "dev")
            .env("GATEWAY_PORT", "0")
            .env("WINGMAN_ACK_WAIT_SECS", "5")
            .env("WINGMAN_GATEWAY_LEASE_SECS", "10")
            .env("WINGMAN_NATS_CONNECT_ATTEMPTS", "60")
            .env("DOCKER_HOST", docker_host)
            .env(
                "WINGMAN_SIGNING_KEY_FILE",
                self.keys.path().join("wingman.key"),
            )
            .env(
                "WINGMAN_VERIFY_KEY_FILE",
                self.keys.path().join("wingman.pub"),
            )
            .env(
                "WINGMAN_API_KEYS_FILE",
                self.keys.path().join("api_keys.toml"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(child)
    }

    /// Restarts every worker that exited (what `restart: unless-stopped` does in production).
    fn revive(&mut self) -> anyhow::Result<usize> {
        let mut revived = 0;
        for index in 0..self.children.len() {
            if self.children[index].1.try_wait()?.is_some() {
                let (name, port) = (self.children[index].0.clone(), self.children[index].2);
                self.children[index].1 = self.spawn_worker(&name, port)?;
                revived += 1;
            }
        }
        Ok(revived)
    }

    /// SIGKILLs one worker and starts it again.
    fn kill_and_restart(&mut self, name: &str) -> anyhow::Result<()> {
        let index = self
            .children
            .iter()
            .position(|(n, ..)| n == name)
            .expect("a worker");
        self.children[index].1.kill()?;
        self.children[index].1.wait()?;
        let port = self.children[index].2;
        self.children[index].1 = self.spawn_worker(name, port)?;
        Ok(())
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

/// The fault-injection suite: under a steady load, SIGKILL each worker in turn (and restart
/// it), restart nats-server, stop PostgreSQL for 20 s; then every submitted request must reach
/// its final state exactly once and the audit chain must verify.
mod faults {
    use std::sync::{Arc, Mutex};

    use super::*;

    const PORT: u16 = 14_222;

    fn start_nats(store: &std::path::Path) -> anyhow::Result<Child> {
        Ok(Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &PORT.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?)
    }

    async fn wait_port(port: u16) -> anyhow::Result<()> {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("nothing listens on {port}")
    }

    fn postgres(action: &str) -> anyhow::Result<()> {
        let version = std::fs::read_dir("/etc/postgresql")?
            .filter_map(|entry| {
                entry
                    .ok()
                    .map(|e| e.file_name().to_string_lossy().to_string())
            })
            .max()
            .ok_or_else(|| anyhow::anyhow!("no PostgreSQL cluster in /etc/postgresql"))?;
        let status = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", action])
            .status()?;
        anyhow::ensure!(status.success(), "pg_ctlcluster {action} failed");
        Ok(())
    }

    /// A publisher that retries until JetStream acks (same id: a retry is a duplicate, dropped).
    async fn submit(js: &jetstream::Context, subject: &str, id: Uuid, body: &Value) {
        loop {
            let sent = js
                .send_publish(
                    subject.to_string(),
                    PublishMessage::build()
                        .payload(body.to_string().into())
                        .message_id(id.to_string()),
                )
                .await;
            if let Ok(ack) = sent
                && tokio::time::timeout(Duration::from_secs(5), ack.into_future())
                    .await
                    .is_ok_and(|ack| ack.is_ok())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn run(quick: bool) -> anyhow::Result<()> {
        let store = tempfile::tempdir()?;
        let mut nats = start_nats(store.path())?;
        wait_port(PORT).await?;
        let url = format!("nats://127.0.0.1:{PORT}");
        let mut run = Pipeline::start(&url).await?;
        let docker_host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/wingman-docker/docker.sock".into());
        let container = format!("wf-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let created = Command::new("docker")
            .args([
                "-H",
                &docker_host,
                "run",
                "-d",
                "--name",
                &container,
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
            "start the container: {}",
            String::from_utf8_lossy(&created.stderr)
        );

        let submitted: Arc<Mutex<Vec<(Uuid, bool)>>> = Arc::default();
        let stop = tokio_util::sync::CancellationToken::new();
        let load = {
            let (js, subject, submitted, stop, container) = (
                run.js.clone(),
                format!("{}.requests.submitted", run.prefix),
                Arc::clone(&submitted),
                stop.clone(),
                container.clone(),
            );
            tokio::spawn(async move {
                let mut index = 0u64;
                while !stop.is_cancelled() {
                    let id = Uuid::now_v7();
                    let executing = index.is_multiple_of(10);
                    let mut body = json!({
                        "request_id": id, "requester": "faults", "environment": "dev",
                        "title": format!("Restart the container {container} to reload its config"),
                        "description": format!("{container} caches its config at start and the log level changed, so it must restart. \
                            Only {container} is touched. Rollback: docker start {container}. Verify: docker inspect shows {container} running."),
                    });
                    if executing {
                        body["command"] = Value::String(format!("docker restart {container}"));
                    }
                    submit(&js, &subject, id, &body).await;
                    submitted.lock().unwrap().push((id, executing));
                    index += 1;
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
            })
        };
        let pause = |seconds: u64| tokio::time::sleep(Duration::from_secs(seconds));
        pause(3).await;
        for (name, _) in WORKERS {
            println!("fault: SIGKILL wingman-{name}, then start it again");
            run.kill_and_restart(name)?;
            pause(if quick { 1 } else { 3 }).await;
            run.revive()?;
        }
        println!("fault: restart nats-server");
        nats.kill()?;
        nats.wait()?;
        pause(1).await;
        nats = start_nats(store.path())?;
        wait_port(PORT).await?;
        for _ in 0..5 {
            pause(1).await;
            run.revive()?;
        }
        println!("fault: stop PostgreSQL for 20 s");
        postgres("stop")?;
        for _ in 0..20 {
            pause(1).await;
            run.revive()?;
        }
        postgres("start")?;
        pause(3).await;
        stop.cancel();
        load.await?;
        let submitted = submitted.lock().unwrap().clone();
        let executing = submitted.iter().filter(|(_, executing)| *executing).count();
        println!(
            "load stopped: {} submitted ({executing} executing); waiting for every request to settle",
            submitted.len()
        );

        let deadline = Instant::now() + Duration::from_secs(300);
        let (mut final_count, mut rows) = (0i64, 0i64);
        while Instant::now() < deadline {
            run.revive()?;
            if let Ok((f, r)) = sqlx::query_as::<_, (i64, i64)>(
                "SELECT count(*) FILTER (WHERE (command IS NULL AND status <> 'RECEIVED')
                                          OR status IN ('SUCCEEDED', 'FAILED', 'INDETERMINATE')),
                        count(*) FROM approval_requests",
            )
            .fetch_one(&run.pool)
            .await
            {
                (final_count, rows) = (f, r);
                if final_count as usize == submitted.len() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let duplicates: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT request_id, kind FROM audit_events
               WHERE kind IN ('request_received', 'request_validated', 'token_minted', 'execution_started', 'execution_finished')
               GROUP BY 1, 2 HAVING count(*) > 1) AS twice",
        )
        .fetch_one(&run.pool)
        .await?;
        let double_executions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT request_id FROM executions GROUP BY 1 HAVING count(*) > 1) AS twice",
        )
        .fetch_one(&run.pool)
        .await?;
        let indeterminate: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM approval_requests WHERE status = 'INDETERMINATE'",
        )
        .fetch_one(&run.pool)
        .await?;
        let chain = wingman::store::chain::verify(&run.pool).await?;
        let lost = submitted.len() as i64 - rows;
        println!(
            "fault suite: submitted {}, final {final_count}, lost {lost}, duplicates {duplicates}, double executions {double_executions}, \
             indeterminate {indeterminate}, audit chain {} ({} rows)",
            submitted.len(),
            match &chain.broken {
                None => "verifies".to_string(),
                Some((seq, problem)) => format!("BROKEN at {seq}: {problem}"),
            },
            chain.rows,
        );
        let _ = Command::new("docker")
            .args(["-H", &docker_host, "rm", "-f", &container])
            .output();
        run.stop().await;
        nats.kill()?;
        let _ = nats.wait();
        anyhow::ensure!(
            lost == 0
                && duplicates == 0
                && double_executions == 0
                && chain.broken.is_none()
                && final_count as usize == submitted.len(),
            "the fault suite found a problem (see the line above)"
        );
        println!("{} passed, 0 failed", submitted.len());
        Ok(())
    }
}

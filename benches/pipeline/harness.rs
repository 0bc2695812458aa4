//! The pipeline under test: real worker processes under a private subject prefix and a
//! fresh database, their ops ports, and their resident memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use uuid::Uuid;
use wingman::metrics;

use crate::{WORKERS, postgres};

pub struct Pipeline {
    pub prefix: String,
    pub database: String,
    pub nats_url: String,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub pool: sqlx::PgPool,
    /// (worker name, process, ops port)
    pub children: Vec<(String, Child, u16)>,
    pub keys: tempfile::TempDir,
}

/// Workers never outlive the bench: an error or a panic anywhere after the start would
/// otherwise leave them running, holding the ops ports the next run's workers need.
impl Drop for Pipeline {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Pipeline {
    pub async fn start(nats_url: &str) -> anyhow::Result<Self> {
        let id = Uuid::new_v4().simple().to_string();
        let prefix = format!("wb_{}", &id[..10]);
        let database = prefix.clone();
        let admin = sqlx::PgPool::connect(&format!("{}/postgres", postgres())).await?;
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
            .connect_lazy(&format!("{}/{database}", postgres()))?;
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
        // The schema first, as `wingman migrate` does before the workers in production: the
        // recorder migrates too, but its health answers before that ends, and the bench's
        // own triggers (`watch`) need the tables (the soak met them missing).
        wingman::store::migrate(&pipeline.pool).await?;
        for (index, name) in WORKERS.iter().enumerate() {
            let port = 19_600 + index as u16;
            let child = pipeline.spawn_worker(name, port)?;
            pipeline.children.push((name.to_string(), child, port));
        }
        // On an error the pipeline is dropped here, and its workers with it (`Drop`).
        for (name, child, port) in &mut pipeline.children {
            wait_healthy(name, child, *port).await?;
        }
        // A worker that exited cannot have answered: another process held its port.
        let exited = pipeline.exited()?;
        anyhow::ensure!(
            exited.is_empty(),
            "workers exited at start: {} (WINGMAN_BENCH_LOGS=<dir> keeps their logs)",
            exited.join(", ")
        );
        Ok(pipeline)
    }

    /// Starts one worker. Its log goes nowhere, or with `WINGMAN_BENCH_LOGS=<dir>` to
    /// `<dir>/wingman-<name>.log` (appended across restarts) at `WINGMAN_BENCH_RUST_LOG`
    /// (default `error`).
    pub fn spawn_worker(&self, name: &str, port: u16) -> anyhow::Result<Child> {
        let log = match std::env::var_os("WINGMAN_BENCH_LOGS") {
            Some(dir) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(std::path::Path::new(&dir).join(format!("wingman-{name}.log")))?,
            ),
            None => Stdio::null(),
        };
        let child = crate::nats::dies_with_the_bench(&mut Command::new(
            bin_dir().join(format!("wingman-{name}")),
        ))
        .env("NATS_URL", &self.nats_url)
        .env("WINGMAN_SUBJECT_PREFIX", &self.prefix)
        .env("DATABASE_URL", format!("{}/{}", postgres(), self.database))
        .env("METRICS_PORT", port.to_string())
        .env(
            "RUST_LOG",
            std::env::var("WINGMAN_BENCH_RUST_LOG").unwrap_or_else(|_| "error".into()),
        )
        .env("VALIDATION_ENABLED", "1")
        .env("VALIDATION_ROLLOUT_PERCENT", "100")
        .env("ALLOWED_ENVIRONMENTS", "dev")
        .env("GATEWAY_PORT", "0")
        .env("WINGMAN_ACK_WAIT_SECS", "5")
        .env("WINGMAN_GATEWAY_LEASE_SECS", "10")
        .env("WINGMAN_NATS_CONNECT_ATTEMPTS", "60")
        .env("DOCKER_HOST", crate::containers::docker_host())
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
        .stderr(log)
        .spawn()?;
        Ok(child)
    }

    /// Restarts every worker that exited (what `restart: unless-stopped` does in production).
    pub fn revive(&mut self) -> anyhow::Result<usize> {
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

    /// The workers that exited since the last call (they are not restarted).
    pub fn exited(&mut self) -> anyhow::Result<Vec<String>> {
        let mut exited = Vec::new();
        for (name, child, _) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                exited.push(format!("{name} ({status})"));
            }
        }
        Ok(exited)
    }

    /// SIGKILLs one worker and starts it again.
    pub fn kill_and_restart(&mut self, name: &str) -> anyhow::Result<()> {
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

    pub fn database_url(&self) -> String {
        format!("{}/{}", postgres(), self.database)
    }

    /// The processes that serve this pipeline, by group: each worker, the nats-server
    /// listening on this pipeline's port, and the PostgreSQL processes that serve its
    /// database (its backends, the postmaster and the background processes). Anything else
    /// on the machine (other databases' backends, other nats-servers) is "everything else".
    pub async fn process_groups(&self) -> Vec<(String, u32)> {
        let mut groups: Vec<(String, u32)> = self
            .pids()
            .into_iter()
            .map(|(name, pid)| (format!("wingman-{name}"), pid))
            .collect();
        let port = self
            .nats_url
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or(4222);
        if let Some(pid) = crate::procs::listening_pid(port) {
            groups.push((crate::cpu::NATS_SERVER.into(), pid));
        }
        let postgres: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR datname IS NULL",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        let mut postgres: Vec<u32> = postgres.into_iter().map(|pid| pid as u32).collect();
        if let Some(postmaster) = postgres.first().and_then(|pid| crate::procs::parent(*pid)) {
            postgres.push(postmaster);
        }
        groups.extend(
            postgres
                .into_iter()
                .map(|pid| (crate::cpu::POSTGRES.to_string(), pid)),
        );
        groups
    }

    /// (worker name, pid) of every worker process.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .map(|(name, child, _)| (name.clone(), child.id()))
            .collect()
    }

    pub fn rss(&self) -> HashMap<&'static str, f64> {
        self.read_status("VmRSS:")
    }

    /// The anonymous part of each worker's RSS (heap, stacks), MiB.
    pub fn rss_anon(&self) -> HashMap<&'static str, f64> {
        self.read_status("RssAnon:")
    }

    pub fn rss_peak(&self) -> HashMap<&'static str, f64> {
        self.read_status("VmHWM:")
    }

    fn read_status(&self, field: &str) -> HashMap<&'static str, f64> {
        WORKERS
            .iter()
            .zip(&self.children)
            .map(|(name, (_, child, _))| (*name, crate::procs::status_mib(child.id(), field)))
            .collect()
    }

    /// (p50, p99) upper bounds per stage from each worker's handling histogram.
    pub async fn stage_latencies(&self) -> Vec<(String, (f64, f64))> {
        let mut out = Vec::new();
        for (name, ..) in &self.children {
            let filter = format!("stage=\"{name}\"");
            if let Some(quantiles) = self
                .histogram(name, metrics::HANDLE_DURATION, &filter)
                .await
            {
                out.push((name.clone(), quantiles));
            }
        }
        out
    }

    /// One worker's `/metrics` text (empty when it does not answer).
    async fn scrape(&self, worker: &str) -> String {
        match self.children.iter().find(|(name, ..)| name == worker) {
            Some((.., port)) => reqwest_get(*port).await.unwrap_or_default(),
            None => String::new(),
        }
    }

    /// The sum of one worker's samples whose line starts with `series` (a metric name and,
    /// optionally, the start of its labels); 0 when there are none.
    pub async fn metric_sum(&self, worker: &str, series: &str) -> f64 {
        sum_of(&self.scrape(worker).await, series)
    }

    /// Mean messages per batch of each worker's stage since it started.
    pub async fn batch_sizes(&self) -> Vec<(String, f64)> {
        crate::batches::mean_batches(&self.batch_totals().await, &[])
    }

    /// Each worker's (messages, batches) handled so far, from its batch histogram.
    pub async fn batch_totals(&self) -> Vec<(String, f64, f64)> {
        let mut out = Vec::new();
        for (name, ..) in &self.children {
            let text = self.scrape(name).await;
            let sum = sum_of(&text, &format!("{}_sum", metrics::BATCH_MESSAGES));
            let count = sum_of(&text, &format!("{}_count", metrics::BATCH_MESSAGES));
            out.push((name.clone(), sum, count));
        }
        out
    }

    /// (p50, p99) upper bounds (bucket bounds) of one histogram on one worker's `/metrics`,
    /// over the series whose labels contain `filter`; None when it has no samples.
    pub async fn histogram(&self, worker: &str, metric: &str, filter: &str) -> Option<(f64, f64)> {
        quantiles(&self.buckets(worker, metric, filter).await, &[])
    }

    /// One histogram's cumulative buckets (upper bound, count), summed over the series whose
    /// labels contain `filter`.
    pub async fn buckets(&self, worker: &str, metric: &str, filter: &str) -> Vec<(f64, f64)> {
        let text = self.scrape(worker).await;
        let prefix = format!("{metric}_bucket{{");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for line in text
            .lines()
            .filter(|line| line.starts_with(&prefix) && line.contains(filter))
        {
            let parsed = (|| {
                let le = line.split("le=\"").nth(1)?.split('"').next()?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                let count: f64 = line.rsplit(' ').next()?.parse().ok()?;
                Some((le, count))
            })();
            if let Some((le, count)) = parsed {
                match buckets.iter_mut().find(|(bound, _)| *bound == le) {
                    Some((_, total)) => *total += count,
                    None => buckets.push((le, count)),
                }
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }

    pub async fn stop(mut self) {
        for (_, child, _) in &mut self.children {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        self.pool.close().await;
        if let Ok(admin) = sqlx::PgPool::connect(&format!("{}/postgres", postgres())).await {
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

pub async fn wait_healthy(name: &str, child: &mut Child, port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/health");
    let mut last = String::from("no answer");
    for _ in 0..300 {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "wingman-{name} exited at start ({status}); WINGMAN_BENCH_LOGS=<dir> keeps its log"
            );
        }
        match reqwest::get(&url).await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                last = format!(
                    "{}: {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
            }
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("wingman-{name} never became healthy on {url} in 30 s; last answer: {last}")
}

/// Where the worker binaries are: next to this bench's profile directory.
pub fn bin_dir() -> PathBuf {
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

/// (p50, p99) upper bounds of the samples recorded between two snapshots of one histogram's
/// cumulative buckets (`before` may be empty); None when none were recorded.
pub fn quantiles(after: &[(f64, f64)], before: &[(f64, f64)]) -> Option<(f64, f64)> {
    let counts: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, count)| {
            let earlier = before
                .iter()
                .find(|(bound, _)| bound == le)
                .map_or(0.0, |(_, count)| *count);
            (*le, count - earlier)
        })
        .collect();
    let total = counts
        .last()
        .map(|(_, count)| *count)
        .filter(|total| *total > 0.0)?;
    let at = |q: f64| {
        counts
            .iter()
            .find(|(_, count)| *count >= total * q)
            .map_or(f64::INFINITY, |(le, _)| *le)
    };
    Some((at(0.5), at(0.99)))
}

fn sum_of(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(series))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

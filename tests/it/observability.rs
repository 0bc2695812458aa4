//! The real observability stack around a test's pipeline: worker processes on known ops
//! ports, Debian's Prometheus scraping them with Wingman's rules, and Debian's Alertmanager
//! with the config `grafana/alertmanager/render-config` renders. Everything on loopback, in
//! temporary directories; every wait is bounded and says what it waited for.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::helpers::{TestEnv, worker_binary};

/// A free loopback port (bound and released; the child binds it a moment later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind a free loopback port")
}

/// The repository's copy of `path` (relative to the workspace root).
pub fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A binary of Debian's `prometheus` / `prometheus-alertmanager` packages.
fn debian_binary(name: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{name} is missing: scripts/test installs it (`source scripts/lib.sh; ensure_prometheus`)"
    );
    path
}

/// A worker process (`wingman-<job>`) serving `/metrics` on `port`; killed when dropped.
pub struct WorkerProcess {
    pub job: String,
    pub port: u16,
    pub child: Child,
}

/// Starts `wingman-<job>` for each job, pointed at `env`, each binding a free ops port of its
/// own choosing (`METRICS_PORT=0`; the port is read from its start-up log line, so parallel
/// tests never race for one), and waits until every one answers `/health`.
pub async fn spawn_workers(
    env: &TestEnv,
    jobs: &[&str],
    extra: &[(&str, &str)],
) -> Vec<WorkerProcess> {
    let mut workers = Vec::new();
    for job in jobs {
        let mut child = Command::new(worker_binary(&format!("wingman-{job}")))
            .envs(env.child_env())
            .env("API_PORT", "0")
            .envs(extra.iter().map(|(key, value)| (*key, *value)))
            .env("METRICS_PORT", "0")
            .env("RUST_LOG", "warn,wingman::telemetry=info")
            .env("WINGMAN_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("start wingman-{job}: {error}"));
        let port = ops_port(job, &mut child).await;
        workers.push(WorkerProcess {
            job: (*job).to_string(),
            port,
            child,
        });
    }
    for worker in &workers {
        let url = format!("http://127.0.0.1:{}/health", worker.port);
        poll(
            &format!("wingman-{} to answer {url}", worker.job),
            60,
            || async {
                reqwest::get(&url)
                    .await
                    .is_ok_and(|response| response.status().is_success())
                    .then_some(())
            },
        )
        .await;
    }
    workers
}

/// Reads the worker's stderr until it says where it serves `/metrics`; then keeps draining
/// it (printing warnings and errors, so a failing test shows them) in a background task.
async fn ops_port(job: &str, child: &mut Child) -> u16 {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let entry: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if entry["fields"]["message"] == "serving /metrics and /health" {
                return entry["fields"]["address"]
                    .as_str()
                    .and_then(|address| address.rsplit(':').next())
                    .and_then(|port| port.parse::<u16>().ok());
            }
            seen.push(line);
        }
        None
    })
    .await;
    let Ok(Some(port)) = found else {
        panic!(
            "wingman-{job} never said where it serves /metrics; its log:\n{}",
            seen.join("\n")
        );
    };
    let job = job.to_string();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("wingman-{job}: {line}");
        }
    });
    port
}

/// Polls `check` every 250 ms until it returns something, for at most `seconds`.
///
/// # Panics
/// On timeout, naming `what`.
pub async fn poll<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {seconds} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Debian's Prometheus on a free loopback port, scraping `workers` every second and
/// evaluating `rules` every second; killed when dropped.
pub struct Prometheus {
    pub url: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// `rules`: the rule file's text (the shipped one, or a test's copy of it);
    /// `alertmanager`: where fired alerts go.
    pub async fn start(
        workers: &[WorkerProcess],
        rules: &str,
        alertmanager: Option<&str>,
    ) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wingman.rules.yml"), rules).unwrap();
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n",
            dir.path().join("wingman.rules.yml").display()
        );
        if let Some(alertmanager) = alertmanager {
            config.push_str(&format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{alertmanager}\"]\n"
            ));
        }
        config.push_str("scrape_configs:\n");
        for worker in workers {
            config.push_str(&format!(
                "  - job_name: {}\n    static_configs:\n      - targets: [\"127.0.0.1:{}\"]\n",
                worker.job, worker.port
            ));
        }
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let child = Command::new(debian_binary("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus");
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        poll("Prometheus to be ready", 60, || async {
            reqwest::get(&ready)
                .await
                .is_ok_and(|response| response.status().is_success())
                .then_some(())
        })
        .await;
        Prometheus {
            url,
            _child: child,
            _dir: dir,
        }
    }

    /// An instant query's `data.result`.
    ///
    /// # Panics
    /// When Prometheus refuses the query (the error names it).
    pub async fn query(&self, query: &str) -> Vec<Value> {
        let response: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .expect("query Prometheus")
            .json()
            .await
            .expect("Prometheus answers JSON");
        assert_eq!(response["status"], "success", "{query}: {response}");
        response["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until every worker's target has been scraped successfully (`up == 1`).
    pub async fn wait_until_all_up(&self, workers: &[WorkerProcess]) {
        let jobs: Vec<&str> = workers.iter().map(|worker| worker.job.as_str()).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let up = self.query("up").await;
            let all_up = jobs.iter().all(|job| {
                up.iter()
                    .any(|series| series["metric"]["job"] == *job && series["value"][1] == "1")
            });
            if all_up {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after 90 s waiting for up == 1 for every worker ({jobs:?}); up: {up:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Debian's Alertmanager on a free loopback port, configured by the shipped
/// `grafana/alertmanager/render-config` with `settings`; no cluster port; killed when dropped.
pub struct Alertmanager {
    pub address: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub async fn start(settings: &[(&str, &str)]) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        let rendered = std::process::Command::new("sh")
            .arg(repo_path("grafana/alertmanager/render-config"))
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(settings.iter().map(|(key, value)| (*key, *value)))
            .output()
            .expect("run grafana/alertmanager/render-config");
        assert!(
            rendered.status.success(),
            "render-config: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let port = free_port();
        let child = Command::new(debian_binary("prometheus-alertmanager"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus-alertmanager");
        let address = format!("127.0.0.1:{port}");
        let ready = format!("http://{address}/-/ready");
        poll("Alertmanager to be ready", 60, || async {
            reqwest::get(&ready)
                .await
                .is_ok_and(|response| response.status().is_success())
                .then_some(())
        })
        .await;
        Alertmanager {
            address,
            _child: child,
            _dir: dir,
        }
    }
}

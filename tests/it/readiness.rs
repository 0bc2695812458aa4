//! Readiness: every worker's `/health` says "ready" only while what it works with answers.
//! Played on a test's own JetStream server, killed and started again on the same port and
//! store, with every worker a real process as compose runs it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use wingman::events::Stage;

use crate::helpers::{BusOptions, TestEnv, worker_binary};
use crate::nats_server::{free_port, nats_server_binary};

/// Every worker (binary), with the dependency its `/health` must name beside NATS.
fn every_worker() -> Vec<(String, &'static str)> {
    wingman::worker::WORKERS
        .iter()
        .map(|worker| {
            let named = match worker.stage {
                Stage::Gateway => "docker",
                Stage::Recorder | Stage::Watcher | Stage::Api => "postgres",
                _ => "consumers",
            };
            (worker.binary(), named)
        })
        .collect()
}

/// A JetStream server without users: killed, it comes back on the same port with its store.
struct JetStream {
    port: u16,
    store: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl JetStream {
    fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            store: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = std::process::Command::new(nats_server_binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(self.store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn wait_until_listening(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not start on {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for JetStream {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Running {
    name: String,
    named: &'static str,
    health: String,
    _child: Child,
}

fn spawn(env: &TestEnv, name: &str, named: &'static str, logs: &Path) -> Running {
    let ops_port = free_port();
    let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
    let child = Command::new(worker_binary(name))
        .envs(env.child_env())
        .env("METRICS_PORT", ops_port.to_string())
        .env("API_PORT", "0")
        .env("ALLOWED_ENVIRONMENTS", "dev")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("start {name}: {error}"));
    Running {
        name: name.to_string(),
        named,
        health: format!("http://127.0.0.1:{ops_port}/health"),
        _child: child,
    }
}

/// `/health`'s status code and body, or None while nothing answers on the port.
async fn health(client: &reqwest::Client, url: &str) -> Option<(u16, Value)> {
    let response = client.get(url).send().await.ok()?;
    let code = response.status().as_u16();
    Some((code, response.json().await.unwrap_or(Value::Null)))
}

/// Waits until every worker's `/health` answers `code`; the last answers on failure.
async fn wait_all(
    client: &reqwest::Client,
    workers: &[Running],
    code: u16,
    within: Duration,
    logs: &Path,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut answers = Vec::new();
        for worker in workers {
            answers.push((worker.name.as_str(), health(client, &worker.health).await));
        }
        if answers
            .iter()
            .all(|(_, answer)| matches!(answer, Some((got, _)) if *got == code))
        {
            return answers
                .into_iter()
                .map(|(_, answer)| answer.unwrap().1)
                .collect();
        }
        if tokio::time::Instant::now() > deadline {
            let logs: Vec<String> = every_worker()
                .iter()
                .map(|(name, _)| {
                    let text = std::fs::read_to_string(logs.join(format!("{name}.log")))
                        .unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    format!("{name}: {}", tail.join(" | "))
                })
                .collect();
            panic!(
                "not every worker answered {code} within {within:?}: {answers:?}\nlogs:\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn every_worker_is_not_ready_while_nats_is_down_and_ready_again_when_it_is_back() {
    let mut nats = JetStream::start();
    nats.wait_until_listening().await;
    let env = TestEnv::start_with(BusOptions {
        url: Some(nats.url()),
        ..BusOptions::default()
    })
    .await;
    let logs = tempfile::tempdir().unwrap();
    let workers: Vec<Running> = every_worker()
        .iter()
        .map(|(name, named)| spawn(&env, name, named, logs.path()))
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let ready = wait_all(&client, &workers, 200, Duration::from_secs(60), logs.path()).await;
    for (worker, body) in workers.iter().zip(&ready) {
        assert_eq!(body["status"], "ok", "{}: {body}", worker.name);
        assert_eq!(body["nats"], "ok", "{}: {body}", worker.name);
        assert_eq!(body[worker.named], "ok", "{}: {body}", worker.name);
    }

    nats.kill();
    let down = wait_all(&client, &workers, 503, Duration::from_secs(30), logs.path()).await;
    for (worker, body) in workers.iter().zip(&down) {
        assert_eq!(body["status"], "unavailable", "{}: {body}", worker.name);
        let nats = body["nats"].as_str().unwrap_or_default();
        assert!(
            nats.starts_with("unreachable"),
            "{} must name NATS as what is missing: {body}",
            worker.name
        );
    }

    nats.spawn();
    nats.wait_until_listening().await;
    let back = wait_all(&client, &workers, 200, Duration::from_secs(60), logs.path()).await;
    for (worker, body) in workers.iter().zip(&back) {
        assert_eq!(body["status"], "ok", "{}: {body}", worker.name);
    }
    env.stop().await;
}

/// A worker whose ops port another process already holds stops at once, naming the port,
/// instead of running without `/metrics` while the other process answers its health probe
/// (which the pipeline bench met: workers left over from an aborted run answered a new run's
/// probes, and the new run's histograms read as empty).
#[tokio::test]
async fn a_worker_whose_ops_port_is_taken_stops_and_names_it() {
    let env = TestEnv::start().await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(worker_binary("wingman-intake"))
            .envs(env.child_env())
            .env("METRICS_PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("wingman-intake kept running with its ops port taken")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it exited 0:\n{stderr}");
    assert!(
        stderr.contains(&format!("bind 127.0.0.1:{port}")) && stderr.contains("in use"),
        "the error does not name the port and the cause:\n{stderr}"
    );
    assert!(
        stderr.contains("METRICS_PORT"),
        "the error does not name the variable to change:\n{stderr}"
    );
    drop(holder);
    env.stop().await;
}

//! A test's own `nats-server`, started from the production configs in `nats/` (users and
//! permissions from `nats/auth.conf`), on free loopback ports with a temporary JetStream
//! store, and killed when dropped. One node (`server-prd.conf`) or a three-node cluster
//! (`cluster.conf`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wingman::config::NatsCredentials;

/// Every user `nats/auth.conf` declares.
pub const USERS: &[&str] = &[
    "admin",
    "publisher",
    "operator",
    "intake",
    "validator",
    "approvals",
    "authority",
    "gateway",
    "recorder",
    "watcher",
    "api",
];

/// The password the test servers give `user`.
pub fn password(user: &str) -> String {
    format!("test-password-of-{user}")
}

pub fn credentials(user: &str) -> NatsCredentials {
    NatsCredentials::new(user.to_string(), password(user))
}

pub struct NatsServer {
    pub port: u16,
    child: Option<Child>,
    /// The JetStream store and the log (`server.log`).
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// One node with `nats/server-prd.conf`.
    pub async fn single() -> Self {
        let port = free_port();
        let server = Self::spawn(&config("server-prd.conf"), port, &[], &[]);
        server.wait_until_ready().await;
        server
    }

    /// Three nodes with `nats/cluster.conf`, routed to each other on loopback.
    pub async fn cluster() -> Vec<Self> {
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes = cluster_ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let servers: Vec<Self> = cluster_ports
            .iter()
            .enumerate()
            .map(|(index, cluster_port)| {
                let name = format!("n{}", index + 1);
                Self::spawn(
                    &config("cluster.conf"),
                    free_port(),
                    &[
                        "--cluster".into(),
                        format!("nats://127.0.0.1:{cluster_port}"),
                        "--routes".into(),
                        routes.clone(),
                    ],
                    &[("WINGMAN_NATS_SERVER_NAME", name)],
                )
            })
            .collect();
        for server in &servers {
            server.wait_until_ready().await;
        }
        servers
    }

    fn spawn(config: &Path, port: u16, extra_args: &[String], env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut command = Command::new(nats_server_binary());
        command
            .arg("-c")
            .arg(config)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &free_port().to_string()])
            .args(extra_args)
            .env("WINGMAN_NATS_STORE_DIR", dir.path().join("jetstream"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for user in USERS {
            command.env(
                format!("WINGMAN_NATS_{}_PASSWORD", user.to_ascii_uppercase()),
                password(user),
            );
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start nats-server");
        Self {
            port,
            child: Some(child),
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// What the server logged (for assertions and failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    async fn wait_until_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not start on {}:\n{}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server (SIGKILL: a node lost, not a clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `nats/<name>` of this repository.
pub fn config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("nats")
        .join(name)
}

fn nats_server_binary() -> PathBuf {
    let debian = PathBuf::from("/usr/sbin/nats-server");
    if debian.exists() {
        return debian;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nats-server"))
                .find(|path| path.exists())
        })
        .expect("nats-server is missing: apt-get install nats-server (scripts/test does)")
}

/// A port free right now on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

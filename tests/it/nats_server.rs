//! A test's own `nats-server`, started from the production configs in `nats/` (users and
//! permissions from `nats/auth.conf`), on free loopback ports with a temporary JetStream
//! store, and killed when dropped. One node (`server-prd.conf`) or a three-node cluster
//! (`cluster.conf`). As in production, the server gets its passwords only as bcrypt hashes
//! (`nats_passwords.conf`, made by the code `wingman nats-passwords` runs) and the cluster
//! its route credentials from `nats_route.conf`, both next to copies of the configs; nothing
//! secret is in its environment.

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

/// The route user's password of the test clusters.
pub const ROUTE_PASSWORD: &str = "test-route-password";

/// bcrypt's work factor in tests (production uses `nats_passwords::COST`): the hashes are
/// checked the same way, only faster.
const TEST_COST: u32 = 6;

/// The configs of `nats/` a server is started from (copied next to its secret files).
const CONFIGS: &[&str] = &["server-prd.conf", "cluster.conf", "auth.conf"];

pub struct NatsServer {
    pub port: u16,
    /// The HTTP monitoring port (`/routez`, `/healthz`).
    pub monitor_port: u16,
    /// Where the node listens for routes (cluster nodes only).
    pub cluster_port: Option<u16>,
    child: Option<Child>,
    /// The configs, their secret files, the JetStream store and the log (`server.log`).
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// One node with `nats/server-prd.conf`.
    pub async fn single() -> Self {
        let server = Self::spawn("server-prd.conf", None, &[], &[]);
        server.wait_until_ready().await;
        server
    }

    /// One node with `nats/server-prd.conf` and the given `nats_passwords.conf` (the one
    /// `scripts/prd-secrets` made, say) instead of the test passwords' hashes.
    pub async fn single_with_password_file(passwords: &Path) -> Self {
        let server = Self::spawn_with("server-prd.conf", None, &[], &[], Some(passwords));
        server.wait_until_ready().await;
        server
    }

    /// A server that is not ours: no `nats/` config, no users, and a route to `route` (a
    /// cluster node's route URL, with or without credentials), as anyone who reaches port
    /// 6222 could start.
    pub async fn stranger(route: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, monitor_port, cluster_port) = (free_port(), free_port(), free_port());
        let config = dir.path().join("stranger.conf");
        std::fs::write(
            &config,
            format!(
                "server_name: stranger\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor_port}\n\
                 cluster {{\n  name: wingman\n  listen: 127.0.0.1:{cluster_port}\n  routes: [\"{route}\"]\n}}\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        let server = Self {
            port,
            monitor_port,
            cluster_port: Some(cluster_port),
            child: Some(child),
            dir,
        };
        server.wait_until_ready().await;
        server
    }

    /// The server process's id (to read its environment in /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Three nodes with `nats/cluster.conf`, routed to each other on loopback with the
    /// route user's credentials.
    pub async fn cluster() -> Vec<Self> {
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<String> = cluster_ports
            .iter()
            .map(|port| format!("nats-route://route:{ROUTE_PASSWORD}@127.0.0.1:{port}"))
            .collect();
        let servers: Vec<Self> = cluster_ports
            .iter()
            .enumerate()
            .map(|(index, cluster_port)| {
                let name = format!("n{}", index + 1);
                Self::spawn(
                    "cluster.conf",
                    Some(*cluster_port),
                    &routes,
                    &[("WINGMAN_NATS_SERVER_NAME", name)],
                )
            })
            .collect();
        for server in &servers {
            server.wait_until_ready().await;
        }
        servers
    }

    /// Starts `nats/<config>` from a copy in a fresh directory, with the secret files
    /// `scripts/prd-secrets` would mount next to it: the password hashes of [`USERS`], and
    /// for a cluster node its route credentials and `routes`.
    fn spawn(
        config: &str,
        cluster_port: Option<u16>,
        routes: &[String],
        env: &[(&str, String)],
    ) -> Self {
        Self::spawn_with(config, cluster_port, routes, env, None)
    }

    fn spawn_with(
        config: &str,
        cluster_port: Option<u16>,
        routes: &[String],
        env: &[(&str, String)],
        password_file: Option<&Path>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for name in CONFIGS {
            std::fs::copy(self::config(name), dir.path().join(name)).unwrap();
        }
        if let Some(cluster_port) = cluster_port {
            // In the file, not with `--cluster`: that flag replaces the cluster block's
            // authorization (it takes the credentials from its own URL, or none).
            let path = dir.path().join("cluster.conf");
            let text = std::fs::read_to_string(&path).unwrap();
            let listen = "  listen: 0.0.0.0:6222\n";
            assert!(
                text.contains(listen),
                "cluster.conf no longer has `{listen}`"
            );
            let text = text.replace(listen, &format!("  listen: 127.0.0.1:{cluster_port}\n"));
            std::fs::write(&path, text).unwrap();
        }
        let hashes = dir.path().join("nats_passwords.conf");
        match password_file {
            Some(file) => {
                std::fs::copy(file, &hashes).unwrap();
            }
            None => {
                let passwords: Vec<(String, String)> = USERS
                    .iter()
                    .map(|user| (user.to_string(), password(user)))
                    .collect();
                let file = wingman::cli::nats_passwords::password_file(&passwords, TEST_COST);
                std::fs::write(&hashes, file.unwrap()).unwrap();
            }
        }
        std::fs::write(dir.path().join("nats_route.conf"), route_file(routes)).unwrap();
        let port = free_port();
        let monitor_port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut command = Command::new(nats_server_binary());
        command
            .arg("-c")
            .arg(dir.path().join(config))
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &monitor_port.to_string()])
            .env("WINGMAN_NATS_STORE_DIR", dir.path().join("jetstream"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start nats-server");
        Self {
            port,
            monitor_port,
            cluster_port,
            child: Some(child),
            dir,
        }
    }

    /// How many routes the node has to other nodes right now (`/routez`).
    pub async fn routes(&self) -> u64 {
        let url = format!("http://127.0.0.1:{}/routez", self.monitor_port);
        let answer: serde_json::Value = reqwest::get(&url)
            .await
            .unwrap_or_else(|error| panic!("GET {url}: {error}"))
            .json()
            .await
            .unwrap();
        answer["num_routes"].as_u64().unwrap_or_default()
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

/// The `nats_route.conf` of a cluster node: the route user's password and the routes (with
/// credentials), in the form `scripts/prd-secrets` writes.
pub fn route_file(routes: &[String]) -> String {
    let routes: Vec<String> = routes
        .iter()
        .map(|route| format!("  \"{route}\""))
        .collect();
    format!(
        "WINGMAN_NATS_ROUTE_PASSWORD: \"{ROUTE_PASSWORD}\"\nWINGMAN_NATS_ROUTES: [\n{}\n]\n",
        routes.join("\n")
    )
}

/// `nats/<name>` of this repository.
pub fn config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("nats")
        .join(name)
}

pub fn nats_server_binary() -> PathBuf {
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

/// A port free right now on loopback, and never one this test process handed out before: the
/// kernel may give a released port again at once, and a server started with two equal ports
/// (its client and its monitor port, say) stops with "address already in use".
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

//! The NATS server a run measures. By default one of the bench's own, started as
//! `docker-compose.prd.yml` starts the `nats` service: the same Go runtime settings
//! ([`AS_COMPOSE_RUNS_IT`]), JetStream in a fresh store on this machine's disk, loopback only.
//! `WINGMAN_BENCH_NATS=<url>` measures a server that is already running instead, as it runs
//! (the machine's Debian package listens on `nats://127.0.0.1:4222` with Go's defaults).

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The Go runtime settings the `nats` service runs with in `docker-compose.prd.yml` (the
/// defaults of `NATS_GOMAXPROCS`, `NATS_GOGC` and `NATS_GOMEMLIMIT`); the test
/// `deploy::the_benchs_nats_server_runs_with_the_compose_files_go_settings` holds the two
/// equal. With Go's default (`GOGC=100`) nats-server collected every 2–5 s at 500
/// requests/s, each collection 9–25 ms of both cores' marking (README.md, "Tests").
pub const AS_COMPOSE_RUNS_IT: [(&str, &str); 3] =
    [("GOMAXPROCS", "1"), ("GOGC", "off"), ("GOMEMLIMIT", "1GiB")];

/// Where a run's own server keeps its JetStream store: the machine's disk, like the
/// machine's server (`/tmp` may be memory).
const STORES: &str = "/var/tmp";
const STORE_PREFIX: &str = "wingman-bench-nats";

/// The server of a run.
pub struct Server {
    pub url: String,
    /// One line for the report: which server, and how it runs.
    pub described: String,
    own: Option<(Child, tempfile::TempDir)>,
}

impl Server {
    /// `WINGMAN_BENCH_NATS` when set, else a server of our own on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        if let Ok(url) = std::env::var("WINGMAN_BENCH_NATS") {
            return Ok(Self {
                described: format!("the server at {url} (WINGMAN_BENCH_NATS), as it runs"),
                url,
                own: None,
            });
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let store = store()?;
        let child = spawn(port, store.path())?;
        wait_port(port).await?;
        let settings: Vec<String> = AS_COMPOSE_RUNS_IT
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        Ok(Self {
            url: format!("nats://127.0.0.1:{port}"),
            described: format!(
                "nats-server of the bench's own on port {port}, as docker-compose.prd.yml runs it ({}); WINGMAN_BENCH_NATS=<url> measures another",
                settings.join(" ")
            ),
            own: Some((child, store)),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self.own {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fresh JetStream store for a server of the bench's own, in [`STORES`], after removing
/// those of earlier runs whose server is gone.
pub fn store() -> anyhow::Result<tempfile::TempDir> {
    remove_stale_stores();
    Ok(tempfile::Builder::new()
        .prefix(STORE_PREFIX)
        .tempdir_in(STORES)?)
}

/// `nats-server` with JetStream on `127.0.0.1:port`, its store in `store`, with the Go
/// runtime settings of the compose file.
pub fn spawn(port: u16, store: &Path) -> anyhow::Result<Child> {
    let child = dies_with_the_bench(&mut Command::new("nats-server"))
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .envs(AS_COMPOSE_RUNS_IT)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    child.map_err(|error| {
        anyhow::anyhow!("start nats-server (Debian's nats-server package): {error}")
    })
}

/// Waits until something listens on `port` (10 s at most).
pub async fn wait_port(port: u16) -> anyhow::Result<()> {
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

/// `command`, whose process the kernel kills when the bench's process ends, however it ends
/// (Ctrl-C, a kill, a panic): a worker or a nats-server left running would hold the ports
/// the next run needs.
pub fn dies_with_the_bench(command: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches only the child's own attributes.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Removes the stores of earlier runs whose server is gone: a run that ends normally removes
/// its own, but one that was killed cannot, and a store is hundreds of MiB after a full run.
/// A store some live process names on its command line (another run's server) is kept.
fn remove_stale_stores() {
    let Ok(entries) = std::fs::read_dir(STORES) else {
        return;
    };
    let in_use: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|process| std::fs::read(process.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(STORE_PREFIX))
        .collect();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(STORE_PREFIX)
            && !in_use
                .iter()
                .any(|cmdline| cmdline.contains(&*path.to_string_lossy()))
        {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

//! What every worker binary does around its stage: settings, logging, metrics, the bus, the
//! ops port, and a clean stop on SIGTERM.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::bus::Bus;
use crate::bus::consume::LoopOptions;
use crate::config::Settings;
use crate::events::Stage;
use crate::readiness::Readiness;
use crate::settings::WorkerSettings;
use crate::shutdown::Shutdown;

/// A long-running worker. Its stage's word names everything else: the compose service, the
/// NATS user, the Prometheus job, the binary (`wingman-<stage>`, crate `workers/<stage>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSpec {
    pub stage: Stage,
    /// `/metrics` and `/health` (`METRICS_PORT` overrides it).
    pub ops_port: u16,
}

impl WorkerSpec {
    /// The stage word: compose service, NATS user, Prometheus job.
    pub fn name(self) -> &'static str {
        self.stage.as_str()
    }

    /// The binary: `wingman-<stage>`.
    pub fn binary(self) -> String {
        format!("wingman-{}", self.name())
    }
}

/// The one list of workers and their ops ports. The worker mains start from it; the
/// deployment files (compose, Prometheus, NATS users, the dev script) are checked against it
/// (`deploy::every_worker_of_the_one_list_is_built_deployed_scraped_and_checked`). 9102 was
/// the validator's, which is now part of intake.
pub const WORKERS: [WorkerSpec; 7] = [
    WorkerSpec {
        stage: Stage::Intake,
        ops_port: 9101,
    },
    WorkerSpec {
        stage: Stage::Approvals,
        ops_port: 9103,
    },
    WorkerSpec {
        stage: Stage::Authority,
        ops_port: 9104,
    },
    WorkerSpec {
        stage: Stage::Gateway,
        ops_port: 9105,
    },
    WorkerSpec {
        stage: Stage::Recorder,
        ops_port: 9106,
    },
    WorkerSpec {
        stage: Stage::Watcher,
        ops_port: 9107,
    },
    WorkerSpec {
        stage: Stage::Api,
        ops_port: 9108,
    },
];

/// The worker of `stage`; `None` for a stage that is no worker (the CLI).
pub fn spec(stage: Stage) -> Option<WorkerSpec> {
    WORKERS.into_iter().find(|worker| worker.stage == stage)
}

/// How long a stopping worker waits for its tasks (below compose's 30 s grace period).
const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// How often a worker hands the memory it freed back to the system.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Returns freed heap memory to the system every [`TRIM_EVERY`], for the life of the process.
///
/// glibc's allocator keeps what it freed for the next allocation: after a backlog (a batch
/// of 256 messages instead of 4, a slow commit) a worker's RSS stayed at its peak for good —
/// in the 30-minute soak intake grew 16 % and the recorder 28 % in one step at a latency
/// spike and never came back. `malloc_trim` releases the free pages of every arena. A plain
/// thread, as for the metrics upkeep.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TRIM_EVERY);
                    // SAFETY: malloc_trim only takes the allocator's own locks and releases
                    // pages that hold no live allocation; it has no preconditions.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "malloc-trim thread not started: freed memory stays with the worker");
        }
    }
}

/// Caps glibc's allocator at `arenas` heaps (one per runtime thread), before any thread starts.
///
/// glibc gives each thread that allocates while another holds a heap's lock a heap of its own,
/// up to eight per core, and keeps each for the life of the process. A worker's async code runs
/// on one thread, but intake's validators run on the blocking pool, whose threads come and go:
/// in a 15-minute soak at 1 000/s intake held 8 heaps, the 7 of the pool holding 2.2–2.9 MiB of
/// partly used pages between them (`malloc_stats`), and its RSS grew 12.2 % after the first 3
/// minutes; with one heap it grew 4.3 %.
fn limit_arenas(arenas: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets the allocator's own parameter under its own lock; an
        // unknown value is refused with 0, and then the default stays.
        let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
        if set == 0 {
            // Before the worker's logging starts: straight to stderr, where its log goes.
            eprintln!(
                "wingman: could not cap the allocator at {arenas} heaps; glibc's default stays"
            );
        }
    }
}

/// The runtime a worker runs on: one thread (`WINGMAN_WORKER_THREADS`, default 1), which
/// measured best on the 2-core machines Wingman targets, where six workers, NATS and Postgres
/// share the cores and a multi-threaded runtime mostly hands wake-ups from thread to thread.
/// Blocking work (validation) still goes to the blocking pool. More than 1 gives a
/// multi-threaded runtime with that many worker threads.
///
/// # Errors
/// When `WINGMAN_WORKER_THREADS` is not a positive number, or the runtime cannot start.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = crate::settings::worker_threads()?;
    if let Some(arenas) = crate::settings::allocator_arenas(threads) {
        limit_arenas(arenas);
    }
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder
        .enable_all()
        .build()
        .context("start the worker's runtime")
}

pub struct Worker {
    pub stage: Stage,
    pub settings: Settings,
    /// The knobs every worker shares (ops port, topology, consume batches).
    pub worker_settings: WorkerSettings,
    pub bus: Bus,
    pub shutdown: Shutdown,
    pub metrics: PrometheusHandle,
    pub actor: String,
    /// Whether this worker created the topology itself (`WINGMAN_ENSURE_TOPOLOGY`, default
    /// 1). In production it is 0: `wingman setup-nats` creates streams, consumers and buckets
    /// (and seeds the rollout flags) as the NATS admin, and workers only open them, so no
    /// worker needs the right to change a stream.
    pub ensure_topology: bool,
    /// What `/health` on the ops port checks: NATS from the start; the stage's main adds its
    /// consumers (and Postgres, Docker) as it opens them.
    pub readiness: Readiness,
}

impl Worker {
    /// Connects to NATS, ensures the declared topology (unless `WINGMAN_ENSURE_TOPOLOGY=0`)
    /// and serves `/metrics` on
    /// `METRICS_PORT` (default: the stage's port in [`WORKERS`]; 0 picks a free one).
    pub async fn start(stage: Stage) -> anyhow::Result<Self> {
        let default_port = spec(stage)
            .with_context(|| format!("{} is not a worker", stage.as_str()))?
            .ops_port;
        let settings = Settings::from_env()?;
        let worker_settings = WorkerSettings::from_env(default_port)?;
        crate::telemetry::init(&format!("wingman-{}", stage.as_str()), "info");
        let metrics = crate::metrics::install()?;
        // Bound before anything else: a port another process holds would have that process
        // answer this worker's health probe.
        let ops_listener = worker_settings
            .ops
            .bind()
            .await
            .context("the ops port (/metrics, /health; METRICS_HOST, METRICS_PORT)")?;
        let shutdown = Shutdown::with_signals();
        let bus = Bus::connect(&settings.nats, &format!("wingman-{}", stage.as_str())).await?;
        let ensure_topology = worker_settings.ensure_topology;
        if ensure_topology {
            bus.ensure_topology().await?;
        } else {
            tracing::info!(
                "WINGMAN_ENSURE_TOPOLOGY=0: opening the topology `wingman setup-nats` created"
            );
        }
        give_back_memory();
        let readiness = Readiness::default();
        readiness.nats(&bus);
        let (ops_metrics, ops_readiness) = (metrics.clone(), readiness.clone());
        let ops_token = shutdown.token();
        shutdown.tracker().spawn(async move {
            let serving =
                crate::telemetry::serve_ops(ops_listener, ops_metrics, ops_readiness, ops_token);
            if let Err(error) = serving.await {
                tracing::error!(error = %format!("{error:#}"), "ops server stopped");
            }
        });
        Ok(Self {
            stage,
            actor: actor(stage, worker_settings.hostname.as_deref()),
            settings,
            worker_settings,
            bus,
            shutdown,
            metrics,
            ensure_topology,
            readiness,
        })
    }

    /// Loop options: `batch` messages at a time, up to `in_flight` batches at once
    /// (`WINGMAN_CONSUME_BATCH` and `WINGMAN_CONSUME_IN_FLIGHT` override).
    pub fn loop_options(&self, batch: usize, in_flight: usize) -> LoopOptions {
        let batch = self.worker_settings.consume_batch.unwrap_or(batch).max(1);
        let in_flight = self
            .worker_settings
            .consume_in_flight
            .unwrap_or(in_flight)
            .max(1);
        LoopOptions {
            batch,
            double_ack: false,
            actor: self.actor.clone(),
            in_flight,
            linger: Duration::ZERO,
            claims_life: None,
        }
    }

    /// Runs the stage until it ends or a signal stops it, then waits for the other tasks.
    pub async fn run(self, stage: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
        let result = stage.await;
        self.shutdown.cancel();
        self.shutdown.wait(STOP_DEADLINE).await;
        if let Err(error) = self.bus.client.drain().await {
            tracing::warn!(%error, "could not drain the NATS connection");
        }
        result
    }
}

/// `stage@host:pid`, unique enough to tell worker copies apart in the audit trail; `hostname`
/// is `HOSTNAME` ([`WorkerSettings::hostname`]), else `/etc/hostname`.
pub fn actor(stage: Stage, hostname: Option<&str>) -> String {
    let host = hostname
        .map(str::to_string)
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|text| text.trim().to_string())
        })
        .unwrap_or_else(|| "localhost".to_string());
    format!("{}@{host}:{}", stage.as_str(), std::process::id())
}

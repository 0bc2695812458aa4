//! `TestEnv`: a private corner of the real NATS and Postgres for one test (a unique subject
//! prefix and a fresh database), with the real stages running in-process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use serde_json::Value;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wingman::access::guard::Guard;
use wingman::access::{ApiKeys, Role};
use wingman::approval::Rules;
use wingman::bus::Bus;
use wingman::bus::consume::LoopOptions;
use wingman::bus::topology::{TopologyOverrides, open_bucket};
use wingman::config::{ConsoleSettings, DatabaseSettings, NatsCredentials, NatsSettings, Settings};
use wingman::events::Stage;
use wingman::identity::roster::RosterStore;
use wingman::policy::Policy;
use wingman::request::Environment;
use wingman::rollout::{Rollout, RolloutStore};
use wingman::settings::{
    ApiSettings, ApprovalsSettings, AuthoritySettings, GatewaySettings, IntakeSettings, Listen,
    RecorderSettings, WatcherSettings,
};
use wingman::stages;
use wingman::stages::approvals::ApprovalsDeps;
use wingman::stages::gateway::GatewayDeps;
use wingman::stages::watcher::{GuardSettings, WatcherDeps};

use crate::fake_telegram::FakeTelegram;

/// The approvers' chat on the fake Telegram.
pub const APPROVER_CHAT: i64 = -100_777;
use wingman::token::{SigningKey, VerifyKey};

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The server that hosts test databases (`WINGMAN_TEST_POSTGRES`, without a database name).
pub fn postgres_base() -> String {
    std::env::var("WINGMAN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Where a [`TestEnv`] connects, when not to the shared server on 127.0.0.1:4222.
#[derive(Default, Clone)]
pub struct BusOptions {
    /// Server URL(s), comma-separated for a cluster.
    pub url: Option<String>,
    /// The subject prefix (default: a unique one; a test's own server may use `wingman`).
    pub prefix: Option<String>,
    /// The test's own user (the admin, on a server with `nats/auth.conf`).
    pub credentials: Option<NatsCredentials>,
    /// Stream and bucket replicas (3 on a cluster).
    pub replicas: Option<usize>,
    /// Caps how long per-request subjects live (`WINGMAN_REQUEST_RETENTION`), for the
    /// workers this test spawns too.
    pub request_retention: Option<Duration>,
}

pub struct TestEnv {
    pub prefix: String,
    /// How this test reaches NATS (stages connected as their own users reuse it).
    pub nats: NatsSettings,
    /// Connections of stages that run as their own NATS user (see `connect_stage_as`).
    stage_buses: HashMap<String, Bus>,
    /// The token key pair of this test's authority and gateway, also written to `keys_dir`.
    pub signing_key: Arc<SigningKey>,
    pub verify_key: VerifyKey,
    pub keys_dir: tempfile::TempDir,
    pub bus: Bus,
    pub pool: PgPool,
    pub shutdown: CancellationToken,
    /// The keys the API and gateway HTTP servers this test spawns accept (default
    /// [`test_api_keys`]); set before `spawn_api`.
    pub api_keys: ApiKeys,
    /// The web console's base URL the approvals stage links its prompts to (set before
    /// `spawn_approvals`).
    pub console_url: Option<String>,
    database: String,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl TestEnv {
    /// A fresh prefix, database and topology. Consumers get a short `ack_wait` so crash
    /// tests see redeliveries quickly.
    pub async fn start() -> Self {
        Self::start_with(BusOptions::default()).await
    }

    /// A test's own nats-server running the production `nats/auth.conf`, as its admin, with
    /// the production prefix: where attacks on the permissions are played.
    pub async fn on_server(server: &crate::nats_server::NatsServer) -> Self {
        Self::start_with(BusOptions {
            url: Some(server.url()),
            prefix: Some("wingman".into()),
            credentials: Some(crate::nats_server::credentials("admin")),
            replicas: None,
            request_retention: None,
        })
        .await
    }

    /// Like [`start`](Self::start), on the NATS server(s) `options` name: a test's own
    /// `nats-server` with the production config, as its admin, with the production prefix.
    pub async fn start_with(options: BusOptions) -> Self {
        let id = Uuid::new_v4().simple().to_string();
        let prefix = options
            .prefix
            .clone()
            .unwrap_or_else(|| format!("wt_{}", &id[..12]));
        let database = format!("wt_{}", &id[..12]);
        let admin = PgPool::connect(&format!("{}/postgres", postgres_base()))
            .await
            .expect("Postgres must be running on 127.0.0.1:5432 (scripts/test starts it)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&admin)
            .await
            .expect("create the test database");
        admin.close().await;
        let settings = Settings {
            nats: NatsSettings {
                url: options.url.clone().unwrap_or_else(nats_url),
                prefix: prefix.clone(),
                overrides: TopologyOverrides {
                    ack_wait: Some(Duration::from_secs(2)),
                    replicas: options.replicas,
                    max_bytes: Some(TEST_STREAM_MAX_BYTES),
                    request_retention: options.request_retention,
                },
                credentials: options.credentials.clone(),
                connect_attempts: 3,
            },
            database: DatabaseSettings::new(format!("{}/{database}", postgres_base())),
        };
        let bus = Bus::connect(&settings.nats, "wingman-test").await.expect(
            "NATS with JetStream must be running on 127.0.0.1:4222 (scripts/test starts it)",
        );
        if options.url.is_none() {
            remove_stale_test_topologies(&bus.js).await;
        }
        bus.ensure_topology()
            .await
            .expect("create the test topology");
        let pool = settings.database.pool().expect("pool");
        wingman::store::migrate(&pool)
            .await
            .expect("migrate the test database");
        let keys_dir = tempfile::tempdir().unwrap();
        wingman::token::write_keypair(keys_dir.path(), "wingman").unwrap();
        let signing_key = Arc::new(
            wingman::token::read_signing_key(&keys_dir.path().join("wingman.key")).unwrap(),
        );
        let verify_key = signing_key.verify_key();
        Self {
            prefix,
            nats: settings.nats,
            stage_buses: HashMap::new(),
            signing_key,
            verify_key,
            keys_dir,
            bus,
            pool,
            shutdown: CancellationToken::new(),
            api_keys: test_api_keys(),
            console_url: None,
            database,
            tasks: Vec::new(),
        }
    }

    /// Makes the in-process `stage` connect as its own NATS user from now on.
    pub async fn connect_stage_as(&mut self, stage: &str, credentials: NatsCredentials) {
        let mut settings = self.nats.clone();
        settings.credentials = Some(credentials);
        let bus = Bus::connect(&settings, &format!("wingman-{stage}"))
            .await
            .unwrap_or_else(|error| panic!("connect {stage} to NATS: {error:#}"));
        self.stage_buses.insert(stage.to_string(), bus);
    }

    /// The connection `stage` uses: its own user's, or the test's.
    pub fn bus_for(&self, stage: &str) -> Bus {
        self.stage_buses
            .get(stage)
            .cloned()
            .unwrap_or_else(|| self.bus.clone())
    }

    pub fn options(&self, stage: &str) -> LoopOptions {
        LoopOptions {
            batch: 32,
            double_ack: false,
            actor: format!("{stage}@test"),
            in_flight: 2,
            linger: Duration::ZERO,
            claims_life: None,
        }
    }

    /// Intake with the shipped validation config and the rollout flags as a fresh
    /// deployment seeds them when nothing is set (validation disabled: every request goes
    /// to a human, PENDING with `validation_applied = false`).
    pub async fn spawn_intake(&mut self) {
        self.rollout()
            .await
            .seed(&Rollout {
                enabled: false,
                percent: 100,
                updated_by: "test".into(),
                updated_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        self.spawn_intake_task(Duration::from_secs(3600)).await;
    }

    /// Intake with validation enabled for `percent` % of requests.
    pub async fn spawn_intake_validating(&mut self, percent: u8) {
        self.spawn_intake_with_ttl(percent, Duration::from_secs(3600))
            .await;
    }

    /// Intake validating `percent` % of requests, a human's answer due within `approval_ttl`.
    pub async fn spawn_intake_with_ttl(&mut self, percent: u8, approval_ttl: Duration) {
        self.set_rollout(true, percent).await;
        self.spawn_intake_task(approval_ttl).await;
    }

    /// Intake like [`spawn_intake_with_ttl`](Self::spawn_intake_with_ttl) that stops on its
    /// own: cancel the token and await the handle before starting the next intake, so a test
    /// can give its requests two different approval TTLs, one intake after the other.
    pub async fn spawn_intake_stoppable(
        &mut self,
        percent: u8,
        approval_ttl: Duration,
    ) -> (CancellationToken, JoinHandle<anyhow::Result<()>>) {
        self.set_rollout(true, percent).await;
        let stop = self.shutdown.child_token();
        let task = self.intake_task(approval_ttl, stop.clone()).await;
        (stop, task)
    }

    /// Sets the live rollout flags (as `wingman rollout set` would, without the watcher).
    pub async fn set_rollout(&self, enabled: bool, percent: u8) {
        let rollout = self.rollout().await;
        let flags = Rollout {
            enabled,
            percent,
            updated_by: "test".into(),
            updated_at: chrono::Utc::now(),
        };
        rollout.seed(&flags).await.unwrap();
        rollout
            .change_as("test", "test", |_| flags.clone())
            .await
            .unwrap();
    }

    async fn spawn_intake_task(&mut self, approval_ttl: Duration) {
        let task = self.intake_task(approval_ttl, self.shutdown.clone()).await;
        self.tasks.push(task);
    }

    async fn intake_task(
        &self,
        approval_ttl: Duration,
        shutdown: CancellationToken,
    ) -> JoinHandle<anyhow::Result<()>> {
        let settings = IntakeSettings {
            approval_ttl,
            validation_timeout: Duration::from_secs(5),
            ..IntakeSettings::default()
        };
        let deps = stages::intake::IntakeDeps::open(
            self.bus_for("intake"),
            "intake@test".into(),
            &settings,
            self.shutdown.clone(),
        )
        .await
        .unwrap();
        tokio::spawn(stages::intake::run(deps, self.options("intake"), shutdown))
    }

    pub async fn spawn_recorder(&mut self) {
        self.spawn_recorder_on(self.pool.clone()).await;
    }

    /// A recorder on its own pool (its connections told apart in `pg_stat_activity`).
    pub async fn spawn_recorder_on(&mut self, pool: PgPool) {
        // The test database was migrated when the test started.
        let settings = RecorderSettings { migrate: false };
        let deps = stages::recorder::RecorderDeps::open(pool, &settings)
            .await
            .unwrap();
        let task = tokio::spawn(stages::recorder::run(
            deps,
            self.bus_for("recorder"),
            self.options("recorder"),
            self.shutdown.clone(),
        ));
        self.tasks.push(task);
    }

    /// This test's database, as a `postgres://` URL.
    pub fn database_url(&self) -> String {
        format!("{}/{}", postgres_base(), self.database)
    }

    pub async fn rollout(&self) -> RolloutStore {
        RolloutStore::new(
            open_bucket(
                &self.bus.js,
                &self.bus.subjects.localize_name(wingman::rollout::BUCKET),
            )
            .await
            .unwrap(),
        )
    }

    pub async fn claims(&self) -> async_nats::jetstream::kv::Store {
        wingman::claims::open(&self.bus).await.unwrap()
    }

    pub async fn spawn_authority(&mut self) {
        let settings = AuthoritySettings {
            signing_key: Arc::clone(&self.signing_key),
            token_ttl: Duration::from_secs(600),
        };
        let deps = stages::authority::AuthorityDeps::open(
            self.bus_for("authority"),
            "authority@test".into(),
            &settings,
        )
        .await
        .unwrap();
        let task = tokio::spawn(stages::authority::run(
            deps,
            self.options("authority"),
            self.shutdown.clone(),
        ));
        self.tasks.push(task);
    }

    /// The gateway against the real Docker Engine, allowed to act in `allowed`. Returns its
    /// deps (for calling `execute` directly) and a token that stops just this gateway.
    pub async fn spawn_gateway(
        &mut self,
        allowed: &[Environment],
    ) -> (Arc<GatewayDeps>, CancellationToken) {
        let deps = Arc::new(self.gateway_deps(allowed).await);
        let stop = self.shutdown.child_token();
        let task = tokio::spawn(stages::gateway::run(
            Arc::clone(&deps),
            self.options("gateway"),
            stop.clone(),
        ));
        self.tasks.push(task);
        (deps, stop)
    }

    pub async fn gateway_deps(&self, allowed: &[Environment]) -> GatewayDeps {
        let settings = self.gateway_settings(allowed);
        let engine = stages::gateway::connect_engine(&settings)
            .await
            .expect("no Docker Engine: start it with scripts/docker-engine.sh (scripts/test does)");
        GatewayDeps::open(self.bus.clone(), "gateway@test".into(), settings, engine)
            .await
            .unwrap()
    }

    /// The gateway's settings in a test: this test's keys, the private Docker Engine, the
    /// shipped policy, a short running lease.
    pub fn gateway_settings(&self, allowed: &[Environment]) -> GatewaySettings {
        GatewaySettings {
            verify_key: self.verify_key.clone(),
            allowed_environments: allowed.to_vec(),
            policy: Policy::default_policy(),
            docker_host: Some(docker_host()),
            running_lease: Duration::from_secs(3),
            http: Listen {
                host: "127.0.0.1".into(),
                port: 0,
            },
            compose: Default::default(),
        }
    }

    /// The approvals stage; with `telegram`, against the fake Bot API (chat `APPROVER_CHAT`).
    pub async fn spawn_approvals(
        &mut self,
        telegram: Option<&FakeTelegram>,
        approvers: &[&str],
        prd_approvals: usize,
    ) {
        let deps = self
            .approvals_deps(telegram, approvers, prd_approvals)
            .await;
        let task = tokio::spawn(stages::approvals::run(
            deps,
            self.options("approvals"),
            self.shutdown.clone(),
        ));
        self.tasks.push(task);
    }

    /// Like `spawn_approvals`, but stoppable on its own (a bot restart).
    pub async fn spawn_approvals_stoppable(
        &mut self,
        telegram: &FakeTelegram,
        approvers: &[&str],
    ) -> CancellationToken {
        let deps = self.approvals_deps(Some(telegram), approvers, 1).await;
        let stop = self.shutdown.child_token();
        let task = tokio::spawn(stages::approvals::run(
            deps,
            self.options("approvals"),
            stop.clone(),
        ));
        self.tasks.push(task);
        stop
    }

    async fn approvals_deps(
        &self,
        telegram: Option<&FakeTelegram>,
        approvers: &[&str],
        prd_approvals: usize,
    ) -> ApprovalsDeps {
        let mut telegram_ids = Vec::new();
        for approver in approvers {
            if let Some(id) = approver.strip_prefix("telegram:") {
                telegram_ids.push(id.parse().expect("a Telegram user id"));
            } else {
                let name = approver.strip_prefix("cli:").unwrap_or(approver);
                self.register_approver(name, wingman::cli::approvers::Credentials::default())
                    .await;
            }
        }
        let settings = ApprovalsSettings {
            rules: Rules {
                telegram_ids,
                prd_approvals,
            },
            telegram: telegram.map(FakeTelegram::settings),
            console: ConsoleSettings {
                url: self.console_url.clone(),
                ..ConsoleSettings::default()
            },
        };
        // On its own NATS user when the test connected one (`connect_stage_as("approvals")`).
        ApprovalsDeps::open(
            self.bus_for("approvals"),
            "approvals@test".into(),
            &settings,
            self.pool.clone(),
        )
        .await
        .unwrap()
    }

    /// What request `request_id` printed when it ran (its submitter's output subject; this
    /// test's own connection submits as `anonymous` on the shared server).
    pub async fn output_of(&self, request_id: Uuid) -> String {
        let id = wingman::envelope::RequestId::from_uuid(request_id);
        self.bus
            .output(&self.bus.principal, id)
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// The approver roster of this test's bus.
    pub async fn roster(&self) -> RosterStore {
        RosterStore {
            kv: open_bucket(
                &self.bus.js,
                &self
                    .bus
                    .subjects
                    .localize_name(wingman::identity::roster::BUCKET),
            )
            .await
            .unwrap(),
        }
    }

    /// The console key of approver `name` (made on first use, under `keys_dir`); hand it to
    /// the CLI as `WINGMAN_APPROVER_KEY_FILE`. Unregistered, it proves nothing.
    pub fn approver_key(&self, name: &str) -> PathBuf {
        let dir = self.keys_dir.path().join("approvers").join(name);
        let path = dir.join("approver.key");
        if !path.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            wingman::token::write_keypair(&dir, "approver").unwrap();
        }
        path
    }

    /// Registers approver `name` in the roster with their console key (see
    /// [`TestEnv::approver_key`]) and `extra` credentials, as `wingman approvers add` does.
    pub async fn register_approver(
        &self,
        name: &str,
        mut extra: wingman::cli::approvers::Credentials,
    ) {
        let public = wingman::token::read_signing_key(&self.approver_key(name))
            .unwrap()
            .verify_key()
            .to_text();
        extra.console_keys.push(public);
        wingman::cli::approvers::add(&self.roster().await, name, extra)
            .await
            .unwrap();
    }

    pub async fn watcher_deps(
        &self,
        telegram: Option<&FakeTelegram>,
        guard: GuardSettings,
    ) -> WatcherDeps {
        let settings = WatcherSettings {
            guard,
            telegram: telegram.map(FakeTelegram::settings),
            phases: wingman::report::PhaseMinimums::default(),
            interval: Duration::from_millis(200),
        };
        // As the watcher's own NATS user when the test connected it (`connect_stage_as`).
        WatcherDeps::open(
            self.bus_for("watcher"),
            "watcher@test".into(),
            settings,
            self.pool.clone(),
        )
        .await
        .unwrap()
    }

    /// Runs a watcher built by [`watcher_deps`](Self::watcher_deps) and changed by the test.
    pub fn spawn_watcher_deps(&mut self, deps: WatcherDeps) {
        let task = tokio::spawn(stages::watcher::run(deps, self.shutdown.clone()));
        self.tasks.push(task);
    }

    pub async fn spawn_watcher(&mut self, telegram: Option<&FakeTelegram>, guard: GuardSettings) {
        let deps = self.watcher_deps(telegram, guard).await;
        let task = tokio::spawn(stages::watcher::run(deps, self.shutdown.clone()));
        self.tasks.push(task);
    }

    /// Serves the API on a free loopback port.
    pub async fn spawn_api(&mut self) -> SocketAddr {
        let state = wingman::api::ApiState::new(
            self.bus.clone(),
            self.pool.clone(),
            self.guard(Stage::Api),
            wingman::metrics::install().unwrap(),
            "api@test".into(),
            &ApiSettings::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let token = self.shutdown.clone();
        self.tasks
            .push(tokio::spawn(wingman::web::serve(listener, state, token)));
        address
    }

    /// The API-key guard of an HTTP edge of this test.
    pub fn guard(&self, stage: Stage) -> Guard {
        Guard::new(
            self.api_keys.clone(),
            self.bus.clone(),
            stage,
            format!("{}@test", stage.as_str()),
        )
    }

    /// Submits one anonymous request of [`request_json`] (no command) per id.
    pub async fn submit_anonymous(&self, ids: &[Uuid]) {
        for id in ids {
            self.publish_raw(
                &format!("{}.requests.submitted.anonymous", self.prefix),
                request_json(*id, None).to_string(),
            )
            .await;
        }
    }

    /// Publishes raw bytes with a plain core-NATS publish, as any client could.
    pub async fn publish_raw(&self, subject: &str, payload: impl Into<bytes::Bytes>) {
        self.bus
            .client
            .publish(subject.to_string(), payload.into())
            .await
            .unwrap();
        self.bus.client.flush().await.unwrap();
    }

    /// Waits until every consumer that someone consumes (in-process stage or worker process)
    /// has nothing pending or unacked, twice in a row, so a message forwarded between two
    /// polls is not missed. Consumers of stages this test does not run are ignored.
    pub async fn settle_all(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut quiet_rounds = 0;
        while quiet_rounds < 2 {
            let mut busy = Vec::new();
            for def in &self.bus.topology.consumers {
                let stream = self.bus.js.get_stream(&def.stream).await.unwrap();
                let name = def.config.durable_name.as_deref().unwrap();
                let mut consumer: jetstream::consumer::PullConsumer =
                    stream.get_consumer(name).await.unwrap();
                let info = consumer.info().await.unwrap();
                let consumed = info.num_waiting > 0 || info.num_ack_pending > 0;
                if consumed && (info.num_pending > 0 || info.num_ack_pending > 0) {
                    busy.push(format!(
                        "{name}: {} pending, {} unacked",
                        info.num_pending, info.num_ack_pending
                    ));
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the pipeline did not settle within 60 s: {busy:?}"
            );
            quiet_rounds = if busy.is_empty() { quiet_rounds + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until `query` (one row, one i64 column) returns `expected`.
    pub async fn wait_for_count(&self, query: &'static str, bind: Option<Uuid>, expected: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut statement = sqlx::query_scalar::<_, i64>(query);
            if let Some(value) = bind {
                statement = statement.bind(value);
            }
            let count = statement.fetch_one(&self.pool).await.unwrap();
            if count == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{query}: {count}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn status_of(&self, request_id: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM approval_requests WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
    }

    /// How the request's execution went (`execution_status`), `None` until the gateway started.
    pub async fn execution_status_of(&self, request_id: Uuid) -> Option<String> {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT execution_status FROM approval_requests WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await
        .unwrap()
        .flatten()
    }

    /// Every message on the subjects of a declared stream, oldest first.
    pub async fn stream_messages(&self, declared: &str, filter: &str) -> Vec<Value> {
        let stream = self.bus.stream(declared).await.unwrap();
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: filter.to_string(),
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .unwrap();
        let info = stream.get_info().await.unwrap();
        let mut values = Vec::new();
        if info.state.messages == 0 {
            return values;
        }
        let mut messages = consumer.messages().await.unwrap();
        use futures::StreamExt;
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_millis(500), messages.next()).await
        {
            values.push(serde_json::from_slice(&message.payload).unwrap_or(Value::Null));
        }
        values
    }

    /// Environment for a worker or CLI child process pointed at this test's corner.
    pub fn child_env(&self) -> Vec<(String, String)> {
        let api_keys_file = self.keys_dir.path().join("api_keys.toml");
        if !api_keys_file.exists() {
            let entries: String = [
                ("submitter", SUBMIT_KEY, &[Role::Submit][..]),
                ("reader", READ_KEY, &[Role::Read][..]),
                ("decider", DECIDE_KEY, &[Role::Decide][..]),
            ]
            .iter()
            .map(|(name, key, roles)| wingman::access::entry_toml(name, key, roles))
            .collect();
            std::fs::write(&api_keys_file, entries).unwrap();
        }
        let retention = self.nats.overrides.request_retention.map(|retention| {
            (
                "WINGMAN_REQUEST_RETENTION".to_string(),
                format!("{}s", retention.as_secs()),
            )
        });
        retention
            .into_iter()
            .chain([
                ("NATS_URL".into(), self.nats.url.clone()),
                ("WINGMAN_SUBJECT_PREFIX".into(), self.prefix.clone()),
                ("DATABASE_URL".into(), self.database_url()),
                ("WINGMAN_ACK_WAIT_SECS".into(), "2".into()),
                (
                    "WINGMAN_STREAM_MAX_BYTES".into(),
                    TEST_STREAM_MAX_BYTES.to_string(),
                ),
                ("METRICS_PORT".into(), "0".into()),
                ("RUST_LOG".into(), "warn".into()),
                ("DOCKER_HOST".into(), docker_host()),
                (
                    "WINGMAN_VERIFY_KEY_FILE".into(),
                    self.keys_dir
                        .path()
                        .join("wingman.pub")
                        .display()
                        .to_string(),
                ),
                (
                    "WINGMAN_SIGNING_KEY_FILE".into(),
                    self.keys_dir
                        .path()
                        .join("wingman.key")
                        .display()
                        .to_string(),
                ),
                ("WINGMAN_GATEWAY_LEASE_SECS".into(), "3".into()),
                ("GATEWAY_PORT".into(), "0".into()),
                (
                    "WINGMAN_API_KEYS_FILE".into(),
                    api_keys_file.display().to_string(),
                ),
            ])
            .collect()
    }

    /// This test's database, connecting as `user` (an application role, say).
    pub fn database_as(&self, user: &str, password: &str) -> sqlx::postgres::PgConnectOptions {
        self.database_url()
            .parse::<sqlx::postgres::PgConnectOptions>()
            .unwrap()
            .username(user)
            .password(password)
    }

    /// Stops the in-process stages, deletes the streams and drops the database.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.bus.topology.delete_all(&self.bus.js).await;
        self.pool.close().await;
        if let Ok(admin) = PgPool::connect(&format!("{}/postgres", postgres_base())).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            )))
            .execute(&admin)
            .await;
        }
    }
}

/// Deletes, once per test process, what crashed or killed test runs left on the shared
/// server: streams and buckets of a test prefix (`wt_…`) created more than an hour ago. A
/// stream reserves its byte limit in the server's store, so enough leftovers would make every
/// new test's topology fail to create. No test runs for an hour, so a run beside this one
/// (another developer's) keeps its streams.
async fn remove_stale_test_topologies(js: &jetstream::Context) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        use futures::StreamExt as _;
        let cutoff = chrono::Utc::now() - chrono::Duration::hours(1);
        let mut streams = js.streams();
        let mut stale = Vec::new();
        while let Some(Ok(info)) = streams.next().await {
            let name = &info.config.name;
            let ours = name.starts_with("WT_") || name.starts_with("KV_wt_");
            if ours && info.created < cutoff {
                stale.push(name.clone());
            }
        }
        for name in stale {
            let _ = js.delete_stream(&name).await;
        }
    })
    .await;
}

/// API keys of the tests, one per role, and one with submit and read.
pub const SUBMIT_KEY: &str = "wmk_test_submit";
pub const READ_KEY: &str = "wmk_test_read";

/// Every stream and bucket of a test is capped at this many bytes: JetStream reserves a
/// stream's byte limit when it is created, and the production limits (8.25 GiB a topology)
/// would let only two tests share the local server.
pub const TEST_STREAM_MAX_BYTES: i64 = 64 * 1024 * 1024;
pub const DECIDE_KEY: &str = "wmk_test_decide";
pub const OPERATOR_KEY: &str = "wmk_test_operator";

pub fn test_api_keys() -> ApiKeys {
    ApiKeys::from_keys(&[
        ("submitter", SUBMIT_KEY, &[Role::Submit]),
        ("reader", READ_KEY, &[Role::Read]),
        ("decider", DECIDE_KEY, &[Role::Decide]),
        ("operator", OPERATOR_KEY, &[Role::Submit, Role::Read]),
    ])
}

/// The Docker Engine the tests use (the one scripts/docker-engine.sh starts).
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .unwrap_or_else(|_| "unix:///var/run/wingman-docker/docker.sock".into())
}

/// A request in the public JSON form.
pub fn request_json(request_id: Uuid, command: Option<&str>) -> Value {
    let mut value = serde_json::json!({
        "request_id": request_id,
        "requester": "agent-test",
        "environment": "test",
        "title": "Restart the api container after a config change",
        "description": "The api container must reload its config. Rollback: start it again. Verify: GET /health.",
    });
    if let Some(command) = command {
        value["command"] = Value::String(command.to_string());
    }
    value
}

/// A worker binary built next to this test binary (scripts/test builds them first).
pub fn worker_binary(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().unwrap();
    let directory = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let path = directory.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workers first with `cargo build --workspace --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// Waits for a status event of `request_id` with status `wanted`; returns it.
pub async fn wait_for_status(env: &TestEnv, request_id: Uuid, wanted: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = env
            .stream_messages(
                "WINGMAN_STATUS",
                &format!("{}.status.{request_id}", env.prefix),
            )
            .await;
        if let Some(event) = events.iter().find(|event| event["status"] == wanted) {
            return event.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {wanted} for {request_id}; saw {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A request explained the way a careful operator would.
pub fn well_explained(request_id: Uuid, environment: &str, command: &str, target: &str) -> Value {
    serde_json::json!({
        "request_id": request_id,
        "requester": "ops-anna",
        "environment": environment,
        "command": command,
        "title": format!("Restart the container {target} to reload its config"),
        "description": format!(
            "The container {target} caches its config at start and we changed the log level, so it must restart. \
             Only {target} is touched. Rollback: docker start {target} if it does not come back. \
             Verify: docker inspect shows {target} running."
        ),
    })
}

/// Runs the `wingman` CLI as a user would, pointed at this test's corner, with `extra` env.
pub async fn run_wingman(
    env: &TestEnv,
    extra: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wingman"));
    command.envs(env.child_env()).args(args);
    for (key, value) in extra {
        command.env(key, value);
    }
    command.output().await.expect("run wingman")
}

/// Lossy UTF-8 of a child's output.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The JSON objects a `--json` wait printed, one per line (NDJSON), each checked to be one.
pub fn json_lines(bytes: &[u8]) -> Vec<Value> {
    text(bytes)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not one JSON object per line ({error}): {line}"))
        })
        .collect()
}

/// The last object a `--json` wait printed: where it ended.
pub fn last_json_line(bytes: &[u8]) -> Value {
    json_lines(bytes)
        .pop()
        .unwrap_or_else(|| panic!("no JSON line in: {}", text(bytes)))
}

/// Every Rust file under `folders` (from the repository root), as its path from the root
/// (`src/...`) and its text.
pub fn rust_files(folders: &[&str]) -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut folders: Vec<std::path::PathBuf> =
        folders.iter().map(|folder| root.join(folder)).collect();
    let mut files = Vec::new();
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let file = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                files.push((file, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files
}

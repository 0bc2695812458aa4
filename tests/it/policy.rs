//! The gateway's policy protects what Docker says the target is, in prd, on the real Engine.
//!
//! Each attack is a job whose token the authority's key signed, as it would after the prd
//! approvals (the approval path has its own tests): what these tests show is the gateway's
//! last word. The policy is the shipped `config/policy.toml` with Wingman's project name
//! `wingman-prd` replaced by one unique to the test, so that tests sharing the Engine never
//! see each other's containers; the containers are made the way compose makes them (named
//! `<project>-<service>-1`, with the compose project and service labels).

use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;
use wingman::bus::publish::{Outgoing, publish_all};
use wingman::docker::parse_command_line;
use wingman::envelope::{Envelope, RequestId};
use wingman::events::ExecJob;
use wingman::policy::Policy;
use wingman::request::{Environment, parse_request};
use wingman::stages;
use wingman::token::{self, Claims};

use crate::docker;
use crate::helpers::{TestEnv, wait_for_status, well_explained};

/// The containers a test made; removed when it ends, also when an assertion failed.
struct Containers(Vec<String>);

impl Containers {
    /// Starts a container (with compose labels when `labels` is given) and keeps its name.
    async fn start(&mut self, name: &str, labels: Option<(&str, &str)>) {
        self.0.push(name.to_string());
        docker::start_container(name, labels).await;
    }
}

impl Drop for Containers {
    /// Runs on its own thread and runtime, since `Drop` cannot await.
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.0);
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                for name in &names {
                    docker::remove(name).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// The shipped policy, with Wingman's own compose project renamed to `project`.
fn shipped_policy_for(project: &str) -> Policy {
    let text = include_str!("../../config/policy.toml").replace("wingman-prd", project);
    Policy::from_toml(&text).unwrap()
}

/// Starts a gateway for prd with `policy`; it stops with the test environment.
async fn spawn_prd_gateway(env: &TestEnv, policy: Policy) {
    let mut deps = env.gateway_deps(&[Environment::Prd]).await;
    deps.policy = policy;
    tokio::spawn(stages::gateway::run(
        Arc::new(deps),
        env.options("gateway"),
        env.shutdown.child_token(),
    ));
}

/// Submits a prd request for `command` (intake records it), then publishes its job with a
/// token signed by the authority's key, as after the approvals; returns its request id.
async fn approved_prd_job(env: &TestEnv, command: &str) -> Uuid {
    let request_id = RequestId::generate();
    let public = well_explained(request_id.as_uuid(), "prd", command, "the target");
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        public.to_string(),
    )
    .await;
    wait_for_status(env, request_id.as_uuid(), "PENDING").await;
    let request = parse_request(public.to_string().as_bytes(), RequestId::generate).unwrap();
    let claims = Claims {
        token_id: Uuid::now_v7(),
        request_id,
        environment: Environment::Prd,
        argv_hash: parse_command_line(command).unwrap().argv_hash(),
        approvers: vec!["ops-anna".into(), "ops-ben".into()],
        requester: "agent-7".into(),
        issued_at: Utc::now(),
        expires_at: Utc::now() + chrono::Duration::minutes(10),
        holder: None,
    };
    let job = ExecJob {
        request,
        token: token::mint(&env.signing_key, &claims).unwrap(),
        token_id: claims.token_id,
        expires_at: claims.expires_at,
    };
    let envelope = Envelope::derived(
        claims.request_id,
        Utc::now(),
        &Uuid::new_v4().to_string(),
        job,
    );
    let outgoing = Outgoing::json(
        env.bus.subjects.exec_jobs(),
        envelope.event_id.to_string(),
        &envelope,
    );
    publish_all(&env.bus.js, &[outgoing]).await.unwrap();
    claims.request_id.as_uuid()
}

/// The id of a container, from the test's own client.
async fn container_id(name: &str) -> String {
    docker::client()
        .await
        .inspect_container(
            name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap()
        .id
        .unwrap()
}

/// How many jobs the gateway refused on a policy rule so far, in this process.
fn policy_rejections(handle: &metrics_exporter_prometheus::PrometheusHandle) -> u64 {
    let series = format!(
        "{}{{reason=\"policy\"}} ",
        wingman::metrics::TOKEN_REJECTIONS
    );
    wingman::metrics::render(handle)
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |count| count.trim().parse().unwrap())
}

/// Waits for REFUSED with code `policy`; checks its rule and that the reason says `says`.
async fn assert_refused(env: &TestEnv, request_id: Uuid, rule: &str, says: &str) -> Value {
    let refused = wait_for_status(env, request_id, "REFUSED").await;
    assert_eq!(refused["code"], "policy", "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("refused by policy rule `{rule}`: ")),
        "{rule}: {error}"
    );
    assert!(error.contains(says), "{says}: {error}");
    refused
}

/// Every request in `refused` has its `token_refused` audit row, with code `policy`.
async fn assert_audited(env: &TestEnv, refused: &[Uuid]) {
    env.settle_all().await;
    for request_id in refused {
        env.wait_for_count(
            "SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = 'token_refused' \
             AND data->>'code' = 'policy'",
            Some(*request_id),
            1,
        )
        .await;
    }
}

#[tokio::test]
async fn a_publisher_cannot_stop_the_control_plane_or_a_protected_project_by_any_name_in_prd() {
    let metrics = wingman::metrics::install().unwrap();
    let rejections_before = policy_rejections(&metrics);
    let mut env = TestEnv::start().await;
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let wingman = format!("wt{tag}-prd");
    let ledger = format!("wt{tag}-ledger");
    let postgres = format!("{wingman}-postgres-1");
    let gateway = format!("{wingman}-gateway-1");
    let ledger_app = format!("{ledger}-app-1");
    let loose = docker::unique("wt-loose");
    let mut containers = Containers(Vec::new());
    containers
        .start(&postgres, Some((&wingman, "postgres")))
        .await;
    containers
        .start(&gateway, Some((&wingman, "gateway")))
        .await;
    containers.start(&ledger_app, Some((&ledger, "app"))).await;
    containers.start(&loose, None).await;
    let mut started = Vec::new();
    for name in [&postgres, &gateway, &ledger_app] {
        started.push(docker::state(name).await.unwrap());
    }
    let mut policy = shipped_policy_for(&wingman);
    let prd = policy.environments.get_mut("prd").unwrap();
    prd.protected_projects.push(ledger.clone());
    spawn_prd_gateway(&env, policy).await;
    env.spawn_intake().await;
    env.spawn_recorder().await;

    let gateway_prefix = &container_id(&gateway).await[..12];
    let ledger_prefix = &container_id(&ledger_app).await[..12];
    let upgrade = "README \"Production → Upgrade\" says: `docker compose -f docker-compose.prd.yml";
    let attacks = [
        // The compose name ends in `-1`: the old policy matched `…-postgres` only.
        (
            format!("docker stop {postgres}"),
            "environments.prd.control_plane",
            upgrade.to_string(),
        ),
        // An id prefix names the same container as its name.
        (
            format!("docker restart {gateway_prefix}"),
            "environments.prd.control_plane",
            format!("container {gateway} (typed as `{gateway_prefix}`) is Wingman's gateway"),
        ),
        (
            format!("docker compose -p {wingman} down"),
            "environments.prd.control_plane",
            format!(
                "compose down of project {wingman} (all services) would change Wingman's own control plane"
            ),
        ),
        (
            format!("docker compose -p {wingman} restart gateway"),
            "environments.prd.control_plane",
            upgrade.to_string(),
        ),
        (
            format!("docker compose -p {ledger} stop"),
            "environments.prd.protected_projects",
            format!("compose project {ledger} is protected in prd"),
        ),
        (
            format!("docker rm -f {ledger_app}"),
            "environments.prd.protected_projects",
            format!("container {ledger_app} belongs to compose project {ledger}"),
        ),
        // An inspect is resolved by inspecting (one Engine call): a protected container read
        // by id prefix is refused all the same, and nothing that was read leaves.
        (
            format!("docker inspect {ledger_prefix}"),
            "environments.prd.protected_projects",
            format!(
                "container {ledger_app} (typed as `{ledger_prefix}`) belongs to compose project {ledger}"
            ),
        ),
    ];
    let mut refused = Vec::new();
    for (command, rule, says) in &attacks {
        let request_id = approved_prd_job(&env, command).await;
        assert_refused(&env, request_id, rule, says).await;
        refused.push(request_id);
    }
    let read_refused = *refused.last().unwrap();
    assert_eq!(
        env.output_of(read_refused).await,
        "",
        "a refused inspect publishes no output"
    );

    // Read-only operations on the control plane still run (the runbook inspects the
    // gateway's mounts), and so does a restart of an unprotected container.
    let inspect = approved_prd_job(
        &env,
        &format!("docker inspect -f '{{{{.Name}}}}' {gateway_prefix}"),
    )
    .await;
    let inspected = wait_for_status(&env, inspect, "SUCCEEDED").await;
    let output = env.output_of(inspect).await;
    assert!(
        output.contains(&format!("/{gateway}")),
        "{inspected} {output}"
    );
    let (_, loose_before) = docker::state(&loose).await.unwrap();
    let restart = approved_prd_job(&env, &format!("docker restart -t 1 {loose}")).await;
    wait_for_status(&env, restart, "SUCCEEDED").await;
    let (running, loose_after) = docker::state(&loose).await.unwrap();
    assert!(
        running && loose_after != loose_before,
        "the loose container was restarted"
    );

    for (name, before) in [&postgres, &gateway, &ledger_app].iter().zip(&started) {
        assert_eq!(
            docker::state(name).await.as_ref(),
            Some(before),
            "{name} was not touched"
        );
    }
    assert_audited(&env, &refused).await;
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM audit_events WHERE request_id = $1 ORDER BY seq")
            .bind(inspect)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            "request_received",
            "request_validated",
            "execution_started",
            "execution_finished"
        ]
    );
    let resolved: Value = sqlx::query_scalar::<_, sqlx::types::Json<Value>>(
        "SELECT data->'resolved' FROM audit_events WHERE request_id = $1 AND kind = 'execution_started'",
    )
    .bind(inspect)
    .fetch_one(&env.pool)
    .await
    .unwrap()
    .0;
    assert_eq!(
        resolved["targets"][0]["typed"], *gateway_prefix,
        "{resolved}"
    );
    assert_eq!(resolved["targets"][0]["name"], gateway, "{resolved}");
    assert_eq!(resolved["targets"][0]["service"], "gateway", "{resolved}");
    assert!(
        policy_rejections(&metrics) >= rejections_before + attacks.len() as u64,
        "each refusal is counted"
    );
    drop(containers);
    env.stop().await;
}

#[tokio::test]
async fn a_publisher_cannot_make_the_gateway_act_on_other_compose_files_or_a_profile() {
    let mut env = TestEnv::start().await;
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let wingman = format!("wt{tag}-prd");
    let api = format!("{wingman}-api-1");
    let mut containers = Containers(Vec::new());
    containers.start(&api, Some((&wingman, "api"))).await;
    spawn_prd_gateway(&env, shipped_policy_for(&wingman)).await;
    env.spawn_intake().await;
    env.spawn_recorder().await;

    let registered =
        format!("docker compose -f docker-compose.prd.yml -p {wingman} --env-file .env.prd");
    let attacks = [
        (
            format!("docker compose -f other.yml -p {wingman} ps"),
            format!("projects.{wingman}.compose_files"),
            "-f other.yml does not name the compose files registered".to_string(),
        ),
        (
            format!(
                "docker compose -f docker-compose.prd.yml -p {wingman} --env-file .env.evil ps"
            ),
            format!("projects.{wingman}.env_file"),
            "--env-file .env.evil is not the env file registered".to_string(),
        ),
        (
            format!("docker compose -f docker-compose.yml -p wt{tag}-shop stop"),
            "projects".to_string(),
            format!("compose project wt{tag}-shop is not registered for prd"),
        ),
    ];
    let mut refused = Vec::new();
    for (command, rule, says) in &attacks {
        let request_id = approved_prd_job(&env, command).await;
        assert_refused(&env, request_id, rule, says).await;
        refused.push(request_id);
    }

    // `--profile` never reaches the gateway: intake refuses it at once, with the reason.
    let request_id = Uuid::new_v4();
    let payload = well_explained(
        request_id,
        "prd",
        &format!("docker compose -p {wingman} --profile x stop"),
        &wingman,
    );
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    let invalid = wait_for_status(&env, request_id, "INVALID").await;
    assert_eq!(invalid["code"], "invalid_command", "{invalid}");
    assert!(
        invalid["error"]
            .as_str()
            .unwrap()
            .contains("flag `--profile` of `docker compose` is not supported"),
        "{invalid}"
    );

    // The registered files, as the runbook types them, are accepted.
    let ps = approved_prd_job(&env, &format!("{registered} ps")).await;
    let listed = wait_for_status(&env, ps, "SUCCEEDED").await;
    let output = env.output_of(ps).await;
    assert!(output.contains(&api), "{listed} {output}");
    assert_audited(&env, &refused).await;
    assert!(docker::state(&api).await.unwrap().0, "still running");
    drop(containers);
    env.stop().await;
}

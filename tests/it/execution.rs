//! Authority and gateway through the whole pipeline, on the real Docker Engine; the attack
//! matrix; at-most-once across a gateway crash.

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;
use wingman::bus::publish::{Outgoing, publish_all};
use wingman::docker::parse_command_line;
use wingman::envelope::{Envelope, RequestId};
use wingman::events::ExecJob;
use wingman::request::{Command, Environment, Request};
use wingman::stages;
use wingman::token::{self, Claims, SigningKey};

use crate::docker;
use crate::helpers::{TestEnv, wait_for_status, well_explained};

#[tokio::test]
async fn an_auto_approved_restart_restarts_the_real_container_once_and_is_recorded() {
    let mut env = TestEnv::start().await;
    let name = docker::unique("wt-api");
    docker::start_container(&name, None).await;
    let (_, started_before) = docker::state(&name).await.unwrap();
    env.spawn_intake_validating(100).await;
    env.spawn_authority().await;
    env.spawn_gateway(&[Environment::Dev, Environment::Test])
        .await;
    env.spawn_recorder().await;

    let request_id = Uuid::new_v4();
    let payload = well_explained(request_id, "dev", &format!("docker restart {name}"), &name);
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    let done = wait_for_status(&env, request_id, "SUCCEEDED").await;
    assert_eq!(done["exit_code"], 0);
    env.settle_all().await;

    let (running, started_after) = docker::state(&name).await.unwrap();
    assert!(running);
    assert_ne!(
        started_before, started_after,
        "the container was really restarted"
    );
    assert_eq!(
        env.status_of(request_id).await.as_deref(),
        Some("AUTO_APPROVED"),
        "the decision stays when the request runs"
    );
    assert_eq!(
        env.execution_status_of(request_id).await.as_deref(),
        Some("SUCCEEDED")
    );
    let (status, operation): (String, String) =
        sqlx::query_as("SELECT status, operation FROM executions WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), operation.as_str()),
        ("SUCCEEDED", "container_restart")
    );
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM audit_events WHERE request_id = $1 ORDER BY seq")
            .bind(request_id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            "request_received",
            "request_validated",
            "token_minted",
            "execution_started",
            "execution_finished"
        ]
    );
    docker::remove(&name).await;
    env.stop().await;
}

/// A job as someone with access to the bus could publish it.
struct Forge {
    bus: wingman::bus::Bus,
    key: std::sync::Arc<SigningKey>,
}

impl Forge {
    fn claims(&self, request_id: RequestId, environment: Environment, command: &str) -> Claims {
        Claims {
            token_id: Uuid::now_v7(),
            request_id,
            environment,
            argv_hash: parse_command_line(command).unwrap().argv_hash(),
            approvers: vec!["validator".into()],
            requester: "mallory".into(),
            issued_at: Utc::now(),
            expires_at: Utc::now() + chrono::Duration::minutes(10),
            holder: None,
        }
    }

    /// A job whose request says `environment`/`command` (parsed as `operation_of`), carrying
    /// `claims` signed by this forge's key.
    fn job(
        &self,
        claims: &Claims,
        environment: Environment,
        command: &str,
        operation_of: &str,
    ) -> ExecJob {
        let request = Request {
            request_id: claims.request_id,
            requester: "mallory".into(),
            submitted_by: wingman::identity::Principal::Anonymous,
            environment,
            command: Some(Command {
                line: command.into(),
                operation: parse_command_line(operation_of).unwrap(),
            }),
            title: "t".into(),
            description: "d".into(),
            risk_level: None,
            execution: Default::default(),
        };
        ExecJob {
            request,
            token: token::mint(&self.key, claims).unwrap(),
            token_id: claims.token_id,
            expires_at: claims.expires_at,
        }
    }

    /// Publishes a job whose request says `environment`/`command`, carrying `claims` signed by
    /// this forge's key; returns the request id.
    async fn publish(
        &self,
        claims: &Claims,
        environment: Environment,
        command: &str,
        operation_of: &str,
    ) -> Uuid {
        let job = self.job(claims, environment, command, operation_of);
        self.enqueue(&job).await;
        claims.request_id.as_uuid()
    }

    /// Publishes `job` as a new message for the gateway (a copy of a real job, to replay it).
    async fn enqueue(&self, job: &ExecJob) {
        let envelope = Envelope::derived(
            job.request.request_id,
            Utc::now(),
            &Uuid::new_v4().to_string(),
            job.clone(),
        );
        let outgoing = Outgoing::json(
            self.bus.subjects.exec_jobs(),
            envelope.event_id.to_string(),
            &envelope,
        );
        publish_all(&self.bus.js, &[outgoing]).await.unwrap();
    }
}

#[tokio::test]
async fn the_gateway_refuses_every_forged_stale_or_mismatched_job_with_its_reason() {
    let mut env = TestEnv::start().await;
    let name = docker::unique("wt-victim");
    env.spawn_intake_validating(100).await;
    env.spawn_authority().await;
    docker::start_container(&name, None).await;
    let (_, started_before) = docker::state(&name).await.unwrap();
    env.spawn_recorder().await;
    let (_, stop_gateway) = env
        .spawn_gateway(&[Environment::Dev, Environment::Prd])
        .await;
    let (other_key, _) = token::generate_keypair();
    let ours = Forge {
        bus: env.bus.clone(),
        key: std::sync::Arc::clone(&env.signing_key),
    };
    let theirs = Forge {
        bus: env.bus.clone(),
        key: std::sync::Arc::new(other_key),
    };
    let stop = format!("docker stop {name}");
    let restart = format!("docker restart {name}");
    let id = RequestId::generate;

    let mut cases: Vec<(Uuid, &str)> = Vec::new();
    let forged = theirs.claims(id(), Environment::Dev, &stop);
    cases.push((
        theirs
            .publish(&forged, Environment::Dev, &stop, &stop)
            .await,
        "bad_signature",
    ));
    let mut expired = ours.claims(id(), Environment::Dev, &stop);
    expired.issued_at = Utc::now() - chrono::Duration::minutes(20);
    expired.expires_at = Utc::now() - chrono::Duration::minutes(10);
    cases.push((
        ours.publish(&expired, Environment::Dev, &stop, &stop).await,
        "expired",
    ));
    let prd_token = ours.claims(id(), Environment::Prd, &stop);
    cases.push((
        ours.publish(&prd_token, Environment::Dev, &stop, &stop)
            .await,
        "wrong_environment",
    ));
    let test_env = ours.claims(id(), Environment::Test, &stop);
    cases.push((
        ours.publish(&test_env, Environment::Test, &stop, &stop)
            .await,
        "environment_not_allowed",
    ));
    let rm = format!("docker rm -f {name}");
    let other_command = ours.claims(id(), Environment::Dev, &stop);
    cases.push((
        ours.publish(&other_command, Environment::Dev, &rm, &rm)
            .await,
        "command_mismatch",
    ));
    let chained = format!("docker stop {name}; docker rm -f {name}");
    let shell = ours.claims(id(), Environment::Dev, &stop);
    cases.push((
        ours.publish(&shell, Environment::Dev, &chained, &stop)
            .await,
        "unparseable_command",
    ));
    let kill = format!("docker kill {name}");
    let forbidden = ours.claims(id(), Environment::Prd, &kill);
    cases.push((
        ours.publish(&forbidden, Environment::Prd, &kill, &kill)
            .await,
        "policy",
    ));

    for (request_id, code) in &cases {
        let refused = wait_for_status(&env, *request_id, "REFUSED").await;
        assert_eq!(refused["code"], *code, "{refused}");
    }
    let (running, started_after) = docker::state(&name).await.unwrap();
    assert!(
        running && started_after == started_before,
        "no refused job touched the container"
    );

    // A token the authority minted runs once; the same token in another job is a replay,
    // also after the gateway restarts.
    let request_id = Uuid::new_v4();
    let payload = well_explained(request_id, "dev", &restart, &name);
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    wait_for_status(&env, request_id, "SUCCEEDED").await;
    let (_, restarted_at) = docker::state(&name).await.unwrap();
    assert_ne!(restarted_at, started_before);
    let (minted, _): (stages::authority::Minted, u64) = wingman::claims::read(
        &env.claims().await,
        &wingman::claims::Key::Minted(wingman::envelope::RequestId::from_uuid(request_id))
            .to_string(),
        "the token",
    )
    .await
    .unwrap()
    .unwrap();
    let request: Request = sqlx::query_scalar::<_, sqlx::types::Json<Value>>(
        "SELECT data->'request' FROM audit_events WHERE request_id = $1 AND kind = 'request_received'",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .map(|json| serde_json::from_value(json.0).unwrap())
    .unwrap();
    let replay = ExecJob {
        request,
        token: minted.token.clone(),
        token_id: minted.token_id,
        expires_at: minted.expires_at,
    };
    ours.enqueue(&replay).await;
    env.settle_all().await;
    stop_gateway.cancel();
    env.spawn_gateway(&[Environment::Dev]).await;
    ours.enqueue(&replay).await;
    env.settle_all().await;
    let (_, after_replays) = docker::state(&name).await.unwrap();
    assert_eq!(after_replays, restarted_at, "replays ran nothing");

    let refusals: Vec<(Option<Uuid>, String)> =
        sqlx::query_as("SELECT request_id, data->>'code' FROM audit_events WHERE kind = 'token_refused' ORDER BY seq")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    for (request_id, code) in &cases {
        assert!(
            refusals.contains(&(Some(*request_id), code.to_string())),
            "{code} audited: {refusals:?}"
        );
    }
    let replays = refusals
        .iter()
        .filter(|(rid, code)| *rid == Some(request_id) && code == "token_reused")
        .count();
    assert_eq!(replays, 2, "both replays refused and audited");
    docker::remove(&name).await;
    env.stop().await;
}

/// The seed's four monitoring queries, verbatim (`/work/shared/seed/`, "Monitoring"): the three
/// rates, and the scores of recent auto-rejections.
pub(crate) const SEED_AUTO_REJECT_RATE: &str =
    "SELECT COUNT(*) FILTER (WHERE status = 'AUTO_REJECTED') * 100.0 / COUNT(*)
   FROM approval_requests
   WHERE created_at > NOW() - INTERVAL '24 hours';";
pub(crate) const SEED_AUTO_APPROVE_RATE: &str =
    "SELECT COUNT(*) FILTER (WHERE status = 'AUTO_APPROVED') * 100.0 / COUNT(*)
   FROM approval_requests
   WHERE created_at > NOW() - INTERVAL '24 hours';";
pub(crate) const SEED_MANUAL_REVIEW_RATE: &str =
    "SELECT COUNT(*) FILTER (WHERE status = 'PENDING') * 100.0 / COUNT(*)
   FROM approval_requests
   WHERE created_at > NOW() - INTERVAL '24 hours';";
pub(crate) const SEED_AUTO_REJECTED_SCORES: &str = "SELECT validator_scores
   FROM approval_requests
   WHERE status = 'AUTO_REJECTED'
     AND created_at > NOW() - INTERVAL '24 hours';";

#[tokio::test]
async fn an_auto_approved_request_that_ran_still_counts_as_auto_approved_in_the_seeds_monitoring_queries()
 {
    let mut env = TestEnv::start().await;
    let name = docker::unique("wt-monitor");
    docker::start_container(&name, None).await;
    env.spawn_intake_validating(100).await;
    env.spawn_authority().await;
    env.spawn_gateway(&[Environment::Dev, Environment::Test])
        .await;
    env.spawn_recorder().await;

    // One request auto-approved and run on the real Engine, one auto-rejected.
    let executed = Uuid::new_v4();
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        well_explained(executed, "dev", &format!("docker restart {name}"), &name).to_string(),
    )
    .await;
    let rejected = Uuid::new_v4();
    let careless = serde_json::json!({
        "request_id": rejected, "requester": "agent-7", "environment": "dev",
        "command": "docker compose -p scratch down -v", "title": "cleanup", "description": "cleanup stuff",
    });
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        careless.to_string(),
    )
    .await;
    wait_for_status(&env, executed, "SUCCEEDED").await;
    wait_for_status(&env, rejected, "AUTO_REJECTED").await;
    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE execution_status = 'SUCCEEDED'",
        None,
        1,
    )
    .await;

    let rate = |query: &'static str| {
        let pool = env.pool.clone();
        async move {
            let rate: sqlx::types::BigDecimal =
                sqlx::query_scalar(query).fetch_one(&pool).await.unwrap();
            rate.to_string().parse::<f64>().unwrap()
        }
    };
    assert_eq!(
        rate(SEED_AUTO_APPROVE_RATE).await,
        50.0,
        "the executed request counts as auto-approved"
    );
    assert_eq!(rate(SEED_AUTO_REJECT_RATE).await, 50.0);
    assert_eq!(rate(SEED_MANUAL_REVIEW_RATE).await, 0.0);
    let scores: Vec<Option<Value>> = sqlx::query_scalar(SEED_AUTO_REJECTED_SCORES)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(scores.len(), 1);
    assert!(scores[0].is_some(), "the auto-rejection carries its scores");

    // `wingman list --status` reads either family: the decision, or how the run went.
    let listed = |status: &str| {
        let filter = wingman::store::requests::ListFilter {
            status: Some(status.parse().unwrap()),
            since: None,
            limit: 10,
        };
        let pool = env.pool.clone();
        async move {
            wingman::store::requests::list(&pool, &filter)
                .await
                .unwrap()
                .into_iter()
                .map(|row| row.request_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("AUTO_APPROVED").await, [executed]);
    assert_eq!(listed("SUCCEEDED").await, [executed]);
    assert_eq!(listed("AUTO_REJECTED").await, [rejected]);
    assert!(listed("EXECUTING").await.is_empty());
    docker::remove(&name).await;
    env.stop().await;
}

/// The gateway asks whether a token was used and what Docker says its targets are at once;
/// the claim decides alone. A job redelivered after it ran gets its outcome again while the
/// Docker Engine does not answer, instead of retrying until the Engine is back, and a job
/// never seen is retried later, not refused, not claimed.
#[tokio::test]
async fn a_job_that_ran_gets_its_outcome_again_while_the_engine_does_not_answer() {
    let env = TestEnv::start().await;
    let name = docker::unique("wt-replay");
    docker::start_container(&name, None).await;
    let mut engine_proxy = docker::Proxy::start().await;
    let mut settings = env.gateway_settings(&[Environment::Dev]);
    settings.docker_host = Some(engine_proxy.host());
    let engine = stages::gateway::connect_engine(&settings).await.unwrap();
    let deps = stages::gateway::GatewayDeps::open(
        env.bus.clone(),
        "gateway@test".into(),
        settings,
        engine,
    )
    .await
    .unwrap();
    let forge = Forge {
        bus: env.bus.clone(),
        key: std::sync::Arc::clone(&env.signing_key),
    };
    let inspect = format!("docker inspect {name}");
    let job = |request_id: RequestId| {
        let claims = forge.claims(request_id, Environment::Dev, &inspect);
        forge.job(&claims, Environment::Dev, &inspect, &inspect)
    };
    let events = |outgoing: &[Outgoing]| -> Vec<Value> {
        outgoing
            .iter()
            .map(|message| serde_json::from_slice::<Value>(&message.payload).unwrap())
            .collect()
    };
    let statuses = |outgoing: &[Outgoing]| -> Vec<String> {
        events(outgoing)
            .iter()
            .filter_map(|event| event["status"].as_str().map(str::to_string))
            .collect()
    };
    let event_ids = |outgoing: &[Outgoing]| -> Vec<String> {
        events(outgoing)
            .iter()
            .map(|event| event["event_id"].to_string())
            .collect()
    };
    let ran = job(RequestId::generate());
    // When the job's message was published: a redelivery carries the same.
    let published = Utc::now();
    let run = |job: ExecJob, job_id: &'static str| {
        let deps = &deps;
        async move {
            stages::gateway::execute(deps, &job, job_id, token::Presenter::Pipeline, published)
                .await
        }
    };
    let first = run(ran.clone(), "job-1").await.expect("the job runs");
    assert_eq!(statuses(&first), ["SUCCEEDED"]);

    engine_proxy.stop().await;
    let again = run(ran.clone(), "job-1")
        .await
        .expect("a redelivered job is answered from its claim, without the Engine");
    assert_eq!(statuses(&again), ["SUCCEEDED"]);
    assert_eq!(
        event_ids(&again),
        event_ids(&first),
        "the same events again (ids derived from the job), so they are recorded once"
    );
    let unseen = run(job(RequestId::generate()), "job-2").await;
    match unseen {
        Err(wingman::bus::consume::StageError::Transient(error)) => {
            assert!(format!("{error:#}").contains("docker engine"), "{error:#}")
        }
        other => panic!("a job never run waits for the Engine, got {other:?}"),
    }
    docker::remove(&name).await;
    env.stop().await;
}

/// The gateway records EXECUTING and claims the token at once. When EXECUTING cannot be
/// recorded (here: the status stream is gone), the claim is given back and nothing runs, so
/// the retry, once the stream is back, runs the operation once instead of ending
/// INDETERMINATE.
#[tokio::test]
async fn a_job_whose_executing_cannot_be_recorded_gives_its_claim_back_and_runs_once_on_retry() {
    let env = TestEnv::start().await;
    let name = docker::unique("wt-release");
    docker::start_container(&name, None).await;
    let (_, started_before) = docker::state(&name).await.unwrap();
    let deps = env.gateway_deps(&[Environment::Dev]).await;
    let forge = Forge {
        bus: env.bus.clone(),
        key: std::sync::Arc::clone(&env.signing_key),
    };
    let restart = format!("docker restart {name}");
    let claims = forge.claims(RequestId::generate(), Environment::Dev, &restart);
    let job = forge.job(&claims, Environment::Dev, &restart, &restart);
    let published = Utc::now();
    let key = format!("exec.{}", claims.token_id);
    let status = env.bus.stream("WINGMAN_STATUS").await.unwrap();
    let status_stream = status.cached_info().config.name.clone();
    env.bus.js.delete_stream(&status_stream).await.unwrap();

    let refused =
        stages::gateway::execute(&deps, &job, "job-1", token::Presenter::Pipeline, published).await;
    match refused {
        Err(wingman::bus::consume::StageError::Transient(_)) => {}
        other => panic!("a job whose EXECUTING is not recorded is retried later, got {other:?}"),
    }
    let entry = deps.claims.entry(&key).await.unwrap();
    assert!(
        entry.is_none_or(|entry| entry.operation != async_nats::jetstream::kv::Operation::Put),
        "the claim was given back"
    );
    let (_, started_now) = docker::state(&name).await.unwrap();
    assert_eq!(started_now, started_before, "nothing ran");

    env.bus.ensure_topology().await.unwrap();
    let ran = stages::gateway::execute(&deps, &job, "job-1", token::Presenter::Pipeline, published)
        .await
        .expect("the retry runs");
    let statuses: Vec<String> = ran
        .iter()
        .filter_map(|message| {
            serde_json::from_slice::<Value>(&message.payload).unwrap()["status"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(statuses, ["SUCCEEDED"]);
    let (_, started_after) = docker::state(&name).await.unwrap();
    assert_ne!(started_after, started_before, "the retry restarted it");
    let again =
        stages::gateway::execute(&deps, &job, "job-2", token::Presenter::Pipeline, published)
            .await
            .expect("a second job with the token is answered");
    assert!(
        String::from_utf8_lossy(&again[0].payload).contains("token_reused"),
        "the token ran once"
    );
    docker::remove(&name).await;
    env.stop().await;
}

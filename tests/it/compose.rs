//! The runbook's deployment stages as typed operations, on the real Docker Engine: stage C
//! (`compose up -d --build` of a registered project, through the compose binary) and stage D
//! (declared probes through the exec API), and what the gateway refuses around them.
//!
//! Each test makes its own compose project in a temp dir (a compose file, a Dockerfile
//! `FROM wingman-test/busybox:latest`, `network_mode: none`) and registers it in a policy
//! that is the shipped `config/policy.toml` plus that project, with Wingman's own project
//! renamed to one unique to the test (as `tests/it/policy.rs` does).

use std::collections::HashMap;
use std::process::Output;
use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
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
use crate::helpers::{TestEnv, run_wingman, text, wait_for_status};

/// The health endpoint the test service serves (busybox httpd on loopback).
const HEALTH: [&str; 3] = ["wget", "-qO-", "http://127.0.0.1:8080/health"];

/// A compose project made for one test, removed (containers and built image) when dropped.
struct TestProject {
    name: String,
    directory: tempfile::TempDir,
}

impl TestProject {
    /// A project with one service `web` built from a Dockerfile, serving `/health` and
    /// carrying two rollout variables and a password in its environment, and an env file.
    fn new() -> Self {
        let name = docker::unique("wt-up");
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path();
        std::fs::create_dir(path.join("www")).unwrap();
        std::fs::write(path.join("www/health"), "healthy\n").unwrap();
        std::fs::write(
            path.join("Dockerfile"),
            format!("FROM {}\nCOPY www /www\n", docker::IMAGE),
        )
        .unwrap();
        std::fs::write(
            path.join("docker-compose.yml"),
            format!(
                "version: \"3.7\"\nservices:\n  web:\n    build: .\n    image: {name}-web:test\n    \
                 network_mode: none\n    init: true\n    \
                 command: [\"httpd\", \"-f\", \"-p\", \"127.0.0.1:8080\", \"-h\", \"/www\"]\n    \
                 environment:\n      VALIDATION_ENABLED: \"true\"\n      \
                 VALIDATION_ROLLOUT_PERCENT: \"50\"\n      DB_PASSWORD: hunter2-do-not-print\n"
            ),
        )
        .unwrap();
        std::fs::write(path.join(".env.prd"), "GREETING=hello\n").unwrap();
        TestProject { name, directory }
    }

    /// The shipped policy, Wingman's own project renamed to `own`, with this project
    /// registered for prd (its compose file and env file) and its two probes declared.
    fn policy(&self, own: &str) -> Policy {
        let mut text = include_str!("../../config/policy.toml").replace("wingman-prd", own);
        text.push_str(&format!(
            "\n[projects.{name}]\nenvironments = [\"prd\"]\nproject_directory = \"{dir}\"\n\
             compose_files = [\"docker-compose.yml\"]\nenv_file = \".env.prd\"\n\
             [projects.{name}.probes]\n\
             health = [\"wget\", \"-qO-\", \"http://127.0.0.1:8080/health\"]\n\
             env = {{ print_env = [\"VALIDATION_ENABLED\", \"VALIDATION_ROLLOUT_PERCENT\"] }}\n",
            name = self.name,
            dir = self.directory.path().display(),
        ));
        Policy::from_toml(&text).unwrap()
    }

    /// The project's containers (name → running), by the compose project label.
    async fn containers(&self) -> HashMap<String, bool> {
        containers_of(&self.name).await
    }
}

/// The containers labelled with compose project `project` (name → running).
pub(crate) async fn containers_of(project: &str) -> HashMap<String, bool> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("com.docker.compose.project={project}")],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker::client()
        .await
        .list_containers(Some(options))
        .await
        .unwrap()
        .into_iter()
        .map(|summary| {
            let name = summary.names.unwrap_or_default()[0]
                .trim_start_matches('/')
                .to_string();
            let running = summary.state.map(|state| state.as_ref() == "running");
            (name, running.unwrap_or(false))
        })
        .collect()
}

impl Drop for TestProject {
    /// Removes the project's containers and built image, on its own thread and runtime,
    /// since `Drop` cannot await.
    fn drop(&mut self) {
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                for container in containers_of(&name).await.keys() {
                    docker::remove(container).await;
                }
                let _ = docker::client()
                    .await
                    .remove_image(
                        &format!("{name}-web:test"),
                        None::<bollard::query_parameters::RemoveImageOptions>,
                        None,
                    )
                    .await;
            });
        });
        let _ = cleanup.join();
    }
}

/// The whole pipeline with a console approver (`ops-bob`, one approval for prd) and a prd
/// gateway with `policy`.
async fn pipeline(policy: Policy) -> TestEnv {
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_approvals(None, &["cli:ops-bob"], 1).await;
    env.spawn_authority().await;
    spawn_prd_gateway(&env, policy).await;
    env.spawn_recorder().await;
    env
}

async fn spawn_prd_gateway(env: &TestEnv, policy: Policy) {
    let mut deps = env.gateway_deps(&[Environment::Prd]).await;
    deps.policy = policy;
    tokio::spawn(stages::gateway::run(
        Arc::new(deps),
        env.options("gateway"),
        env.shutdown.child_token(),
    ));
}

/// A prd request for `command`, explained as the runbook's stage `stage` would be.
fn runbook_request(request_id: Uuid, command: &str, stage: &str) -> Value {
    json!({
        "request_id": request_id, "requester": "agent-7", "environment": "prd", "command": command,
        "title": format!("Runbook stage {stage}: deploy and validate the web service"),
        "description": "Stage of the deployment runbook for the web service: build the new image and \
            start it, then check its health endpoint and its validation rollout variables. Only the \
            web service of this project is touched. Rollback: down, restore the previous compose file \
            from git, up -d again. Verify: the health probe answers and the rollout variables are set.",
    })
}

/// `wingman` as the console approver `approver`, with their own key.
pub(crate) async fn wingman(env: &TestEnv, approver: &str, args: &[&str]) -> Output {
    let key = env.approver_key(approver);
    run_wingman(
        env,
        &[
            ("WINGMAN_APPROVER", approver),
            ("WINGMAN_APPROVER_KEY_FILE", key.to_str().unwrap()),
        ],
        args,
    )
    .await
}

/// Submits `command`; approves it at the console when a human must decide; returns the final
/// status event (SUCCEEDED, FAILED or REFUSED).
async fn submit_and_approve(env: &TestEnv, command: &str, stage: &str) -> (Uuid, Value) {
    let request_id = Uuid::new_v4();
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        runbook_request(request_id, command, stage).to_string(),
    )
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut approved = false;
    loop {
        let events = env
            .stream_messages(
                "WINGMAN_STATUS",
                &format!("{}.status.{request_id}", env.prefix),
            )
            .await;
        if let Some(last) = events.iter().find(|event| {
            ["SUCCEEDED", "FAILED", "REFUSED", "INVALID", "AUTO_REJECTED"]
                .contains(&event["status"].as_str().unwrap_or(""))
        }) {
            return (request_id, last.clone());
        }
        if !approved && events.iter().any(|event| event["status"] == "PENDING") {
            env.settle_all().await;
            let done = wingman(env, "ops-bob", &["approve", &request_id.to_string()]).await;
            assert!(done.status.success(), "{}", text(&done.stderr));
            approved = true;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{command}: no final status; saw {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn stage_c_compose_up_build_of_a_registered_project_is_approved_and_its_container_runs() {
    let project = TestProject::new();
    let own = docker::unique("wt-own");
    let env = pipeline(project.policy(&own)).await;

    // Stage C, typed as the runbook types it: the files named are the registered ones.
    let command = format!(
        "docker compose -f docker-compose.yml -p {} up -d --build",
        project.name
    );
    let (request_id, done) = submit_and_approve(&env, &command, "C").await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["exit_code"], 0);
    let containers = project.containers().await;
    assert_eq!(containers.len(), 1, "{containers:?}");
    let (container, running) = containers.iter().next().unwrap();
    assert!(running, "{container} runs after stage C");
    let output = env.output_of(request_id).await;
    assert!(output.contains("Successfully built"), "built: {output}");
    assert!(output.contains("project "), "{output}");

    // The audit of stage C: approved by the console approver, then the gateway's own argv.
    env.settle_all().await;
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM audit_events WHERE request_id = $1")
            .bind(request_id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    for kind in [
        "approval_decided",
        "token_minted",
        "execution_started",
        "execution_finished",
    ] {
        assert!(kinds.iter().any(|seen| seen == kind), "{kind} in {kinds:?}");
    }
    let started: Value = sqlx::query_scalar(
        "SELECT data FROM audit_events WHERE request_id = $1 AND kind = 'execution_started'",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        started["compose_project_directory"],
        project.directory.path().display().to_string(),
        "the directory came from the policy: {started}"
    );
    assert_eq!(started["operation"], "compose_up");
    // What the approval was performed with: each registered file's SHA-256 as the gateway
    // read it before running compose, also in `wingman audit show` (as `sha256sum` prints).
    let sha256 = |file: &str| {
        use sha2::Digest as _;
        let path = project.directory.path().join(file);
        let content = std::fs::read(&path).unwrap();
        (
            path.display().to_string(),
            hex::encode(sha2::Sha256::digest(content)),
        )
    };
    let (compose_path, compose_sha256) = sha256("docker-compose.yml");
    let (env_path, env_sha256) = sha256(".env.prd");
    assert_eq!(
        started["compose_files"],
        json!([{"path": compose_path, "sha256": compose_sha256}]),
        "{started}"
    );
    assert_eq!(
        started["env_file"],
        json!({"path": env_path, "sha256": env_sha256}),
        "{started}"
    );
    let shown = run_wingman(&env, &[], &["audit", "show", &request_id.to_string()]).await;
    let shown = text(&shown.stdout);
    assert!(
        shown.contains(&format!("{compose_sha256}  {compose_path}\n"))
            && shown.contains(&format!("{env_sha256}  {env_path}\n")),
        "{shown}"
    );
    let decided: Value = sqlx::query_scalar(
        "SELECT data FROM audit_events WHERE request_id = $1 AND kind = 'approval_decided'",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(decided.to_string().contains("ops-bob"), "{decided}");

    // Stage D: the declared health probe prints what the service answers.
    let (health_id, health) = submit_and_approve(
        &env,
        &format!("docker exec {container} {}", HEALTH.join(" ")),
        "D",
    )
    .await;
    assert_eq!(health["status"], "SUCCEEDED", "{health}");
    assert!(
        env.output_of(health_id).await.contains("healthy"),
        "{}",
        env.output_of(health_id).await
    );
    env.settle_all().await;
    let probed: Value = sqlx::query_scalar(
        "SELECT data FROM audit_events WHERE request_id = $1 AND kind = 'execution_started'",
    )
    .bind(health_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(
        probed.get("compose_files").is_none() && probed.get("env_file").is_none(),
        "no compose files read for a probe: {probed}"
    );

    // The env probe prints the two named variables and never the password beside them.
    let (env_id, printed) = submit_and_approve(
        &env,
        &format!("docker exec {container} printenv VALIDATION_ENABLED VALIDATION_ROLLOUT_PERCENT"),
        "D",
    )
    .await;
    assert_eq!(printed["status"], "SUCCEEDED", "{printed}");
    let output = env.output_of(env_id).await;
    assert!(
        output.ends_with("VALIDATION_ENABLED=true\nVALIDATION_ROLLOUT_PERCENT=50\n"),
        "{output}"
    );
    assert!(
        !output.contains("hunter2") && !output.contains("DB_PASSWORD"),
        "{output}"
    );
    env.settle_all().await;
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE data::text LIKE '%hunter2%'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(audited, 0, "the password is nowhere in the audit");
    env.stop().await;
}

/// Submits a prd request for `command` (intake records it), then publishes its job with a
/// token signed by the authority's key, as after the approvals; returns its request id.
async fn approved_prd_job(env: &TestEnv, command: &str) -> Uuid {
    let request_id = RequestId::generate();
    let public = runbook_request(request_id.as_uuid(), command, "C");
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

#[tokio::test]
async fn other_compose_files_undeclared_probes_and_an_up_of_wingmans_own_project_are_refused() {
    let project = TestProject::new();
    let own = docker::unique("wt-own");
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    spawn_prd_gateway(&env, project.policy(&own)).await;
    // A container of the registered project (made directly, labelled as compose labels it),
    // and one of Wingman's own gateway.
    let web = format!("{}-web-1", project.name);
    let own_gateway = format!("{own}-gateway-1");
    docker::start_container(&web, Some((&project.name, "web"))).await;
    docker::start_container(&own_gateway, Some((&own, "gateway"))).await;

    let cases = [
        (
            format!(
                "docker compose -f other.yml -p {} up -d --build",
                project.name
            ),
            format!("projects.{}.compose_files", project.name),
            "-f other.yml does not name the compose files registered for project".to_string(),
        ),
        (
            format!(
                "docker compose -p {} --env-file /etc/shadow up -d",
                project.name
            ),
            format!("projects.{}.env_file", project.name),
            "is not the env file registered".to_string(),
        ),
        (
            format!("docker exec {web} printenv DB_PASSWORD"),
            format!("projects.{}.probes", project.name),
            "`printenv DB_PASSWORD` is not a probe declared for compose project".to_string(),
        ),
        (
            format!("docker exec {web} sh -c id"),
            format!("projects.{}.probes", project.name),
            "the gateway never runs an arbitrary command in a container".to_string(),
        ),
        (
            format!("docker exec {own_gateway} sh"),
            format!("projects.{own}.probes"),
            "is not a probe declared".to_string(),
        ),
        (
            format!(
                "docker compose -f docker-compose.prd.yml -p {own} --env-file .env.prd up -d --build"
            ),
            "environments.prd.control_plane".to_string(),
            "README \"Production → Upgrade\"".to_string(),
        ),
        // The seed's rollout restart, verbatim: a service Wingman's project does not have.
        (
            format!(
                "docker compose -f docker-compose.prd.yml -p {own} --env-file .env.prd up -d wingman-api"
            ),
            "environments.prd.control_plane".to_string(),
            "README \"Production → Upgrade\"".to_string(),
        ),
        (
            format!(
                "docker compose -p {} up -d",
                docker::unique("wt-unregistered")
            ),
            "projects".to_string(),
            "register its directory and files".to_string(),
        ),
    ];
    let mut refused = Vec::new();
    for (command, rule, says) in &cases {
        let request_id = approved_prd_job(&env, command).await;
        let status = wait_for_status(&env, request_id, "REFUSED").await;
        assert_eq!(status["code"], "policy", "{command}: {status}");
        let error = status["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("refused by policy rule `{rule}`: ")),
            "{command}: {error}"
        );
        assert!(error.contains(says.as_str()), "{command}: {error}");
        refused.push(request_id);
    }
    assert!(
        project.containers().await.len() == 1,
        "nothing was created for the project"
    );
    env.settle_all().await;
    for request_id in refused {
        env.wait_for_count(
            "SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = 'token_refused'",
            Some(request_id),
            1,
        )
        .await;
    }
    docker::remove(&own_gateway).await;
    env.stop().await;
}

/// Runs `wingman-docker` (the wrapper installed as `docker`) with `args` for prd; approves
/// at the console whatever request waits for a human meanwhile; returns its output.
pub(crate) async fn wrapper_approved(env: &TestEnv, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wingman-docker"))
        .envs(env.child_env())
        .env("DOCKER_BIN", "/usr/bin/docker")
        .env("DOCKER_HOST", crate::helpers::docker_host())
        .env("WINGMAN_ENV", "prd")
        .env("WINGMAN_WAIT", "90s")
        .env_remove("WINGMAN_REASON")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = tokio::spawn(child.wait_with_output());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    while !waiting.is_finished() {
        let pending: Vec<Uuid> =
            sqlx::query_scalar("SELECT request_id FROM approval_requests WHERE status = 'PENDING'")
                .fetch_all(&env.pool)
                .await
                .unwrap();
        for request_id in pending {
            env.settle_all().await;
            wingman(env, "ops-bob", &["approve", &request_id.to_string()]).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the wrapper never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    waiting.await.unwrap().unwrap()
}

#[tokio::test]
async fn the_docker_wrapper_blocks_stages_c_and_d_without_a_reason_and_runs_them_through_wingman_with_one()
 {
    let project = TestProject::new();
    let own = docker::unique("wt-own");
    let env = pipeline(project.policy(&own)).await;
    let up = [
        "compose",
        "-f",
        "docker-compose.yml",
        "-p",
        &project.name,
        "up",
        "-d",
        "--build",
    ];
    let blocked = wrapper_approved(&env, &up).await;
    assert_eq!(blocked.status.code(), Some(3));
    let stderr = text(&blocked.stderr);
    assert!(
        stderr.starts_with("❌ BLOCKED: Destructive docker command requires Wingman approval")
            && stderr.contains("`docker compose up` creates or recreates the project's containers"),
        "{stderr}"
    );
    assert!(project.containers().await.is_empty(), "nothing ran");

    let reason = "Runbook stage C: build the new web image and start it. Only the web service of \
                  this project is touched. Rollback: down, restore the previous compose file from \
                  git, up -d. Verify: the health probe answers.";
    let mut with_reason: Vec<&str> = up.to_vec();
    with_reason.extend(["--wingman-reason", reason]);
    let deployed = wrapper_approved(&env, &with_reason).await;
    let stderr = text(&deployed.stderr);
    assert!(deployed.status.success(), "{stderr}");
    assert!(stderr.contains("SUCCEEDED"), "progress shown: {stderr}");
    assert!(
        text(&deployed.stdout).contains(&format!("project {}: done", project.name)),
        "{}",
        text(&deployed.stdout)
    );
    let containers = project.containers().await;
    let (container, running) = containers.iter().next().expect("a container");
    assert!(running);

    let probe_reason = "Runbook stage D: check the health endpoint of the web service after the \
                        deploy. Read-only. Rollback: none needed. Verify: it prints healthy.";
    let mut probe = vec!["exec", container.as_str()];
    probe.extend(HEALTH);
    let blocked = wrapper_approved(&env, &probe).await;
    assert_eq!(blocked.status.code(), Some(3), "{}", text(&blocked.stderr));
    probe.extend(["--wingman-reason", probe_reason]);
    let probed = wrapper_approved(&env, &probe).await;
    assert!(probed.status.success(), "{}", text(&probed.stderr));
    assert!(
        text(&probed.stdout).contains("healthy"),
        "{}",
        text(&probed.stdout)
    );
    env.stop().await;
}

#[tokio::test]
async fn compose_pull_without_a_reachable_registry_fails_with_composes_own_message() {
    let project = TestProject::new();
    let own = docker::unique("wt-own");
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    spawn_prd_gateway(&env, project.policy(&own)).await;
    let request_id =
        approved_prd_job(&env, &format!("docker compose -p {} pull", project.name)).await;
    let failed = wait_for_status(&env, request_id, "FAILED").await;
    assert_eq!(failed["exit_code"], 1, "{failed}");
    assert!(
        failed["result"].as_str().unwrap().starts_with(&format!(
            "compose pull project {}: compose exited with",
            project.name
        )),
        "{failed}"
    );
    let output = env.output_of(request_id).await;
    assert!(output.contains("ERROR"), "compose says why: {output}");
    assert!(project.containers().await.is_empty());
    env.stop().await;
}

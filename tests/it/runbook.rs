//! The seed's runbook (`/work/shared/seed/`, the PRD execution gateway deployment plan) played
//! through Wingman from start to finish, against the real NATS, Postgres and Docker Engine:
//!
//! - the deployment: the wrapper blocks a destructive command without approval, then stages
//!   A (down), B (down --remove-orphans), C (up -d --build) and D (the declared probes, and the
//!   mounts inspect) of a compose project registered for prd, each typed as the seed's operator
//!   types it through the `wingman-docker` wrapper, approved at the console by another person
//!   and executed by the gateway; then the checklist's token minting and execution through the
//!   gateway's HTTP face (manual execution); then the rollback plan (down, the previous compose
//!   file from git, up -d);
//! - the validation rollout 0 → 10 → 50 → 100 % (and its rollback to 0) by editing `.env.prd`
//!   and starting again (`wingman setup-nats`, then a restarted `wingman-intake`), watched at
//!   each phase with the seed's four monitoring queries run verbatim.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;
use wingman::envelope::RequestId;
use wingman::policy::Policy;
use wingman::request::Environment;
use wingman::stages;

use crate::api::call_with_key;
use crate::compose::{wingman, wrapper_approved};
use crate::docker;
use crate::execution::{
    SEED_AUTO_APPROVE_RATE, SEED_AUTO_REJECT_RATE, SEED_AUTO_REJECTED_SCORES,
    SEED_MANUAL_REVIEW_RATE,
};
use crate::helpers::{SUBMIT_KEY, TestEnv, run_wingman, text, wait_for_status, worker_binary};
use crate::manual::{serve_gateway_http, wait_for_token_minted};
use crate::rollout_environment::start_watcher;

/// The compose file and env file the seed names, registered for the test project.
const COMPOSE_FILE: &str = "docker-compose.prd.yml";
const ENV_FILE: &str = ".env.prd";
/// The test gateway's health endpoint (busybox httpd on loopback, port 5001 as in the seed).
const HEALTH: [&str; 3] = ["wget", "-qO-", "http://127.0.0.1:5001/health"];

/// The project before the runbook: one service `api`, the seed's `.env.prd` (validation off).
fn compose_before(image: &str) -> String {
    format!(
        "version: \"3.7\"\nservices:\n  api:\n    image: {image}\n    network_mode: none\n    \
         init: true\n    command: [\"sleep\", \"3600\"]\n    environment:\n      \
         VALIDATION_ENABLED: \"${{VALIDATION_ENABLED}}\"\n      \
         VALIDATION_ROLLOUT_PERCENT: \"${{VALIDATION_ROLLOUT_PERCENT}}\"\n"
    )
}

/// The seed's stage 1: the `execution-gateway` service added, built from the project's
/// Dockerfile (so `--build` builds), serving `/health`, with the Engine's socket mounted (the
/// only service that has it, as the seed's stage D checks).
fn compose_with_gateway(image: &str, project: &str) -> String {
    let socket = crate::helpers::docker_host().replace("unix://", "");
    format!(
        "{}  execution-gateway:\n    build: .\n    image: {project}-gateway:test\n    \
         network_mode: none\n    init: true\n    \
         volumes:\n      - \"{socket}:/var/run/docker.sock\"\n    \
         command: [\"httpd\", \"-f\", \"-p\", \"127.0.0.1:5001\", \"-h\", \"/www\"]\n    \
         environment:\n      ALLOWED_ENVIRONMENTS: \"${{ALLOWED_ENVIRONMENTS}}\"\n      \
         GATEWAY_PORT: \"${{GATEWAY_PORT}}\"\n",
        compose_before(image)
    )
}

/// A compose project registered for prd, in a git repository (the rollback restores the
/// previous compose file from git); its containers and built image are removed when dropped.
struct RunbookProject {
    name: String,
    directory: tempfile::TempDir,
}

impl RunbookProject {
    fn new() -> Self {
        let name = docker::unique("wt-rb");
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path();
        std::fs::create_dir(path.join("www")).unwrap();
        std::fs::write(path.join("www/health"), "healthy\n").unwrap();
        std::fs::write(
            path.join("Dockerfile"),
            format!("FROM {}\nCOPY www /www\n", docker::IMAGE),
        )
        .unwrap();
        std::fs::write(path.join(COMPOSE_FILE), compose_before(docker::IMAGE)).unwrap();
        std::fs::write(
            path.join(ENV_FILE),
            "VALIDATION_ENABLED=0\nVALIDATION_ROLLOUT_PERCENT=100\n",
        )
        .unwrap();
        let project = RunbookProject { name, directory };
        project.git(&["init", "-q"]);
        project.commit("the project before the gateway");
        project
    }

    fn git(&self, args: &[&str]) {
        let output = std::process::Command::new("git")
            .current_dir(self.directory.path())
            .args(["-c", "user.name=ops", "-c", "user.email=ops@example.test"])
            .args(args)
            .output()
            .expect("run git");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            text(&output.stderr)
        );
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// The shipped policy, Wingman's own project renamed to `own`, with this project
    /// registered for prd (the seed's file names) and its probes declared.
    fn policy(&self, own: &str) -> Policy {
        let mut text = include_str!("../../config/policy.toml").replace("wingman-prd", own);
        text.push_str(&format!(
            "\n[projects.{name}]\nenvironments = [\"prd\"]\nproject_directory = \"{dir}\"\n\
             compose_files = [\"{COMPOSE_FILE}\"]\nenv_file = \"{ENV_FILE}\"\n\
             [projects.{name}.probes]\nhealth = [\"wget\", \"-qO-\", \"http://127.0.0.1:5001/health\"]\n\
             env = {{ print_env = [\"VALIDATION_ENABLED\", \"VALIDATION_ROLLOUT_PERCENT\"] }}\n",
            name = self.name,
            dir = self.directory.path().display(),
        ));
        Policy::from_toml(&text).unwrap()
    }

    /// The seed's `docker compose -f docker-compose.prd.yml -p <project> --env-file .env.prd`
    /// followed by `action`, as wrapper arguments.
    fn compose<'a>(&'a self, action: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "compose",
            "-f",
            COMPOSE_FILE,
            "-p",
            &self.name,
            "--env-file",
            ENV_FILE,
        ];
        args.extend(action);
        args
    }

    /// The project's containers on the Engine: service → (container name, running).
    async fn services(&self) -> HashMap<String, (String, bool)> {
        services_of(&self.name).await
    }
}

async fn services_of(project: &str) -> HashMap<String, (String, bool)> {
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
            let labels = summary.labels.unwrap_or_default();
            let service = labels
                .get("com.docker.compose.service")
                .cloned()
                .unwrap_or_default();
            let name = summary.names.unwrap_or_default()[0]
                .trim_start_matches('/')
                .to_string();
            let running = summary.state.map(|state| state.as_ref() == "running");
            (service, (name, running.unwrap_or(false)))
        })
        .collect()
}

impl Drop for RunbookProject {
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
                for (container, _) in services_of(&name).await.values() {
                    docker::remove(container).await;
                }
                let _ = docker::client()
                    .await
                    .remove_image(
                        &format!("{name}-gateway:test"),
                        None::<bollard::query_parameters::RemoveImageOptions>,
                        None,
                    )
                    .await;
            });
        });
        let _ = cleanup.join();
    }
}

/// The seed's reason for a stage: why, what it touches, rollback, verification.
fn reason(stage: &str) -> String {
    format!(
        "Runbook stage {stage} of the PRD execution gateway deployment plan for this project: \
         the step as the runbook writes it. Only this project's services are touched. Rollback: \
         the runbook's rollback plan (down, restore the previous compose file from git, up -d). \
         Verify: the containers and the gateway health probe as in stage D."
    )
}

/// `wingman-docker` with `args` and the stage's reason, approved at the console by `ops-bob`;
/// asserts it succeeded and returns its output and the request it made.
async fn through_wingman(env: &TestEnv, args: &[&str], stage: &str) -> (Output, Uuid) {
    let stage_reason = reason(stage);
    let mut with_reason = args.to_vec();
    with_reason.extend(["--wingman-reason", stage_reason.as_str()]);
    let output = wrapper_approved(env, &with_reason).await;
    assert!(
        output.status.success(),
        "stage {stage} {args:?}: {}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    env.settle_all().await;
    let request_id: Uuid = sqlx::query_scalar(
        "SELECT request_id FROM approval_requests WHERE description = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(&stage_reason)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    (output, request_id)
}

/// The trail of one stage: decided APPROVED by the console approver (not the requester), run
/// by the gateway to SUCCEEDED, the decision kept beside the execution's state.
async fn assert_approved_and_succeeded(env: &TestEnv, request_id: Uuid, stage: &str) {
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = 'execution_finished'",
        Some(request_id),
        1,
    )
    .await;
    let (status, execution_status, requester): (String, Option<String>, String) = sqlx::query_as(
        "SELECT status, execution_status, requester FROM approval_requests WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), execution_status.as_deref()),
        ("APPROVED", Some("SUCCEEDED")),
        "stage {stage}"
    );
    let decided: Value = sqlx::query_scalar(
        "SELECT data FROM audit_events WHERE request_id = $1 AND kind = 'approval_decided'",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(
        decided.to_string().contains("ops-bob"),
        "stage {stage}: {decided}"
    );
    assert_ne!(
        requester, "ops-bob",
        "stage {stage}: approved by someone else"
    );
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM audit_events WHERE request_id = $1 ORDER BY seq")
            .bind(request_id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    for kind in [
        "request_received",
        "approval_decided",
        "token_minted",
        "execution_started",
        "execution_finished",
    ] {
        assert!(
            kinds.iter().any(|seen| seen == kind),
            "stage {stage}: {kind} in {kinds:?}"
        );
    }
}

#[tokio::test]
async fn the_seeds_deployment_stages_checklist_and_rollback_run_through_wingman() {
    let project = RunbookProject::new();
    let own = docker::unique("wt-own");
    let mut env = TestEnv::start().await;
    // The seed's `.env.prd` at deployment time: validation off, every request to a human.
    env.spawn_intake().await;
    env.spawn_approvals(None, &["cli:ops-bob"], 1).await;
    env.spawn_authority().await;
    let mut gateway = env.gateway_deps(&[Environment::Prd]).await;
    gateway.policy = project.policy(&own);
    let gateway = Arc::new(gateway);
    tokio::spawn(stages::gateway::run(
        Arc::clone(&gateway),
        env.options("gateway"),
        env.shutdown.child_token(),
    ));
    env.spawn_recorder().await;
    let api = env.spawn_api().await;
    let gateway_http = serve_gateway_http(&env, gateway).await;

    // The stack as it runs before the runbook, deployed through Wingman too.
    through_wingman(
        &env,
        &project.compose(&["up", "-d"]),
        "0 (the current stack)",
    )
    .await;
    let before = project.services().await;
    let (api_container, running) = before["api"].clone();
    assert!(running && before.len() == 1, "{before:?}");

    // Wrapper set-up, step 3: a destructive command without approval is blocked.
    let blocked = wrapper_approved(&env, &["stop", &api_container]).await;
    assert_eq!(blocked.status.code(), Some(3));
    assert!(
        text(&blocked.stderr)
            .starts_with("❌ BLOCKED: Destructive docker command requires Wingman approval"),
        "{}",
        text(&blocked.stderr)
    );
    assert!(
        project.services().await["api"].1,
        "the blocked stop did nothing"
    );

    // Stages 1 and 3: the gateway service in the compose file, its variables in .env.prd.
    std::fs::write(
        project.directory.path().join(COMPOSE_FILE),
        compose_with_gateway(docker::IMAGE, &project.name),
    )
    .unwrap();
    std::fs::write(
        project.directory.path().join(ENV_FILE),
        "VALIDATION_ENABLED=0\nVALIDATION_ROLLOUT_PERCENT=100\n# Execution Gateway\n\
         ALLOWED_ENVIRONMENTS=prd\nGATEWAY_PORT=5001\nAUDIT_STORAGE=postgres\n\
         GATEWAY_URL=http://execution-gateway:5001\n",
    )
    .unwrap();
    project.commit("stage 1: add the execution gateway");

    // Stage A: stop (compose down stops and removes the containers).
    let (stopped, stage_a) = through_wingman(&env, &project.compose(&["down"]), "A").await;
    assert_approved_and_succeeded(&env, stage_a, "A").await;
    assert!(
        text(&stopped.stdout).contains(&api_container),
        "{}",
        text(&stopped.stdout)
    );
    assert!(
        project.services().await.is_empty(),
        "stage A took the stack down"
    );

    // Stage B: remove, orphans included: nothing is left to remove.
    let (removed, stage_b) =
        through_wingman(&env, &project.compose(&["down", "--remove-orphans"]), "B").await;
    assert_approved_and_succeeded(&env, stage_b, "B").await;
    assert!(
        text(&removed.stdout).contains(&format!("no containers for project {}", project.name)),
        "{}",
        text(&removed.stdout)
    );

    // Stage C: build and start with the gateway.
    let (_, stage_c) = through_wingman(&env, &project.compose(&["up", "-d", "--build"]), "C").await;
    assert_approved_and_succeeded(&env, stage_c, "C").await;
    let built = env.output_of(stage_c).await;
    assert!(built.contains("Successfully built"), "{built}");
    let after = project.services().await;
    assert_eq!(after.len(), 2, "{after:?}");
    let (gateway_container, gateway_running) = after["execution-gateway"].clone();
    let (api_container, api_running) = after["api"].clone();
    assert!(gateway_running && api_running, "{after:?}");
    let started: Value = sqlx::query_scalar(
        "SELECT data FROM audit_events WHERE request_id = $1 AND kind = 'execution_started'",
    )
    .bind(stage_c)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(started["operation"], "compose_up", "{started}");
    let trail = run_wingman(&env, &[], &["audit", "show", &stage_c.to_string()]).await;
    let trail = text(&trail.stdout);
    eprintln!("--- Stage C: wingman audit show {stage_c} ---\n{trail}--- end of Stage C ---");
    assert!(
        trail.contains("ops-bob") && trail.contains("execution_finished"),
        "{trail}"
    );
    // The files stage C was built from, as `sha256sum` prints them: the ones of stage 1.
    for file in [COMPOSE_FILE, ENV_FILE] {
        let path = project.directory.path().join(file);
        let digest = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap()))
        };
        assert!(
            trail.contains(&format!("{digest}  {}\n", path.display())),
            "{file}: {trail}"
        );
    }

    // Stage D: the gateway's health probe, the API's validation variables (from .env.prd).
    let mut health = vec!["exec", gateway_container.as_str()];
    health.extend(HEALTH);
    let (probed, stage_d) = through_wingman(&env, &health, "D").await;
    assert_approved_and_succeeded(&env, stage_d, "D").await;
    assert!(
        text(&probed.stdout).contains("healthy"),
        "{}",
        text(&probed.stdout)
    );
    let printenv = [
        "exec",
        api_container.as_str(),
        "printenv",
        "VALIDATION_ENABLED",
        "VALIDATION_ROLLOUT_PERCENT",
    ];
    let (printed, stage_d_env) = through_wingman(&env, &printenv, "D").await;
    assert_approved_and_succeeded(&env, stage_d_env, "D").await;
    assert!(
        text(&printed.stdout).contains("VALIDATION_ENABLED=0\nVALIDATION_ROLLOUT_PERCENT=100"),
        "{}",
        text(&printed.stdout)
    );
    // Privilege separation, read-only (the wrapper passes `inspect` straight to docker): the
    // gateway has the socket, the API has not.
    for (container, has_socket) in [(&gateway_container, true), (&api_container, false)] {
        let mounts = wrapper_approved(
            &env,
            &[
                "inspect",
                container,
                "--format",
                "{{range .Mounts}}{{.Source}} -> {{.Destination}} {{end}}",
            ],
        )
        .await;
        assert!(mounts.status.success(), "{}", text(&mounts.stderr));
        assert_eq!(
            text(&mounts.stdout).contains("-> /var/run/docker.sock"),
            has_socket,
            "{container}: {}",
            text(&mounts.stdout)
        );
    }

    // The checklist: token minting and command execution through the gateway's HTTP face.
    let ps = format!("docker compose -p {} ps", project.name);
    let (status, accepted) = call_with_key(
        "POST",
        &format!("http://{api}/requests"),
        Some(json!({
            "requester": "ops", "environment": "prd", "command": ps, "execution": "manual",
            "title": "Validate the gateway deployment",
            "description": "Deployment check from the runbook's checklist: lists the project's \
                containers. Read-only. Rollback: none needed. Verify: status SUCCEEDED.",
        })),
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let checklist: Uuid = accepted["request_id"].as_str().unwrap().parse().unwrap();
    wait_for_status(&env, checklist, "PENDING").await;
    // With the seed's .env.prd (validation off) it waits for a human, as README "Validate"
    // step 3 says it does.
    let validate = crate::readme::section("### Validate (the seed's checklist)");
    let first_status = validate
        .lines()
        .find(|line| line.contains("cli status \"$ID\""))
        .expect("README \"Validate\" shows the checklist request's status");
    assert!(
        first_status.contains("# PENDING (validation off)"),
        "README \"Validate\" step 3: {first_status}"
    );
    env.settle_all().await;
    let approved = wingman(&env, "ops-bob", &["approve", &checklist.to_string()]).await;
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let minted = wait_for_token_minted(&env, checklist).await;
    assert_eq!(minted["execution"], "manual", "{minted}");
    // No race: the pipeline has settled and has not run it.
    env.settle_all().await;
    assert_eq!(env.execution_status_of(checklist).await, None);
    let (status, fetched) = call_with_key(
        "POST",
        &format!("http://{gateway_http}/gateway/token"),
        Some(json!({ "request_id": checklist })),
        Some(SUBMIT_KEY),
    )
    .await;
    assert_eq!(status, 200, "Token minting works: {fetched}");
    let token = fetched["token"].as_str().unwrap().to_string();
    let execute = |token: String| {
        let url = format!("http://{gateway_http}/gateway/execute");
        let body = json!({ "request_id": checklist, "command": ps, "environment": "prd" });
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("x-api-key", SUBMIT_KEY)
                .header("x-capability-token", token)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, forged) = execute("v4.public.forged".into()).await;
    assert!(
        (400..500).contains(&status),
        "enforcement blocks a forged token: {status} {forged}"
    );
    let (status, done) = execute(token.clone()).await;
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("SUCCEEDED")),
        "Command execution works: {done}"
    );
    let (status, again) = execute(token).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (403, Some("token_reused"))
    );
    env.settle_all().await;
    // What it printed (on the output subject of the key that submitted it): the project's
    // two containers.
    let submitter = wingman::identity::Principal::ApiKey("submitter".into());
    let listed = env
        .bus
        .output(&submitter, RequestId::from_uuid(checklist))
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        listed.contains(&gateway_container) && listed.contains(&api_container),
        "{listed}"
    );
    assert_eq!(
        env.execution_status_of(checklist).await.as_deref(),
        Some("SUCCEEDED")
    );
    assert_eq!(env.status_of(checklist).await.as_deref(), Some("APPROVED"));

    // The rollback plan: stop the new stack, the previous compose file from git, up -d.
    let (_, rollback_down) = through_wingman(&env, &project.compose(&["down"]), "rollback 1").await;
    assert_approved_and_succeeded(&env, rollback_down, "rollback 1").await;
    assert!(project.services().await.is_empty());
    project.git(&["checkout", "HEAD~1", "--", COMPOSE_FILE]);
    let (_, rollback_up) =
        through_wingman(&env, &project.compose(&["up", "-d"]), "rollback 3").await;
    assert_approved_and_succeeded(&env, rollback_up, "rollback 3").await;
    let restored = project.services().await;
    assert_eq!(
        restored.keys().collect::<Vec<_>>(),
        ["api"],
        "the previous stack, without the gateway: {restored:?}"
    );
    assert!(restored["api"].1, "{restored:?}");

    // The rollout's restart of Wingman's own API is refused, typed as the seed types it
    // (`wingman-api`, a service Wingman's compose file does not have) or with Wingman's own
    // service name: Wingman never changes its own control plane (README "Upgrade" says what
    // to do), and compose never runs in its directory.
    for service in ["wingman-api", "api"] {
        let own_restart = reason(&format!("rollout 2 (restart the API as `{service}`)"));
        let refused = wrapper_approved(
            &env,
            &[
                "compose",
                "-f",
                COMPOSE_FILE,
                "-p",
                &own,
                "--env-file",
                ENV_FILE,
                "up",
                "-d",
                service,
                "--wingman-reason",
                &own_restart,
            ],
        )
        .await;
        let said = format!("{}{}", text(&refused.stdout), text(&refused.stderr));
        assert_eq!(refused.status.code(), Some(3), "{service}: {said}");
        assert!(
            said.contains("environments.prd.control_plane")
                && said.contains("README \"Production → Upgrade\""),
            "{service}: {said}"
        );
    }
    env.stop().await;
}

/// The `.env.prd` of the rollout test, edited as the seed says, read as compose reads it.
fn write_env_file(path: &Path, enabled: &str, percent: &str) -> Vec<(String, String)> {
    std::fs::write(
        path,
        format!("VALIDATION_ENABLED={enabled}\nVALIDATION_ROLLOUT_PERCENT={percent}\n"),
    )
    .unwrap();
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// The restart: `wingman setup-nats` with the env file (as the deployment's start runs it),
/// then a new `wingman-intake` with it, as production runs it (it only reads the flags).
async fn restart(
    env: &TestEnv,
    variables: &[(String, String)],
    previous: Option<tokio::process::Child>,
) -> (String, tokio::process::Child) {
    if let Some(mut intake) = previous {
        intake.kill().await.unwrap();
    }
    let pairs: Vec<(&str, &str)> = variables
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    let setup = run_wingman(env, &pairs, &["setup-nats"]).await;
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let intake = tokio::process::Command::new(worker_binary("wingman-intake"))
        .envs(env.child_env())
        .envs(pairs)
        .env("WINGMAN_ENSURE_TOPOLOGY", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start wingman-intake");
    (text(&setup.stdout), intake)
}

/// A request id inside (or outside) the validated cohort at `percent`.
pub(crate) fn id_in_cohort(percent: u8, inside: bool) -> Uuid {
    loop {
        let id = RequestId::generate();
        if (id.rollout_bucket() < percent) == inside {
            return id.as_uuid();
        }
    }
}

/// Submits a prd request: a careful read-only one, or a careless destructive one.
async fn submit(env: &TestEnv, request_id: Uuid, target: &str, careful: bool) {
    let request = if careful {
        json!({
            "request_id": request_id, "requester": "ops-anna", "environment": "prd",
            "command": format!("docker inspect {target}"),
            "title": format!("Inspect the container {target} to check its restart policy"),
            "description": format!(
                "Read-only: reads the configuration of the container {target} to check its restart \
                 policy before the weekly review. Only {target} is read, nothing changes. Rollback: \
                 none needed. Verify: the output shows the restart policy of {target}."
            ),
        })
    } else {
        json!({
            "request_id": request_id, "requester": "agent-7", "environment": "prd",
            "command": "docker compose -p scratch down -v", "title": "cleanup",
            "description": "cleanup stuff",
        })
    };
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request.to_string(),
    )
    .await;
}

/// The seed's three rates, run verbatim, and the number of rows its fourth query returns
/// (each with its validator scores).
async fn seed_queries(env: &TestEnv) -> (f64, f64, f64, usize) {
    let rate = |query: &'static str| {
        let pool = env.pool.clone();
        async move {
            let rate: sqlx::types::BigDecimal =
                sqlx::query_scalar(query).fetch_one(&pool).await.unwrap();
            rate.to_string().parse::<f64>().unwrap()
        }
    };
    let scores: Vec<Option<Value>> = sqlx::query_scalar(SEED_AUTO_REJECTED_SCORES)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert!(
        scores.iter().all(|score| score
            .as_ref()
            .is_some_and(|s| s.get("code_scanner").is_some())),
        "each auto-rejection carries its validators' scores: {scores:?}"
    );
    (
        rate(SEED_AUTO_REJECT_RATE).await,
        rate(SEED_AUTO_APPROVE_RATE).await,
        rate(SEED_MANUAL_REVIEW_RATE).await,
        scores.len(),
    )
}

fn assert_rates(
    seen: (f64, f64, f64, usize),
    rejected: usize,
    approved: usize,
    pending: usize,
    total: usize,
) {
    let percent = |count: usize| count as f64 * 100.0 / total as f64;
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(
        close(seen.0, percent(rejected))
            && close(seen.1, percent(approved))
            && close(seen.2, percent(pending))
            && seen.3 == rejected,
        "seen (auto-reject %, auto-approve %, manual review %, auto-rejected rows) {seen:?}, \
         expected {rejected}/{approved}/{pending} of {total}"
    );
}

/// Submits `batch` (id, careful, the decision it must get), waits for each decision (and for
/// an auto-approval, its execution), and for the recorder to hold all of `submitted`.
async fn play(
    env: &TestEnv,
    target: &str,
    submitted: &mut Vec<(Uuid, &'static str)>,
    batch: Vec<(Uuid, bool, &'static str)>,
) {
    for (request_id, careful, _) in &batch {
        submit(env, *request_id, target, *careful).await;
    }
    for (request_id, _, decision) in batch {
        wait_for_status(env, request_id, decision).await;
        if decision == "AUTO_APPROVED" {
            wait_for_status(env, request_id, "SUCCEEDED").await;
        }
        submitted.push((request_id, decision));
    }
    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests",
        None,
        submitted.len() as i64,
    )
    .await;
    let executed = submitted
        .iter()
        .filter(|(_, decision)| *decision == "AUTO_APPROVED")
        .count();
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE execution_status = 'SUCCEEDED'",
        None,
        executed as i64,
    )
    .await;
}

/// `wingman rollout show`: the live flags, as the seed's "verify validation enabled" step.
async fn show(env: &TestEnv) -> String {
    text(&run_wingman(env, &[], &["rollout", "show"]).await.stdout)
}

#[tokio::test]
async fn the_seeds_validation_rollout_by_editing_the_env_and_restarting_is_watched_with_its_four_queries()
 {
    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    let _watcher = start_watcher(&env).await;
    env.spawn_approvals(None, &["cli:ops-bob"], 1).await;
    env.spawn_authority().await;
    env.spawn_gateway(&[Environment::Prd]).await;
    let target = docker::unique("wt-rb-api");
    docker::start_container(&target, None).await;
    let directory = tempfile::tempdir().unwrap();
    let env_file = directory.path().join(ENV_FILE);

    let mut submitted: Vec<(Uuid, &'static str)> = Vec::new();

    // Before: the seed's current .env.prd, validation off; the baseline goes to humans.
    let variables = write_env_file(&env_file, "0", "100");
    let (started, intake) = restart(&env, &variables, None).await;
    assert!(started.contains("seeded from the environment"), "{started}");
    play(
        &env,
        &target,
        &mut submitted,
        vec![
            (id_in_cohort(10, true), true, "PENDING"),
            (id_in_cohort(10, false), true, "PENDING"),
        ],
    )
    .await;
    assert_rates(seed_queries(&env).await, 0, 0, 2, 2);

    // Rollout stage 1: VALIDATION_ENABLED=1, VALIDATION_ROLLOUT_PERCENT=10, restart, verify.
    let variables = write_env_file(&env_file, "1", "10");
    let (started, intake) = restart(&env, &variables, Some(intake)).await;
    assert!(started.contains("environment changed"), "{started}");
    assert!(
        show(&env).await.contains("enabled, 10 %"),
        "{}",
        show(&env).await
    );
    play(
        &env,
        &target,
        &mut submitted,
        vec![
            (id_in_cohort(10, true), true, "AUTO_APPROVED"),
            (id_in_cohort(10, true), false, "AUTO_REJECTED"),
            (id_in_cohort(10, false), true, "PENDING"),
        ],
    )
    .await;
    assert_rates(seed_queries(&env).await, 1, 1, 3, 5);

    // Rollout stage 2: VALIDATION_ROLLOUT_PERCENT=50, restart.
    let variables = write_env_file(&env_file, "1", "50");
    let (started, intake) = restart(&env, &variables, Some(intake)).await;
    assert!(started.contains("environment changed"), "{started}");
    assert!(show(&env).await.contains("enabled, 50 %"));
    play(
        &env,
        &target,
        &mut submitted,
        vec![
            (id_in_cohort(50, true), true, "AUTO_APPROVED"),
            (id_in_cohort(50, true), false, "AUTO_REJECTED"),
            (id_in_cohort(50, false), true, "PENDING"),
        ],
    )
    .await;
    assert_rates(seed_queries(&env).await, 2, 2, 4, 8);

    // Rollout stage 3: VALIDATION_ROLLOUT_PERCENT=100, restart: every request is validated.
    let variables = write_env_file(&env_file, "1", "100");
    let (_, intake) = restart(&env, &variables, Some(intake)).await;
    assert!(show(&env).await.contains("enabled, 100 %"));
    play(
        &env,
        &target,
        &mut submitted,
        vec![
            (id_in_cohort(100, true), true, "AUTO_APPROVED"),
            (id_in_cohort(100, true), true, "AUTO_APPROVED"),
            (id_in_cohort(100, true), false, "AUTO_REJECTED"),
        ],
    )
    .await;
    assert_rates(seed_queries(&env).await, 3, 4, 4, 11);
    // The executed auto-approvals are counted as auto-approved: their run is beside it.
    let executed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM approval_requests WHERE status = 'AUTO_APPROVED' AND execution_status = 'SUCCEEDED'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(executed, 4);

    // The seed's rollback procedure: VALIDATION_ENABLED=0, restart, verify.
    let variables = write_env_file(&env_file, "0", "100");
    let (started, _intake) = restart(&env, &variables, Some(intake)).await;
    assert!(started.contains("environment changed"), "{started}");
    assert!(show(&env).await.contains("disabled"));
    play(
        &env,
        &target,
        &mut submitted,
        vec![(id_in_cohort(100, true), true, "PENDING")],
    )
    .await;
    assert_rates(seed_queries(&env).await, 3, 4, 5, 12);

    // Each restart with an edited .env.prd is audited as the deployment's rollout change.
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE kind = 'rollout_changed' AND data->>'by' = 'deployment'",
        None,
        4,
    )
    .await;
    docker::remove(&target).await;
    env.stop().await;
}

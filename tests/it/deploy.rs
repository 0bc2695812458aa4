//! The production deployment, read as data: `docker-compose.prd.yml` keeps the privilege
//! separation the seed's runbook validates by hand, `.env.prd.example` documents every
//! variable the code reads, and the database roles really are a writer and a reader.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml_ng::Value;
use uuid::Uuid;

use crate::helpers::TestEnv;

/// The long-running Wingman workers, by compose service name (= stage word), from the one
/// list (`wingman::worker::WORKERS`).
fn workers() -> Vec<&'static str> {
    wingman::worker::WORKERS
        .iter()
        .map(|worker| worker.name())
        .collect()
}

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn compose() -> BTreeMap<String, Value> {
    let document: Value = serde_yaml_ng::from_str(&repo_file("docker-compose.prd.yml"))
        .expect("docker-compose.prd.yml is YAML");
    document["services"]
        .as_mapping()
        .expect("a services map")
        .iter()
        .map(|(name, service)| (name.as_str().unwrap().to_string(), service.clone()))
        .collect()
}

/// A service's `environment` map (this file always writes it as a map).
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Null => BTreeMap::new(),
        Value::Mapping(map) => map
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::String(text) => text.clone(),
                    other => serde_yaml_ng::to_string(other).unwrap().trim().to_string(),
                };
                (key.as_str().unwrap().to_string(), value)
            })
            .collect(),
        other => panic!("environment must be a map, not {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|item| item.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Everything a service is given that could carry a secret or a mount, as text.
fn grants(service: &Value) -> String {
    let mut text = strings(&service["volumes"]).join(" ");
    text.push(' ');
    text.push_str(&strings(&service["secrets"]).join(" "));
    for (key, value) in environment(service) {
        text.push_str(&format!(" {key}={value}"));
    }
    text
}

fn with(services: &BTreeMap<String, Value>, needle: &str) -> BTreeSet<String> {
    services
        .iter()
        .filter(|(_, service)| grants(service).contains(needle))
        .map(|(name, _)| name.clone())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// How Prometheus finds one job's targets, as `grafana/prometheus.yml` says.
#[derive(Debug, PartialEq)]
enum Discovery {
    /// `dns_sd_configs`: every record of `names` of this type, on `port`. On Docker's embedded
    /// DNS a compose service name has one A record per running replica.
    Dns {
        names: Vec<String>,
        record: String,
        port: u64,
    },
    /// `static_configs`: these `host:port` targets.
    Static(Vec<String>),
}

/// Every scrape job of `grafana/prometheus.yml` by name. A job found any other way (say
/// `docker_sd_configs`, which needs the Docker socket only the gateway may hold) fails here.
fn scrape_jobs() -> BTreeMap<String, Discovery> {
    let scrape: Value = serde_yaml_ng::from_str(&repo_file("grafana/prometheus.yml")).unwrap();
    let mut jobs = BTreeMap::new();
    for job in scrape["scrape_configs"].as_sequence().unwrap() {
        let name = job["job_name"].as_str().unwrap().to_string();
        let found_by: Vec<&str> = job
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .filter(|key| key.ends_with("_sd_configs") || *key == "static_configs")
            .collect();
        let discovery = match found_by.as_slice() {
            ["dns_sd_configs"] => {
                let configs = job["dns_sd_configs"].as_sequence().unwrap();
                assert_eq!(configs.len(), 1, "{name}: one dns_sd_config");
                let config = &configs[0];
                Discovery::Dns {
                    names: strings(&config["names"]),
                    record: config["type"].as_str().unwrap_or("SRV").to_string(),
                    port: config["port"].as_u64().unwrap_or(0),
                }
            }
            ["static_configs"] => Discovery::Static(strings(&job["static_configs"][0]["targets"])),
            other => {
                panic!("{name}: found by {other:?}, expected dns_sd_configs or static_configs")
            }
        };
        jobs.insert(name, discovery);
    }
    jobs
}

#[test]
fn only_the_gateway_has_the_docker_socket_and_only_the_authority_the_signing_key() {
    let services = compose();
    for worker in workers() {
        assert!(services.contains_key(worker), "no `{worker}` service");
    }
    assert_eq!(with(&services, "docker.sock"), set(&["gateway"]));
    assert_eq!(with(&services, "token_signing_key"), set(&["authority"]));
    assert_eq!(
        with(&services, "WINGMAN_SIGNING_KEY_FILE"),
        set(&["authority"])
    );
    assert_eq!(with(&services, "token_verify_key"), set(&["gateway"]));
    assert_eq!(
        with(&services, "WINGMAN_VERIFY_KEY_FILE"),
        set(&["gateway"])
    );
    for keyless in ["api", "approvals", "watcher"] {
        let given = grants(&services[keyless]);
        assert!(
            !given.contains("token_"),
            "{keyless} has a token key: {given}"
        );
        assert!(!given.contains("docker.sock"), "{keyless} has the socket");
    }
    // The gateway uses the socket as a member of its group, not as root.
    let gateway = &services["gateway"];
    assert!(gateway["user"].is_null() || gateway["user"].as_str() != Some("root"));
    assert!(
        strings(&gateway["group_add"])
            .iter()
            .any(|group| group.contains("DOCKER_SOCKET_GID")),
        "the gateway joins the socket's group"
    );
    // The API keys go to the two HTTP edges only.
    assert_eq!(with(&services, "api_keys"), set(&["api", "gateway"]));
}

#[test]
fn the_recorder_connects_as_the_writer_role_and_every_other_service_as_the_reader() {
    let services = compose();
    for (name, service) in &services {
        let Some(url) = environment(service).get("DATABASE_URL").cloned() else {
            continue;
        };
        let user = url
            .strip_prefix("postgres://")
            .and_then(|rest| rest.split(['@', ':']).next())
            .unwrap_or_default()
            .to_string();
        let expected = match name.as_str() {
            "recorder" => "wingman_writer",
            // The schema owner, for the one-shot migrations only.
            "migrate" => "wingman",
            _ => "wingman_reader",
        };
        assert_eq!(user, expected, "{name}: DATABASE_URL {url}");
        assert!(
            !url.contains(":@") && url.matches(':').count() == 2,
            "{name}: no password in the URL"
        );
    }
    assert_eq!(
        with(&services, "db_writer_password"),
        set(&["migrate", "recorder"])
    );
    assert_eq!(
        with(&services, "db_owner_password"),
        set(&["migrate", "postgres"])
    );
    assert_eq!(environment(&services["recorder"])["WINGMAN_MIGRATE"], "0");
}

#[test]
fn every_service_is_on_the_network_and_every_worker_is_checked_and_on_its_own_nats_user() {
    let services = compose();
    let auth = repo_file("nats/auth.conf");
    for (name, service) in &services {
        assert!(
            strings(&service["networks"]).contains(&"wingman-network-prd".to_string()),
            "{name} is not on wingman-network-prd"
        );
        if service["restart"].as_str() == Some("unless-stopped") {
            assert!(
                !service["healthcheck"]["test"].is_null(),
                "{name} runs for good but has no healthcheck"
            );
        }
    }
    for worker in workers() {
        let service = &services[worker];
        let env = environment(service);
        assert_eq!(
            service["restart"].as_str(),
            Some("unless-stopped"),
            "{worker}"
        );
        assert_eq!(strings(&service["command"]), [format!("wingman-{worker}")]);
        assert_eq!(service["env_file"].as_str(), Some(".env.prd"), "{worker}");
        let probe = strings(&service["healthcheck"]["test"]).join(" ");
        assert!(
            probe.starts_with("CMD wingman health http://127.0.0.1:") && probe.ends_with("/health"),
            "{worker}: healthcheck {probe}"
        );
        assert_eq!(env.get("NATS_USER").map(String::as_str), Some(worker));
        let secret = format!("nats_{worker}_password");
        assert_eq!(
            env["NATS_PASSWORD_FILE"],
            format!("/run/secrets/{secret}"),
            "{worker}"
        );
        assert_eq!(
            with(&services, &secret),
            set(&[worker]),
            "only {worker} has its password"
        );
        assert!(
            auth.contains(&format!("{{ user: {worker}, ")),
            "nats/auth.conf lacks {worker}"
        );
        assert_eq!(
            env["WINGMAN_ENSURE_TOPOLOGY"], "0",
            "{worker} must only open the topology"
        );
    }
    assert_eq!(with(&services, "nats_admin_password"), set(&["setup-nats"]));
    // The ops ports of the one list, listening inside the container's network.
    for worker in wingman::worker::WORKERS {
        let env = environment(&services[worker.name()]);
        assert_eq!(
            (env["METRICS_PORT"].as_str(), env["METRICS_HOST"].as_str()),
            (worker.ops_port.to_string().as_str(), "0.0.0.0")
        );
    }
    assert_eq!(environment(&services["api"])["API_HOST"], "0.0.0.0");
    assert_eq!(environment(&services["gateway"])["GATEWAY_HOST"], "0.0.0.0");
}

/// The list of workers exists once (`wingman::worker::WORKERS`); every other place that
/// names them is held to it, both ways: a worker crate per entry, a compose service running
/// its binary with its healthcheck on its ops port, a Prometheus job finding every replica of
/// that service in DNS and scraping that port, a NATS user, and the dev script's scrape list;
/// and no worker anywhere that the list lacks.
#[test]
fn every_worker_of_the_one_list_is_built_deployed_scraped_and_checked() {
    let listed: BTreeSet<String> = workers().into_iter().map(String::from).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let crates: BTreeSet<String> = std::fs::read_dir(root.join("workers"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(crates, listed, "workers/ and the list differ");

    let services = compose();
    let running: BTreeSet<String> = services
        .iter()
        .filter_map(|(name, service)| {
            let command = strings(&service["command"]);
            let binary = command.first()?.strip_prefix("wingman-")?.to_string();
            assert_eq!(&binary, name, "service {name} runs another worker's binary");
            Some(binary)
        })
        .collect();
    assert_eq!(
        running, listed,
        "the compose file's workers and the list differ"
    );

    let jobs = scrape_jobs();
    let auth = repo_file("nats/auth.conf");
    let dev = repo_file("scripts/dev");
    for worker in wingman::worker::WORKERS {
        let name = worker.name();
        let port = worker.ops_port;
        let manifest = repo_file(&format!("workers/{name}/Cargo.toml"));
        assert!(
            manifest.contains(&format!("name = \"{}\"", worker.binary())),
            "workers/{name} does not build {}",
            worker.binary()
        );
        // The gateway's and the API's healthchecks ask their HTTP face (whose /health checks
        // the same dependencies), so they also prove that face serves; every other worker's
        // asks its ops port.
        let checked = match worker.stage {
            wingman::events::Stage::Gateway => "${GATEWAY_PORT:-5001}".to_string(),
            wingman::events::Stage::Api => environment(&services[name])["API_PORT"].clone(),
            _ => port.to_string(),
        };
        let probe = strings(&services[name]["healthcheck"]["test"]).join(" ");
        assert_eq!(
            probe,
            format!("CMD wingman health http://127.0.0.1:{checked}/health"),
            "{name}: its healthcheck asks another port"
        );
        // `--scale intake=3` is three A records of the service name: all three are scraped (a
        // static target on the name would reach one of them at random per scrape).
        assert_eq!(
            jobs.get(name),
            Some(&Discovery::Dns {
                names: vec![name.to_string()],
                record: "A".to_string(),
                port: u64::from(port),
            }),
            "grafana/prometheus.yml does not find every replica of {name} in DNS and scrape it on {port}"
        );
        assert!(
            auth.contains(&format!("{{ user: {name}, ")),
            "nats/auth.conf lacks {name}"
        );
        assert!(
            dev.contains(&format!(" {name}:{port}")),
            "scripts/dev does not scrape {name}:{port}"
        );
    }
    let other_jobs: BTreeSet<&str> = jobs
        .keys()
        .map(String::as_str)
        .filter(|job| !listed.contains(*job))
        .collect();
    assert_eq!(
        other_jobs,
        BTreeSet::from(["alertmanager", "prometheus"]),
        "a scrape job for a worker the list lacks"
    );

    // The alerts on a worker's `up` name every worker of the list: WorkerDown (a replica that
    // does not answer) by one regex, WorkerMissing (no replica left in DNS) one by one.
    let rules = repo_file("grafana/alerts/wingman.rules.yml");
    let every_job = format!("job=~\"{}\"", workers().join("|"));
    assert!(
        rules.contains(&format!("up{{{every_job}}} == 0")),
        "WorkerDown does not watch {every_job}"
    );
    for name in workers() {
        assert!(
            rules.contains(&format!("absent(up{{job=\"{name}\"}})")),
            "WorkerMissing does not watch {name}"
        );
    }
}

/// The pipeline bench measures nats-server as compose runs it: the Go runtime settings it
/// starts its own server with (`benches/pipeline/nats.rs`) are the defaults of the `nats`
/// service's environment, and of every node of the three-node cluster.
#[test]
fn the_benchs_nats_server_runs_with_the_compose_files_go_settings() {
    let default_of = |set: &str| -> String {
        // `${NATS_GOGC:-off}` → `off`; a plain value is its own default.
        set.strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .and_then(|inner| inner.split_once(":-"))
            .map_or(set, |(_, default)| default)
            .to_string()
    };
    let cluster: Value = serde_yaml_ng::from_str(&repo_file("docker-compose.nats-cluster.yml"))
        .expect("docker-compose.nats-cluster.yml is YAML");
    let mut nodes = vec![("nats".to_string(), environment(&compose()["nats"]))];
    for (name, service) in cluster["services"].as_mapping().expect("a services map") {
        let name = name.as_str().unwrap();
        if name.starts_with("nats-") {
            nodes.push((name.to_string(), environment(service)));
        }
    }
    assert_eq!(nodes.len(), 3, "the prd nats and two more cluster nodes");
    for (node, environment) in &nodes {
        for (name, value) in crate::bench_nats::AS_COMPOSE_RUNS_IT {
            let set = environment
                .get(name)
                .unwrap_or_else(|| panic!("the {node} service does not set {name}"));
            assert_eq!(
                default_of(set),
                value,
                "{node} runs with {name}={set}, the bench with {value}"
            );
        }
    }
}

#[test]
fn prometheus_mounts_the_rule_file_and_grafana_its_provisioning() {
    let services = compose();
    let prometheus = strings(&services["prometheus"]["volumes"]);
    assert!(prometheus.contains(
        &"./grafana/alerts/wingman.rules.yml:/etc/prometheus/rules/wingman.rules.yml:ro".into()
    ));
    assert!(
        !prometheus
            .iter()
            .any(|volume| volume.starts_with("./grafana/alerts:")
                || volume.starts_with("./grafana/alerts/:")),
        "mount the rule file, not the folder with its test file"
    );
    let grafana = strings(&services["grafana"]["volumes"]).join(" ");
    assert!(grafana.contains("./grafana/provisioning:/etc/grafana/provisioning"));
    assert!(grafana.contains("./grafana/dashboards:/var/lib/grafana/dashboards"));
    // Prometheus scrapes the ops ports, which need no API key, never the gateway's HTTP face.
    let gateway = wingman::worker::WORKERS
        .iter()
        .find(|worker| worker.name() == "gateway")
        .unwrap();
    assert!(
        matches!(scrape_jobs()["gateway"], Discovery::Dns { port, .. } if port == u64::from(gateway.ops_port))
    );
    assert!(!repo_file("grafana/prometheus.yml").contains("5001"));
}

/// Alerts reach people in production: Prometheus sends to the alertmanager service, which
/// renders its config from the bot token FILE (a secret, never its environment) with the
/// approvals worker's chat and Bot API settings, and runs no cluster gossip outside.
#[test]
fn prometheus_alerts_go_to_alertmanager_which_reads_the_bot_token_from_its_secret_file() {
    let services = compose();
    let alertmanager = &services["alertmanager"];
    assert!(
        strings(&alertmanager["secrets"]).contains(&"telegram_bot_token".to_string()),
        "the alertmanager service needs the bot token secret"
    );
    let env = environment(alertmanager);
    assert_eq!(
        env["TELEGRAM_BOT_TOKEN_FILE"],
        "/run/secrets/telegram_bot_token"
    );
    assert!(!env.contains_key("TELEGRAM_BOT_TOKEN"));
    assert_eq!(
        environment(&services["approvals"])["TELEGRAM_BOT_TOKEN_FILE"],
        env["TELEGRAM_BOT_TOKEN_FILE"],
        "the same bot as the approvals worker"
    );
    for setting in [
        "TELEGRAM_CHAT_ID",
        "TELEGRAM_API_URL",
        "WINGMAN_ALERT_WEBHOOK_URL",
    ] {
        assert!(
            env[setting].contains(&format!("${{{setting}")),
            "{setting} comes from .env.prd: {env:?}"
        );
    }
    let command = strings(&alertmanager["command"]).join(" ");
    assert!(
        command.contains("sh /etc/wingman/render-config /tmp/alertmanager.yml")
            && command.contains("--config.file=/tmp/alertmanager.yml")
            && command.ends_with("--cluster.listen-address="),
        "renders its config at start: {command}"
    );
    assert!(
        strings(&alertmanager["volumes"])
            .contains(&"./grafana/alertmanager/render-config:/etc/wingman/render-config:ro".into())
    );
    let scrape = repo_file("grafana/prometheus.yml");
    assert!(
        scrape.contains("alertmanagers:") && scrape.contains("\"alertmanager:9093\""),
        "prometheus.yml sends alerts to the alertmanager service"
    );
}

/// Every variable name the code reads: `var("X")`, `parse_var::<T>("X")`, `secret_var("X")`
/// (and so `X_FILE`), `duration_var("X")`, `flag_var("X", …)`, `std::env::var("X")`, clap's
/// `env = "X"`, and the `…_VAR: &str = "X"` constants.
fn env_vars_read_by_the_code() -> BTreeSet<String> {
    let call = regex::Regex::new(
        r#"\b(var|parse_var(?:::<[^>]*>)?|secret_var|duration_var|flag_var|env::var(?:_os)?)\(\s*"([A-Z][A-Z0-9_]*)""#,
    )
    .unwrap();
    let clap_env = regex::Regex::new(r#"\benv\s*=\s*"([A-Z][A-Z0-9_]*)""#).unwrap();
    let constant = regex::Regex::new(r#"_VAR: &str = "([A-Z][A-Z0-9_]*)""#).unwrap();
    let mut names = BTreeSet::new();
    for (_, text) in crate::helpers::rust_files(&["src", "workers"]) {
        for found in call.captures_iter(&text) {
            names.insert(found[2].to_string());
            if &found[1] == "secret_var" {
                names.insert(format!("{}_FILE", &found[2]));
            }
        }
        for found in clap_env
            .captures_iter(&text)
            .chain(constant.captures_iter(&text))
        {
            names.insert(found[1].to_string());
        }
    }
    // tracing's EnvFilter reads it by itself.
    names.insert("RUST_LOG".into());
    names
}

#[test]
fn every_env_var_the_code_reads_is_documented_in_env_prd_example() {
    let names = env_vars_read_by_the_code();
    for expected in [
        "NATS_URL",
        "DATABASE_URL",
        "WINGMAN_API_KEYS_FILE",
        "WINGMAN_ENSURE_TOPOLOGY",
        "DATABASE_PASSWORD_FILE",
    ] {
        assert!(
            names.contains(expected),
            "the scan misses {expected}: {names:?}"
        );
    }
    let example = repo_file(".env.prd.example");
    let word = |name: &str| {
        regex::Regex::new(&format!(r"(^|[^A-Z0-9_]){name}([^A-Z0-9_]|$)"))
            .unwrap()
            .is_match(&example)
    };
    let missing: Vec<&String> = names.iter().filter(|name| !word(name)).collect();
    assert!(missing.is_empty(), "not in .env.prd.example: {missing:?}");
    // And the seed's names, whichever worker reads them.
    for seed_name in [
        "ALLOWED_ENVIRONMENTS",
        "GATEWAY_PORT",
        "AUDIT_STORAGE",
        "GATEWAY_URL",
        "VALIDATION_ENABLED",
        "VALIDATION_ROLLOUT_PERCENT",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_URL",
        "TELEGRAM_CHAT_ID",
        "TELEGRAM_APPROVER_IDS",
        "WINGMAN_APPROVAL_TTL",
        "WINGMAN_TOKEN_TTL",
        "WINGMAN_PRD_APPROVALS",
        "WINGMAN_SIGNING_KEY_FILE",
        "WINGMAN_VERIFY_KEY_FILE",
        "DOCKER_HOST",
    ] {
        assert!(word(seed_name), "{seed_name} is not in .env.prd.example");
    }
}

const TEST_ROLE_PASSWORD: &str = "test-role-password-0123456789";

#[tokio::test]
async fn the_writer_role_records_and_the_reader_role_only_reads() {
    let mut env = TestEnv::start().await;
    for role in [wingman::store::WRITER_ROLE, wingman::store::READER_ROLE] {
        wingman::store::set_role_password(&env.pool, role, TEST_ROLE_PASSWORD)
            .await
            .unwrap();
    }
    assert!(
        wingman::store::set_role_password(&env.pool, "postgres", TEST_ROLE_PASSWORD)
            .await
            .is_err()
    );
    let writer = sqlx::PgPool::connect_with(env.database_as("wingman_writer", TEST_ROLE_PASSWORD))
        .await
        .unwrap();
    let reader = sqlx::PgPool::connect_with(env.database_as("wingman_reader", TEST_ROLE_PASSWORD))
        .await
        .unwrap();
    // The recorder, as the writer role, records a request.
    let settings = wingman::settings::RecorderSettings { migrate: false };
    let deps = wingman::stages::recorder::RecorderDeps::open(writer.clone(), &settings)
        .await
        .unwrap();
    let recorder = tokio::spawn(wingman::stages::recorder::run(
        deps,
        env.bus.clone(),
        env.options("recorder"),
        env.shutdown.clone(),
    ));
    env.spawn_intake().await;
    let request_id = Uuid::new_v4();
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        crate::helpers::request_json(request_id, None).to_string(),
    )
    .await;
    env.wait_for_count("SELECT count(*) FROM approval_requests", None, 1)
        .await;
    // The reader reads it and can change nothing.
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&reader)
        .await
        .unwrap();
    assert!(seen >= 1);
    for statement in [
        "DELETE FROM approval_requests",
        "UPDATE approval_requests SET status = 'APPROVED'",
        "INSERT INTO executions (token_id, request_id, environment, operation, argv, status, started_at) \
         VALUES (gen_random_uuid(), gen_random_uuid(), 'dev', 'x', '[]', 'EXECUTING', now())",
        "CREATE TABLE sneaky (id int)",
    ] {
        let error = sqlx::query(statement).execute(&reader).await.unwrap_err();
        assert!(
            error.to_string().contains("permission denied"),
            "the reader ran `{statement}`: {error}"
        );
    }
    // Even the writer cannot edit or delete the audit log.
    for statement in [
        "UPDATE audit_events SET actor = 'x'",
        "DELETE FROM audit_events",
    ] {
        let error = sqlx::query(statement).execute(&writer).await.unwrap_err();
        assert!(
            error.to_string().contains("permission denied"),
            "the writer ran `{statement}`: {error}"
        );
    }
    env.shutdown.cancel();
    let _ = recorder.await;
    // The recorder's one-statement batch (`wingman_record_received`) is the writer's alone: the
    // reader calling it to plant an audit row and a request is refused by name and writes
    // nothing; the writer's own call, after the same head, appends.
    let planted = Uuid::new_v4();
    let events = [wingman::envelope::Envelope::derived(
        wingman::envelope::RequestId::from_uuid(planted),
        chrono::Utc::now(),
        &format!("{planted}:planted"),
        wingman::events::AuditRecord {
            kind: wingman::events::AuditKind::RequestReceived,
            stage: wingman::events::Stage::Intake,
            status: Some(wingman::status::Status::Received),
            actor: "planted".into(),
            data: serde_json::json!({}),
            then: Vec::new(),
        },
    )];
    let received = [wingman::store::requests::Received {
        request: wingman::request::parse_request(
            crate::helpers::request_json(planted, None)
                .to_string()
                .as_bytes(),
            || unreachable!("the request names its id"),
        )
        .unwrap(),
        at: chrono::Utc::now(),
        first_move: None,
    }];
    let mut as_reader = reader.acquire().await.unwrap();
    let head = wingman::store::audit::head(&mut as_reader).await.unwrap();
    let batch = wingman::store::audit::Append::after(&events, &[true], &head);
    let error = batch
        .with_received(&mut as_reader, &received)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("permission denied for function wingman_record_received"),
        "the reader called the recorder's function: {error}"
    );
    assert_eq!(env.status_of(planted).await, None);
    let mut as_writer = writer.acquire().await.unwrap();
    let appended = batch
        .with_received(&mut as_writer, &received)
        .await
        .unwrap();
    assert!(
        matches!(appended, wingman::store::audit::Appended::Done { .. }),
        "{appended:?}"
    );
    assert_eq!(env.status_of(planted).await.as_deref(), Some("RECEIVED"));
    drop((as_reader, as_writer));
    writer.close().await;
    reader.close().await;
    env.stop().await;
}

/// The names of every secret file `docker-compose.prd.yml` (and the cluster overlay) mounts.
fn compose_secret_files() -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for name in ["docker-compose.prd.yml", "docker-compose.nats-cluster.yml"] {
        let document: Value = serde_yaml_ng::from_str(&repo_file(name)).unwrap();
        if let Some(secrets) = document["secrets"].as_mapping() {
            for (_, secret) in secrets {
                files.insert(secret["file"].as_str().unwrap().to_string());
            }
        }
    }
    files
}

#[test]
fn no_service_carries_a_secret_value_in_its_environment() {
    let mut services = compose();
    let cluster: Value =
        serde_yaml_ng::from_str(&repo_file("docker-compose.nats-cluster.yml")).unwrap();
    for (name, service) in cluster["services"].as_mapping().unwrap() {
        services.insert(
            format!("{} (cluster)", name.as_str().unwrap()),
            service.clone(),
        );
    }
    for (name, service) in &services {
        // `docker inspect` shows the environment to anyone allowed to inspect the container:
        // a secret may only be named there (a *_FILE path under /run/secrets), never given.
        for (key, value) in environment(service) {
            if wingman::engine::redact::looks_secret(&key) {
                assert!(
                    key.ends_with("_FILE") && value.starts_with("/run/secrets/"),
                    "{name}: {key}={value} puts a secret into the environment"
                );
            }
            assert!(
                !value.contains("://") || value.matches(':').count() <= 2,
                "{name}: {key} carries credentials in a URL"
            );
        }
        // An env_file is an environment too: only .env.prd, which holds no secret.
        let env_files: Vec<String> = match &service["env_file"] {
            Value::Null => Vec::new(),
            Value::String(file) => vec![file.clone()],
            other => strings(other),
        };
        for file in env_files {
            assert_eq!(file, ".env.prd", "{name} reads its environment from {file}");
        }
    }
    // .env.prd.example sets no secret-looking variable (they are documented as `#NAME=`),
    // but for durations like WINGMAN_TOKEN_TTL=10m.
    let duration = regex::Regex::new(r"^[0-9]+[smhd]?$").unwrap();
    for line in repo_file(".env.prd.example").lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.starts_with('#') || value.trim().is_empty() {
            continue;
        }
        assert!(
            !wingman::engine::redact::looks_secret(key)
                || key.ends_with("_FILE")
                || duration.is_match(value.trim()),
            ".env.prd.example sets {key}"
        );
    }
    // The NATS server gets its password hashes, and the cluster its route password, as
    // secret files next to its config, where nats/auth.conf and nats/cluster.conf include them.
    let files = compose_secret_files();
    for (file, target, included_by) in [
        (
            "./secrets/nats_passwords.conf",
            "/etc/nats/nats_passwords.conf",
            "nats/auth.conf",
        ),
        (
            "./secrets/nats_route.conf",
            "/etc/nats/nats_route.conf",
            "nats/cluster.conf",
        ),
    ] {
        assert!(files.contains(file), "no secret is made of {file}");
        let include = format!("include \"{}\"", target.trim_start_matches("/etc/nats/"));
        assert!(
            repo_file(included_by).contains(&include),
            "{included_by} does not {include}"
        );
        let mounted = services
            .iter()
            .filter(|(_, service)| {
                service["secrets"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|secret| secret["target"].as_str() == Some(target))
            })
            .map(|(name, _)| name.clone())
            .collect::<BTreeSet<_>>();
        assert!(
            mounted.iter().all(|name| name.starts_with("nats")) && !mounted.is_empty(),
            "{target} is mounted into {mounted:?}"
        );
    }
}

/// `wingman --version` names the revision as well as the version: the two halves of the image
/// tag, so `docker compose … run --rm cli --version` tells which image a service runs.
#[test]
fn wingman_version_prints_the_version_and_the_revision() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wingman"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        printed.trim_end(),
        format!(
            "wingman {} (revision {})",
            wingman::metrics::VERSION,
            wingman::metrics::REVISION
        )
    );
}

/// Every service that runs a Wingman binary runs `wingman-prd:` with the one tag variable of
/// `.env.prd`, never `:latest`: the previous version's image stays, and a rollback names its
/// tag (README "Roll back"). One service builds it, passing the revision the binaries report.
#[test]
fn every_wingman_service_runs_the_one_tagged_image_and_one_service_builds_it() {
    let services = compose();
    let runs_wingman = |service: &Value| {
        let entrypoint = strings(&service["entrypoint"]);
        let command = strings(&service["command"]);
        entrypoint
            .first()
            .or(command.first())
            .is_some_and(|program| program.starts_with("wingman"))
    };
    let wingman_services: BTreeSet<String> = services
        .iter()
        .filter(|(_, service)| runs_wingman(service))
        .map(|(name, _)| name.clone())
        .collect();
    let mut expected: BTreeSet<String> = ["migrate", "setup-nats", "cli"]
        .into_iter()
        .map(String::from)
        .collect();
    expected.extend(workers().into_iter().map(String::from));
    assert_eq!(wingman_services, expected);

    let images: BTreeSet<&str> = wingman_services
        .iter()
        .map(|name| services[name]["image"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(images.len(), 1, "the Wingman services run {images:?}");
    let image = images.first().unwrap();
    assert!(
        image.starts_with("wingman-prd:${WINGMAN_IMAGE_TAG:?"),
        "{image}: not the one tag variable, required"
    );
    for (name, service) in &services {
        let image = service["image"].as_str().unwrap_or_default();
        assert!(
            image.contains(':') && !image.ends_with(":latest"),
            "{name} runs {image}: an untagged or :latest image cannot be rolled back to"
        );
        assert!(
            wingman_services.contains(name) || !image.starts_with("wingman-prd"),
            "{name} runs Wingman's image without a Wingman binary"
        );
    }

    let building: Vec<&String> = services
        .iter()
        .filter(|(_, service)| !service["build"].is_null())
        .map(|(name, _)| name)
        .collect();
    assert_eq!(building, ["migrate"], "one service builds the image");
    let build = &services["migrate"]["build"];
    assert_eq!(build["context"].as_str(), Some("."));
    assert_eq!(
        build["args"]["WINGMAN_REVISION"].as_str(),
        Some("${WINGMAN_REVISION:-unknown}")
    );
    assert!(
        repo_file(".env.prd.example")
            .lines()
            .any(|line| line == "WINGMAN_IMAGE_TAG="),
        ".env.prd.example does not name WINGMAN_IMAGE_TAG"
    );
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile_instructions() -> Vec<String> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in repo_file("Dockerfile").lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    instructions
}

/// A change to our sources rebuilds only the workspace crates: the dependencies are compiled
/// (`cargo chef cook`) from the recipe alone, before the sources are copied in and before the
/// revision argument (which changes the cache key of every RUN after it); cooked with the
/// flags of the real build, so the build finds them. scripts/rollback-test shows it on a real
/// Docker build ("Using cache" for the cook step).
#[test]
fn the_dependency_layer_is_cooked_before_the_sources_and_the_revision_arrive() {
    let instructions = dockerfile_instructions();
    let position = |prefix: &str| {
        let build_stage = instructions
            .iter()
            .position(|instruction| instruction == "FROM chef AS build")
            .expect("a build stage FROM chef");
        instructions[build_stage..]
            .iter()
            .position(|instruction| instruction.starts_with(prefix))
            .map(|index| build_stage + index)
            .unwrap_or_else(|| panic!("no `{prefix}` in the build stage: {instructions:#?}"))
    };
    let cook = position("RUN cargo chef cook");
    let sources = position("COPY . .");
    let revision = position("ARG WINGMAN_REVISION");
    let build = position("RUN cargo build");
    assert!(
        cook < sources && sources < revision && revision < build,
        "cook, COPY . ., ARG WINGMAN_REVISION, cargo build: out of order"
    );
    let flags = "--release --workspace --bins --locked";
    assert!(instructions[cook].contains(flags), "{}", instructions[cook]);
    assert!(
        instructions[build].contains(flags),
        "{}",
        instructions[build]
    );
    assert!(
        instructions.iter().any(|instruction| {
            instruction.starts_with("RUN cargo install cargo-chef --version ")
                && instruction.ends_with(" --locked")
        }),
        "cargo-chef is installed at a pinned version, --locked"
    );
    let dockerignore = repo_file(".dockerignore");
    let ignored: BTreeSet<&str> = dockerignore
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(str::trim)
        .collect();
    for excluded in ["target", ".git", "secrets", ".env.prd"] {
        assert!(
            ignored.contains(excluded),
            ".dockerignore lets {excluded} in"
        );
    }
}

//! Every refusal of the policy, on hand-made Docker facts.

use super::*;
use crate::docker::{ContainerFacts, Resolution, Resolved, parse_command_line, resolve};
use crate::engine::Admission;

/// What the Engine could list in production: Wingman's own stack, a shop, and loose
/// containers.
fn listing() -> Vec<ContainerFacts> {
    let container = |id: &str, name: &str, labels: Option<(&str, &str)>| ContainerFacts {
        id: id.repeat(64 / id.len()),
        name: name.into(),
        project: labels.map(|(project, _)| project.to_string()),
        service: labels.map(|(_, service)| service.to_string()),
    };
    vec![
        container("a1", "api", None),
        container("a2", "worker", None),
        container(
            "b1",
            "wingman-prd-postgres-1",
            Some(("wingman-prd", "postgres")),
        ),
        container(
            "b2",
            "wingman-prd-gateway-1",
            Some(("wingman-prd", "gateway")),
        ),
        container(
            "b3",
            "wingman-prd-grafana-1",
            Some(("wingman-prd", "grafana")),
        ),
        container("c1", "shop-web-1", Some(("shop", "web"))),
        container("c2", "shop-db-1", Some(("shop", "db"))),
        container("d1", "ledger-app-1", Some(("ledger", "app"))),
        container("e1", "vault", None),
        container("e2", "mystery", Some(("wingman-prd", "recorder"))),
    ]
}

/// The shipped policy, with a protected container, service and project added for prd.
fn policy() -> Policy {
    let mut policy = Policy::default_policy();
    let prd = policy.environments.get_mut("prd").unwrap();
    prd.protected_containers.push("vault".into());
    prd.protected_services.push(ServiceRef {
        project: "shop".into(),
        service: "db".into(),
    });
    prd.protected_projects.push("ledger".into());
    policy
}

fn check(environment: Environment, line: &str) -> Result<(), PolicyRefusal> {
    let operation = parse_command_line(line).unwrap();
    policy().check(environment, &operation, &resolve(&operation, &listing()))
}

fn refused(environment: Environment, line: &str) -> PolicyRefusal {
    check(environment, line).expect_err(line)
}

fn rule(line: &str) -> String {
    refused(Environment::Prd, line).rule
}

#[test]
fn the_shipped_policy_allows_ordinary_operations() {
    for line in [
        "docker compose -p shop restart web",
        "docker stop api",
        "docker restart -t 5 api worker",
        "docker stop nothing-here",
        "docker compose -p wingman-prd ps",
    ] {
        assert_eq!(check(Environment::Prd, line), Ok(()), "{line}");
    }
    assert_eq!(check(Environment::Dev, "docker kill api"), Ok(()));
    assert_eq!(
        check(Environment::Dev, "docker compose -p wingman-prd down"),
        Ok(())
    );
}

#[test]
fn a_refusal_names_the_rule() {
    assert_eq!(rule("docker kill api"), "environments.prd.allow");
    assert_eq!(
        rule("docker compose -p shop down -v"),
        "environments.prd.allow_volume_removal"
    );
    let refusal = refused(Environment::Prd, "docker stop -t 300 api");
    assert_eq!(refusal.rule, "environments.prd.max_stop_timeout_secs");
    assert!(
        refusal
            .to_string()
            .starts_with("refused by policy rule `environments.prd.max_stop_timeout_secs`")
    );
    let mut policy = policy();
    policy.environments.remove("test");
    let operation = parse_command_line("docker stop api").unwrap();
    let refusal = policy
        .check_operation(Environment::Test, &operation)
        .unwrap_err();
    assert_eq!(refusal.rule, "environments.test");
}

#[test]
fn a_compose_container_is_protected_by_its_canonical_name_however_it_is_typed() {
    let mut policy = policy();
    let prd = policy.environments.get_mut("prd").unwrap();
    prd.protected_containers.push("shop-web-1".into());
    let by_full_id = format!("docker rm {}", "c1".repeat(32));
    for line in [
        "docker stop shop-web-1",
        "docker stop c1c1c1",
        by_full_id.as_str(),
        "docker inspect shop-web-1",
        "docker compose -p shop restart web",
        "docker compose -p shop ps web",
    ] {
        let operation = parse_command_line(line).unwrap();
        let refusal = policy
            .check(
                Environment::Prd,
                &operation,
                &resolve(&operation, &listing()),
            )
            .expect_err(line);
        assert_eq!(
            refusal.rule, "environments.prd.protected_containers",
            "{line}"
        );
        assert!(refusal.reason.contains("shop-web-1"), "{line}: {refusal}");
    }
    let refusal = refused(Environment::Prd, "docker stop e1e1");
    assert_eq!(
        refusal.reason,
        "container vault (typed as `e1e1`) is protected in prd"
    );
}

#[test]
fn a_protected_service_is_refused_by_label_for_container_and_compose_operations() {
    for line in [
        "docker stop shop-db-1",
        "docker restart c2c2",
        "docker logs shop-db-1",
        "docker compose -p shop stop db",
        "docker compose -p shop down",
    ] {
        assert_eq!(rule(line), "environments.prd.protected_services", "{line}");
    }
    assert_eq!(
        check(Environment::Prd, "docker compose -p shop stop web"),
        Ok(())
    );
}

#[test]
fn a_protected_project_is_refused_by_label_and_by_name() {
    for line in [
        "docker stop ledger-app-1",
        "docker stop d1d1",
        "docker compose -p ledger stop",
        "docker compose -p ledger ps",
    ] {
        assert_eq!(rule(line), "environments.prd.protected_projects", "{line}");
    }
}

#[test]
fn the_control_plane_refuses_every_mutating_operation_with_what_to_do_instead() {
    for line in [
        "docker stop wingman-prd-gateway-1",
        "docker restart wingman-prd-postgres-1",
        "docker rm -f b1b1b1",
        "docker stop mystery",
        "docker compose -p wingman-prd down",
        "docker compose -p wingman-prd stop",
        "docker compose -p wingman-prd restart gateway",
        "docker compose -p wingman-prd stop grafana nats",
        "docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd down",
    ] {
        let refusal = refused(Environment::Prd, line);
        assert_eq!(refusal.rule, "environments.prd.control_plane", "{line}");
        assert!(
            refusal.reason.contains(
                "README \"Production → Upgrade\" says: `docker compose -f \
                 docker-compose.prd.yml -p wingman-prd --env-file .env.prd up -d --no-build`"
            ),
            "{line}: {refusal}"
        );
    }
    let refusal = refused(Environment::Prd, "docker compose -p wingman-prd down");
    assert!(
        refusal.reason.starts_with(
            "compose down of project wingman-prd (all services) would change Wingman's own \
             control plane (services nats, postgres,"
        ),
        "{refusal}"
    );
    let refusal = refused(Environment::Prd, "docker stop b2b2");
    assert!(
        refusal.reason.starts_with(
            "container wingman-prd-gateway-1 (typed as `b2b2`) is Wingman's gateway (compose \
             project wingman-prd), part of its own control plane"
        ),
        "{refusal}"
    );
}

#[test]
fn the_control_plane_is_refused_even_when_none_of_its_containers_exists() {
    let operation = parse_command_line("docker compose -p wingman-prd down").unwrap();
    let refusal = policy()
        .check(Environment::Prd, &operation, &Resolved::Compose(vec![]))
        .unwrap_err();
    assert_eq!(refusal.rule, "environments.prd.control_plane");
    assert_eq!(
        policy()
            .check_operation(Environment::Prd, &operation)
            .unwrap_err(),
        refusal
    );
}

#[test]
fn read_only_operations_on_the_control_plane_stay_allowed() {
    for line in [
        "docker inspect wingman-prd-gateway-1",
        "docker inspect -f '{{json .Mounts}}' b2b2",
        "docker logs --tail 50 wingman-prd-postgres-1",
        "docker compose -p wingman-prd ps",
        "docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd ps -a",
    ] {
        assert_eq!(check(Environment::Prd, line), Ok(()), "{line}");
    }
}

#[test]
fn a_container_of_wingmans_project_outside_the_control_plane_is_ordinary_but_compose_on_the_project_never_is()
 {
    let mut policy = policy();
    let plane = policy
        .environments
        .get_mut("prd")
        .unwrap()
        .control_plane
        .as_mut()
        .unwrap();
    plane.services.retain(|service| service != "grafana");
    let check = |line: &str| {
        let operation = parse_command_line(line).unwrap();
        policy.check(
            Environment::Prd,
            &operation,
            &resolve(&operation, &listing()),
        )
    };
    assert_eq!(check("docker restart wingman-prd-grafana-1"), Ok(()));
    for line in [
        "docker compose -p wingman-prd restart grafana",
        "docker compose -p wingman-prd stop not-a-service",
    ] {
        let refusal = check(line).expect_err(line);
        assert_eq!(refusal.rule, "environments.prd.control_plane", "{line}");
        assert!(
            refusal.reason.contains("though it names none of them"),
            "{line}: {refusal}"
        );
    }
}

#[test]
fn an_ambiguous_id_prefix_is_refused_not_guessed() {
    let refusal = refused(Environment::Prd, "docker stop a");
    assert_eq!(refusal.rule, "targets");
    assert_eq!(
        refusal.reason,
        "`a` is an id prefix of 2 containers: name the container by its name or full id"
    );
    let resolved = Resolved::Containers(vec![crate::docker::ResolvedTarget {
        typed: "a".into(),
        resolution: Resolution::Ambiguous { matches: 2 },
    }]);
    let operation = parse_command_line("docker inspect a").unwrap();
    assert_eq!(
        policy()
            .check(Environment::Dev, &operation, &resolved)
            .unwrap_err()
            .rule,
        "targets"
    );
}

#[test]
fn compose_files_are_accepted_only_as_registered() {
    let base = "-p wingman-prd";
    let cases = [
        (
            format!("docker compose -f other.yml {base} ps"),
            "projects.wingman-prd.compose_files",
        ),
        (
            format!("docker compose -f docker-compose.prd.yml -f extra.yml {base} ps"),
            "projects.wingman-prd.compose_files",
        ),
        (
            format!("docker compose {base} --env-file .env.dev ps"),
            "projects.wingman-prd.env_file",
        ),
        (
            format!("docker compose {base} --project-directory /tmp ps"),
            "projects.wingman-prd.project_directory",
        ),
        (
            "docker compose -f docker-compose.yml -p shop stop".to_string(),
            "projects",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(rule(&line), expected, "{line}");
    }
    let refusal = refused(
        Environment::Prd,
        "docker compose -f other.yml -p wingman-prd ps",
    );
    assert_eq!(
        refusal.reason,
        "-f other.yml does not name the compose files registered for project wingman-prd \
         (-f docker-compose.prd.yml)"
    );
    let refusal = refused(
        Environment::Dev,
        "docker compose -f docker-compose.prd.yml -p wingman-prd ps",
    );
    assert_eq!(
        refusal.rule, "projects",
        "registered for prd only: {refusal}"
    );
    for line in [
        "docker compose -f docker-compose.prd.yml -p wingman-prd ps",
        "docker compose -p wingman-prd --env-file .env.prd ps",
        "docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd \
         --project-directory /srv/wingman ps",
    ] {
        assert_eq!(check(Environment::Prd, line), Ok(()), "{line}");
    }
}

#[test]
fn the_shipped_control_plane_is_every_service_of_the_production_compose_file() {
    let compose: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../../docker-compose.prd.yml")).unwrap();
    let services: Vec<String> = compose["services"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, service)| service.get("profiles").is_none())
        .map(|(name, _)| name.as_str().unwrap().to_string())
        .collect();
    let shipped = Policy::default_policy();
    let plane = shipped.environments["prd"].control_plane.clone().unwrap();
    let mut listed = plane.services.clone();
    let mut expected = services.clone();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    let registered = &shipped.projects[&plane.project];
    assert!(
        include_str!("../../docker-compose.prd.yml").contains(&format!(
            "{} up -d --no-build",
            registered.command_prefix(&plane.project)
        ))
    );
}

#[test]
fn every_container_of_wingmans_project_the_docs_name_is_a_service_of_the_production_compose_file() {
    let compose: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../../docker-compose.prd.yml")).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    // Compose names a service's containers `<project>-<service>-<n>`.
    let container = regex::Regex::new(r"wingman-prd-([a-z][a-z-]*[a-z])-[0-9]+").unwrap();
    for (file, text) in [
        (
            "config/policy.toml",
            include_str!("../../config/policy.toml"),
        ),
        ("README.md", include_str!("../../README.md")),
        ("ARCHITECTURE.md", include_str!("../../ARCHITECTURE.md")),
        ("CONTRACTS.md", include_str!("../../CONTRACTS.md")),
    ] {
        for found in container.captures_iter(text) {
            let service = &found[1];
            assert!(
                services.contains_key(service),
                "{file} names {}, but docker-compose.prd.yml has no service {service}",
                &found[0]
            );
        }
    }
}

#[test]
fn a_bad_policy_file_names_the_problem() {
    let minimal = "allow = []\nmax_stop_timeout_secs = 1\n";
    let cases = [
        (
            "[environments.prd]\nallow = [\"container_explode\"]\nmax_stop_timeout_secs = 1\n"
                .to_string(),
            "unknown operation `container_explode`",
        ),
        (
            format!("[environments.staging]\n{minimal}"),
            "unknown environment `staging`",
        ),
        (
            format!("[environments.prd]\n{minimal}"),
            "environments.prd.control_plane: required in prd",
        ),
        (
            format!(
                "[environments.dev]\n{minimal}[environments.dev.control_plane]\nproject = \"Wingman\"\nservices = [\"gateway\"]\n"
            ),
            "environments.dev.control_plane.project: invalid compose project name",
        ),
        (
            format!(
                "[environments.dev]\n{minimal}protected_services = [{{ project = \"shop\", service = \"db!\" }}]\n"
            ),
            "environments.dev.protected_services: invalid compose service name",
        ),
        (
            "[environments.dev]\nallow = []\nmax_stop_timeout_secs = 1\n[projects.shop]\nenvironments = [\"dev\"]\nproject_directory = \"srv/shop\"\ncompose_files = [\"a.yml\"]\n".to_string(),
            "projects.shop: project_directory: `srv/shop` must be an absolute path",
        ),
        (
            "[environments.dev]\nallow = []\nmax_stop_timeout_secs = 1\n[projects.shop]\nenvironments = [\"dev\"]\nproject_directory = \"/srv/shop\"\ncompose_files = []\n".to_string(),
            "projects.shop: compose_files: name at least one compose file",
        ),
        (
            "[environments.dev]\nallow = []\nmax_stop_timeout_secs = 1\n[projects.shop]\nenvironments = [\"staging\"]\nproject_directory = \"/srv/shop\"\ncompose_files = [\"a.yml\"]\n".to_string(),
            "unknown variant `staging`",
        ),
    ];
    for (text, expected) in cases {
        let error = Policy::from_toml(&text).unwrap_err();
        assert!(
            format!("{error:#}").contains(expected),
            "{expected}: {error:#}"
        );
    }
}

/// The shipped policy with a `shop` project registered for prd, with two probes.
fn policy_with_shop() -> Policy {
    let mut text = include_str!("../../config/policy.toml").to_string();
    text.push_str(
        "\n[projects.shop]\nenvironments = [\"prd\"]\nproject_directory = \"/srv/shop\"\n\
         compose_files = [\"docker-compose.yml\"]\n\
         [projects.shop.probes]\n\
         health = [\"wget\", \"-qO-\", \"http://127.0.0.1:8080/health\"]\n\
         env = { print_env = [\"VALIDATION_ENABLED\", \"VALIDATION_ROLLOUT_PERCENT\"] }\n",
    );
    Policy::from_toml(&text).unwrap()
}

fn admit(environment: Environment, line: &str) -> Result<Admission, PolicyRefusal> {
    let operation = parse_command_line(line).unwrap();
    policy_with_shop().admit(environment, &operation, &resolve(&operation, &listing()))
}

#[test]
fn compose_up_and_pull_run_from_the_registration_only() {
    let admission = admit(Environment::Prd, "docker compose -p shop up -d --build").unwrap();
    let project = admission.project.expect("the registered project");
    assert_eq!(project.directory, std::path::PathBuf::from("/srv/shop"));
    assert_eq!(project.files, ["docker-compose.yml"]);
    assert!(admit(Environment::Prd, "docker compose -p shop pull").is_ok());
    for line in [
        "docker compose -p ledger-two up -d",
        "docker compose -p shop-copy pull",
    ] {
        let refusal = admit(Environment::Prd, line).unwrap_err();
        assert_eq!(refusal.rule, "projects", "{line}");
        assert!(
            refusal.reason.contains("is not registered for prd"),
            "{refusal}"
        );
    }
    let refusal = admit(
        Environment::Prd,
        "docker compose -f other.yml -p shop up -d --build",
    )
    .unwrap_err();
    assert_eq!(refusal.rule, "projects.shop.compose_files");
    assert_eq!(
        refusal.reason,
        "-f other.yml does not name the compose files registered for project shop \
         (-f docker-compose.yml)"
    );
}

#[test]
fn up_of_wingmans_own_project_is_refused_in_prd_with_the_upgrade_procedure() {
    for line in [
        "docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd up -d --build",
        "docker compose -p wingman-prd up -d api",
        "docker compose -p wingman-prd pull",
        // The seed's rollout restart, verbatim: `wingman-api` is no service of Wingman's
        // compose file (its API is `api`), and the project is refused all the same.
        "docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd up -d wingman-api",
        "docker compose -p wingman-prd pull wingman-api",
    ] {
        let refusal = admit(Environment::Prd, line).unwrap_err();
        assert_eq!(refusal.rule, "environments.prd.control_plane", "{line}");
        assert!(
            refusal
                .reason
                .contains("after an approved instruction request")
                && refusal.reason.contains("README \"Production → Upgrade\""),
            "{refusal}"
        );
    }
    let seed = "docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd up -d wingman-api";
    let operation = parse_command_line(seed).unwrap();
    let refusal = policy_with_shop()
        .check_operation(Environment::Prd, &operation)
        .unwrap_err();
    assert!(
        refusal.reason.starts_with(
            "compose up of project wingman-prd (services wingman-api) would run on Wingman's \
             own compose project, its control plane (services nats, postgres,"
        ),
        "refused before anything is resolved: {refusal}"
    );
}

#[test]
fn an_exec_runs_only_a_probe_declared_for_the_containers_project() {
    let admission = admit(
        Environment::Prd,
        "docker exec shop-web-1 wget -qO- http://127.0.0.1:8080/health",
    )
    .unwrap();
    assert_eq!(
        admission.probe,
        Some(crate::engine::Probe::Command {
            name: "health".into(),
            argv: vec![
                "wget".into(),
                "-qO-".into(),
                "http://127.0.0.1:8080/health".into()
            ],
        })
    );
    // The id prefix of the same container finds the same project and probe.
    let admission = admit(
        Environment::Prd,
        "docker exec c1c1 printenv VALIDATION_ENABLED VALIDATION_ROLLOUT_PERCENT",
    )
    .unwrap();
    assert!(matches!(
        admission.probe,
        Some(crate::engine::Probe::PrintEnv { ref variables, .. }) if variables.len() == 2
    ));
    let cases = [
        ("docker exec shop-web-1 sh -c id", "projects.shop.probes"),
        ("docker exec shop-web-1 printenv", "projects.shop.probes"),
        (
            "docker exec shop-web-1 printenv VALIDATION_ENABLED DB_PASSWORD",
            "projects.shop.probes",
        ),
        (
            "docker exec shop-web-1 wget -qO- http://127.0.0.1:8080/health?x",
            "projects.shop.probes",
        ),
        (
            "docker exec api wget -qO- http://127.0.0.1:8080/health",
            "projects",
        ),
        ("docker exec ledger-app-1 printenv A", "projects"),
    ];
    for (line, rule) in cases {
        let refusal = admit(Environment::Prd, line).unwrap_err();
        assert_eq!(refusal.rule, rule, "{line}: {refusal}");
    }
    let refusal = admit(Environment::Prd, "docker exec shop-web-1 sh -c id").unwrap_err();
    assert!(
        refusal.reason.starts_with(
            "`sh -c id` is not a probe declared for compose project shop (declared: \
             `printenv VALIDATION_ENABLED VALIDATION_ROLLOUT_PERCENT`, `wget -qO- \
             http://127.0.0.1:8080/health`)"
        ),
        "{refusal}"
    );
}

#[test]
fn a_declared_probe_runs_on_the_control_plane_but_nothing_else_does() {
    let admission = admit(
        Environment::Prd,
        "docker exec wingman-prd-gateway-1 wingman health http://127.0.0.1:5001/health",
    )
    .unwrap();
    assert_eq!(admission.probe.unwrap().name(), "gateway_health");
    let refusal = admit(Environment::Prd, "docker exec wingman-prd-gateway-1 sh").unwrap_err();
    assert_eq!(refusal.rule, "projects.wingman-prd.probes");
}

#[test]
fn a_probe_that_would_print_secrets_is_refused_when_the_policy_loads() {
    let base = "[environments.dev]\nallow = []\nmax_stop_timeout_secs = 1\n[projects.shop]\n\
                environments = [\"dev\"]\nproject_directory = \"/srv/shop\"\n\
                compose_files = [\"a.yml\"]\n[projects.shop.probes]\n";
    let cases = [
        (
            "env = { print_env = [\"DB_PASSWORD\"] }\n",
            "projects.shop: probes.env.print_env: `DB_PASSWORD` looks like a secret",
        ),
        (
            "dump = [\"env\"]\n",
            "projects.shop: probes.dump: `env` prints environment variables, secrets included",
        ),
        (
            "env = { print_env = [] }\n",
            "probes.env.print_env: name at least one variable",
        ),
        (
            "env = { print_env = [\"A-B\"] }\n",
            "probes.env.print_env: `A-B` is not a variable name",
        ),
        (
            "empty = []\n",
            "probes.empty: name the command and its arguments",
        ),
    ];
    for (probes, expected) in cases {
        let error = Policy::from_toml(&format!("{base}{probes}")).unwrap_err();
        assert!(
            format!("{error:#}").contains(expected),
            "{expected}: {error:#}"
        );
    }
}

#[test]
fn every_operation_kind_is_known_to_the_policy_and_documented_in_the_shipped_file() {
    let shipped = Policy::default_policy();
    let text = include_str!("../../config/policy.toml");
    let names_comment = text.split("[environments.dev]").next().unwrap();
    for kind in crate::docker::OperationKind::ALL {
        assert!(
            shipped.environments["dev"]
                .allow
                .iter()
                .any(|allowed| allowed == kind.name()),
            "dev does not allow {}",
            kind.name()
        );
        assert!(
            names_comment.contains(kind.name()),
            "config/policy.toml does not document {}",
            kind.name()
        );
    }
}

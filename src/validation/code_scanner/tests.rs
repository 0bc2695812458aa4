use crate::validation::Severity;
use crate::validation::test_support::{GOOD_DESCRIPTION, codes, finding, validate};

const TITLE: &str = "Restart the api container after the memory leak";

fn command_codes(environment: &str, line: &str) -> Vec<String> {
    let validation = validate(environment, Some(line), TITLE, GOOD_DESCRIPTION);
    validation
        .validator_scores
        .code_scanner
        .findings
        .iter()
        .map(|finding| finding.code.to_string())
        .collect()
}

fn text_findings(description: &str) -> crate::validation::Validation {
    validate("dev", None, "Clean up the build host", description)
}

#[test]
fn format_text_is_never_read_as_a_removal() {
    let codes = command_codes(
        "prd",
        "docker inspect --format '{{.State.Status}} rm -rf -v' api",
    );
    assert_eq!(codes, ["whitelisted"]);
}

#[test]
fn removing_several_containers_is_a_mass_removal() {
    assert!(command_codes("dev", "docker rm api worker web").contains(&"mass_removal".into()));
    assert!(command_codes("dev", "docker rm api").contains(&"container_removal".into()));
}

#[test]
fn compose_down_of_a_whole_project_is_a_mass_removal() {
    let codes = command_codes("test", "docker compose -p shop down");
    assert!(codes.contains(&"mass_removal".into()), "{codes:?}");
    let codes = command_codes("test", "docker compose -p shop down api");
    assert!(codes.contains(&"container_removal".into()), "{codes:?}");
}

#[test]
fn volume_deletion_is_critical_in_prd_and_high_elsewhere() {
    let line = "docker compose -f docker-compose.prd.yml -p wingman-prd down -v";
    let prd = validate("prd", Some(line), TITLE, GOOD_DESCRIPTION);
    assert_eq!(
        finding(&prd, "volume_deletion").severity,
        Severity::Critical
    );
    let dev = validate(
        "dev",
        Some("docker rm --volumes api"),
        TITLE,
        GOOD_DESCRIPTION,
    );
    assert_eq!(finding(&dev, "volume_deletion").severity, Severity::High);
}

#[test]
fn force_kill_orphans_and_kill_signals_are_flagged() {
    assert!(command_codes("dev", "docker rm -f api").contains(&"force_removal".into()));
    assert!(command_codes("dev", "docker kill api").contains(&"kill".into()));
    assert!(command_codes("dev", "docker stop -s KILL api").contains(&"kill_signal".into()));
    let codes = command_codes("dev", "docker compose -p shop down --remove-orphans");
    assert!(codes.contains(&"remove_orphans".into()), "{codes:?}");
}

#[test]
fn project_wide_and_many_target_state_changes_are_flagged() {
    assert!(
        command_codes("dev", "docker compose -p shop restart").contains(&"project_wide".into())
    );
    assert!(command_codes("dev", "docker stop a b c").contains(&"many_targets".into()));
    assert!(command_codes("prd", "docker stop api").contains(&"state_change".into()));
}

#[test]
fn read_only_operations_and_a_dev_restart_are_whitelisted() {
    for (environment, line) in [
        ("prd", "docker logs --tail 100 api"),
        ("prd", "docker compose -p wingman-prd ps"),
        ("dev", "docker restart api"),
        ("test", "docker compose -p shop restart api"),
    ] {
        assert_eq!(command_codes(environment, line), ["whitelisted"], "{line}");
    }
    // Not whitelisted: in prd, a database, several targets, a whole project.
    for (environment, line) in [
        ("prd", "docker restart api"),
        ("dev", "docker restart shop-postgres"),
        ("dev", "docker restart api worker"),
        ("dev", "docker compose -p shop restart"),
    ] {
        assert!(
            !command_codes(environment, line).contains(&"whitelisted".into()),
            "{line}"
        );
    }
}

#[test]
fn an_instruction_approval_only_scans_text() {
    let validation = text_findings(GOOD_DESCRIPTION);
    assert_eq!(
        codes(&validation).first().map(String::as_str),
        Some("no_command")
    );
    assert_eq!(validation.validator_scores.code_scanner.score, 100);
}

#[test]
fn compose_up_with_build_is_a_high_impact_deployment_in_prd() {
    let line = "docker compose -f docker-compose.prd.yml -p shop --env-file .env.prd up -d --build";
    let prd = validate("prd", Some(line), TITLE, GOOD_DESCRIPTION);
    assert_eq!(finding(&prd, "deploy").severity, Severity::High);
    assert_eq!(finding(&prd, "build").severity, Severity::High);
    let dev = validate("dev", Some(line), TITLE, GOOD_DESCRIPTION);
    assert_eq!(finding(&dev, "build").severity, Severity::Low);
    let codes = command_codes("test", "docker compose -p shop up -d --remove-orphans web");
    assert!(
        codes.contains(&"deploy".into()) && codes.contains(&"remove_orphans".into()),
        "{codes:?}"
    );
    assert!(!codes.contains(&"build".into()), "{codes:?}");
    assert_eq!(
        finding(
            &validate(
                "prd",
                Some("docker compose -p shop pull"),
                TITLE,
                GOOD_DESCRIPTION
            ),
            "pull"
        )
        .severity,
        Severity::Medium
    );
}

#[test]
fn a_probe_exec_is_whitelisted_like_inspect() {
    let codes = command_codes(
        "prd",
        "docker exec shop-web-1 wget -qO- http://127.0.0.1:8080/health",
    );
    assert_eq!(codes, ["whitelisted"]);
}

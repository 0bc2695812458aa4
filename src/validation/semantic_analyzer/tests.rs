use crate::validation::Severity;
use crate::validation::test_support::{GOOD_DESCRIPTION, finding, validate};

fn semantic(
    environment: &str,
    command: Option<&str>,
    title: &str,
    description: &str,
) -> (u8, Vec<(String, Severity)>) {
    let validation = validate(environment, command, title, description);
    let result = validation.validator_scores.semantic_analyzer;
    let findings = result
        .findings
        .iter()
        .map(|finding| (finding.code.to_string(), finding.severity))
        .collect();
    (result.score, findings)
}

fn has(findings: &[(String, Severity)], code: &str) -> bool {
    findings.iter().any(|(found, _)| found == code)
}

#[test]
fn a_description_that_names_the_target_and_the_action_scores_full_marks() {
    let (score, findings) = semantic(
        "dev",
        Some("docker restart api"),
        "Restart the api container",
        GOOD_DESCRIPTION,
    );
    assert_eq!(score, 100, "{findings:?}");
}

#[test]
fn saying_restart_api_while_taking_the_whole_stack_down_scores_low() {
    let (score, findings) = semantic(
        "prd",
        Some("docker compose -f docker-compose.prd.yml -p wingman-prd down"),
        "Restart the api",
        "The api is slow in prd; restart the api container to free memory. Verify with /health.",
    );
    assert!(score < 30, "{score} {findings:?}");
    assert!(has(&findings, "scope_not_acknowledged"), "{findings:?}");
    let mismatch = findings.iter().find(|(code, _)| code == "action_mismatch");
    assert_eq!(
        mismatch.map(|(_, severity)| *severity),
        Some(Severity::High),
        "{findings:?}"
    );
}

#[test]
fn naming_the_project_and_the_action_of_a_whole_stack_down_scores_high() {
    let (score, findings) = semantic(
        "prd",
        Some("docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd down"),
        "Stage A: stop the wingman-prd stack",
        "Stage A of the gateway runbook: take the wingman-prd stack down (compose down, all \
         services) before the rebuild. Rollback: up -d with the previous compose file.",
    );
    assert!(score >= 90, "{score} {findings:?}");
}

#[test]
fn targets_the_text_does_not_name_cost_credit() {
    let (all, _) = semantic(
        "dev",
        Some("docker stop api worker"),
        "Stop api and worker",
        "Stop the api and the worker for the maintenance window.",
    );
    let (some, findings) = semantic(
        "dev",
        Some("docker stop api worker"),
        "Stop api",
        "Stop the api for the maintenance window.",
    );
    let (none, _) = semantic(
        "dev",
        Some("docker stop api worker"),
        "Stop services",
        "Stop them for the maintenance window.",
    );
    assert!(all > some && some > none, "{all} > {some} > {none}");
    assert!(has(&findings, "targets_partly_mentioned"));
}

#[test]
fn promising_no_data_loss_while_deleting_volumes_is_a_contradiction() {
    let (_, findings) = semantic(
        "dev",
        Some("docker compose -p shop down -v"),
        "Recreate the shop stack",
        "Take the shop stack down and bring it back; no data loss, volumes are kept.",
    );
    assert!(has(&findings, "claim_contradicts_command"), "{findings:?}");
}

#[test]
fn another_environment_than_the_requests_is_a_mismatch() {
    let (_, findings) = semantic(
        "dev",
        Some("docker restart api"),
        "Restart the production api",
        "Restart the api in production to clear the cache.",
    );
    assert!(has(&findings, "environment_mismatch"), "{findings:?}");
    let (_, findings) = semantic(
        "prd",
        Some("docker restart api"),
        "Restart the prd api",
        "Restart the api in prd to clear the cache, as tried in dev.",
    );
    assert!(!has(&findings, "environment_mismatch"), "{findings:?}");
}

#[test]
fn an_instruction_approval_is_scored_on_title_and_description_coherence() {
    let (coherent, _) = semantic(
        "dev",
        None,
        "Rebuild the gateway image",
        "Rebuild the gateway image from Dockerfile.gateway so it picks up the new base image.",
    );
    let (incoherent, findings) = semantic(
        "dev",
        None,
        "Rebuild the gateway image",
        "Rotate the telegram credentials and update the grafana dashboards.",
    );
    assert!(coherent >= 90, "{coherent}");
    assert!(incoherent < 50, "{incoherent}");
    assert!(has(&findings, "title_description_mismatch"), "{findings:?}");
}

#[test]
fn a_missing_action_word_is_reported_but_not_as_a_mismatch() {
    let validation = validate(
        "dev",
        Some("docker restart api"),
        "api container",
        "The api container is slow; see incident 4411.",
    );
    assert_eq!(
        finding(&validation, "action_not_described").severity,
        Severity::Low
    );
}

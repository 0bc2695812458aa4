use crate::validation::Decision;
use crate::validation::test_support::{GOOD_DESCRIPTION, codes, validate};

fn quality(command: Option<&str>, title: &str, description: &str) -> (u8, Vec<String>) {
    let validation = validate("dev", command, title, description);
    let result = validation.validator_scores.content_quality;
    let codes = result.findings.iter().map(|f| f.code.to_string()).collect();
    (result.score, codes)
}

const GOOD_FRAMEWORK: &str = "\
DELIVERABLES: the execution gateway service running in the prd stack
SUCCESS_CRITERIA: /health answers 200 and a test token executes one stop
BOUNDARIES: only docker-compose.prd.yml and .env.prd change; no database migration
DEPENDENCIES: postgres and nats must be healthy before the gateway starts
MITIGATION: roll back by restoring the previous compose file from git and starting again
TEST_PROCESS: run the enforcement tests, then the smoke test against /gateway/execute
TEST_RESULTS_FORMAT: a table of each check with pass or fail and the output
RESOURCE_REQUIREMENTS: one container, 256 MB of memory, the docker socket on the gateway only
RISK_ASSESSMENT: medium, two minutes of downtime while the stack restarts
QUALITY_METRICS: zero failed executions and audit rows for every request";

const VAGUE_FRAMEWORK: &str = "\
DELIVERABLES: stuff
SUCCESS_CRITERIA: TBD
BOUNDARIES: n/a
DEPENDENCIES: none
MITIGATION: TBD
TEST_PROCESS: later
TEST_RESULTS_FORMAT: n/a
RESOURCE_REQUIREMENTS: ?
RISK_ASSESSMENT: low
QUALITY_METRICS: TBD";

#[test]
fn a_well_explained_free_text_request_scores_high() {
    let (score, codes) = quality(
        Some("docker restart api"),
        "Restart the api container after the memory leak",
        GOOD_DESCRIPTION,
    );
    assert!(score >= 90, "{score} {codes:?}");
}

#[test]
fn a_description_without_a_rollback_or_verification_plan_loses_points() {
    let description = "The api container leaks memory since the 2.3 release (incident 4411); \
                       restart the api container to free it, nothing else is touched.";
    let (score, codes) = quality(
        Some("docker restart api"),
        "Restart the api container",
        description,
    );
    assert!(codes.contains(&"no_rollback_plan".into()), "{codes:?}");
    assert!(codes.contains(&"no_verification_plan".into()), "{codes:?}");
    assert!((40..80).contains(&score), "{score}");
}

#[test]
fn a_bare_request_falls_below_the_floor_and_is_auto_rejected() {
    let validation = validate("dev", Some("docker restart api"), "restart", "restart pls");
    let result = &validation.validator_scores.content_quality;
    assert!(result.score < 30, "{}", result.score);
    assert!(codes(&validation).contains(&"below_floor".into()));
    assert!(codes(&validation).contains(&"too_short".into()));
    assert_eq!(validation.decision, Decision::AutoRejected);
    let reasons = &validation.validator_scores.composite.reasons;
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("below the floor 30")),
        "{reasons:?}"
    );
}

#[test]
fn a_complete_ten_section_framework_scores_full_marks() {
    let (score, codes) = quality(None, "Deploy the execution gateway to prd", GOOD_FRAMEWORK);
    assert_eq!(score, 100, "{codes:?}");
}

#[test]
fn vague_framework_sections_score_low() {
    let (score, codes) = quality(None, "Deploy the execution gateway to prd", VAGUE_FRAMEWORK);
    assert!(score < 30, "{score}");
    assert!(
        codes.iter().filter(|code| *code == "vague_section").count() >= 9,
        "{codes:?}"
    );
}

#[test]
fn missing_framework_sections_are_named() {
    let partial: String = GOOD_FRAMEWORK
        .lines()
        .take(4)
        .collect::<Vec<_>>()
        .join("\n");
    let validation = validate("dev", None, "Deploy the execution gateway to prd", &partial);
    let result = &validation.validator_scores.content_quality;
    assert_eq!(result.score, 40);
    let missing = result
        .findings
        .iter()
        .find(|f| f.code == "missing_sections")
        .unwrap();
    assert!(missing.reason.contains("MITIGATION") && missing.reason.contains("QUALITY_METRICS"));
}

#[test]
fn markdown_headings_count_as_framework_sections() {
    let markdown = GOOD_FRAMEWORK
        .lines()
        .map(|line| {
            let (name, text) = line.split_once(": ").unwrap();
            format!("## {name}\n{text}\n")
        })
        .collect::<String>();
    let (score, codes) = quality(None, "Deploy the execution gateway to prd", &markdown);
    assert_eq!(score, 100, "{codes:?}");
}

#[test]
fn vague_words_cost_points() {
    let (clean, _) = quality(
        Some("docker restart api"),
        "Restart the api container after the memory leak",
        GOOD_DESCRIPTION,
    );
    let vague = format!("{GOOD_DESCRIPTION} Also fix stuff and things asap.");
    let (score, codes) = quality(
        Some("docker restart api"),
        "Restart the api container after the memory leak",
        &vague,
    );
    assert!(score < clean, "{score} < {clean}");
    assert!(codes.contains(&"vague_wording".into()));
}

#[test]
fn an_instruction_approval_names_its_targets_with_concrete_words() {
    let concrete = "Rebuild the wingman-api image from docker-compose.dev.yml because the 1.4 \
                    base image has a CVE; verify with the smoke tests, roll back to the previous tag.";
    let (_, codes) = quality(None, "Rebuild the api image", concrete);
    assert!(!codes.contains(&"targets_not_named".into()), "{codes:?}");
    let (_, codes) = quality(
        None,
        "Rebuild the api image",
        "Rebuild it because it is old, then check it works and roll back if not.",
    );
    assert!(codes.contains(&"targets_not_named".into()), "{codes:?}");
}

#[test]
fn a_vague_section_quotes_only_known_vague_answers() {
    let description = VAGUE_FRAMEWORK.replace("RISK_ASSESSMENT: low", "RISK_ASSESSMENT: hunter2");
    let validation = validate(
        "dev",
        None,
        "Deploy the execution gateway to prd",
        &description,
    );
    let spans: Vec<&str> = validation
        .findings()
        .filter(|finding| finding.code == "vague_section")
        .filter_map(|finding| finding.span.as_deref())
        .collect();
    assert!(spans.contains(&"SUCCESS_CRITERIA: TBD"), "{spans:?}");
    assert!(spans.contains(&"RISK_ASSESSMENT"), "{spans:?}");
    assert!(
        spans.iter().all(|span| !span.contains("hunter2")),
        "{spans:?}"
    );
}

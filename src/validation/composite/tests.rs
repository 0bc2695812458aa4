use crate::validation::test_support::{GOOD_DESCRIPTION, request, validate};
use crate::validation::{Decision, Profile, ValidationConfig, Validator, ValidatorName};

const TITLE: &str = "Restart the api container after the memory leak";

fn profile(command: Option<&str>, title: &str, description: &str) -> Profile {
    validate("dev", command, title, description)
        .validator_scores
        .composite
        .profile
}

#[test]
fn the_profile_follows_the_words_of_the_request() {
    let deployment =
        "Deploy release 2.4 of the api: roll out the new version and migrate the schema.";
    assert_eq!(
        profile(None, "Deploy api 2.4", deployment),
        Profile::Deployment
    );
    let operational = "Investigate the incident: inspect the api logs and check its health.";
    assert_eq!(
        profile(None, "Debug the api", operational),
        Profile::Operational
    );
    assert_eq!(
        profile(Some("docker restart api"), TITLE, GOOD_DESCRIPTION),
        Profile::Operational
    );
}

#[test]
fn a_tie_picks_the_stricter_deployment_profile_and_no_keyword_the_default() {
    assert_eq!(
        profile(None, "Deploy and restart", "deploy it, then restart it"),
        Profile::Deployment
    );
    assert_eq!(
        profile(None, "Rotate the keys", "rotate the api keys of the bot"),
        Profile::Operational
    );
}

#[test]
fn a_safe_well_explained_dev_restart_is_auto_approved_with_its_score() {
    let validation = validate("dev", Some("docker restart api"), TITLE, GOOD_DESCRIPTION);
    let composite = &validation.validator_scores.composite;
    assert_eq!(validation.decision, Decision::AutoApproved, "{composite:?}");
    assert!(
        composite.reasons[0].starts_with("score "),
        "{:?}",
        composite.reasons
    );
    assert!(
        composite.reasons[0].ends_with("≥ 85 (operational)"),
        "{:?}",
        composite.reasons
    );
}

#[test]
fn a_prd_destructive_operation_is_never_auto_approved() {
    let description = "Stage A of the gateway runbook: take the whole wingman-prd stack down \
                       before the rebuild because the gateway service is added. Rollback: \
                       restore the compose file and up -d. Verify: docker compose ps shows nothing.";
    let line = "docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd down";
    let validation = validate(
        "prd",
        Some(line),
        "Stage A: stop the wingman-prd stack",
        description,
    );
    assert_eq!(validation.decision, Decision::Pending);
    let reasons = &validation.validator_scores.composite.reasons;
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("rule prd_destructive")),
        "{reasons:?}"
    );
}

#[test]
fn volume_deletion_in_prd_is_auto_rejected_with_the_reason_in_words() {
    let line = "docker compose -p wingman-prd down -v";
    let validation = validate(
        "prd",
        Some(line),
        "Stop the wingman-prd stack",
        GOOD_DESCRIPTION,
    );
    assert_eq!(validation.decision, Decision::AutoRejected);
    let reasons = &validation.validator_scores.composite.reasons;
    assert!(
        reasons
            .iter()
            .any(|reason| reason.starts_with("critical finding: volume deletion")),
        "{reasons:?}"
    );
}

#[test]
fn a_high_finding_keeps_a_good_request_from_auto_approval() {
    let description = format!("{GOOD_DESCRIPTION} Afterwards chmod 777 /srv/uploads.");
    let validation = validate("dev", Some("docker restart api"), TITLE, &description);
    assert_eq!(validation.decision, Decision::Pending);
    let reasons = &validation.validator_scores.composite.reasons;
    assert!(
        reasons
            .iter()
            .any(|reason| reason.starts_with("high finding:")),
        "{reasons:?}"
    );
}

#[test]
fn a_publisher_declaring_high_risk_gets_a_human() {
    let mut value = request("dev", Some("docker restart api"), TITLE, GOOD_DESCRIPTION);
    value.risk_level = Some(crate::request::RiskLevel::High);
    let validation = Validator::with_defaults().validate(&value);
    assert_eq!(validation.decision, Decision::Pending);
}

#[test]
fn thresholds_and_rules_come_from_the_config() {
    let text = ValidationConfig::default_toml().replace(
        "operational_auto_approve = 85",
        "operational_auto_approve = 100",
    );
    let strict = Validator::new(ValidationConfig::from_toml(&text).unwrap()).unwrap();
    let value = request("dev", Some("docker restart api"), TITLE, GOOD_DESCRIPTION);
    let validation = strict.validate(&value);
    assert_eq!(validation.decision, Decision::Pending);
    let reasons = &validation.validator_scores.composite.reasons;
    assert!(reasons[0].ends_with("< 100 (operational)"), "{reasons:?}");
    let text = format!(
        "{}\n[[rules.never_auto_approve]]\nname = \"no_dev_restarts\"\nreason = \"restarts need a human\"\noperations = [\"container_restart\"]\n",
        ValidationConfig::default_toml()
    );
    let ruled = Validator::new(ValidationConfig::from_toml(&text).unwrap()).unwrap();
    let validation = ruled.validate(&value);
    assert_eq!(validation.decision, Decision::Pending);
    let reasons = &validation.validator_scores.composite.reasons;
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("rule no_dev_restarts")),
        "{reasons:?}"
    );
}

#[test]
fn the_scores_serialize_with_the_design_keys() {
    let validation = validate("dev", Some("docker restart api"), TITLE, GOOD_DESCRIPTION);
    let json = serde_json::to_value(&validation).unwrap();
    assert_eq!(json["decision"], "AUTO_APPROVED");
    let scores = json["validator_scores"].as_object().unwrap();
    let mut keys: Vec<&str> = scores.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected: Vec<&str> = ValidatorName::ALL.map(ValidatorName::as_str).to_vec();
    expected.push("composite");
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let composite = &scores["composite"];
    assert_eq!(composite["profile"], "operational");
    assert_eq!(composite["decision"], "AUTO_APPROVED");
    assert!(composite["score"].is_u64() && composite["reasons"].is_array());
    let finding = &scores["code_scanner"]["findings"][0];
    assert_eq!(finding["validator"], "code_scanner");
    assert_eq!(finding["severity"], "info");
    let back: crate::validation::Validation = serde_json::from_value(json).unwrap();
    assert_eq!(back, validation);
}

/// Each validator in turn weighs 1 and the others 0: the composite is then that validator's
/// own score, so a weight paired with another validator's score shows.
#[test]
fn each_validator_score_is_weighed_by_its_own_name() {
    let mut text = ValidationConfig::default_toml().to_string();
    for profile in ["operational", "deployment"] {
        let table = format!("[weights.{profile}]\n");
        let start = text.find(&table).unwrap() + table.len();
        let end = start + text[start..].find("\n\n").unwrap();
        text.replace_range(start..end, "");
    }
    let value = request("dev", Some("docker restart api"), TITLE, GOOD_DESCRIPTION);
    for only in ValidatorName::ALL {
        let mut weighted = text.clone();
        for name in ValidatorName::ALL {
            let weight = if name == only { "1.0" } else { "0.0" };
            for profile in ["operational", "deployment"] {
                let table = format!("[weights.{profile}]\n");
                weighted = weighted.replace(&table, &format!("{table}{name} = {weight}\n"));
            }
        }
        let validator = Validator::new(ValidationConfig::from_toml(&weighted).unwrap()).unwrap();
        let scores = validator.validate(&value).validator_scores;
        let (_, result) = scores
            .results()
            .into_iter()
            .find(|(name, _)| *name == only)
            .unwrap();
        assert_eq!(scores.composite.score, result.score, "{only}");
    }
}

#[test]
fn validation_is_deterministic() {
    let value = request("prd", Some("docker stop api"), TITLE, GOOD_DESCRIPTION);
    let validator = Validator::with_defaults();
    assert_eq!(validator.validate(&value), validator.validate(&value));
}

#[test]
fn odd_text_validates_without_panicking() {
    let long = "é🚀 rm -rf / AKIAIOSFODNN7EXAMPLE password=€€€€€ ## DELIVERABLES\n".repeat(800);
    let texts = [
        ".".to_string(),
        "## DELIVERABLES".to_string(),
        "DELIVERABLES:".to_string(),
        "1.".to_string(),
        "ü".repeat(300),
        "password=é€€€€ and -----BEGIN PRIVATE KEY-----".to_string(),
        "curl https://ü:ü€€€€€€@example.com | sh".to_string(),
        long,
    ];
    let validator = Validator::with_defaults();
    for text in &texts {
        for (environment, command) in [("prd", Some("docker rm -f -v api")), ("dev", None)] {
            let value = request(environment, command, "ü title 🚀", text);
            let validation = validator.validate(&value);
            let scores = &validation.validator_scores;
            for (_, result) in scores.results() {
                assert!(result.score <= 100);
                for finding in &result.findings {
                    assert!(
                        finding.span.as_ref().is_none_or(|span| span.len() <= 124),
                        "{finding:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn stage_c_in_prd_is_never_auto_approved_and_is_scored_as_a_deployment() {
    let description = "Stage C of the gateway runbook: build the new images and start the shop \
                       stack with the gateway service. Rollback: down, restore the previous compose \
                       file from git and up -d. Verify: the health probe answers 200.";
    let line = "docker compose -f docker-compose.prd.yml -p shop --env-file .env.prd up -d --build";
    let validation = validate(
        "prd",
        Some(line),
        "Stage C: build and start the shop stack",
        description,
    );
    assert_eq!(validation.decision, Decision::Pending);
    assert_eq!(
        validation.validator_scores.composite.profile,
        Profile::Deployment
    );
    let reasons = &validation.validator_scores.composite.reasons;
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("rule prd_deployment")),
        "{reasons:?}"
    );
}

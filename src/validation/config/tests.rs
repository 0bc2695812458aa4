use crate::docker::OperationKind;
use crate::request::Environment;
use crate::validation::{
    ConfigError, OperationRule, Profile, Severity, ValidationConfig, Validator, ValidatorName,
};

fn with(from: &str, to: &str) -> String {
    let text = ValidationConfig::default_toml();
    assert!(text.contains(from), "the default config has no `{from}`");
    text.replacen(from, to, 1)
}

fn error(text: &str) -> String {
    match ValidationConfig::from_toml(text).and_then(Validator::new) {
        Ok(_) => panic!("config accepted"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn the_shipped_config_parses_and_compiles() {
    let config = ValidationConfig::default_config();
    assert_eq!(config.thresholds.operational_auto_approve, 85);
    assert_eq!(config.thresholds.deployment_auto_approve, 90);
    assert_eq!(config.thresholds.content_quality_floor, 30);
    assert_eq!(config.thresholds.auto_reject_at, Severity::Critical);
    assert_eq!(config.profiles.default, Profile::Operational);
    assert!(Validator::new(config).is_ok());
}

#[test]
fn an_out_of_range_threshold_names_its_key_and_value() {
    let message = error(&with(
        "operational_auto_approve = 85",
        "operational_auto_approve = 140",
    ));
    assert_eq!(
        message,
        "validation config: `thresholds.operational_auto_approve` must be between 0 and 100, got 140"
    );
}

#[test]
fn weights_must_sum_to_one() {
    let message = error(&with("code_scanner = 0.30", "code_scanner = 0.50"));
    assert!(
        message.starts_with("validation config: `weights.operational` must sum to 1, got 1.2"),
        "{message}"
    );
}

#[test]
fn an_unknown_key_is_refused_with_its_line() {
    let message = error(&with(
        "[thresholds]\n",
        "[thresholds]\nauto_approve_everything = true\n",
    ));
    assert!(
        message.contains("unknown field `auto_approve_everything`"),
        "{message}"
    );
    let thresholds_line = ValidationConfig::default_toml()
        .lines()
        .position(|line| line == "[thresholds]")
        .unwrap()
        + 1;
    let expected = format!("line {}:", thresholds_line + 1);
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn a_missing_key_is_named() {
    let message = error(&with("content_quality_floor = 30\n", ""));
    assert!(
        message.contains("missing field `content_quality_floor`"),
        "{message}"
    );
}

#[test]
fn a_bad_regex_names_its_key_and_pattern() {
    let message = error(&with(
        r"pattern = '\b(?P<value>(AKIA|ASIA)[0-9A-Z]{16})\b'",
        r"pattern = '(AKIA[0-9A-Z]{16}'",
    ));
    assert!(message.starts_with("validation config: `code_scanner.secrets[0].pattern` has an invalid pattern `(AKIA[0-9A-Z]{16}`"), "{message}");
}

#[test]
fn a_rule_naming_an_unknown_operation_is_refused() {
    let message = error(&with(
        "operations = [\"container_rm\", \"container_kill\", \"compose_down\"]",
        "operations = [\"container_rm\", \"container_nuke\"]",
    ));
    assert!(message.starts_with("validation config: `rules.never_auto_approve[0].operations` names an unknown operation `container_nuke`"), "{message}");
}

#[test]
fn a_whitelist_entry_must_name_its_operations() {
    let message = error(&with(
        "operations = [\"container_inspect\", \"container_logs\", \"compose_ps\", \"container_exec\"]",
        "operations = []",
    ));
    assert!(
        message.contains("`whitelist.operations[0].operations` must name at least one operation"),
        "{message}"
    );
}

#[test]
fn content_quality_points_must_sum_to_a_hundred() {
    let message = error(&with("title = 5 }", "title = 10 }"));
    assert_eq!(
        message,
        "validation config: `content_quality.points` must sum to 100, got 105"
    );
}

#[test]
fn an_unreadable_file_names_its_path() {
    let missing = std::path::Path::new("/nonexistent/validation.toml");
    let error = ValidationConfig::load(missing).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(
        error
            .to_string()
            .starts_with("validation config: cannot read /nonexistent/validation.toml: ")
    );
}

#[test]
fn every_operation_has_points_and_the_shipped_file_documents_it() {
    let config = ValidationConfig::default_config();
    let text = ValidationConfig::default_toml();
    let rules_comment = text
        .split("[[rules.never_auto_approve]]")
        .next()
        .unwrap_or_default();
    for name in super::sections::operation_names() {
        assert!(
            config
                .dependency_analyzer
                .operation_penalty
                .get(name)
                .is_some(),
            "dependency_analyzer.operation_penalty has no field for {name}"
        );
        assert!(
            rules_comment.contains(name),
            "the rules comment of config/validation.toml does not list {name}"
        );
    }
}

#[test]
fn every_validator_has_weights_a_section_and_docs() {
    let text = ValidationConfig::default_toml();
    let headers: Vec<&str> = text.lines().filter(|line| line.starts_with('[')).collect();
    // Each `[weights.<profile>]` table with its lines, up to the next header.
    let weight_tables: Vec<(&str, Vec<&str>)> = text
        .split("\n[")
        .filter(|table| table.starts_with("weights."))
        .map(|table| {
            let mut lines = table.lines();
            let header = lines.next().unwrap_or_default().trim_end_matches(']');
            (header, lines.collect())
        })
        .collect();
    assert!(
        !weight_tables.is_empty(),
        "config/validation.toml has no [weights.*] table"
    );
    let contracts = include_str!("../../../CONTRACTS.md");
    let scores_section = contracts
        .split("\n## Validation scores\n")
        .nth(1)
        .and_then(|rest| rest.split("\n#").next())
        .expect("CONTRACTS.md has a \"Validation scores\" section");
    for name in ValidatorName::ALL {
        assert!(
            headers.contains(&format!("[{name}]").as_str()),
            "config/validation.toml has no [{name}] section"
        );
        for (header, lines) in &weight_tables {
            assert!(
                lines
                    .iter()
                    .any(|line| line.starts_with(&format!("{name} ="))),
                "config/validation.toml has no `{name} =` line in [{header}]"
            );
        }
        assert!(
            scores_section.contains(&format!("`{name}`")),
            "CONTRACTS.md \"Validation scores\" does not name `{name}`"
        );
    }
}

#[test]
fn in_prd_only_read_only_operations_can_be_auto_approved() {
    let rules = ValidationConfig::default_config().rules.never_auto_approve;
    for name in super::sections::operation_names() {
        if OperationKind::from_name(name).is_some_and(OperationKind::is_read_only) {
            continue;
        }
        assert!(
            rules.iter().any(|rule| blocks_in_prd(rule, name)),
            "no rule of rules.never_auto_approve keeps every `{name}` in prd from auto-approval"
        );
    }
}

/// Whether the rule matches every request in prd for the operation `name`: it covers prd
/// and the operation, and sets no criterion that narrows it further.
fn blocks_in_prd(rule: &OperationRule, name: &str) -> bool {
    // No `..`: a new criterion must be considered here.
    let OperationRule {
        name: _,
        reason: _,
        environments,
        operations,
        risk_levels,
        volumes,
        whole_project,
        stateful,
        max_targets,
    } = rule;
    (environments.is_empty() || environments.contains(&Environment::Prd))
        && (operations.is_empty() || operations.iter().any(|operation| operation == name))
        && risk_levels.is_empty()
        && volumes.is_none()
        && whole_project.is_none()
        && stateful.is_none()
        && max_targets.is_none()
}

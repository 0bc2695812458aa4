//! Matching a request against an [`OperationRule`]: the composite's "never auto-approve"
//! rules and the code scanner's whitelist share this one definition of what a rule means.

use crate::validation::config::OperationRule;
use crate::validation::facts::Facts;

/// Whether every criterion the rule sets matches the request.
pub(crate) fn matches(rule: &OperationRule, facts: &Facts<'_>) -> bool {
    let request = facts.request;
    if !rule.environments.is_empty() && !rule.environments.contains(&request.environment) {
        return false;
    }
    if !rule.operations.is_empty()
        && !rule
            .operations
            .iter()
            .any(|operation| operation == facts.operation_name)
    {
        return false;
    }
    if !rule.risk_levels.is_empty()
        && !request
            .risk_level
            .is_some_and(|risk| rule.risk_levels.contains(&risk))
    {
        return false;
    }
    let operation = facts.operation.as_ref();
    if let Some(volumes) = rule.volumes
        && operation.is_some_and(|op| op.volumes) != volumes
    {
        return false;
    }
    if let Some(whole_project) = rule.whole_project
        && operation.is_none_or(|op| op.whole_project) != whole_project
    {
        return false;
    }
    if let Some(stateful) = rule.stateful
        && operation.is_none_or(|op| op.stateful_targets > 0) != stateful
    {
        return false;
    }
    if let Some(max_targets) = rule.max_targets {
        let within = facts
            .target_count()
            .is_some_and(|count| i64::try_from(count).is_ok_and(|count| count <= max_targets));
        if !within {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::Validator;
    use crate::validation::test_support::request;

    fn rule(text: &str) -> OperationRule {
        let text = format!("name = \"r\"\nreason = \"because\"\n{text}");
        toml::from_str(&text).unwrap()
    }

    fn rule_matches(rule_text: &str, environment: &str, command: Option<&str>) -> bool {
        let validator = Validator::with_defaults();
        let request = request(environment, command, "title", "description");
        let facts = Facts::new(&validator, &request);
        matches(&rule(rule_text), &facts)
    }

    #[test]
    fn an_empty_rule_matches_everything() {
        assert!(rule_matches("", "dev", Some("docker logs api")));
        assert!(rule_matches("", "prd", None));
    }

    #[test]
    fn environments_and_operations_must_both_match() {
        let text = "environments = [\"prd\"]\noperations = [\"compose_down\"]";
        assert!(rule_matches(
            text,
            "prd",
            Some("docker compose -p shop down")
        ));
        assert!(!rule_matches(
            text,
            "dev",
            Some("docker compose -p shop down")
        ));
        assert!(!rule_matches(
            text,
            "prd",
            Some("docker compose -p shop stop")
        ));
    }

    #[test]
    fn an_instruction_approval_is_the_operation_named_instruction() {
        assert!(rule_matches("operations = [\"instruction\"]", "prd", None));
        assert!(!rule_matches(
            "operations = [\"instruction\"]",
            "prd",
            Some("docker stop api")
        ));
    }

    #[test]
    fn volumes_whole_project_and_stateful_criteria_read_the_operation() {
        assert!(rule_matches(
            "volumes = true",
            "dev",
            Some("docker rm -v api")
        ));
        assert!(!rule_matches(
            "volumes = true",
            "dev",
            Some("docker rm api")
        ));
        assert!(rule_matches(
            "whole_project = true",
            "dev",
            Some("docker compose -p shop stop")
        ));
        assert!(!rule_matches(
            "whole_project = true",
            "dev",
            Some("docker compose -p shop stop api")
        ));
        assert!(rule_matches(
            "stateful = true",
            "dev",
            Some("docker restart shop-postgres")
        ));
        assert!(!rule_matches(
            "stateful = true",
            "dev",
            Some("docker restart shop-api")
        ));
    }

    #[test]
    fn max_targets_counts_containers_and_never_matches_a_whole_project() {
        assert!(rule_matches(
            "max_targets = 1",
            "dev",
            Some("docker restart api")
        ));
        assert!(!rule_matches(
            "max_targets = 1",
            "dev",
            Some("docker restart api worker")
        ));
        assert!(!rule_matches(
            "max_targets = 1",
            "dev",
            Some("docker compose -p shop restart")
        ));
        assert!(!rule_matches("max_targets = 1", "dev", None));
    }
}

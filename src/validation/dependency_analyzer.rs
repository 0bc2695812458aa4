//! The dependency analyzer: the blast radius of a request.
//!
//! Starts from 100 and takes off points (config `dependency_analyzer`) for the
//! environment (prd most), what the operation does (read-only < start < restart < rm <
//! compose down), how much it touches (a whole compose project > several containers > one)
//! and what (a database-looking target), and for volumes, orphans and `--force`. An
//! instruction approval is judged from its text: stateful words and a wide scope.

use crate::request::Environment;
use crate::validation::facts::Facts;
use crate::validation::lexicon::Category;
use crate::validation::report::{DEPENDENCY_ANALYZER, Finding, Severity, ValidatorResult};
use crate::validation::{Validator, clamp_score};

pub(crate) fn score(validator: &Validator, facts: &Facts<'_>) -> ValidatorResult {
    let config = &validator.config.dependency_analyzer;
    let environment = facts.request.environment;
    let prd = environment == Environment::Prd;
    // Findings weigh one level more in prd.
    let level = |severity: Severity| if prd { severity.raised() } else { severity };
    let mut findings = Vec::with_capacity(8);
    let mut penalty = config
        .operation_penalty
        .get(facts.operation_name)
        .unwrap_or(0);

    if facts.read_only() {
        penalty += config.read_only_environment_penalty.get(environment);
    } else {
        penalty += config.environment_penalty.get(environment);
        if prd {
            findings.push(Finding::new(
                DEPENDENCY_ANALYZER,
                Severity::Medium,
                "prd_environment",
                "changes prd: a mistake reaches users",
            ));
        }
    }

    match &facts.operation {
        None => {
            findings.push(Finding::new(
                DEPENDENCY_ANALYZER,
                Severity::Info,
                "scope_from_text",
                "instruction approval: the blast radius is estimated from the text only",
            ));
            if facts.has(Category::Stateful) {
                penalty += config.stateful_target_penalty;
                findings.push(Finding::new(
                    DEPENDENCY_ANALYZER,
                    level(Severity::Low),
                    "stateful_target",
                    "the text mentions a database, a broker or volumes",
                ));
            }
            if facts.has(Category::InstructionWideScope) {
                penalty += config.whole_project_penalty;
                findings.push(Finding::new(
                    DEPENDENCY_ANALYZER,
                    level(Severity::Low),
                    "whole_project",
                    "the text speaks of the whole stack",
                ));
            }
        }
        Some(operation) if operation.operation.is_read_only() => {}
        Some(operation) => {
            let summary = &operation.summary;
            if operation.whole_project {
                penalty += config.whole_project_penalty;
                findings.push(Finding::new(
                    DEPENDENCY_ANALYZER,
                    level(Severity::Medium),
                    "whole_project",
                    format!("touches every service: {summary}"),
                ));
            } else if operation.targets.len() > 1 {
                let extra = i64::try_from(operation.targets.len() - 1).unwrap_or(i64::MAX);
                penalty += extra
                    .saturating_mul(config.extra_target_penalty)
                    .min(config.max_extra_target_penalty);
                findings.push(Finding::new(
                    DEPENDENCY_ANALYZER,
                    level(Severity::Low),
                    "multiple_targets",
                    format!("touches {} targets: {summary}", operation.targets.len()),
                ));
            }
            if operation.stateful_targets > 0 {
                penalty += config.stateful_target_penalty;
                findings.push(Finding::new(
                    DEPENDENCY_ANALYZER,
                    level(Severity::Medium),
                    "stateful_target",
                    format!("{summary}: looks like a database or a broker, which others depend on"),
                ));
            }
            if operation.volumes {
                penalty += config.volumes_penalty;
                findings.push(Finding::new(
                    DEPENDENCY_ANALYZER,
                    Severity::High,
                    "data_loss",
                    "deletes volumes: their data does not come back with a start",
                ));
            }
            if operation.remove_orphans {
                penalty += config.remove_orphans_penalty;
            }
            if operation.force {
                penalty += config.force_penalty;
            }
        }
    }
    ValidatorResult {
        score: clamp_score(100 - penalty),
        findings,
    }
}

#[cfg(test)]
mod tests {
    use crate::validation::Validator;
    use crate::validation::test_support::request;

    fn score(environment: &str, command: Option<&str>, description: &str) -> u8 {
        let validator = Validator::with_defaults();
        let request = request(environment, command, "title of the request", description);
        validator
            .validate(&request)
            .validator_scores
            .dependency_analyzer
            .score
    }

    #[test]
    fn prd_weighs_more_than_test_and_dev() {
        let line = Some("docker restart api");
        assert!(score("dev", line, "") > score("test", line, ""));
        assert!(score("test", line, "") > score("prd", line, ""));
    }

    #[test]
    fn a_whole_project_weighs_more_than_several_containers_then_a_database_then_one_container() {
        let project = score("dev", Some("docker compose -p shop stop"), "");
        let several = score("dev", Some("docker stop api worker web"), "");
        let database = score("dev", Some("docker stop shop-postgres"), "");
        let single = score("dev", Some("docker stop api"), "");
        assert!(project < several, "{project} < {several}");
        assert!(several < database, "{several} < {database}");
        assert!(database < single, "{database} < {single}");
    }

    #[test]
    fn read_only_operations_barely_count_even_in_prd() {
        assert!(score("prd", Some("docker logs api"), "") >= 90);
        assert!(score("prd", Some("docker stop api"), "") < 70);
    }

    #[test]
    fn volumes_weigh_on_top_of_the_removal() {
        let plain = score("dev", Some("docker rm api"), "");
        let volumes = score("dev", Some("docker rm -v api"), "");
        assert!(volumes < plain);
    }

    #[test]
    fn an_instruction_approval_is_judged_from_its_text() {
        let narrow = score("dev", None, "rebuild the api image");
        let wide = score(
            "dev",
            None,
            "rebuild the whole stack and migrate the postgres database",
        );
        assert!(wide < narrow, "{wide} < {narrow}");
    }
}

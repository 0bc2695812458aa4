//! Range and consistency checks of a parsed config, each error naming its key.
//!
//! Patterns are checked when [`crate::validation::Validator::new`] compiles them, so
//! this file only looks at numbers, names and lists; the four validators' sections are
//! checked in `check_validators`.

use crate::validation::config::bounds::{at_least, invalid, keywords, not_blank, percent};
use crate::validation::config::check_validators::{
    content_quality, dependency_analyzer, semantic_analyzer,
};
use crate::validation::config::sections::{OperationRule, ProfileWeights, operation_names};
use crate::validation::config::{ConfigError, ValidationConfig};
use crate::validation::report::ValidatorName;

impl ValidationConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let thresholds = &self.thresholds;
        percent(
            "thresholds.operational_auto_approve",
            thresholds.operational_auto_approve,
        )?;
        percent(
            "thresholds.deployment_auto_approve",
            thresholds.deployment_auto_approve,
        )?;
        percent(
            "thresholds.content_quality_floor",
            thresholds.content_quality_floor,
        )?;
        weights("weights.operational", &self.weights.operational)?;
        weights("weights.deployment", &self.weights.deployment)?;
        keywords(
            "profiles.deployment_keywords",
            &self.profiles.deployment_keywords,
        )?;
        keywords(
            "profiles.operational_keywords",
            &self.profiles.operational_keywords,
        )?;
        for (index, rule) in self.rules.never_auto_approve.iter().enumerate() {
            operation_rule(&format!("rules.never_auto_approve[{index}]"), rule)?;
        }
        for (index, entry) in self.whitelist.operations.iter().enumerate() {
            let key = format!("whitelist.operations[{index}]");
            operation_rule(&key, entry)?;
            if entry.operations.is_empty() {
                return Err(invalid(
                    &format!("{key}.operations"),
                    "must name at least one operation (an empty list would whitelist everything)",
                ));
            }
        }
        self.check_code_scanner()?;
        content_quality(&self.content_quality)?;
        dependency_analyzer(&self.dependency_analyzer)?;
        semantic_analyzer(&self.semantic_analyzer)
    }

    fn check_code_scanner(&self) -> Result<(), ConfigError> {
        let scanner = &self.code_scanner;
        let penalties = &scanner.penalties;
        for (name, value) in [
            ("info", penalties.info),
            ("low", penalties.low),
            ("medium", penalties.medium),
            ("high", penalties.high),
            ("critical", penalties.critical),
        ] {
            percent(&format!("code_scanner.penalties.{name}"), value)?;
        }
        at_least(
            "code_scanner.mass_target_count",
            scanner.mass_target_count,
            2,
        )?;
        at_least(
            "code_scanner.max_findings_per_pattern",
            scanner.max_findings_per_pattern,
            1,
        )?;
        for (index, pattern) in scanner.dangerous.iter().enumerate() {
            not_blank(
                &format!("code_scanner.dangerous[{index}].code"),
                &pattern.code,
            )?;
            not_blank(
                &format!("code_scanner.dangerous[{index}].reason"),
                &pattern.reason,
            )?;
        }
        for (index, pattern) in scanner.secrets.iter().enumerate() {
            not_blank(
                &format!("code_scanner.secrets[{index}].code"),
                &pattern.code,
            )?;
            not_blank(
                &format!("code_scanner.secrets[{index}].reason"),
                &pattern.reason,
            )?;
        }
        Ok(())
    }
}

fn operation_rule(key: &str, rule: &OperationRule) -> Result<(), ConfigError> {
    not_blank(&format!("{key}.name"), &rule.name)?;
    not_blank(&format!("{key}.reason"), &rule.reason)?;
    if let Some(unknown) = rule
        .operations
        .iter()
        .find(|operation| !operation_names().any(|name| name == operation.as_str()))
    {
        return Err(invalid(
            &format!("{key}.operations"),
            format!(
                "names an unknown operation `{unknown}` (expected one of {})",
                operation_names().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if let Some(max_targets) = rule.max_targets {
        at_least(&format!("{key}.max_targets"), max_targets, 1)?;
    }
    Ok(())
}

fn weights(key: &str, weights: &ProfileWeights) -> Result<(), ConfigError> {
    let mut total = 0.0;
    for name in ValidatorName::ALL {
        let value = weights.get(name);
        if !(0.0..=1.0).contains(&value) {
            return Err(invalid(
                &format!("{key}.{name}"),
                format!("must be between 0 and 1, got {value}"),
            ));
        }
        total += value;
    }
    if (total - 1.0).abs() > 0.001 {
        return Err(invalid(key, format!("must sum to 1, got {total}")));
    }
    Ok(())
}

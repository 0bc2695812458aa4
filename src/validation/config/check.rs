//! Range and consistency checks of a parsed config, each error naming its key.
//!
//! Patterns are checked when [`crate::validation::Validator::new`] compiles them, so
//! this file only looks at numbers, names and lists; the scoring validators' sections are
//! checked in `check_validators`.

use crate::validation::config::bounds::{at_least, invalid, keywords, not_blank, percent};
use crate::validation::config::check_validators;
use crate::validation::config::sections::{
    OperationRule, ProfileWeights, Thresholds, Weights, operation_names,
};
use crate::validation::config::{ConfigError, ValidationConfig};
use crate::validation::report::ValidatorName;

impl ValidationConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        // No `..`: a new section is a compile error here until it is checked (or explicitly
        // skipped with `_`).
        let ValidationConfig {
            thresholds,
            weights,
            profiles,
            rules,
            whitelist,
            code_scanner,
            content_quality,
            dependency_analyzer,
            semantic_analyzer,
        } = self;
        check_thresholds(thresholds)?;
        check_weights(weights)?;
        keywords(
            "profiles.deployment_keywords",
            &profiles.deployment_keywords,
        )?;
        keywords(
            "profiles.operational_keywords",
            &profiles.operational_keywords,
        )?;
        for (index, rule) in rules.never_auto_approve.iter().enumerate() {
            operation_rule(&format!("rules.never_auto_approve[{index}]"), rule)?;
        }
        for (index, entry) in whitelist.operations.iter().enumerate() {
            let key = format!("whitelist.operations[{index}]");
            operation_rule(&key, entry)?;
            if entry.operations.is_empty() {
                return Err(invalid(
                    &format!("{key}.operations"),
                    "must name at least one operation (an empty list would whitelist everything)",
                ));
            }
        }
        check_validators::code_scanner(code_scanner)?;
        check_validators::content_quality(content_quality)?;
        check_validators::dependency_analyzer(dependency_analyzer)?;
        check_validators::semantic_analyzer(semantic_analyzer)
    }
}

fn check_thresholds(thresholds: &Thresholds) -> Result<(), ConfigError> {
    let Thresholds {
        operational_auto_approve,
        deployment_auto_approve,
        content_quality_floor,
        // Severities: serde already refused anything but a severity word.
        block_auto_approve_at: _,
        auto_reject_at: _,
    } = thresholds;
    percent(
        "thresholds.operational_auto_approve",
        *operational_auto_approve,
    )?;
    percent(
        "thresholds.deployment_auto_approve",
        *deployment_auto_approve,
    )?;
    percent("thresholds.content_quality_floor", *content_quality_floor)
}

fn check_weights(weights: &Weights) -> Result<(), ConfigError> {
    let Weights {
        operational,
        deployment,
    } = weights;
    profile_weights("weights.operational", operational)?;
    profile_weights("weights.deployment", deployment)
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

fn profile_weights(key: &str, weights: &ProfileWeights) -> Result<(), ConfigError> {
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

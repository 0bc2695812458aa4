//! Checks of the scoring validators' config sections, each error naming its key.

use crate::validation::config::ConfigError;
use crate::validation::config::bounds::{
    at_least, between, env_points, invalid, keywords, not_blank, percent,
};
use crate::validation::config::sections::operation_names;
use crate::validation::config::validator_sections::{
    CodeScannerConfig, ContentQualityConfig, DependencyConfig, SemanticConfig,
};

pub(super) fn code_scanner(scanner: &CodeScannerConfig) -> Result<(), ConfigError> {
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

pub(super) fn content_quality(quality: &ContentQualityConfig) -> Result<(), ConfigError> {
    let points = &quality.points;
    let entries = [
        ("length", points.length),
        ("reason", points.reason),
        ("targets", points.targets),
        ("rollback", points.rollback),
        ("verification", points.verification),
        ("title", points.title),
    ];
    for (name, value) in entries {
        percent(&format!("content_quality.points.{name}"), value)?;
    }
    let total: i64 = entries.iter().map(|(_, value)| value).sum();
    if total != 100 {
        return Err(invalid(
            "content_quality.points",
            format!("must sum to 100, got {total}"),
        ));
    }
    at_least(
        "content_quality.min_length_words",
        quality.min_length_words,
        0,
    )?;
    if quality.good_length_words <= quality.min_length_words {
        return Err(invalid(
            "content_quality.good_length_words",
            format!(
                "must be greater than `content_quality.min_length_words` ({}), got {}",
                quality.min_length_words, quality.good_length_words
            ),
        ));
    }
    percent(
        "content_quality.vague_word_penalty",
        quality.vague_word_penalty,
    )?;
    percent(
        "content_quality.max_vague_penalty",
        quality.max_vague_penalty,
    )?;
    between(
        "content_quality.framework_min_sections",
        quality.framework_min_sections,
        1,
        10,
    )?;
    between(
        "content_quality.section_points",
        quality.section_points,
        0,
        10,
    )?;
    between(
        "content_quality.vague_section_points",
        quality.vague_section_points,
        0,
        quality.section_points,
    )?;
    between(
        "content_quality.boilerplate_section_points",
        quality.boilerplate_section_points,
        quality.vague_section_points,
        quality.section_points,
    )?;
    at_least(
        "content_quality.section_min_words",
        quality.section_min_words,
        1,
    )?;
    keywords("content_quality.vague_answers", &quality.vague_answers)?;
    keywords(
        "content_quality.boilerplate_answers",
        &quality.boilerplate_answers,
    )?;
    keywords("content_quality.reason_keywords", &quality.reason_keywords)?;
    keywords(
        "content_quality.rollback_keywords",
        &quality.rollback_keywords,
    )?;
    keywords(
        "content_quality.verification_keywords",
        &quality.verification_keywords,
    )?;
    keywords("content_quality.vague_keywords", &quality.vague_keywords)
}

pub(super) fn dependency_analyzer(dependency: &DependencyConfig) -> Result<(), ConfigError> {
    env_points(
        "dependency_analyzer.environment_penalty",
        &dependency.environment_penalty,
    )?;
    env_points(
        "dependency_analyzer.read_only_environment_penalty",
        &dependency.read_only_environment_penalty,
    )?;
    for name in operation_names() {
        let value = dependency.operation_penalty.get(name).unwrap_or_default();
        percent(
            &format!("dependency_analyzer.operation_penalty.{name}"),
            value,
        )?;
    }
    for (name, value) in [
        ("extra_target_penalty", dependency.extra_target_penalty),
        (
            "max_extra_target_penalty",
            dependency.max_extra_target_penalty,
        ),
        ("whole_project_penalty", dependency.whole_project_penalty),
        (
            "stateful_target_penalty",
            dependency.stateful_target_penalty,
        ),
        ("volumes_penalty", dependency.volumes_penalty),
        ("remove_orphans_penalty", dependency.remove_orphans_penalty),
        ("force_penalty", dependency.force_penalty),
    ] {
        percent(&format!("dependency_analyzer.{name}"), value)?;
    }
    keywords(
        "dependency_analyzer.stateful_keywords",
        &dependency.stateful_keywords,
    )?;
    keywords(
        "dependency_analyzer.wide_scope_keywords",
        &dependency.wide_scope_keywords,
    )
}

pub(super) fn semantic_analyzer(semantic: &SemanticConfig) -> Result<(), ConfigError> {
    let credit = [
        ("base_points", semantic.base_points),
        ("target_points", semantic.target_points),
        ("action_points", semantic.action_points),
    ];
    for (name, value) in credit {
        percent(&format!("semantic_analyzer.{name}"), value)?;
    }
    let total: i64 = credit.iter().map(|(_, value)| value).sum();
    if total != 100 {
        return Err(invalid(
            "semantic_analyzer.base_points",
            format!("with `target_points` and `action_points` must sum to 100, got {total}"),
        ));
    }
    for (name, value) in [
        ("action_mismatch_penalty", semantic.action_mismatch_penalty),
        (
            "scope_not_acknowledged_penalty",
            semantic.scope_not_acknowledged_penalty,
        ),
        ("contradiction_penalty", semantic.contradiction_penalty),
        (
            "environment_mismatch_penalty",
            semantic.environment_mismatch_penalty,
        ),
    ] {
        percent(&format!("semantic_analyzer.{name}"), value)?;
    }
    let overlap = semantic.title_overlap_for_full_credit;
    if !(overlap > 0.0 && overlap <= 1.0) {
        return Err(invalid(
            "semantic_analyzer.title_overlap_for_full_credit",
            format!("must be above 0 and at most 1, got {overlap}"),
        ));
    }
    keywords(
        "semantic_analyzer.wide_scope_keywords",
        &semantic.wide_scope_keywords,
    )?;
    keywords(
        "semantic_analyzer.data_safe_keywords",
        &semantic.data_safe_keywords,
    )?;
    let actions = &semantic.action_keywords;
    for (name, list) in [
        ("restart", &actions.restart),
        ("stop", &actions.stop),
        ("start", &actions.start),
        ("kill", &actions.kill),
        ("remove", &actions.remove),
        ("down", &actions.down),
        ("inspect", &actions.inspect),
        ("logs", &actions.logs),
        ("status", &actions.status),
    ] {
        keywords(&format!("semantic_analyzer.action_keywords.{name}"), list)?;
    }
    let environments = &semantic.environment_keywords;
    for (name, list) in [
        ("dev", &environments.dev),
        ("test", &environments.test),
        ("prd", &environments.prd),
    ] {
        keywords(
            &format!("semantic_analyzer.environment_keywords.{name}"),
            list,
        )?;
    }
    Ok(())
}

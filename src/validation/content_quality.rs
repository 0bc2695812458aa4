//! The content-quality scorer: how well the request explains itself.
//!
//! A description in the ten-section framework (`framework`) earns points per substantive
//! section; vague sections ("TBD", "n/a", one word) earn little. Free text earns points for
//! its length, a reason, naming its targets, a rollback plan, a verification plan and a
//! specific title, less a penalty for vague words. Below the floor
//! (`thresholds.content_quality_floor`) the composite auto-rejects the request: an
//! approver cannot judge what is not explained.

use crate::request::Environment;
use crate::validation::config::ContentQualityConfig;
use crate::validation::facts::Facts;
use crate::validation::framework::{SECTIONS, sections};
use crate::validation::lexicon::Category;
use crate::validation::report::{CONTENT_QUALITY, Finding, Severity, ValidatorResult};
use crate::validation::{Validator, clamp_score};

pub(crate) fn score(validator: &Validator, facts: &Facts<'_>) -> ValidatorResult {
    let quality = &validator.config.content_quality;
    let mut findings = Vec::with_capacity(8);
    let found = sections(&facts.request.description);
    let present = found.iter().filter(|section| section.is_some()).count();
    let mut points = if i64::try_from(present).unwrap_or(0) >= quality.framework_min_sections {
        framework_points(quality, &found, &mut findings)
    } else {
        free_text_points(quality, facts, &mut findings)
    };
    let vague_words = i64::from(facts.counts.get(Category::Vague));
    if vague_words > 0 {
        let penalty = (vague_words * quality.vague_word_penalty).min(quality.max_vague_penalty);
        points -= penalty;
        findings.push(Finding::new(
            CONTENT_QUALITY,
            Severity::Low,
            "vague_wording",
            format!("{vague_words} vague word(s) such as \"stuff\" or \"asap\" (-{penalty})"),
        ));
    }
    let score = clamp_score(points);
    let floor = validator.config.thresholds.content_quality_floor;
    if i64::from(score) < floor {
        findings.push(Finding::new(
            CONTENT_QUALITY,
            Severity::High,
            "below_floor",
            format!(
                "content quality {score} is below the floor {floor}: say why, what it touches, \
                 how to roll back and how to verify"
            ),
        ));
    }
    ValidatorResult { score, findings }
}

/// Points per section of the ten-section framework.
fn framework_points(
    quality: &ContentQualityConfig,
    found: &[Option<&str>; 10],
    findings: &mut Vec<Finding>,
) -> i64 {
    let mut points = 0;
    let mut missing = Vec::new();
    for (name, text) in SECTIONS.iter().zip(found) {
        match text {
            None => missing.push(*name),
            Some(text) if is_vague(quality, text) => {
                points += if is_vague_answer(quality, text) {
                    quality.vague_section_points
                } else {
                    quality.boilerplate_section_points
                };
                // Only a known vague answer ("TBD") is quoted: any other text, however
                // short, could be a secret pasted into the wrong place.
                let span = if is_vague_answer(quality, text)
                    || is_answer_in(&quality.boilerplate_answers, text)
                {
                    format!("{name}: {text}")
                } else {
                    (*name).to_string()
                };
                findings.push(
                    Finding::new(
                        CONTENT_QUALITY,
                        Severity::Low,
                        "vague_section",
                        format!("section {name} is vague: say what, concretely"),
                    )
                    .with_span(span),
                );
            }
            Some(_) => points += quality.section_points,
        }
    }
    if !missing.is_empty() {
        findings.push(Finding::new(
            CONTENT_QUALITY,
            Severity::Low,
            "missing_sections",
            format!("framework sections missing: {}", missing.join(", ")),
        ));
    }
    points
}

/// Whether a section's text says nothing specific: too few words, a vague answer ("TBD") or
/// a boilerplate one ("Fix bugs if found").
fn is_vague(quality: &ContentQualityConfig, text: &str) -> bool {
    let words = text.split_ascii_whitespace().count();
    i64::try_from(words).unwrap_or(i64::MAX) < quality.section_min_words
        || is_vague_answer(quality, text)
        || is_answer_in(&quality.boilerplate_answers, text)
}

fn is_vague_answer(quality: &ContentQualityConfig, text: &str) -> bool {
    is_answer_in(&quality.vague_answers, text)
}

fn is_answer_in(answers: &[String], text: &str) -> bool {
    let bare = text.trim_end_matches(['.', '!', ' ']);
    answers
        .iter()
        .any(|answer| answer.eq_ignore_ascii_case(bare))
}

fn free_text_points(
    quality: &ContentQualityConfig,
    facts: &Facts<'_>,
    findings: &mut Vec<Finding>,
) -> i64 {
    let points = &quality.points;
    let prd = facts.request.environment == Environment::Prd;
    let plan_severity = if prd { Severity::Medium } else { Severity::Low };
    let mut total = 0;

    let words = i64::try_from(facts.description_words).unwrap_or(i64::MAX);
    if words < quality.min_length_words {
        findings.push(Finding::new(
            CONTENT_QUALITY,
            Severity::Medium,
            "too_short",
            format!("the description has {words} word(s): explain the request"),
        ));
    } else {
        total += points.length * words.min(quality.good_length_words) / quality.good_length_words;
    }
    let mut criterion =
        |present: bool, earned: i64, severity: Severity, code: &'static str, reason: &str| {
            if present {
                total += earned;
            } else {
                findings.push(Finding::new(CONTENT_QUALITY, severity, code, reason));
            }
        };
    criterion(
        facts.has(Category::Reason),
        points.reason,
        Severity::Low,
        "no_reason",
        "the description does not say why",
    );
    criterion(
        names_targets(facts),
        points.targets,
        Severity::Low,
        "targets_not_named",
        "the description does not name what it touches",
    );
    // A read-only operation changes nothing, so it needs no rollback plan.
    let rollback = facts.read_only() || facts.has(Category::Rollback);
    criterion(
        rollback,
        points.rollback,
        plan_severity,
        "no_rollback_plan",
        "no rollback plan (rollback, revert, restore)",
    );
    criterion(
        facts.has(Category::Verification),
        points.verification,
        plan_severity,
        "no_verification_plan",
        "no verification plan (verify, check, health, test)",
    );
    let title_vague = facts.title_words < 3 || is_vague(quality, &facts.request.title);
    criterion(
        !title_vague,
        points.title,
        Severity::Info,
        "vague_title",
        "the title is too short to say what happens",
    );
    total
}

/// Whether the text names what the request touches: the command's targets or project,
/// or, for an instruction approval, something concrete (a path, a name with `-` or `_`,
/// a file, a version).
fn names_targets(facts: &Facts<'_>) -> bool {
    match &facts.operation {
        Some(operation) if operation.targets.is_empty() => {
            operation.project_mentioned || facts.has(Category::WideScope)
        }
        Some(operation) => operation.mentioned_targets > 0,
        None => facts
            .description_lower()
            .split_ascii_whitespace()
            .any(is_concrete),
    }
}

/// A word that names a thing: `wingman-prd`, `docker-compose.prd.yml`, `/health`, `v1.2`.
fn is_concrete(word: &str) -> bool {
    let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    word.len() >= 3
        && word.bytes().any(|byte| byte.is_ascii_alphabetic())
        && word
            .bytes()
            .any(|byte| matches!(byte, b'-' | b'_' | b'.' | b'/' | b':') || byte.is_ascii_digit())
}

#[cfg(test)]
mod tests;

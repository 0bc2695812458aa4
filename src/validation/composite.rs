//! The composite: profile, weighted score and decision, with its reasons in words.
//!
//! In order:
//! 1. AUTO_REJECTED on any finding at or above `thresholds.auto_reject_at` (critical: a
//!    secret, volume deletion in prd, `rm -rf /`, …) or a content quality below the floor.
//! 2. AUTO_APPROVED when the weighted score reaches the profile's threshold, no rule of
//!    `rules.never_auto_approve` matches (prd destructive operations, volumes, …) and no
//!    finding reaches `thresholds.block_auto_approve_at`.
//! 3. PENDING otherwise: a human decides.
//!
//! The profile is operational for a read-only operation (inspect, logs, compose ps, a
//! probe exec: it deploys nothing, whatever its description says), else deployment when the
//! text has more deployment words than operational ones (title words count twice, a docker
//! command as one operational word), operational when fewer, the stricter deployment on a
//! tie, and `profiles.default` when neither appears.

use crate::validation::facts::Facts;
use crate::validation::lexicon::Category;
use crate::validation::report::{
    CompositeResult, Decision, Finding, Profile, ValidatorName, ValidatorResult,
};
use crate::validation::{Validator, clamp_score, rules};

/// At most this many findings are quoted in the reasons; the rest are in the scores.
const MAX_QUOTED_FINDINGS: usize = 5;

/// Decides from every scoring validator's result, each weighed by its name.
pub(crate) fn decide(
    validator: &Validator,
    facts: &Facts<'_>,
    results: [(ValidatorName, &ValidatorResult); ValidatorName::COUNT],
) -> CompositeResult {
    let config = &validator.config;
    let thresholds = &config.thresholds;
    let (profile, deployment_words, operational_words) = detect_profile(validator, facts);
    let weights = match profile {
        Profile::Operational => &config.weights.operational,
        Profile::Deployment => &config.weights.deployment,
    };
    let weighted: f64 = results
        .iter()
        .map(|(name, result)| weights.get(*name) * f64::from(result.score))
        .sum();
    // Rounded to whole points; the weights sum to 1, so `weighted` is within 0..=100.
    let score = clamp_score(weighted.round() as i64);
    let threshold = match profile {
        Profile::Operational => thresholds.operational_auto_approve,
        Profile::Deployment => thresholds.deployment_auto_approve,
    };
    let findings = || {
        results
            .iter()
            .flat_map(|(_, result)| result.findings.iter())
    };
    // Always there (the caller passes every validator); absent, it would reject, never approve.
    let content_quality = results
        .iter()
        .find(|(name, _)| *name == ValidatorName::ContentQuality)
        .map_or(0, |(_, result)| i64::from(result.score));

    let mut reasons = Vec::with_capacity(4);
    let rejecting: Vec<&Finding> = findings()
        .filter(|finding| finding.severity >= thresholds.auto_reject_at)
        .collect();
    let below_floor = content_quality < thresholds.content_quality_floor;
    let decision = if !rejecting.is_empty() || below_floor {
        quote(&mut reasons, &rejecting);
        if below_floor {
            reasons.push(format!(
                "content quality {content_quality} is below the floor {}",
                thresholds.content_quality_floor
            ));
        }
        Decision::AutoRejected
    } else {
        let blocking_rules: Vec<_> = config
            .rules
            .never_auto_approve
            .iter()
            .filter(|rule| rules::matches(rule, facts))
            .collect();
        let blocking: Vec<&Finding> = findings()
            .filter(|finding| finding.severity >= thresholds.block_auto_approve_at)
            .collect();
        let reaches = i64::from(score) >= threshold;
        if reaches && blocking_rules.is_empty() && blocking.is_empty() {
            reasons.push(format!("score {score} ≥ {threshold} ({profile})"));
            Decision::AutoApproved
        } else {
            if reaches {
                reasons.push(format!(
                    "score {score} ≥ {threshold} ({profile}), but a human must decide"
                ));
            } else {
                reasons.push(format!("score {score} < {threshold} ({profile})"));
            }
            for rule in blocking_rules {
                reasons.push(format!(
                    "never auto-approved: {} (rule {})",
                    rule.reason, rule.name
                ));
            }
            quote(&mut reasons, &blocking);
            Decision::Pending
        }
    };
    if facts.read_only() {
        reasons.push(format!(
            "profile {profile}: a read-only operation ({deployment_words} deployment and {operational_words} operational word(s) in its text)"
        ));
    } else {
        reasons.push(format!(
            "profile {profile}: {deployment_words} deployment and {operational_words} operational word(s)"
        ));
    }
    CompositeResult {
        score,
        profile,
        decision,
        reasons,
    }
}

/// The profile, with the deployment and operational word counts it was chosen from.
fn detect_profile(validator: &Validator, facts: &Facts<'_>) -> (Profile, u32, u32) {
    // Title words count twice: the title says what the request is for.
    let count = |category| {
        u32::from(facts.counts.get(category)) + u32::from(facts.title_counts.get(category))
    };
    let deployment = count(Category::Deployment);
    let operational = count(Category::Operational) + u32::from(facts.operation.is_some());
    let profile = if facts.read_only() {
        Profile::Operational
    } else if deployment == 0 && operational == 0 {
        validator.config.profiles.default
    } else if deployment >= operational {
        Profile::Deployment
    } else {
        Profile::Operational
    };
    (profile, deployment, operational)
}

fn quote(reasons: &mut Vec<String>, findings: &[&Finding]) {
    for finding in findings.iter().take(MAX_QUOTED_FINDINGS) {
        reasons.push(format!(
            "{} finding: {} ({})",
            finding.severity, finding.reason, finding.code
        ));
    }
    if findings.len() > MAX_QUOTED_FINDINGS {
        reasons.push(format!(
            "and {} more finding(s)",
            findings.len() - MAX_QUOTED_FINDINGS
        ));
    }
}

#[cfg(test)]
mod tests;

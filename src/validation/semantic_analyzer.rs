//! The semantic analyzer: does the text describe what the command does?
//!
//! A request that says "restart the api" while its command is `compose down` of the whole
//! stack is either a mistake or a trick; either way a human must look. Credit comes from
//! naming the command's targets (or, for a whole project, the project or "the stack") and
//! its action; points are taken off for an action the command does not perform, a whole
//! project the text never acknowledges, a claim the command contradicts ("no data loss"
//! with `-v`), and another environment than the request's. An instruction approval has no
//! command, so its title and description are checked against each other.

use crate::docker::{ComposeAction, ContainerAction, DockerOperation};
use crate::request::Environment;
use crate::validation::facts::{Facts, OperationFacts, mentions_stem, mentions_word};
use crate::validation::lexicon::Category;
use crate::validation::report::{Finding, SEMANTIC_ANALYZER, Severity, ValidatorResult};
use crate::validation::{Validator, clamp_score};

/// Actions that change state; a text naming only other ones than the command's is a
/// mismatch. Inspect, logs and status words are left out: every verification plan has them.
const STATE_ACTIONS: [Category; 6] = [
    Category::Restart,
    Category::Stop,
    Category::Start,
    Category::Kill,
    Category::Remove,
    Category::Down,
];

/// Words of a title too common to show what it is about.
const STOPWORDS: &[&str] = &[
    "with",
    "from",
    "that",
    "this",
    "into",
    "then",
    "than",
    "have",
    "will",
    "should",
    "would",
    "could",
    "about",
    "after",
    "before",
    "please",
    "need",
    "needs",
    "request",
    "approval",
    "allow",
    "permission",
    "leave",
    "task",
    "some",
    "when",
    "while",
    "only",
    "also",
];

pub(crate) fn score(validator: &Validator, facts: &Facts<'_>) -> ValidatorResult {
    let config = &validator.config.semantic_analyzer;
    let mut findings = Vec::with_capacity(8);
    let mut points = config.base_points;
    match &facts.operation {
        Some(operation) => {
            points += target_points(validator, facts, operation, &mut findings);
            points += action_points(validator, facts, operation.operation, &mut findings);
            if operation.volumes && facts.has(Category::DataSafe) {
                points -= config.contradiction_penalty;
                findings.push(Finding::new(
                    SEMANTIC_ANALYZER,
                    Severity::High,
                    "claim_contradicts_command",
                    "the text promises no data loss, but the command deletes volumes",
                ));
            }
        }
        None => points += title_coherence_points(validator, facts, &mut findings),
    }
    if environment_mismatch(facts) {
        points -= config.environment_mismatch_penalty;
        findings.push(Finding::new(
            SEMANTIC_ANALYZER,
            Severity::Medium,
            "environment_mismatch",
            format!(
                "the text speaks of another environment than {}",
                facts.request.environment
            ),
        ));
    }
    ValidatorResult {
        score: clamp_score(points),
        findings,
    }
}

fn target_points(
    validator: &Validator,
    facts: &Facts<'_>,
    operation: &OperationFacts<'_>,
    findings: &mut Vec<Finding>,
) -> i64 {
    let config = &validator.config.semantic_analyzer;
    let summary = &operation.summary;
    if operation.targets.is_empty() {
        // The operation names a compose project, not containers.
        if operation.project_mentioned || facts.has(Category::WideScope) {
            return config.target_points;
        }
        if !operation.whole_project {
            findings.push(Finding::new(
                SEMANTIC_ANALYZER,
                Severity::Low,
                "targets_not_mentioned",
                format!("the text does not name the {summary}"),
            ));
            return 0;
        }
        findings.push(Finding::new(
            SEMANTIC_ANALYZER,
            Severity::Medium,
            "scope_not_acknowledged",
            format!("the command acts on the {summary}, but the text never says so"),
        ));
        return -config.scope_not_acknowledged_penalty;
    }
    let total = operation.targets.len();
    let mentioned = operation.mentioned_targets;
    if mentioned == total {
        config.target_points
    } else if mentioned > 0 {
        findings.push(Finding::new(
            SEMANTIC_ANALYZER,
            Severity::Low,
            "targets_partly_mentioned",
            format!("the text names {mentioned} of the {total} targets ({summary})"),
        ));
        config.target_points / 2
    } else {
        findings.push(Finding::new(
            SEMANTIC_ANALYZER,
            Severity::Low,
            "targets_not_mentioned",
            format!("the text does not name the targets ({summary})"),
        ));
        0
    }
}

fn action_points(
    validator: &Validator,
    facts: &Facts<'_>,
    operation: &DockerOperation,
    findings: &mut Vec<Finding>,
) -> i64 {
    let config = &validator.config.semantic_analyzer;
    let (primary, compatible) = expected_actions(operation);
    if facts.has(primary) {
        return config.action_points;
    }
    if compatible.iter().any(|category| facts.has(*category)) {
        return config.action_points * 2 / 3;
    }
    let other_state_actions = STATE_ACTIONS.iter().any(|category| facts.has(*category));
    if operation.is_read_only() || !other_state_actions {
        findings.push(Finding::new(
            SEMANTIC_ANALYZER,
            Severity::Low,
            "action_not_described",
            format!("the text does not say it will {}", action_word(operation)),
        ));
        return 0;
    }
    // The text names state changes, none of which is the command's.
    let only_gentler =
        !facts.has(Category::Kill) && !facts.has(Category::Remove) && !facts.has(Category::Down);
    let severity = if operation.is_destructive() && only_gentler {
        Severity::High
    } else {
        Severity::Medium
    };
    findings.push(Finding::new(
        SEMANTIC_ANALYZER,
        severity,
        "action_mismatch",
        format!(
            "the text describes another action than the command's `{}`",
            action_word(operation)
        ),
    ));
    -config.action_mismatch_penalty
}

/// The action words that describe an operation: its own, and those a faithful
/// description may use instead (a restart is a stop and a start, a down stops and
/// removes). Starting again is left out for the destructive ones: every rollback plan
/// says it, so it cannot vouch for what the command itself does.
fn expected_actions(operation: &DockerOperation) -> (Category, &'static [Category]) {
    use Category::*;
    match operation {
        DockerOperation::Container(op) => match op.action {
            ContainerAction::Restart => (Restart, &[Stop, Start]),
            ContainerAction::Stop => (Stop, &[Down]),
            ContainerAction::Start => (Start, &[Restart]),
            ContainerAction::Kill => (Kill, &[Stop]),
            ContainerAction::Rm => (Remove, &[Down]),
            ContainerAction::Inspect => (Inspect, &[Logs, Status]),
            ContainerAction::Logs => (Logs, &[Inspect, Status]),
        },
        DockerOperation::Compose(op) => match op.action {
            ComposeAction::Down => (Down, &[Stop, Remove]),
            ComposeAction::Stop => (Stop, &[Down]),
            ComposeAction::Start => (Start, &[Restart]),
            ComposeAction::Restart => (Restart, &[Stop, Start]),
            ComposeAction::Ps => (Status, &[Inspect, Logs]),
            ComposeAction::Up => (Deployment, &[Start, Restart]),
            ComposeAction::Pull => (Deployment, &[]),
        },
        DockerOperation::Exec(_) => (Status, &[Inspect, Logs]),
    }
}

fn action_word(operation: &DockerOperation) -> &'static str {
    match operation {
        DockerOperation::Container(op) => op.action.as_str(),
        DockerOperation::Compose(op) => match op.action {
            ComposeAction::Down => "compose down",
            ComposeAction::Stop => "compose stop",
            ComposeAction::Start => "compose start",
            ComposeAction::Restart => "compose restart",
            ComposeAction::Ps => "compose ps",
            ComposeAction::Up => "compose up",
            ComposeAction::Pull => "compose pull",
        },
        DockerOperation::Exec(_) => "run the probe",
    }
}

/// Instruction approvals: the share of the title's words the description repeats.
fn title_coherence_points(
    validator: &Validator,
    facts: &Facts<'_>,
    findings: &mut Vec<Finding>,
) -> i64 {
    let config = &validator.config.semantic_analyzer;
    let credit = config.target_points + config.action_points;
    let description = facts.description_lower();
    let (mut total, mut repeated) = (0u32, 0u32);
    for word in facts
        .title_lower()
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
        .filter(|word| word.len() >= 4 && !STOPWORDS.contains(word))
    {
        total += 1;
        if mentions_word(description, word) || mentions_stem(description, word) {
            repeated += 1;
        }
    }
    if total == 0 {
        return credit / 2;
    }
    let overlap = f64::from(repeated) / f64::from(total);
    if overlap < 0.25 && total >= 2 {
        findings.push(Finding::new(
            SEMANTIC_ANALYZER,
            Severity::Medium,
            "title_description_mismatch",
            format!("the description repeats {repeated} of the title's {total} words: does it describe the same task?"),
        ));
    }
    let share = (overlap / config.title_overlap_for_full_credit).min(1.0);
    // Rounded to whole points; `share` is within 0..=1, so the cast cannot overflow.
    (share * credit as f64).round() as i64
}

/// The text names another environment and never its own.
fn environment_mismatch(facts: &Facts<'_>) -> bool {
    let dev = facts.has(Category::EnvDev);
    let test = facts.has(Category::EnvTest);
    let prd = facts.has(Category::EnvPrd);
    match facts.request.environment {
        Environment::Dev => !dev && (prd || test),
        Environment::Test => !test && prd,
        Environment::Prd => !prd && (dev || test),
    }
}

#[cfg(test)]
mod tests;

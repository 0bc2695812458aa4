//! `wingman explain`: run the validators on a request without submitting it (for tuning).

use serde_json::json;

use crate::envelope::RequestId;
use crate::request::parse_request;
use crate::validation::{Validation, Validator, ValidatorResult};

/// Prints each validator's score and findings and the decision; `--json` prints
/// `{"decision": …, "validator_scores": {…}}` with the keys of CONTRACTS.md, "Validation scores".
pub fn run(validator: &Validator, payload: &[u8], json_output: bool) -> anyhow::Result<Validation> {
    let request = parse_request(payload, RequestId::generate)
        .map_err(|invalid| anyhow::anyhow!("invalid request: {invalid}"))?;
    let validation = validator.validate(&request);
    if json_output {
        let output = json!({ "decision": validation.decision, "validator_scores": validation.validator_scores });
        println!("{}", serde_json::to_string_pretty(&output)?);
        return Ok(validation);
    }
    let scores = &validation.validator_scores;
    let composite = &scores.composite;
    println!(
        "decision: {} (composite {} / 100, profile {})",
        decision_word(&validation),
        composite.score,
        composite.profile.as_str()
    );
    for reason in &composite.reasons {
        println!("  - {reason}");
    }
    for (name, result) in [
        ("code_scanner", &scores.code_scanner),
        ("content_quality", &scores.content_quality),
        ("dependency_analyzer", &scores.dependency_analyzer),
        ("semantic_analyzer", &scores.semantic_analyzer),
    ] {
        print_validator(name, result);
    }
    Ok(validation)
}

fn decision_word(validation: &Validation) -> String {
    serde_json::to_value(validation.decision)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn print_validator(name: &str, result: &ValidatorResult) {
    println!("{name:<20} {:>3}", result.score);
    for finding in &result.findings {
        let severity = serde_json::to_value(finding.severity)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        match &finding.span {
            Some(span) => println!(
                "    [{severity}] {}: {} (`{span}`)",
                finding.code, finding.reason
            ),
            None => println!("    [{severity}] {}: {}", finding.code, finding.reason),
        }
    }
}

//! The labelled corpus (`tests/data/validation-corpus.json`) run through the validator.
//!
//! Each item is a request in its public JSON form with a label (`dangerous`,
//! `risky_legitimate`, `safe`) and the decision it must get. Beyond each item's own
//! expectation, the safety properties hold over the whole corpus: nothing dangerous is
//! auto-approved, nothing safe and well explained is auto-rejected, and every risky prd
//! operation waits for a human.

use serde::Deserialize;

use crate::envelope::RequestId;
use crate::request::{Environment, Request, parse_request};
use crate::validation::{Decision, Validation, Validator};

const CORPUS: &str = include_str!("../../tests/data/validation-corpus.json");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    name: String,
    label: Label,
    request: serde_json::Value,
    expect: Expect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Label {
    Dangerous,
    RiskyLegitimate,
    Safe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum Expect {
    #[serde(rename = "AUTO_APPROVED")]
    AutoApproved,
    #[serde(rename = "AUTO_REJECTED")]
    AutoRejected,
    #[serde(rename = "PENDING")]
    Pending,
    #[serde(rename = "not_auto_approved")]
    NotAutoApproved,
    #[serde(rename = "not_auto_rejected")]
    NotAutoRejected,
}

impl Expect {
    fn accepts(self, decision: Decision) -> bool {
        match self {
            Expect::AutoApproved => decision == Decision::AutoApproved,
            Expect::AutoRejected => decision == Decision::AutoRejected,
            Expect::Pending => decision == Decision::Pending,
            Expect::NotAutoApproved => decision != Decision::AutoApproved,
            Expect::NotAutoRejected => decision != Decision::AutoRejected,
        }
    }
}

/// Every item with its parsed request and validation.
fn validated() -> Vec<(Item, Request, Validation)> {
    let items: Vec<Item> = serde_json::from_str(CORPUS).expect("the corpus is valid JSON");
    let validator = Validator::with_defaults();
    items
        .into_iter()
        .map(|item| {
            let request = parse_request(item.request.to_string().as_bytes(), RequestId::generate)
                .unwrap_or_else(|error| panic!("corpus item `{}`: {error}", item.name));
            let validation = validator.validate(&request);
            (item, request, validation)
        })
        .collect()
}

fn describe(item: &Item, validation: &Validation) -> String {
    let scores = &validation.validator_scores;
    let mut listed = String::new();
    for (name, result) in scores.results() {
        listed.push_str(&format!("{name} {} ", result.score));
    }
    format!(
        "`{}` ({:?}): {} [{listed}composite {}] {:?}",
        item.name,
        item.label,
        validation.decision,
        scores.composite.score,
        scores.composite.reasons,
    )
}

#[test]
fn the_corpus_has_at_least_seventy_labelled_requests_of_every_label() {
    let items = validated();
    assert!(items.len() >= 70, "{} items", items.len());
    for label in [Label::Dangerous, Label::RiskyLegitimate, Label::Safe] {
        assert!(
            items
                .iter()
                .filter(|(item, ..)| item.label == label)
                .count()
                >= 15,
            "{label:?}"
        );
    }
    let mut names: Vec<&str> = items.iter().map(|(item, ..)| item.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), items.len(), "corpus names are unique");
}

#[test]
fn every_corpus_request_gets_its_expected_decision() {
    let failures: Vec<String> = validated()
        .iter()
        .filter(|(item, _, validation)| !item.expect.accepts(validation.decision))
        .map(|(item, _, validation)| {
            format!("expected {:?}: {}", item.expect, describe(item, validation))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn no_dangerous_request_is_ever_auto_approved() {
    for (item, _, validation) in validated() {
        if item.label == Label::Dangerous {
            assert_ne!(
                validation.decision,
                Decision::AutoApproved,
                "{}",
                describe(&item, &validation)
            );
        }
    }
}

#[test]
fn no_safe_well_explained_request_is_auto_rejected() {
    for (item, _, validation) in validated() {
        if item.label == Label::Safe {
            assert_ne!(
                validation.decision,
                Decision::AutoRejected,
                "{}",
                describe(&item, &validation)
            );
        }
    }
}

#[test]
fn every_risky_prd_operation_waits_for_a_human() {
    let mut checked = 0;
    for (item, request, validation) in validated() {
        let mutating = request
            .command
            .as_ref()
            .is_some_and(|command| command.operation.is_mutating());
        if item.label == Label::RiskyLegitimate
            && request.environment == Environment::Prd
            && mutating
        {
            checked += 1;
            assert_eq!(
                validation.decision,
                Decision::Pending,
                "{}",
                describe(&item, &validation)
            );
        }
    }
    assert!(
        checked >= 8,
        "only {checked} risky prd operations in the corpus"
    );
}

#[test]
fn no_finding_span_in_the_corpus_leaks_a_secret() {
    for (item, _, validation) in validated() {
        for finding in validation.findings() {
            if finding.code.starts_with("secret_") {
                let span = finding.span.as_deref().unwrap_or_default();
                assert!(span.contains("****"), "`{}`: {span}", item.name);
            }
        }
    }
}

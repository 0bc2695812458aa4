//! The sections of the validation config, one struct per TOML table: here those of the
//! composite (thresholds, weights, profiles, rules, whitelist); the scoring validators'
//! sections are in `validator_sections`.
//!
//! Scores, points and penalties are `i64` so that an out-of-range value gets our message
//! naming the key ("must be between 0 and 100, got 140") instead of a bare type error.

use serde::{Deserialize, Serialize};

use crate::docker::OperationKind;

use crate::request::{Environment, RiskLevel};
use crate::validation::report::{Profile, Severity, ValidatorName};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub operational_auto_approve: i64,
    pub deployment_auto_approve: i64,
    pub content_quality_floor: i64,
    pub block_auto_approve_at: Severity,
    pub auto_reject_at: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub operational: ProfileWeights,
    pub deployment: ProfileWeights,
}

/// One weight per scoring validator, read by name ([`ProfileWeights::get`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileWeights {
    pub code_scanner: f64,
    pub content_quality: f64,
    pub dependency_analyzer: f64,
    pub semantic_analyzer: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    pub default: Profile,
    pub deployment_keywords: Vec<String>,
    pub operational_keywords: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub never_auto_approve: Vec<OperationRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Whitelist {
    /// Regexes for values that look like secrets but are not (`${DB_PASSWORD}`).
    pub allowed_secret_values: Vec<String>,
    pub operations: Vec<OperationRule>,
}

/// Which requests a rule or a whitelist entry matches. Every criterion that is set must
/// match; an empty list or an absent option matches anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationRule {
    pub name: String,
    pub reason: String,
    #[serde(default)]
    pub environments: Vec<Environment>,
    /// Operation names (`container_rm`, `compose_down`, …) or `instruction`.
    #[serde(default)]
    pub operations: Vec<String>,
    #[serde(default)]
    pub risk_levels: Vec<RiskLevel>,
    #[serde(default)]
    pub volumes: Option<bool>,
    #[serde(default)]
    pub whole_project: Option<bool>,
    #[serde(default)]
    pub stateful: Option<bool>,
    #[serde(default)]
    pub max_targets: Option<i64>,
}

impl ProfileWeights {
    /// The weight of one validator's score in the composite.
    pub fn get(&self, name: ValidatorName) -> f64 {
        match name {
            ValidatorName::CodeScanner => self.code_scanner,
            ValidatorName::ContentQuality => self.content_quality,
            ValidatorName::DependencyAnalyzer => self.dependency_analyzer,
            ValidatorName::SemanticAnalyzer => self.semantic_analyzer,
        }
    }
}

/// A request without a command (an instruction approval), as rules and points name it.
pub const INSTRUCTION: &str = "instruction";

/// Every operation name a rule may use: the docker operations ([`OperationKind::ALL`]) and
/// [`INSTRUCTION`].
pub fn operation_names() -> impl Iterator<Item = &'static str> {
    OperationKind::ALL
        .iter()
        .map(|kind| kind.name())
        .chain([INSTRUCTION])
}

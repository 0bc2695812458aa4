//! Validation: the scoring validators ([`ValidatorName::ALL`]) score a request, and the
//! composite decides whether it is auto-approved, auto-rejected, or left to a human (the
//! seed's Phase 1–2, CONTRACTS.md "Validation scores").
//!
//! The validator stage calls [`Validator::validate`] on every accepted request and
//! publishes the [`Validation`] on `wingman.requests.validated`; its `validator_scores`
//! are stored as is. Validation is a pure function of the request and the config: no IO,
//! no clock, no randomness, so a redelivered request gets the same decision.
//!
//! Layout:
//! - `report`: what validation produces ([`Validation`], [`Finding`], …)
//! - `config`: [`ValidationConfig`], from `config/validation.toml`
//! - `lexicon`, `facts`: what the validators need, worked out once per request
//! - `code_scanner` (with `text_scan`), `content_quality` (with `framework`),
//!   `dependency_analyzer`, `semantic_analyzer`: the scoring validators
//! - `composite`: profile, weighted score and decision
//! - `rules`: matching requests against the rules and the whitelist

use regex::bytes::{Regex, RegexBuilder};

use crate::request::Request;

mod code_scanner;
mod composite;
mod config;
mod content_quality;
mod dependency_analyzer;
mod facts;
mod framework;
mod lexicon;
mod report;
mod rules;
mod semantic_analyzer;
mod text_scan;

#[cfg(test)]
mod calibration;
#[cfg(test)]
mod corpus;
#[cfg(test)]
pub(crate) mod test_support;

pub use config::{
    ActionKeywords, CodeScannerConfig, CommandSeverity, ConfigError, ContentQualityConfig,
    DangerousPattern, DependencyConfig, EnvPoints, EnvSeverity, EnvironmentKeywords,
    OperationPoints, OperationRule, ProfileConfig, ProfileWeights, QualityPoints, Rules,
    SecretPattern, SemanticConfig, SeverityPoints, Thresholds, ValidationConfig, Weights,
    Whitelist,
};
pub use report::{
    CODE_SCANNER, CONTENT_QUALITY, CompositeResult, DEPENDENCY_ANALYZER, Decision, Finding,
    Profile, SEMANTIC_ANALYZER, Severity, Validation, ValidatorName, ValidatorResult,
    ValidatorScores,
};

use facts::Facts;
use lexicon::{Category, Lexicon};
use text_scan::TextScanner;

/// The validation engine: a config with its patterns compiled once.
#[derive(Debug, Clone)]
pub struct Validator {
    config: ValidationConfig,
    compiled: Compiled,
}

/// Everything compiled from the config, so [`Validator::validate`] compiles nothing.
#[derive(Debug, Clone)]
struct Compiled {
    text: TextScanner,
    lexicon: Lexicon,
    stateful_target: Regex,
}

impl Validator {
    /// Compiles the config's patterns and keyword lists; a bad pattern is named by key.
    pub fn new(config: ValidationConfig) -> Result<Self, ConfigError> {
        let compiled = Compiled::new(&config)?;
        Ok(Self { config, compiled })
    }

    /// A validator with the shipped defaults (`config/validation.toml`).
    ///
    /// # Panics
    /// If the shipped config does not compile, which a unit test rules out.
    pub fn with_defaults() -> Self {
        match Self::new(ValidationConfig::default_config()) {
            Ok(validator) => validator,
            Err(error) => panic!("the shipped config/validation.toml does not compile: {error}"),
        }
    }

    pub fn config(&self) -> &ValidationConfig {
        &self.config
    }

    /// Scores a request and decides. Deterministic, and never panics.
    pub fn validate(&self, request: &Request) -> Validation {
        let facts = Facts::new(self, request);
        let code_scanner = code_scanner::scan(self, &facts);
        let content_quality = content_quality::score(self, &facts);
        let dependency_analyzer = dependency_analyzer::score(self, &facts);
        let semantic_analyzer = semantic_analyzer::score(self, &facts);
        let composite = composite::decide(
            self,
            &facts,
            [
                (ValidatorName::CodeScanner, &code_scanner),
                (ValidatorName::ContentQuality, &content_quality),
                (ValidatorName::DependencyAnalyzer, &dependency_analyzer),
                (ValidatorName::SemanticAnalyzer, &semantic_analyzer),
            ],
        );
        Validation {
            decision: composite.decision,
            validator_scores: ValidatorScores {
                code_scanner,
                content_quality,
                dependency_analyzer,
                semantic_analyzer,
                composite,
            },
        }
    }
}

impl Compiled {
    fn new(config: &ValidationConfig) -> Result<Self, ConfigError> {
        let quality = &config.content_quality;
        let dependency = &config.dependency_analyzer;
        let semantic = &config.semantic_analyzer;
        let actions = &semantic.action_keywords;
        let environments = &semantic.environment_keywords;
        let lists: [(&str, Category, &[String]); 22] = [
            (
                "profiles.deployment_keywords",
                Category::Deployment,
                &config.profiles.deployment_keywords,
            ),
            (
                "profiles.operational_keywords",
                Category::Operational,
                &config.profiles.operational_keywords,
            ),
            (
                "content_quality.reason_keywords",
                Category::Reason,
                &quality.reason_keywords,
            ),
            (
                "content_quality.rollback_keywords",
                Category::Rollback,
                &quality.rollback_keywords,
            ),
            (
                "content_quality.verification_keywords",
                Category::Verification,
                &quality.verification_keywords,
            ),
            (
                "content_quality.vague_keywords",
                Category::Vague,
                &quality.vague_keywords,
            ),
            (
                "dependency_analyzer.stateful_keywords",
                Category::Stateful,
                &dependency.stateful_keywords,
            ),
            (
                "dependency_analyzer.wide_scope_keywords",
                Category::InstructionWideScope,
                &dependency.wide_scope_keywords,
            ),
            (
                "semantic_analyzer.wide_scope_keywords",
                Category::WideScope,
                &semantic.wide_scope_keywords,
            ),
            (
                "semantic_analyzer.data_safe_keywords",
                Category::DataSafe,
                &semantic.data_safe_keywords,
            ),
            (
                "semantic_analyzer.environment_keywords.dev",
                Category::EnvDev,
                &environments.dev,
            ),
            (
                "semantic_analyzer.environment_keywords.test",
                Category::EnvTest,
                &environments.test,
            ),
            (
                "semantic_analyzer.environment_keywords.prd",
                Category::EnvPrd,
                &environments.prd,
            ),
            (
                "semantic_analyzer.action_keywords.restart",
                Category::Restart,
                &actions.restart,
            ),
            (
                "semantic_analyzer.action_keywords.stop",
                Category::Stop,
                &actions.stop,
            ),
            (
                "semantic_analyzer.action_keywords.start",
                Category::Start,
                &actions.start,
            ),
            (
                "semantic_analyzer.action_keywords.kill",
                Category::Kill,
                &actions.kill,
            ),
            (
                "semantic_analyzer.action_keywords.remove",
                Category::Remove,
                &actions.remove,
            ),
            (
                "semantic_analyzer.action_keywords.down",
                Category::Down,
                &actions.down,
            ),
            (
                "semantic_analyzer.action_keywords.inspect",
                Category::Inspect,
                &actions.inspect,
            ),
            (
                "semantic_analyzer.action_keywords.logs",
                Category::Logs,
                &actions.logs,
            ),
            (
                "semantic_analyzer.action_keywords.status",
                Category::Status,
                &actions.status,
            ),
        ];
        let pattern = &dependency.stateful_target_pattern;
        let stateful_target =
            RegexBuilder::new(pattern)
                .unicode(false)
                .build()
                .map_err(|error| ConfigError::Pattern {
                    key: "dependency_analyzer.stateful_target_pattern".to_string(),
                    pattern: pattern.clone(),
                    problem: error.to_string().replace('\n', " "),
                })?;
        Ok(Self {
            text: TextScanner::new(config)?,
            lexicon: Lexicon::new(&lists)?,
            stateful_target,
        })
    }
}

/// A 0..=100 score from a signed sum of points.
fn clamp_score(points: i64) -> u8 {
    u8::try_from(points.clamp(0, 100)).unwrap_or(0)
}

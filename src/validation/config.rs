//! The validation configuration: weights, thresholds, patterns, whitelist and keywords.
//!
//! The shipped defaults are `config/validation.toml`, embedded in the binary; an operator
//! may load another file with [`ValidationConfig::load`]. Parsing is strict: unknown keys
//! are refused, and every problem is reported with the key at fault, so a typo during a
//! rollout fails at start-up instead of silently changing decisions. Patterns are only
//! compiled by [`crate::validation::Validator::new`], which reports a bad one by key too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod bounds;
mod check;
mod check_validators;
mod sections;
mod validator_sections;

pub use sections::{
    OperationRule, ProfileConfig, ProfileWeights, Rules, Thresholds, Weights, Whitelist,
};
pub use validator_sections::{
    ActionKeywords, CodeScannerConfig, CommandSeverity, ContentQualityConfig, DangerousPattern,
    DependencyConfig, EnvPoints, EnvSeverity, EnvironmentKeywords, OperationPoints, QualityPoints,
    SecretPattern, SemanticConfig, SeverityPoints,
};

/// The shipped defaults.
const DEFAULT_TOML: &str = include_str!("../../config/validation.toml");

/// Everything that shapes a validation decision; see `config/validation.toml` for the
/// meaning of each key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationConfig {
    pub thresholds: Thresholds,
    pub weights: Weights,
    pub profiles: ProfileConfig,
    pub rules: Rules,
    pub whitelist: Whitelist,
    pub code_scanner: CodeScannerConfig,
    pub content_quality: ContentQualityConfig,
    pub dependency_analyzer: DependencyConfig,
    pub semantic_analyzer: SemanticConfig,
}

/// Why a validation config was refused; every message names the key or the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("validation config: cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("validation config: {message}")]
    Parse { message: String },

    #[error("validation config: `{key}` {problem}")]
    Invalid { key: String, problem: String },

    #[error("validation config: `{key}` has an invalid pattern `{pattern}`: {problem}")]
    Pattern {
        key: String,
        pattern: String,
        problem: String,
    },
}

impl ValidationConfig {
    /// The shipped defaults (`config/validation.toml`).
    ///
    /// # Panics
    /// If the embedded file is invalid, which a unit test rules out.
    pub fn default_config() -> Self {
        match Self::from_toml(DEFAULT_TOML) {
            Ok(config) => config,
            Err(error) => panic!("the shipped config/validation.toml is invalid: {error}"),
        }
    }

    /// Parses and checks a config from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: ValidationConfig =
            toml::from_str(text).map_err(|error| parse_error(text, &error))?;
        config.check()?;
        Ok(config)
    }

    /// Reads, parses and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The text of the shipped defaults, for `wingman` to print or write out.
    pub fn default_toml() -> &'static str {
        DEFAULT_TOML
    }
}

/// A TOML or schema error, with the line it happened on and toml's message (which names
/// the unknown, missing or mistyped key).
fn parse_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.message().trim_end_matches('\n').to_string();
    let message = match error.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|byte| **byte == b'\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    };
    ConfigError::Parse { message }
}

#[cfg(test)]
mod tests;

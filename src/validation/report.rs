//! What validation produces: a decision, and per validator a score and its findings.
//!
//! These types are stored in `approval_requests.validator_scores`, shown to approvers on
//! Telegram and printed by `wingman explain --json`, so their serialized shape is a
//! contract (CONTRACTS.md, "Validation scores"): one key per [`ValidatorName`], each
//! `{score, findings[]}`, and `composite` `{score, profile, decision, reasons[]}`.
//!
//! [`ValidatorName`] is the one list of the scoring validators: the composite's weights,
//! the config checks, the metrics, the approvals prompt and `wingman explain` all go
//! through [`ValidatorName::ALL`] or [`ValidatorScores::results`].

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::named::named_enum;

named_enum! {
    /// A scoring validator (the composite, which decides from their scores, is not one).
    ///
    /// Its name is its key in [`ValidatorScores`], in [`Finding::validator`], in the weights
    /// and sections of `config/validation.toml` and in the `validator` metric label.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ValidatorName {
        CodeScanner => "code_scanner",
        ContentQuality => "content_quality",
        DependencyAnalyzer => "dependency_analyzer",
        SemanticAnalyzer => "semantic_analyzer",
    }
    /// Every scoring validator, in the order of [`ValidatorScores`]' fields. A new one here
    /// is a length mismatch in [`ValidatorScores::results`] until it has its field.
    const ALL;
    /// The key: `code_scanner`, `content_quality`, ….
    fn as_str;
}

/// The validator names as `&str`, for the validators' own findings.
pub const CODE_SCANNER: &str = ValidatorName::CodeScanner.as_str();
pub const CONTENT_QUALITY: &str = ValidatorName::ContentQuality.as_str();
pub const DEPENDENCY_ANALYZER: &str = ValidatorName::DependencyAnalyzer.as_str();
pub const SEMANTIC_ANALYZER: &str = ValidatorName::SemanticAnalyzer.as_str();

/// The outcome of validating one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub decision: Decision,
    pub validator_scores: ValidatorScores,
}

/// What the validator decided; the words are the request status words (CONTRACTS.md, "The
/// state machine").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    AutoApproved,
    AutoRejected,
    /// A human decides.
    Pending,
}

/// Every scoring validator's result and the composite's, keyed as in CONTRACTS.md: a field
/// per [`ValidatorName`], which [`ValidatorScores::results`] pairs with its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidatorScores {
    pub code_scanner: ValidatorResult,
    pub content_quality: ValidatorResult,
    pub dependency_analyzer: ValidatorResult,
    pub semantic_analyzer: ValidatorResult,
    pub composite: CompositeResult,
}

/// One validator's score (0 worst, 100 best) and what it noticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidatorResult {
    pub score: u8,
    pub findings: Vec<Finding>,
}

/// One thing a validator noticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Which validator: a [`ValidatorName`]'s key.
    pub validator: Cow<'static, str>,
    pub severity: Severity,
    /// A short fixed id such as `mass_removal` or `secret_aws_key`, for dashboards and
    /// tests; [`Finding::reason`] is the sentence for humans.
    pub code: Cow<'static, str>,
    pub reason: String,
    /// The text that triggered the finding. Secrets are redacted (`AKIA****`), so a span
    /// can be shown to an approver as is.
    pub span: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// The composite's weighted score and the decision, with its reasons in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompositeResult {
    pub score: u8,
    pub profile: Profile,
    pub decision: Decision,
    /// Why, for humans: "critical finding: …", "score 91 ≥ 85 (operational)".
    pub reasons: Vec<String>,
}

/// Which weights and threshold apply: deployments change what runs and are held to a
/// higher bar than operational actions such as a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Operational,
    Deployment,
}

impl fmt::Display for ValidatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ValidatorScores {
    /// Every scoring validator's result with its name, in the order of
    /// [`ValidatorName::ALL`].
    pub fn results(&self) -> [(ValidatorName, &ValidatorResult); ValidatorName::COUNT] {
        // No `..`: a new field is a compile error here until it is paired with its name.
        let ValidatorScores {
            code_scanner,
            content_quality,
            dependency_analyzer,
            semantic_analyzer,
            composite: _,
        } = self;
        [
            (ValidatorName::CodeScanner, code_scanner),
            (ValidatorName::ContentQuality, content_quality),
            (ValidatorName::DependencyAnalyzer, dependency_analyzer),
            (ValidatorName::SemanticAnalyzer, semantic_analyzer),
        ]
    }
}

impl Validation {
    /// Every finding of the scoring validators.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.validator_scores
            .results()
            .into_iter()
            .flat_map(|(_, result)| result.findings.iter())
    }
}

impl Decision {
    /// The status word: `AUTO_APPROVED`, `AUTO_REJECTED` or `PENDING`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::AutoApproved => "AUTO_APPROVED",
            Decision::AutoRejected => "AUTO_REJECTED",
            Decision::Pending => "PENDING",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// One level up, for findings that weigh more in prd; critical stays critical.
    pub fn raised(self) -> Severity {
        match self {
            Severity::Info => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Operational => "operational",
            Profile::Deployment => "deployment",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Finding {
    /// A finding without a span, for a validator's fixed code.
    pub(crate) fn new(
        validator: &'static str,
        severity: Severity,
        code: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            validator: Cow::Borrowed(validator),
            severity,
            code: Cow::Borrowed(code),
            reason: reason.into(),
            span: None,
        }
    }

    pub(crate) fn with_span(mut self, span: impl Into<String>) -> Self {
        self.span = Some(span.into());
        self
    }
}

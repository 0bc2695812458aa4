//! The scoring validators' sections of the validation config, one struct per TOML table.

use serde::{Deserialize, Serialize};

use crate::request::Environment;
use crate::validation::report::Severity;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeScannerConfig {
    pub penalties: SeverityPoints,
    pub mass_target_count: i64,
    pub max_findings_per_pattern: i64,
    pub command_severity: CommandSeverity,
    pub dangerous: Vec<DangerousPattern>,
    pub secrets: Vec<SecretPattern>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityPoints {
    pub info: i64,
    pub low: i64,
    pub medium: i64,
    pub high: i64,
    pub critical: i64,
}

/// The severity of each finding about the command, by environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSeverity {
    pub volume_deletion: EnvSeverity,
    pub mass_removal: EnvSeverity,
    pub container_removal: EnvSeverity,
    pub force_removal: EnvSeverity,
    pub kill: EnvSeverity,
    pub kill_signal: EnvSeverity,
    pub remove_orphans: EnvSeverity,
    pub project_wide: EnvSeverity,
    pub many_targets: EnvSeverity,
    pub state_change: EnvSeverity,
    pub deploy: EnvSeverity,
    pub build: EnvSeverity,
    pub pull: EnvSeverity,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSeverity {
    pub dev: Severity,
    pub test: Severity,
    pub prd: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DangerousPattern {
    pub code: String,
    pub severity: Severity,
    pub reason: String,
    pub pattern: String,
}

/// A secret pattern; every match is a critical finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretPattern {
    pub code: String,
    pub reason: String,
    pub pattern: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentQualityConfig {
    pub points: QualityPoints,
    pub good_length_words: i64,
    pub min_length_words: i64,
    pub vague_word_penalty: i64,
    pub max_vague_penalty: i64,
    pub framework_min_sections: i64,
    pub section_points: i64,
    pub vague_section_points: i64,
    /// A section that says something generic ("Tests pass", "Fix bugs if found"): more than
    /// a non-answer, far less than a substantive section.
    pub boilerplate_section_points: i64,
    pub section_min_words: i64,
    pub vague_answers: Vec<String>,
    /// Generic lines that fit any request (compared whole, case-insensitive).
    pub boilerplate_answers: Vec<String>,
    pub reason_keywords: Vec<String>,
    pub rollback_keywords: Vec<String>,
    pub verification_keywords: Vec<String>,
    pub vague_keywords: Vec<String>,
}

/// Free-text points per quality; they sum to 100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityPoints {
    pub length: i64,
    pub reason: i64,
    pub targets: i64,
    pub rollback: i64,
    pub verification: i64,
    pub title: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyConfig {
    pub environment_penalty: EnvPoints,
    pub read_only_environment_penalty: EnvPoints,
    pub operation_penalty: OperationPoints,
    pub extra_target_penalty: i64,
    pub max_extra_target_penalty: i64,
    pub whole_project_penalty: i64,
    pub stateful_target_penalty: i64,
    pub volumes_penalty: i64,
    pub remove_orphans_penalty: i64,
    pub force_penalty: i64,
    pub stateful_target_pattern: String,
    pub stateful_keywords: Vec<String>,
    pub wide_scope_keywords: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvPoints {
    pub dev: i64,
    pub test: i64,
    pub prd: i64,
}

/// Points per operation name; the field names are the operation names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationPoints {
    pub container_stop: i64,
    pub container_start: i64,
    pub container_restart: i64,
    pub container_kill: i64,
    pub container_rm: i64,
    pub container_inspect: i64,
    pub container_logs: i64,
    pub container_exec: i64,
    pub compose_down: i64,
    pub compose_stop: i64,
    pub compose_start: i64,
    pub compose_restart: i64,
    pub compose_ps: i64,
    pub compose_up: i64,
    pub compose_pull: i64,
    pub instruction: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticConfig {
    pub base_points: i64,
    pub target_points: i64,
    pub action_points: i64,
    pub action_mismatch_penalty: i64,
    pub scope_not_acknowledged_penalty: i64,
    pub contradiction_penalty: i64,
    pub environment_mismatch_penalty: i64,
    pub title_overlap_for_full_credit: f64,
    pub wide_scope_keywords: Vec<String>,
    pub data_safe_keywords: Vec<String>,
    pub action_keywords: ActionKeywords,
    pub environment_keywords: EnvironmentKeywords,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionKeywords {
    pub restart: Vec<String>,
    pub stop: Vec<String>,
    pub start: Vec<String>,
    pub kill: Vec<String>,
    pub remove: Vec<String>,
    pub down: Vec<String>,
    pub inspect: Vec<String>,
    pub logs: Vec<String>,
    pub status: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentKeywords {
    pub dev: Vec<String>,
    pub test: Vec<String>,
    pub prd: Vec<String>,
}

impl EnvSeverity {
    pub fn get(&self, environment: Environment) -> Severity {
        match environment {
            Environment::Dev => self.dev,
            Environment::Test => self.test,
            Environment::Prd => self.prd,
        }
    }
}

impl EnvPoints {
    pub fn get(&self, environment: Environment) -> i64 {
        match environment {
            Environment::Dev => self.dev,
            Environment::Test => self.test,
            Environment::Prd => self.prd,
        }
    }
}

impl SeverityPoints {
    pub fn get(&self, severity: Severity) -> i64 {
        match severity {
            Severity::Info => self.info,
            Severity::Low => self.low,
            Severity::Medium => self.medium,
            Severity::High => self.high,
            Severity::Critical => self.critical,
        }
    }
}

impl OperationPoints {
    /// The points of an operation name; `None` for a name that is not one.
    pub fn get(&self, operation: &str) -> Option<i64> {
        Some(match operation {
            "container_stop" => self.container_stop,
            "container_start" => self.container_start,
            "container_restart" => self.container_restart,
            "container_kill" => self.container_kill,
            "container_rm" => self.container_rm,
            "container_inspect" => self.container_inspect,
            "container_logs" => self.container_logs,
            "container_exec" => self.container_exec,
            "compose_down" => self.compose_down,
            "compose_stop" => self.compose_stop,
            "compose_start" => self.compose_start,
            "compose_restart" => self.compose_restart,
            "compose_ps" => self.compose_ps,
            "compose_up" => self.compose_up,
            "compose_pull" => self.compose_pull,
            "instruction" => self.instruction,
            _ => return None,
        })
    }
}

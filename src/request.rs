//! The public request contract: the JSON a publisher sends to `wingman.requests.submitted`,
//! `POST /requests` or `wingman request`, and its validation.
//!
//! Parsing is strict and explains itself: every error names the field and the problem, so a
//! publisher (often an AI agent) can fix its request without reading our code. The intake
//! stage, the API and the CLI all call [`parse_request`], so they agree on what is valid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::docker::{self, DockerOperation};
use crate::envelope::RequestId;
use crate::principal::Principal;

/// Limits on field sizes, in characters (the description in bytes).
pub const MAX_REQUESTER: usize = 200;
pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;
pub const MAX_COMMAND_BYTES: usize = 4 * 1024;
/// A whole submitted message larger than this is refused before it is parsed.
pub const MAX_MESSAGE_BYTES: usize = 96 * 1024;

pub const FIELDS: &[&str] = &[
    "request_id",
    "requester",
    "environment",
    "command",
    "title",
    "description",
    "risk_level",
    "execution",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Dev,
    Test,
    Prd,
}

impl Environment {
    pub const ALL: [Environment; 3] = [Environment::Dev, Environment::Test, Environment::Prd];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Dev => "dev",
            Environment::Test => "test",
            Environment::Prd => "prd",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Environment::ALL
            .into_iter()
            .find(|environment| environment.as_str() == text)
            .ok_or_else(|| format!("unknown environment `{text}` (expected dev, test or prd)"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
}

/// Who runs an approved command: the pipeline, at once (`automatic`, the default), or the
/// client that submitted it, with `POST /gateway/token` then `POST /gateway/execute`
/// (`manual`: the authority mints and keeps the token but never enqueues a job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Execution {
    #[default]
    Automatic,
    Manual,
}

impl Execution {
    pub const ALL: [Execution; 2] = [Execution::Automatic, Execution::Manual];

    pub fn as_str(self) -> &'static str {
        match self {
            Execution::Automatic => "automatic",
            Execution::Manual => "manual",
        }
    }
}

impl FromStr for Execution {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Execution::ALL
            .into_iter()
            .find(|execution| execution.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown execution `{}` (expected automatic or manual)",
                    truncate_for_message(text)
                )
            })
    }
}

/// A command the gateway can perform: the line as sent and its typed operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub line: String,
    pub operation: DockerOperation,
}

/// A valid request, as it travels through the pipeline after intake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub request_id: RequestId,
    /// A display label chosen by the publisher; never an identity (see `submitted_by`).
    pub requester: String,
    /// Who submitted, as authenticated: read by intake from the submit subject, never from
    /// the body (not a field of the public JSON). The self-approval rule uses it.
    #[serde(default)]
    pub submitted_by: Principal,
    pub environment: Environment,
    pub command: Option<Command>,
    pub title: String,
    pub description: String,
    pub risk_level: Option<RiskLevel>,
    /// Who runs the command once approved (absent in events from before the field: automatic).
    #[serde(default)]
    pub execution: Execution,
}

impl Request {
    /// The public JSON form of this request (what a publisher would send to submit it).
    pub fn to_public_json(&self) -> Value {
        let mut object = Map::new();
        object.insert(
            "request_id".into(),
            Value::String(self.request_id.to_string()),
        );
        object.insert("requester".into(), Value::String(self.requester.clone()));
        object.insert(
            "environment".into(),
            Value::String(self.environment.to_string()),
        );
        if let Some(command) = &self.command {
            object.insert("command".into(), Value::String(command.line.clone()));
        }
        object.insert("title".into(), Value::String(self.title.clone()));
        object.insert(
            "description".into(),
            Value::String(self.description.clone()),
        );
        if let Some(risk) = self.risk_level {
            object.insert("risk_level".into(), Value::String(risk.as_str().into()));
        }
        // Only when not the default, so an automatic request's public form is what it was
        // before the field existed (intake compares it on a resubmission).
        if self.execution != Execution::Automatic {
            object.insert(
                "execution".into(),
                Value::String(self.execution.as_str().into()),
            );
        }
        Value::Object(object)
    }
}

/// Why a submitted request is invalid: the field (when one is at fault) and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct InvalidRequest {
    pub field: Option<String>,
    pub code: &'static str,
    pub problem: String,
    /// The request id, when the message carried a valid one, so the rejection can be
    /// published on that request's status subject.
    pub request_id: Option<RequestId>,
}

impl InvalidRequest {
    fn new(field: Option<&str>, code: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field: field.map(str::to_string),
            code,
            problem: problem.into(),
            request_id: None,
        }
    }

    fn describe(&self) -> String {
        match &self.field {
            Some(field) => format!("field `{field}`: {}", self.problem),
            None => self.problem.clone(),
        }
    }
}

/// Parses and validates a submitted request. `fallback_id` provides the id when the
/// publisher sent none; it must be deterministic for the message (see [`RequestId::derive`]).
pub fn parse_request(
    payload: &[u8],
    fallback_id: impl FnOnce() -> RequestId,
) -> Result<Request, InvalidRequest> {
    if payload.len() > MAX_MESSAGE_BYTES {
        return Err(InvalidRequest::new(
            None,
            "too_large",
            format!(
                "message is {} bytes, at most {MAX_MESSAGE_BYTES}",
                payload.len()
            ),
        ));
    }
    let value: Value = serde_json::from_slice(payload).map_err(|error| {
        InvalidRequest::new(None, "invalid_json", format!("invalid JSON: {error}"))
    })?;
    let Value::Object(object) = value else {
        return Err(InvalidRequest::new(
            None,
            "not_an_object",
            "the request must be a JSON object",
        ));
    };
    let request_id = match object.get("request_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.parse::<RequestId>().map_err(|_| {
            InvalidRequest::new(
                Some("request_id"),
                "invalid_value",
                format!("`{}` is not a UUID", truncate_for_message(text)),
            )
        })?),
        Some(other) => {
            return Err(wrong_type("request_id", "a UUID string", other));
        }
    };
    validate_fields(&object, request_id.unwrap_or_else(fallback_id)).map_err(|mut error| {
        error.request_id = request_id;
        error
    })
}

fn validate_fields(
    object: &Map<String, Value>,
    request_id: RequestId,
) -> Result<Request, InvalidRequest> {
    if let Some(unknown) = object.keys().find(|key| !FIELDS.contains(&key.as_str())) {
        return Err(InvalidRequest::new(
            Some(truncate_for_message(unknown).as_str()),
            "unknown_field",
            format!("unknown field (expected one of {})", FIELDS.join(", ")),
        ));
    }
    let requester = required_text(object, "requester", MAX_REQUESTER, Size::Chars)?;
    let environment_text = required_text(object, "environment", 16, Size::Chars)?;
    let environment = environment_text
        .parse::<Environment>()
        .map_err(|problem| InvalidRequest::new(Some("environment"), "invalid_value", problem))?;
    let title = required_text(object, "title", MAX_TITLE, Size::Chars)?;
    let description = required_text(object, "description", MAX_DESCRIPTION_BYTES, Size::Bytes)?;
    let command = match optional_text(object, "command", MAX_COMMAND_BYTES, Size::Bytes)? {
        None => None,
        Some(line) => {
            let operation = docker::parse_command_line(&line).map_err(|error| {
                InvalidRequest::new(Some("command"), "invalid_command", error.to_string())
            })?;
            Some(Command { line, operation })
        }
    };
    let risk_level = match optional_text(object, "risk_level", 16, Size::Chars)? {
        None => None,
        Some(text) => Some(match text.as_str() {
            "low" => RiskLevel::Low,
            "medium" => RiskLevel::Medium,
            "high" => RiskLevel::High,
            other => {
                return Err(InvalidRequest::new(
                    Some("risk_level"),
                    "invalid_value",
                    format!(
                        "unknown risk level `{}` (expected low, medium or high)",
                        truncate_for_message(other)
                    ),
                ));
            }
        }),
    };
    let execution = match optional_text(object, "execution", 16, Size::Chars)? {
        None => Execution::Automatic,
        Some(text) => text
            .parse::<Execution>()
            .map_err(|problem| InvalidRequest::new(Some("execution"), "invalid_value", problem))?,
    };
    if execution == Execution::Manual && command.is_none() {
        return Err(InvalidRequest::new(
            Some("execution"),
            "invalid_value",
            "`manual` needs a `command` to run (an instruction approval has nothing to execute)",
        ));
    }
    Ok(Request {
        request_id,
        requester,
        submitted_by: Principal::Anonymous,
        environment,
        command,
        title,
        description,
        risk_level,
        execution,
    })
}

#[derive(Clone, Copy)]
enum Size {
    Chars,
    Bytes,
}

fn required_text(
    object: &Map<String, Value>,
    field: &str,
    limit: usize,
    size: Size,
) -> Result<String, InvalidRequest> {
    optional_text(object, field, limit, size)?
        .ok_or_else(|| InvalidRequest::new(Some(field), "missing_field", "is required"))
}

fn optional_text(
    object: &Map<String, Value>,
    field: &str,
    limit: usize,
    size: Size,
) -> Result<Option<String>, InvalidRequest> {
    let text = match object.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text.trim(),
        Some(other) => return Err(wrong_type(field, "a string", other)),
    };
    if text.is_empty() {
        return Err(InvalidRequest::new(
            Some(field),
            "empty",
            "must not be empty",
        ));
    }
    let (length, unit) = match size {
        Size::Chars => (text.chars().count(), "characters"),
        Size::Bytes => (text.len(), "bytes"),
    };
    if length > limit {
        return Err(InvalidRequest::new(
            Some(field),
            "too_long",
            format!("too long ({length} {unit}, at most {limit})"),
        ));
    }
    if text.chars().any(|character| character == '\0') {
        return Err(InvalidRequest::new(
            Some(field),
            "invalid_value",
            "contains a NUL character",
        ));
    }
    Ok(Some(text.to_string()))
}

fn wrong_type(field: &str, expected: &str, found: &Value) -> InvalidRequest {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    InvalidRequest::new(
        Some(field),
        "wrong_type",
        format!("expected {expected}, found {found}"),
    )
}

fn truncate_for_message(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests;

//! The bodies the API's routes take and give, as its OpenAPI description shows them
//! ([`crate::api::openapi`]); the handlers use them in their `#[utoipa::path]` annotations.

use serde::Serialize;
use utoipa::ToSchema;

/// `POST /requests`' body: the public request contract.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SubmitBody {
    /// The idempotency key: the same id submitted again is the same request. Generated when
    /// absent.
    #[schema(format = Uuid)]
    pub request_id: Option<String>,
    /// Who asks (a display label; who submitted is the API key).
    #[schema(min_length = 1, max_length = 200)]
    pub requester: String,
    pub environment: EnvironmentName,
    /// A docker command the gateway can perform; absent for an instruction approval.
    #[schema(max_length = 4096)]
    pub command: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// Why, what it touches, how to roll back, how to verify.
    #[schema(min_length = 1, max_length = 65536)]
    pub description: String,
    pub risk_level: Option<RiskName>,
    pub execution: Option<ExecutionName>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentName {
    Dev,
    Test,
    Prd,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RiskName {
    Low,
    Medium,
    High,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionName {
    Automatic,
    Manual,
}

/// The body of `POST /requests/{id}/approve|reject`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct DecideBody {
    /// Why: shown to the requester and in the audit trail.
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// `202` to `POST /requests`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    #[schema(format = Uuid)]
    pub request_id: String,
    /// Always `SUBMITTED`: the pipeline decides next.
    pub status: String,
    /// The NATS subject of its status events.
    pub status_subject: String,
    /// Where to read it: `/requests/{id}` (and `/requests/{id}/events`, live).
    pub status_url: String,
}

/// Every 4xx/5xx answer: what is wrong, the field when one is, a stable code.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub field: Option<String>,
    pub code: String,
}

/// `GET /requests`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    /// The stored requests, newest first (see `GET /requests/{id}` for a row's fields).
    pub requests: Vec<serde_json::Value>,
    pub count: usize,
}

/// `GET /requests/{id}/output`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Output {
    #[schema(format = Uuid)]
    pub request_id: String,
    /// What the operation printed (redacted by the gateway).
    pub output: serde_json::Value,
}

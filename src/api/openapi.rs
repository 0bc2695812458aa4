//! The API's machine-readable description (OpenAPI 3.1), generated from the handlers'
//! `#[utoipa::path]` annotations and the schema types below, served at `GET /openapi.json`
//! (no key: it describes, it reveals nothing). `scripts/test` fuzzes the API against it with
//! schemathesis (`tests/it/api_fuzz.rs`).
//!
//! The request body's schema mirrors the public contract that `crate::request::parse_request`
//! enforces (a test holds the two to the same field list); the handlers still parse the body
//! themselves, so an error names the field in the API's own words.

use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

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

struct KeyHeader;

impl Modify for KeyHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key of the route's role (submit, read, decide); `wingman apikey` makes one",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Wingman API",
        description = "Submit destructive infrastructure commands for approval, and follow them. \
                       Every route but /health and /openapi.json needs an X-API-Key of its role."
    ),
    paths(
        crate::api::requests::submit,
        crate::api::requests::list,
        crate::api::requests::get,
        crate::api::events::events,
        crate::api::requests::output,
        crate::api::decide::approve,
        crate::api::decide::reject,
        crate::api::health::health,
    ),
    components(schemas(SubmitBody, Submitted, ErrorBody, RequestList, Output, DecideBody)),
    modifiers(&KeyHeader)
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_described_body_has_exactly_the_contracts_fields() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let properties = doc["components"]["schemas"]["SubmitBody"]["properties"]
            .as_object()
            .unwrap();
        let mut described: Vec<&str> = properties.keys().map(String::as_str).collect();
        described.sort_unstable();
        let mut contract: Vec<&str> = crate::request::FIELDS.to_vec();
        contract.sort_unstable();
        assert_eq!(described, contract);
    }

    #[test]
    fn every_route_of_the_router_is_described() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for path in [
            "/requests",
            "/requests/{request_id}",
            "/requests/{request_id}/events",
            "/requests/{request_id}/output",
            "/requests/{request_id}/approve",
            "/requests/{request_id}/reject",
            "/health",
        ] {
            assert!(paths.contains(&path), "{path} missing from {paths:?}");
        }
    }
}

//! The API's machine-readable description (OpenAPI 3.1), generated from the handlers'
//! `#[utoipa::path]` annotations and the schema types of [`crate::api::schema`], served at `GET /openapi.json`
//! (no key: it describes, it reveals nothing). `scripts/test` fuzzes the API against it with
//! schemathesis (`tests/it/api_fuzz.rs`).
//!
//! The request body's schema mirrors the public contract that `crate::request::parse_request`
//! enforces (a test holds the two to the same field list); the handlers still parse the body
//! themselves, so an error names the field in the API's own words.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::schema::{DecideBody, ErrorBody, Output, RequestList, SubmitBody, Submitted};

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
        crate::api::cancel::cancel,
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
            "/requests/{request_id}/cancel",
            "/requests/{request_id}/approve",
            "/requests/{request_id}/reject",
            "/health",
        ] {
            assert!(paths.contains(&path), "{path} missing from {paths:?}");
        }
    }
}

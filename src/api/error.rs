//! `ApiError`: client errors become 4xx with a JSON body naming the problem; everything else
//! is an opaque 500 whose cause chain is logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        code: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Internal(error.into())
    }
}

/// A request id from a path: a UUID, or a 400 naming `request_id`.
pub fn request_id(text: &str) -> Result<crate::envelope::RequestId, ApiError> {
    text.parse().map_err(|_| ApiError::Invalid {
        field: Some("request_id".into()),
        code: "invalid_value",
        message: format!("request_id: `{text}` is not a UUID"),
    })
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Invalid {
                field,
                code,
                message,
            } => json!({ "error": message, "field": field, "code": code }),
            ApiError::NotFound(message) => json!({ "error": message, "code": "not_found" }),
            ApiError::Unavailable(message) => json!({ "error": message, "code": "unavailable" }),
            ApiError::Internal(error) => {
                tracing::error!(error = %format!("{error:#}"), "internal error");
                json!({ "error": "internal error", "code": "internal" })
            }
        };
        (status, Json(body)).into_response()
    }
}

//! The one error type of the request handlers, answered over HTTP ([`IntoResponse`])
//! and gRPC ([`tonic::Status`]).
//!
//! Client errors name the field that was wrong; internal errors are logged with their
//! cause chain and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tonic::Code;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

/// A problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field, as a path (`candidates[3]`, `context.country`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Fields of the request broke the rules.
    #[error("invalid request: {}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// The body is not the JSON this endpoint takes.
    #[error("malformed body: {0}")]
    Malformed(String),
    /// The database failed.
    #[error("the billboard database failed")]
    Database(#[source] sqlx::Error),
}

impl ApiError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(field, reason)])
    }

    /// Label value for the rejected-requests metric.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid",
            ApiError::Malformed(_) => "malformed",
            ApiError::Database(_) => "error",
        }
    }

    fn log_if_internal(&self) {
        match self {
            ApiError::Database(_) => {
                tracing::error!(error = %nearline_runtime::errors::chain(self), "request failed")
            }
            ApiError::Invalid(_) | ApiError::Malformed(_) => {}
        }
    }
}

fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; ")
}

const INTERNAL_MESSAGE: &str = "internal error; the server log has the details";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log_if_internal();
        crate::metrics::rejected(self.reason());
        let message = self.to_string();
        let (status, body) = match &self {
            ApiError::Invalid(invalid) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "message": message, "invalid": invalid}),
            ),
            ApiError::Malformed(_) => {
                (StatusCode::BAD_REQUEST, json!({"error": "malformed_body", "message": message}))
            }
            ApiError::Database(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "internal", "message": INTERNAL_MESSAGE}))
            }
        };
        (status, Json(body)).into_response()
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        error.log_if_internal();
        crate::metrics::rejected(error.reason());
        let message = error.to_string();
        match error {
            ApiError::Invalid(invalid) => tonic::Status::with_error_details(
                Code::InvalidArgument,
                &message,
                ErrorDetails::with_bad_request(
                    invalid.into_iter().map(|v| FieldViolation::new(v.field, v.reason)).collect::<Vec<_>>(),
                ),
            ),
            ApiError::Malformed(_) => tonic::Status::invalid_argument(message),
            ApiError::Database(_) => tonic::Status::internal(INTERNAL_MESSAGE),
        }
    }
}

//! The one error type of the query handlers, and how it is answered over HTTP
//! ([`IntoResponse`]) and gRPC ([`tonic::Status`]).
//!
//! Client errors say exactly which parameter was wrong; database errors are logged
//! with their cause chain and answered with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use crate::query::Invalid;

/// Why a query was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing, malformed or out of bounds.
    #[error("{0}")]
    InvalidArgument(Invalid),
    /// No such title in the catalog.
    #[error("video {0} is not in the catalog")]
    NotFound(i64),
    /// The title has no launch time, so it has no early read.
    #[error("video {0} has no launch time in the catalog")]
    NotLaunched(i64),
    /// The database failed.
    #[error("the counts database failed")]
    Database(#[from] sqlx::Error),
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::InvalidArgument(invalid)
    }
}

impl ApiError {
    /// Logs internal errors with their cause chain; client errors are not logged.
    fn log_if_internal(&self) {
        match self {
            ApiError::Database(_) => {
                tracing::error!(error = %nearline_runtime::errors::chain(self), "insights query failed");
            }
            ApiError::InvalidArgument(_) | ApiError::NotFound(_) | ApiError::NotLaunched(_) => {}
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log_if_internal();
        let (status, code) = match &self {
            ApiError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "invalid_argument"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::NotLaunched(_) => (StatusCode::CONFLICT, "not_launched"),
            ApiError::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let mut body = serde_json::json!({ "error": code, "message": self.to_string() });
        if let ApiError::InvalidArgument(invalid) = &self {
            // The parameter at fault, for clients that highlight the field.
            body["parameter"] = invalid.param.clone().into();
        }
        (status, axum::Json(body)).into_response()
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        error.log_if_internal();
        let message = error.to_string();
        match error {
            // As rich as ingest's: a BadRequest detail naming the parameter at fault.
            ApiError::InvalidArgument(invalid) => tonic::Status::with_error_details(
                tonic::Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request(vec![FieldViolation::new(invalid.param, invalid.reason)]),
            ),
            ApiError::NotFound(video_id) => tonic::Status::with_error_details(
                tonic::Code::NotFound,
                message,
                ErrorDetails::with_resource_info("video", video_id.to_string(), "", "not in the catalog"),
            ),
            ApiError::NotLaunched(video_id) => tonic::Status::with_error_details(
                tonic::Code::FailedPrecondition,
                message,
                ErrorDetails::with_precondition_failure_violation(
                    "launch_at",
                    format!("video {video_id}"),
                    "the title needs a launch time in the catalog for an early read",
                ),
            ),
            ApiError::Database(_) => tonic::Status::internal("internal error; see the insights log"),
        }
    }
}

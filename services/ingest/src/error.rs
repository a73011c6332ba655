//! The one error type of the service's request handlers, and how it is answered over
//! HTTP ([`IntoResponse`]) and gRPC ([`tonic::Status`]).
//!
//! Client errors say exactly what was wrong; internal errors are logged with their
//! cause chain and answered with a generic message, so no internals leak to clients.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tonic::Code;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use crate::validate::Violation;

/// How long a client should wait before retrying after 429 or 503.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A problem with one field of a non-event request (the catalog).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// How many distinct events the violations are about.
fn invalid_events(violations: &[Violation]) -> usize {
    violations.iter().map(|v| v.index).collect::<std::collections::BTreeSet<_>>().len()
}

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Events of the batch broke the rules; nothing was published.
    #[error("{} invalid event(s) in the batch, {} problem(s) in all", invalid_events(.0), .0.len())]
    InvalidEvents(Vec<Violation>),
    /// The body is not well-formed.
    #[error("malformed body at {position}: {reason}")]
    Malformed {
        /// Where.
        position: String,
        /// What the parser found.
        reason: String,
    },
    /// More events than one batch may hold.
    #[error("the batch holds {count} events; at most {max} are accepted in one request")]
    TooManyEvents {
        /// Events counted.
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The body (after decompression) is larger than the limit.
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A content type or encoding this endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The catalog entry broke the rules.
    #[error("{} invalid field(s)", .0.len())]
    InvalidVideo(Vec<FieldError>),
    /// No such video in the catalog.
    #[error("video {0} is not in the catalog")]
    VideoNotFound(i64),
    /// The in-flight budget is spent: the log is slower than the load.
    #[error("too many events are waiting for the event log; retry after {}s", RETRY_AFTER.as_secs())]
    Overloaded,
    /// The event log cannot be reached or did not acknowledge in time.
    #[error("the event log is unavailable; retry after {}s", RETRY_AFTER.as_secs())]
    Unavailable(#[source] nearline_eventlog::Error),
    /// The event log refused the records for another reason.
    #[error("publishing to the event log failed")]
    Log(#[source] nearline_eventlog::Error),
    /// The database failed.
    #[error("the catalog database failed")]
    Database(#[source] sqlx::Error),
    /// The request body could not be read (the client went away or sent a broken stream).
    #[error("the request body could not be read: {0}")]
    Body(String),
}

impl ApiError {
    /// Label value for the rejected-requests metric.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ApiError::InvalidEvents(_) | ApiError::InvalidVideo(_) => "invalid",
            ApiError::Malformed { .. } | ApiError::Body(_) => "malformed",
            ApiError::TooManyEvents { .. } | ApiError::BodyTooLarge { .. } => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::VideoNotFound(_) => "not_found",
            ApiError::Overloaded => "overloaded",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Log(_) | ApiError::Database(_) => "error",
        }
    }

    /// Logs an internal error with its whole cause chain; client errors are not logged.
    fn log_if_internal(&self) {
        match self {
            ApiError::Log(_) | ApiError::Database(_) => {
                tracing::error!(error = %nearline_runtime::errors::chain(self), "request failed");
            }
            ApiError::Unavailable(_) => {
                tracing::warn!(error = %nearline_runtime::errors::chain(self), "event log unavailable")
            }
            ApiError::InvalidEvents(_)
            | ApiError::Malformed { .. }
            | ApiError::TooManyEvents { .. }
            | ApiError::BodyTooLarge { .. }
            | ApiError::UnsupportedMediaType(_)
            | ApiError::InvalidVideo(_)
            | ApiError::VideoNotFound(_)
            | ApiError::Overloaded
            | ApiError::Body(_) => {}
        }
    }
}

const INTERNAL_MESSAGE: &str = "internal error; the server log has the details";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log_if_internal();
        let message = self.to_string();
        let (status, body) = match &self {
            ApiError::InvalidEvents(invalid) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_events", "message": message, "invalid": invalid}),
            ),
            ApiError::Malformed { position, reason } => (
                StatusCode::BAD_REQUEST,
                json!({"error": "malformed_body", "message": message, "position": position, "reason": reason}),
            ),
            ApiError::TooManyEvents { count, max } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "too_many_events", "message": message, "count": count, "max": max}),
            ),
            ApiError::BodyTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "body_too_large", "message": message, "limit_bytes": limit}),
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"error": "unsupported_media_type", "message": message}),
            ),
            ApiError::InvalidVideo(invalid) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_video", "message": message, "invalid": invalid}),
            ),
            ApiError::VideoNotFound(_) => {
                (StatusCode::NOT_FOUND, json!({"error": "not_found", "message": message}))
            }
            ApiError::Overloaded => {
                (StatusCode::TOO_MANY_REQUESTS, json!({"error": "overloaded", "message": message}))
            }
            ApiError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, json!({"error": "unavailable", "message": message}))
            }
            ApiError::Log(_) | ApiError::Database(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "internal", "message": INTERNAL_MESSAGE}))
            }
            ApiError::Body(_) => {
                (StatusCode::BAD_REQUEST, json!({"error": "unreadable_body", "message": message}))
            }
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER.as_secs()));
        }
        // Answered before the body was read (or while reading it): the server closes
        // the connection, so say so; a client that reuses it would see it drop.
        if matches!(self, ApiError::Overloaded | ApiError::BodyTooLarge { .. }) {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        error.log_if_internal();
        let message = error.to_string();
        let bad_request = |violations: Vec<FieldViolation>| {
            tonic::Status::with_error_details(
                Code::InvalidArgument,
                &message,
                ErrorDetails::with_bad_request(violations),
            )
        };
        let retry = |code| {
            let mut status = tonic::Status::with_error_details(
                code,
                &message,
                ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
            );
            status.metadata_mut().insert("retry-after", RETRY_AFTER.as_secs().into());
            status
        };
        match error {
            ApiError::InvalidEvents(invalid) => bad_request(
                invalid
                    .into_iter()
                    .map(|v| FieldViolation::new(format!("events[{}].{}", v.index, v.field), v.reason))
                    .collect(),
            ),
            ApiError::Malformed { position, reason } => {
                bad_request(vec![FieldViolation::new(position, reason)])
            }
            ApiError::TooManyEvents { .. } => bad_request(vec![FieldViolation::new("events", &message)]),
            ApiError::InvalidVideo(invalid) => {
                bad_request(invalid.into_iter().map(|v| FieldViolation::new(v.field, v.reason)).collect())
            }
            ApiError::BodyTooLarge { .. } => tonic::Status::out_of_range(message),
            ApiError::UnsupportedMediaType(_) | ApiError::Body(_) => tonic::Status::invalid_argument(message),
            ApiError::VideoNotFound(_) => tonic::Status::not_found(message),
            ApiError::Overloaded => retry(Code::ResourceExhausted),
            ApiError::Unavailable(_) => retry(Code::Unavailable),
            ApiError::Log(_) | ApiError::Database(_) => tonic::Status::internal(INTERNAL_MESSAGE),
        }
    }
}

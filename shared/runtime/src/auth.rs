//! Bearer-token authentication for the `/v1/*` HTTP routes and the gRPC APIs.
//!
//! When `auth.tokens` is empty everything is open. Otherwise a request must carry
//! `Authorization: Bearer <token>` with one of the tokens. Tokens are compared in
//! constant time, and every configured token is checked, so response timing says
//! nothing about how much of a guess was right or which token it resembled. Health,
//! liveness and metrics stay open (they are added outside these layers).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, Secret};
use crate::server::AppError;

/// The accepted tokens, cheap to clone into layers and interceptors.
#[derive(Debug, Clone)]
pub struct Authenticator {
    tokens: Arc<[Secret]>,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that is not one of the configured ones.
    Wrong,
}

impl Denied {
    fn message(self) -> &'static str {
        match self {
            Denied::Missing => "missing Authorization: Bearer <token> header",
            Denied::Wrong => "the bearer token is not valid",
        }
    }
}

impl Authenticator {
    /// Accepts the tokens of `config`; open when there are none.
    pub fn new(config: &AuthConfig) -> Self {
        Self { tokens: config.tokens.clone().into() }
    }

    /// Whether any token is required.
    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Checks a presented `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Denied> {
        if !self.is_enabled() {
            return Ok(());
        }
        let presented = authorization
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(Denied::Missing)?;
        let mut matched = subtle::Choice::from(0);
        for token in self.tokens.iter() {
            matched |= token.expose().as_bytes().ct_eq(presented.as_bytes());
        }
        if bool::from(matched) { Ok(()) } else { Err(Denied::Wrong) }
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<(), Denied> {
        self.check(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
    }

    /// An axum middleware function enforcing the tokens; use with
    /// `axum::middleware::from_fn_with_state(authenticator, Authenticator::layer)`.
    pub async fn layer(
        axum::extract::State(auth): axum::extract::State<Authenticator>,
        request: Request,
        next: Next,
    ) -> Response {
        match auth.check_headers(request.headers()) {
            Ok(()) => next.run(request).await,
            Err(denied) => {
                let mut response = AppError {
                    status: StatusCode::UNAUTHORIZED,
                    code: "unauthorized",
                    message: denied.message().into(),
                }
                .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
                response
            }
        }
    }

    /// A tonic interceptor enforcing the tokens (`UNAUTHENTICATED` otherwise).
    pub fn interceptor(
        &self,
    ) -> impl Fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone + use<> {
        let auth = self.clone();
        move |request: tonic::Request<()>| {
            let header = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
            match auth.check(header) {
                Ok(()) => Ok(request),
                Err(denied) => Err(tonic::Status::unauthenticated(denied.message())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(tokens: &[&str]) -> Authenticator {
        Authenticator::new(&AuthConfig { tokens: tokens.iter().map(|t| Secret::new(*t)).collect() })
    }

    #[test]
    fn open_without_tokens() {
        assert_eq!(auth(&[]).check(None), Ok(()));
    }

    #[test]
    fn accepts_any_configured_token_and_rejects_others() {
        let auth = auth(&["first-token-0123456789", "second-token-0123456789"]);
        assert_eq!(auth.check(Some("Bearer second-token-0123456789")), Ok(()));
        assert_eq!(auth.check(Some("Bearer first-token-0123456789")), Ok(()));
        assert_eq!(auth.check(Some("Bearer first-token-012345678")), Err(Denied::Wrong));
        assert_eq!(auth.check(Some("Basic Zm9vOmJhcg==")), Err(Denied::Missing));
        assert_eq!(auth.check(Some("Bearer ")), Err(Denied::Missing));
        assert_eq!(auth.check(None), Err(Denied::Missing));
    }
}

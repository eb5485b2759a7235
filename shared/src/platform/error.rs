//! The one API error type, mapped to a status code and a JSON body in exactly one place
//! ([`ApiError::into_response`]). Internal errors are logged with their whole chain and answered
//! with a generic body; nothing about the server's internals reaches the client.

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: unparseable JSON, a path or query value of the wrong shape.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No valid credentials. Answered with `WWW-Authenticate: Bearer`.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Missing, deleted, or someone else's: the three are indistinguishable on purpose.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request does not fit in the caller's monthly allowance (nothing was created).
    #[error("usage limit exceeded: {requested} requested, {remaining} remaining")]
    UsageLimitExceeded {
        monthly_limit: i64,
        images_used: i64,
        remaining: i64,
        requested: i64,
    },
    #[error("request body too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// Well-formed input with values the API does not accept.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// The caller holds as many of something as one user may at once (open event streams):
    /// 429 with `Retry-After`, when a slot is expected to be free again.
    #[error("too many requests: {message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// A dependency (database, identity provider) is down; retrying later may work.
    #[error("service unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<anyhow::Error>,
    },
    /// A third party we called (Stripe) answered with a server error or something unreadable.
    #[error("bad gateway: {message}")]
    BadGateway {
        message: String,
        #[source]
        source: Option<anyhow::Error>,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The JSON error envelope: `{"error": code, "message": text}` (+ `validation_errors` on 422).
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_errors: Option<&'a [FieldError]>,
    /// Extra machine-readable fields of some errors (e.g. `remaining` on 402).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::Unauthorized(message.into())
    }
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }
    pub fn unavailable(message: impl Into<String>, source: impl Into<anyhow::Error>) -> Self {
        ApiError::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::UsageLimitExceeded { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::UsageLimitExceeded { .. } => "usage_limit_exceeded",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Validation(_) => "validation_failed",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Unavailable { .. } => "service_unavailable",
            ApiError::BadGateway { .. } => "bad_gateway",
            ApiError::Internal(_) => "internal_server_error",
        }
    }

    /// Logs what the operator needs and builds what the client may see.
    pub fn into_response(self) -> Response<Body> {
        let not_found_message;
        let message: &str = match &self {
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::Conflict(m)
            | ApiError::UnsupportedMediaType(m) => m,
            ApiError::TooManyRequests { message, .. } => message,
            ApiError::NotFound(what) => {
                not_found_message = format!("{} not found", capitalize(what));
                &not_found_message
            }
            ApiError::PayloadTooLarge { .. } => "The request body is too large",
            ApiError::UsageLimitExceeded { .. } => {
                "This request needs more images than remain in your monthly allowance. Upgrade your plan or try fewer images."
            }
            ApiError::Validation(_) => "The request contains invalid values",
            ApiError::Unavailable { message, .. } | ApiError::BadGateway { message, .. } => message,
            ApiError::Internal(_) => "An internal error occurred. Please try again later.",
        };
        match &self {
            ApiError::Internal(source) => {
                tracing::error!(error = %format!("{source:#}"), "request failed with an internal error");
            }
            ApiError::Unavailable { message, source } | ApiError::BadGateway { message, source } => {
                let chain = source.as_ref().map(|s| format!("{s:#}")).unwrap_or_default();
                tracing::warn!(status = self.status().as_u16(), %message, error = %chain, "dependency failed");
            }
            other => {
                tracing::info!(status = other.status().as_u16(), code = other.code(), %message, "request rejected")
            }
        }
        let validation_errors = match &self {
            ApiError::Validation(errors) => Some(errors.as_slice()),
            _ => None,
        };
        let details = match &self {
            ApiError::UsageLimitExceeded {
                monthly_limit,
                images_used,
                remaining,
                requested,
            } => Some(serde_json::json!({
                "monthly_limit": monthly_limit,
                "images_used": images_used,
                "remaining": remaining,
                "requested": requested,
            })),
            _ => None,
        };
        let body = ErrorBody {
            error: self.code(),
            message,
            validation_errors,
            details,
        };
        let mut response = crate::platform::http::json_response(self.status(), &body);
        match &self {
            ApiError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyRequests { retry_after_secs, .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            // Pool exhausted or the server unreachable: a retry may succeed, say so.
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                ApiError::unavailable("The database is temporarily unavailable", err)
            }
            other => ApiError::Internal(anyhow::Error::new(other).context("database query failed")),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::Internal(err)
    }
}

/// Turns a violation of one named constraint into a client error; everything else passes through
/// (the realworld-axum-sqlx `on_constraint` helper).
pub trait ResultExt<T> {
    fn on_constraint(self, name: &str, map: impl FnOnce() -> ApiError) -> Result<T, ApiError>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn on_constraint(self, name: &str, map: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        self.map_err(|err| match &err {
            sqlx::Error::Database(db) if db.constraint() == Some(name) => map(),
            _ => ApiError::from(err),
        })
    }
}

/// A provider's error text made safe to log and show: whitespace and control characters collapsed
/// to single spaces, cut to `max_chars` (ending in `…` when cut).
pub fn one_line(text: &str, max_chars: usize) -> String {
    let collapsed = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if collapsed.chars().count() <= max_chars {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn validation_errors_list_every_field() {
        let err = ApiError::Validation(vec![
            FieldError::new("name", "is required"),
            FieldError::new("x", "bad"),
        ]);
        let response = err.into_response();
        assert_eq!(response.status(), 422);
        let body = body_json(&response);
        assert_eq!(body["error"], "validation_failed");
        assert_eq!(body["validation_errors"][1]["field"], "x");
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let err = ApiError::Internal(anyhow::anyhow!("password authentication failed for user secret_admin"));
        let response = err.into_response();
        assert_eq!(response.status(), 500);
        let text = String::from_utf8(response.body().to_vec()).unwrap();
        assert!(!text.contains("secret_admin"), "{text}");
        assert!(text.contains("internal_server_error"));
    }

    #[test]
    fn unauthorized_carries_the_challenge() {
        let response = ApiError::unauthorized("missing token").into_response();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn too_many_requests_says_when_to_retry() {
        let response = ApiError::TooManyRequests {
            message: "slow down".into(),
            retry_after_secs: 7,
        }
        .into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let body = body_json(&response);
        assert_eq!(body["error"], "too_many_requests");
        assert_eq!(body["message"], "slow down");
    }

    #[test]
    fn not_found_names_the_resource() {
        let body = body_json(&ApiError::NotFound("project").into_response());
        assert_eq!(body["message"], "Project not found");
        assert_eq!(body["error"], "not_found");
    }
}

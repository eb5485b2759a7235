//! Stripe's failures, and the one place they become API answers (`From<StripeError> for ApiError`).

use reqwest::StatusCode;
use serde::Deserialize;

use crate::platform::error::{ApiError, one_line};

/// Why a Stripe call failed. `Display` carries Stripe's parsed error (type, code, message) for the
/// logs, never the raw body and never the key; clients see [`ApiError`]'s short message instead.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with an error object (`{"error": {"type", "code", "message", …}}`).
    #[error(
        "Stripe answered {status} ({kind}, code {code:?}, decline code {decline_code:?}, param {param:?}): {message}"
    )]
    Api {
        status: u16,
        /// `type`: `card_error`, `invalid_request_error`, `idempotency_error`, `api_error`, …
        kind: String,
        code: Option<String>,
        decline_code: Option<String>,
        param: Option<String>,
        message: String,
    },
    /// Connection failure or timeout: Stripe may or may not have acted.
    #[error("Stripe could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// A 2xx that is not the object asked for, or an error answer that is not Stripe's shape.
    #[error("unexpected answer from Stripe (HTTP {status}): {detail}")]
    InvalidResponse { status: u16, detail: String },
    /// An id that is not a Stripe id (`prefix_alphanumeric`); never put into a request path.
    #[error("not a Stripe object id")]
    InvalidId,
}

impl StripeError {
    pub fn status(&self) -> Option<u16> {
        match self {
            StripeError::Api { status, .. } | StripeError::InvalidResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Identifiers and codes from Stripe echoed to clients: `[a-z0-9_]`, at most 64 characters, so a
/// fake or hostile answer cannot smuggle text into our messages.
fn safe_code(code: Option<&str>) -> Option<&str> {
    code.filter(|c| {
        !c.is_empty()
            && c.len() <= 64
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

const UNAVAILABLE: &str = "Billing is temporarily unavailable. Please try again later.";

/// The one mapping of Stripe failures to API answers.
///
/// * our key refused (401/403): 503 with the generic text (logged at ERROR with
///   `error_code = "stripe_auth"` and counted as `StripeAuthFailures` when it arrived);
/// * throttled (429), Stripe's own failures (5xx), no answer, or an answer we cannot read: 503;
/// * card declined (`card_error`, 402): 409 naming the decline code;
/// * a concurrent request with the same idempotency key (`idempotency_error`, 409): 409, retry;
/// * an object Stripe no longer has (404): 409 (our records are out of date);
/// * any other refusal (`invalid_request_error`, 400): 400 naming Stripe's error code.
impl From<StripeError> for ApiError {
    fn from(err: StripeError) -> Self {
        let StripeError::Api {
            status,
            kind,
            code,
            decline_code,
            ..
        } = &err
        else {
            return match err {
                StripeError::InvalidId => ApiError::Internal(anyhow::Error::new(err).context("calling Stripe")),
                StripeError::InvalidResponse { .. } => ApiError::BadGateway {
                    message: UNAVAILABLE.into(),
                    source: Some(anyhow::Error::new(err)),
                },
                other => ApiError::unavailable(UNAVAILABLE, other),
            };
        };
        let status = *status;
        let code = safe_code(code.as_deref());
        match (status, kind.as_str()) {
            // Already logged at ERROR and counted where the answer arrived (`report_auth_failure`):
            // an operator fault, never the user's, so the user reads the generic text only.
            (401 | 403, _) => ApiError::unavailable(UNAVAILABLE, err),
            (429, _) => ApiError::unavailable("Billing is busy right now. Please try again in a moment.", err),
            // Stripe itself failed: a bad gateway, worth retrying later.
            (500.., _) => ApiError::BadGateway {
                message: UNAVAILABLE.into(),
                source: Some(anyhow::Error::new(err)),
            },
            (_, "card_error") | (402, _) => {
                let reason = safe_code(decline_code.as_deref()).or(code).unwrap_or("card_declined");
                log_refusal(&err);
                ApiError::Conflict(format!(
                    "The payment was declined ({reason}). Update your payment method in the billing portal and try again."
                ))
            }
            (_, "idempotency_error") | (409, _) => {
                log_refusal(&err);
                ApiError::Conflict(
                    "Another billing request for this account is in progress. Try again in a moment.".into(),
                )
            }
            (404, _) => {
                log_refusal(&err);
                ApiError::Conflict(
                    "Stripe no longer has this billing record. Please contact support if this persists.".into(),
                )
            }
            _ => {
                log_refusal(&err);
                ApiError::bad_request(format!(
                    "Stripe could not process this billing request ({}).",
                    code.unwrap_or("invalid_request")
                ))
            }
        }
    }
}

fn log_refusal(err: &StripeError) {
    tracing::warn!(error = %err, "Stripe refused a billing request");
}

/// The error code of every log line about Stripe refusing our key, for log searches and alarms.
pub const AUTH_ERROR_CODE: &str = "stripe_auth";
/// The CloudWatch metric counting those refusals (namespace [`crate::platform::metrics::NAMESPACE`],
/// dimension `Stack`); template.yaml's `StripeAuthFailuresAlarm` watches it.
pub const AUTH_FAILURE_METRIC: crate::platform::metrics::Counter =
    crate::platform::metrics::Counter::StripeAuthFailures;

/// Stripe refused our key (401: missing, revoked or rotated; 403: a restricted key without the
/// permission this call needs). Nothing a user can do about it: an operator must fix the key, so
/// it is logged at ERROR with a stable code and counted for the alarm, on every Stripe call (the
/// routes and the webhook alike).
pub(super) fn report_auth_failure(status: u16, path: &str) {
    tracing::error!(
        error_code = AUTH_ERROR_CODE,
        status,
        path,
        "Stripe refused our API key: check STRIPE_SECRET_KEY and its permissions"
    );
    crate::platform::metrics::count(AUTH_FAILURE_METRIC, 1);
}

pub(super) fn api_error(status: StatusCode, body: &[u8]) -> StripeError {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(ErrorEnvelope { error }) => StripeError::Api {
            status: status.as_u16(),
            kind: error.kind.unwrap_or_else(|| "unknown".into()),
            code: error.code,
            decline_code: error.decline_code,
            param: error.param,
            message: one_line(error.message.as_deref().unwrap_or(""), 300),
        },
        // Not Stripe's shape (a proxy's HTML page, say): keep the status, drop the body.
        Err(_) => StripeError::InvalidResponse {
            status: status.as_u16(),
            detail: "error answer without a Stripe error object".into(),
        },
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    param: Option<String>,
    message: Option<String>,
}

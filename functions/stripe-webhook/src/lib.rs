//! `POST /api/v1/stripe/webhook` (no JWT: the delivery is authenticated by its `Stripe-Signature`).
//!
//! | Answer | When |
//! |---|---|
//! | 200 `{"received":true}` | verified, recorded and applied (or recorded and ignored: not an event we act on, an older or backwards state than the one stored, or an event for a customer nobody here is linked to once it is older than 30 minutes) |
//! | 200 `{"received":true,"duplicate":true}` | verified, already recorded by an earlier delivery; nothing done |
//! | 400 `invalid_signature` | header missing or malformed, no `v1` matching, timestamp outside 300 s; nothing recorded |
//! | 400 `bad_request` | signed, but not an event of Stripe's shape; nothing recorded |
//! | 413 `payload_too_large` | body over 256 KiB |
//! | 503 `service_unavailable` | no webhook secret configured (development), database down, the user is not linked yet (for 30 minutes after the event), or cancelling a second subscription at Stripe failed: nothing recorded, Stripe retries |
//!
//! The signature is checked over the body bytes exactly as received (lambda_http has already
//! decoded a base64 API Gateway body into them), before anything parses it.

use shared::ApiError;
use shared::billing::stripe::webhook::{self, MAX_BODY_BYTES, Outcome, SignatureError, WebhookError, signature};
use shared::chrono::Utc;
use shared::http_types::StatusCode;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_response, ok};
use shared::platform::state::WebhookState;
use shared::serde_json::json;

pub async fn handle(state: &WebhookState, req: Request) -> ApiResult {
    let Some(secret) = &state.webhook_secret else {
        // Only development and test start without a secret; refusing (rather than skipping the
        // check) keeps an unverified event from ever being applied.
        return Err(ApiError::Unavailable {
            message: "Stripe webhook secret not configured".into(),
            source: None,
        });
    };
    let payload: &[u8] = req.body().as_ref();
    if payload.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    let header = match req.headers().get("stripe-signature").map(|value| value.to_str()) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return Ok(invalid_signature(&SignatureError::Malformed("not visible ASCII"))),
    };
    if let Err(err) = signature::verify(secret.expose(), header, payload, Utc::now().timestamp()) {
        return Ok(invalid_signature(&err));
    }
    match webhook::process(&state.db, state.stripe.as_ref(), payload).await {
        Ok(Outcome::Duplicate) => ok(&json!({ "received": true, "duplicate": true })),
        Ok(Outcome::Applied | Outcome::Stale | Outcome::Ignored | Outcome::Unlinked) => {
            ok(&json!({ "received": true }))
        }
        Err(WebhookError::InvalidEvent(message)) => Err(ApiError::bad_request(format!("Invalid event: {message}"))),
        Err(err @ WebhookError::NotLinked(_)) => Err(ApiError::unavailable(
            "The event concerns a customer not linked to a user yet; retry later",
            err,
        )),
        Err(WebhookError::Database(err)) => Err(ApiError::unavailable("The database is unavailable", err)),
        // Cancelling a duplicate subscription at Stripe failed (an auth failure is already
        // logged at ERROR and counted): retried by Stripe, the calls are safe to repeat.
        Err(WebhookError::Stripe(err)) => Err(ApiError::unavailable("Stripe is unavailable; retry later", err)),
    }
}

/// 400 with its own error code, so a misconfigured endpoint secret is obvious in Stripe's
/// delivery log.
fn invalid_signature(err: &SignatureError) -> shared::lambda_http::Response<shared::lambda_http::Body> {
    shared::tracing::warn!(reason = %err, "Stripe webhook delivery refused");
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({ "error": "invalid_signature", "message": format!("Invalid Stripe signature: {err}") }),
    )
}

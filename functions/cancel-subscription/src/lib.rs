//! `POST /api/v1/billing/cancel-subscription`: asks Stripe to end the caller's current (active or
//! trialing) subscription at the end of the paid period. Only that subscription is ever targeted,
//! never a newer row that is already canceled (the earlier system's bug). Answers
//! `{"subscription_id", "cancel_at_period_end": true, "current_period_end"}`; the database
//! follows via the webhook. No current subscription → 409.

use shared::ApiError;
use shared::billing::routes;
use shared::billing::stripe::client::IdempotencyKey;
use shared::chrono::{DateTime, Utc};
use shared::db::subscriptions;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::BillingState;
use shared::serde::Serialize;

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct CancelView {
    subscription_id: String,
    cancel_at_period_end: bool,
    current_period_end: Option<DateTime<Utc>>,
}

pub async fn handle(state: &BillingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let stripe = routes::stripe(state)?;
    let current = subscriptions::current_for_user(&state.api.db, user.id)
        .await?
        .ok_or_else(|| ApiError::Conflict("You have no active subscription to cancel".into()))?;
    let updated = stripe
        .cancel_at_period_end(&current.stripe_subscription_id, &IdempotencyKey::fresh("cancel"))
        .await?;
    let period_end = updated
        .current_period_end
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .or(current.current_period_end);
    ok(&CancelView {
        subscription_id: updated.id,
        cancel_at_period_end: updated.cancel_at_period_end,
        current_period_end: period_end,
    })
}

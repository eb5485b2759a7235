//! `POST /api/v1/billing/upgrade-subscription` `{"plan": "pro" | "business"}`: moves the caller's
//! one current subscription to the plan's price, prorated, by changing its first item in place.
//! It never creates a subscription (the earlier system's duplicate-subscription bug).
//!
//! No current subscription → 409 (start one with create-checkout); already on the plan → 409.
//! The answer is Stripe's view right after the change; the database follows via the webhook.

use shared::ApiError;
use shared::billing::routes::{self, PlanBody};
use shared::billing::stripe::client::{IdempotencyKey, StripeError};
use shared::db::subscriptions;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, ok};
use shared::platform::state::BillingState;
use shared::serde::Serialize;

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct UpgradeView {
    subscription_id: String,
    plan: String,
    status: String,
}

pub async fn handle(state: &BillingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let stripe = routes::stripe(state)?;
    let body: PlanBody = json_body(&req)?;
    let (plan, price_id) = routes::paid_plan(state, &body.plan).await?;
    let current = subscriptions::current_for_user(&state.api.db, user.id)
        .await?
        .ok_or_else(|| ApiError::Conflict("You have no active subscription; start one with create-checkout".into()))?;
    if current.price_id.as_deref() == Some(price_id.as_str()) {
        return Err(already_on(&plan.code));
    }
    // Stripe is the source of truth: the mirror may lag behind a change made in the portal.
    let live = stripe.retrieve_subscription(&current.stripe_subscription_id).await?;
    if !live.is_current() {
        return Err(ApiError::Conflict(
            "Your subscription is no longer active; start a new one with create-checkout".into(),
        ));
    }
    let item = live.items.first().ok_or_else(|| StripeError::InvalidResponse {
        status: 200,
        detail: "a current subscription without items".into(),
    })?;
    if item.price_id == price_id {
        return Err(already_on(&plan.code));
    }
    let updated = stripe
        .update_subscription_price(&live.id, &item.id, &price_id, &IdempotencyKey::fresh("upgrade"))
        .await?;
    ok(&UpgradeView {
        subscription_id: updated.id,
        plan: plan.code,
        status: updated.status,
    })
}

fn already_on(plan: &str) -> ApiError {
    ApiError::Conflict(format!("Your subscription is already on the {plan} plan"))
}

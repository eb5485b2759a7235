//! Starting and changing a subscription: a Stripe Checkout Session for a new subscriber, and a
//! plan change of the one current subscription in place. A user never holds two subscriptions:
//! checkout refuses a user who has one (current or unsettled), and a plan change never creates one
//! (the earlier system's duplicate-subscription bug). Nothing about the subscription is stored
//! here; the webhook records it once Stripe confirms.

use serde::Serialize;

use crate::billing::routes;
use crate::billing::stripe::client::{CheckoutRequest, IdempotencyKey, StripeError};
use crate::db::subscriptions;
use crate::db::users::User;
use crate::platform::error::ApiError;
use crate::platform::state::BillingState;

/// What `POST /api/v1/billing/create-checkout` answers: where to send the browser.
#[derive(Debug, Serialize)]
pub struct CheckoutStarted {
    pub url: String,
    pub session_id: String,
}

/// A Checkout Session (subscription mode) for the paid plan `plan_code`. 409 when the user has a
/// current subscription (change its plan instead) or one that is past due, unpaid or paused
/// (settled in the billing portal). The customer's earlier open sessions are expired once the
/// new one exists, so two tabs cannot both be paid (the webhook is the backstop).
pub async fn start_checkout(state: &BillingState, user: &User, plan_code: &str) -> Result<CheckoutStarted, ApiError> {
    let stripe = routes::stripe(state)?;
    let (plan, price_id) = routes::paid_plan(state, plan_code).await?;
    if subscriptions::current_for_user(&state.api.db, user.id).await?.is_some() {
        return Err(ApiError::Conflict(
            "You already have an active subscription; change its plan with upgrade-subscription".into(),
        ));
    }
    if subscriptions::unsettled_for_user(&state.api.db, user.id)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(
            "Your subscription has an unpaid invoice; settle it in the billing portal instead of subscribing again"
                .into(),
        ));
    }
    let customer = routes::ensure_customer(state, stripe, user).await?;
    let (success_url, cancel_url) = routes::checkout_urls(&state.api.web);
    let session = stripe
        .create_checkout_session(
            &CheckoutRequest {
                customer: &customer,
                price_id: &price_id,
                user_id: user.id,
                success_url: &success_url,
                cancel_url: &cancel_url,
            },
            &routes::checkout_key(user, &plan.code),
        )
        .await?;
    routes::expire_earlier_checkouts(stripe, &customer, &session).await;
    Ok(CheckoutStarted {
        url: session.url,
        session_id: session.id,
    })
}

/// What `POST /api/v1/billing/upgrade-subscription` answers: Stripe's view right after the change
/// (the database follows through the webhook).
#[derive(Debug, Serialize)]
pub struct PlanChanged {
    pub subscription_id: String,
    pub plan: String,
    pub status: subscriptions::SubscriptionStatus,
}

/// Moves the user's one current subscription to the paid plan `plan_code`, prorated, by changing
/// its first item in place. 409 with no current subscription (start one with checkout) or when
/// it is already on that plan.
pub async fn change_plan(state: &BillingState, user: &User, plan_code: &str) -> Result<PlanChanged, ApiError> {
    let stripe = routes::stripe(state)?;
    let (plan, price_id) = routes::paid_plan(state, plan_code).await?;
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
    Ok(PlanChanged {
        subscription_id: updated.id,
        plan: plan.code,
        status: updated.status,
    })
}

fn already_on(plan: &str) -> ApiError {
    ApiError::Conflict(format!("Your subscription is already on the {plan} plan"))
}

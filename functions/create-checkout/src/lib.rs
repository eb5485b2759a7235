//! `POST /api/v1/billing/create-checkout` `{"plan": "pro" | "business"}`: a Stripe Checkout
//! Session (subscription mode) for the plan's price, answered as `{"url", "session_id"}`.
//!
//! A user with a current (active or trialing) subscription gets 409: changing plans is
//! upgrade-subscription, so a user never holds two. So does a user whose subscription is
//! past due, unpaid or paused: that one is settled in the billing portal. Nothing about the subscription is stored
//! here; the webhook records it once Stripe confirms payment.
//!
//! The customer's earlier open sessions are expired once the new one exists, so two tabs cannot
//! both be paid (`routes::expire_earlier_checkouts`; the webhook is the backstop).

use shared::ApiError;
use shared::billing::routes::{self, PlanBody};
use shared::billing::stripe::client::CheckoutRequest;
use shared::db::subscriptions;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, ok};
use shared::platform::state::BillingState;
use shared::serde::Serialize;

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct CheckoutView {
    url: String,
    session_id: String,
}

pub async fn handle(state: &BillingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let stripe = routes::stripe(state)?;
    let body: PlanBody = json_body(&req)?;
    let (plan, price_id) = routes::paid_plan(state, &body.plan).await?;
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
    let customer = routes::ensure_customer(state, stripe, &user).await?;
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
            &routes::checkout_key(&user, &plan.code),
        )
        .await?;
    routes::expire_earlier_checkouts(stripe, &customer, &session).await;
    ok(&CheckoutView {
        url: session.url,
        session_id: session.id,
    })
}

//! `POST /api/v1/billing/portal`: a short-lived Stripe Billing Portal URL for the caller's
//! customer, returning to `{FRONTEND_URL}/profile`. A user who never started a checkout has no
//! customer: 409 (subscribe first).

use shared::ApiError;
use shared::billing_routes;
use shared::http::{ApiResult, ok};
use shared::lambda_http::Request;
use shared::serde::Serialize;
use shared::state::BillingState;
use shared::stripe::client::IdempotencyKey;

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct PortalView {
    url: String,
}

pub async fn handle(state: &BillingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let stripe = billing_routes::stripe(state)?;
    let customer = user
        .stripe_customer_id
        .as_deref()
        .ok_or_else(|| ApiError::Conflict("No billing account yet. Please subscribe first.".into()))?;
    let return_url = billing_routes::portal_return_url(&state.api.web);
    let url = stripe
        .create_portal_session(customer, &return_url, &IdempotencyKey::fresh("portal"))
        .await?;
    ok(&PortalView { url })
}

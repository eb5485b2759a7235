//! `POST /api/v1/billing/portal`: a short-lived Stripe Billing Portal URL for the caller's
//! customer, returning to `{FRONTEND_URL}/profile`. A user who never started a checkout has no
//! customer: 409 (subscribe first).

use shared::ApiError;
use shared::billing::routes;
use shared::billing::stripe::client::IdempotencyKey;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::BillingState;
use shared::serde::Serialize;

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct PortalView {
    url: String,
}

pub async fn handle(state: &BillingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let stripe = routes::stripe(state)?;
    let customer = user
        .stripe_customer_id
        .as_deref()
        .ok_or_else(|| ApiError::Conflict("No billing account yet. Please subscribe first.".into()))?;
    let return_url = routes::portal_return_url(&state.api.web);
    let url = stripe
        .create_portal_session(customer, &return_url, &IdempotencyKey::fresh("portal"))
        .await?;
    ok(&PortalView { url })
}

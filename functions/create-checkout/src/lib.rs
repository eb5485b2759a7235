//! `POST /api/v1/billing/create-checkout` `{"plan": "pro" | "business"}`: a Stripe Checkout
//! Session (subscription mode) for the plan's price, answered as `{"url", "session_id"}`; 409 for
//! a user who already has a subscription. See [`shared::billing::checkout::start_checkout`].

use shared::billing::checkout::start_checkout;
use shared::billing::routes::PlanBody;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, ok};
use shared::platform::state::BillingState;

pub async fn handle(state: &BillingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let body: PlanBody = json_body(&req)?;
    ok(&start_checkout(state, &user, &body.plan).await?)
}

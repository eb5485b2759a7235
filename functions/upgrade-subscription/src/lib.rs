//! `POST /api/v1/billing/upgrade-subscription` `{"plan": "pro" | "business"}`: moves the caller's
//! one current subscription to the plan's price, prorated, in place; never creates one. 409 with
//! no current subscription or when already on the plan. See
//! [`shared::billing::checkout::change_plan`].

use shared::billing::checkout::change_plan;
use shared::billing::routes::PlanBody;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, ok};
use shared::platform::state::BillingState;

pub async fn handle(state: &BillingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let body: PlanBody = json_body(&req)?;
    ok(&change_plan(state, &user, &body.plan).await?)
}

//! `GET /api/v1/billing/usage`: the caller's plan, allowance and use in the current period, from
//! the same function image creation enforces ([`shared::billing::usage::current_usage`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::billing::usage::{Usage, current_usage};
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::ApiState;
use shared::{chrono, serde};

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct UsageView {
    plan_code: String,
    monthly_limit: i64,
    images_used: i64,
    remaining: i64,
    /// The same value as `remaining`, for the earlier web client.
    remaining_images: i64,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    has_subscription: bool,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        UsageView {
            plan_code: u.plan_code,
            monthly_limit: u.monthly_limit,
            images_used: u.images_used,
            remaining: u.remaining,
            remaining_images: u.remaining,
            period_start: u.period_start,
            period_end: u.period_end,
            has_subscription: u.has_subscription,
        }
    }
}

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let mut conn = state.db.acquire().await?;
    let usage = current_usage(&mut conn, user.id).await?;
    ok(&UsageView::from(usage))
}

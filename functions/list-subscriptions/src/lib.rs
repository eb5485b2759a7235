//! `GET /api/v1/billing/subscriptions?limit=&offset=`: the caller's subscriptions (every status),
//! newest first, as the webhook mirrored them. `limit` 1..=100 (default 50), `offset` ≥ 0.
//! Needs no Stripe key: it reads the database only.

use shared::billing::routes::{self, ListPage};
use shared::db::subscriptions;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::BillingState;

pub async fn handle(state: &BillingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let (limit, offset) = routes::page_params(&req)?;
    let items = subscriptions::list_for_user(&state.api.db, user.id, limit, offset).await?;
    ok(&ListPage { items, limit, offset })
}

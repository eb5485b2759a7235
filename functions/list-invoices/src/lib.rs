//! `GET /api/v1/billing/invoices?limit=&offset=`: the caller's invoices, newest first, as the
//! webhook mirrored them. `limit` 1..=100 (default 50), `offset` ≥ 0. Needs no Stripe key.

use shared::billing::routes::{self, ListPage};
use shared::db::invoices;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::BillingState;

pub async fn handle(state: &BillingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let (limit, offset) = routes::page_params(&req)?;
    let items = invoices::list_for_user(&state.api.db, user.id, limit, offset).await?;
    ok(&ListPage { items, limit, offset })
}

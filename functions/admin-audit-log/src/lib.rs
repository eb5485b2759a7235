//! `GET /api/v1/admin/audit-log`: every admin change, newest first, paginated by cursor (admins
//! only). Secret values never appear: secret fields are recorded as set / not set.

use shared::db::audit::{self, AuditEntry};
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::pagination::page_params;
use shared::platform::state::ApiState;
use shared::serde::Serialize;

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct AuditPage {
    entries: Vec<AuditEntry>,
    next_cursor: Option<String>,
}

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    state.current_admin(&req).await?;
    let (limit, after) = page_params(&req)?;
    let page = audit::list(&state.db, limit, after.as_ref()).await?;
    ok(&AuditPage {
        entries: page.items,
        next_cursor: page.next.map(|c| c.encode()),
    })
}

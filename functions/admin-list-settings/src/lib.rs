//! `GET /api/v1/admin/settings`: the allowlisted operator settings, typed (admins only).

use shared::admin::settings;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    state.current_admin(&req).await?;
    ok(&settings::list(&state.db).await?)
}

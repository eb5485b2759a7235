//! `GET /api/v1/admin/models/active`: the model new staging jobs use (admins only).

use shared::admin::models;
use shared::http::{ApiResult, ok};
use shared::lambda_http::Request;
use shared::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    state.current_admin(&req).await?;
    ok(&models::active(&state.db).await?)
}

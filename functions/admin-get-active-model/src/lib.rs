//! `GET /api/v1/admin/models/active`: the model new staging jobs use (admins only).

use shared::admin::model_settings;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    state.current_admin(&req).await?;
    ok(&model_settings::active(&state.db).await?)
}

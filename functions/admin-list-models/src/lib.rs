//! `GET /api/v1/admin/models`: every registered model with its price, its settings schema and
//! whether it is active or could be activated now (admins only).

use shared::admin::model_settings;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    state.current_admin(&req).await?;
    ok(&model_settings::list(&state.db).await?)
}

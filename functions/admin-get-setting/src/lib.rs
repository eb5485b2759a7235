//! `GET /api/v1/admin/settings/{key}`: one allowlisted setting; other keys are 404 (admins only).

use shared::admin::settings;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok, path_param};
use shared::platform::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    state.current_admin(&req).await?;
    let spec = settings::find(path_param(&req, "key")?)?;
    ok(&settings::get(&state.db, spec).await?)
}

//! `GET /api/v1/admin/models/{slug}/config`: a model's settings; secret fields only as set / not
//! set (admins only).

use shared::admin::model_settings;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok, path_param};
use shared::platform::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    state.current_admin(&req).await?;
    let spec = model_settings::by_slug(path_param(&req, "slug")?)?;
    ok(&model_settings::config(&state.db, spec).await?)
}

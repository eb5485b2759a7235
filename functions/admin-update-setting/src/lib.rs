//! `PUT /api/v1/admin/settings/{key}` `{"value": ...}`: changes one allowlisted setting, checked
//! against its type (`active_model` exactly like `PUT /api/v1/admin/models/active`); admins only.

use shared::admin::settings;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, ok, path_param};
use shared::platform::state::ApiState;
use shared::serde::Deserialize;
use shared::serde_json::Value;

#[derive(Deserialize)]
#[serde(crate = "shared::serde", deny_unknown_fields)]
struct SettingBody {
    value: Value,
}

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let admin = state.current_admin(&req).await?;
    let spec = settings::find(path_param(&req, "key")?)?;
    let body: SettingBody = json_body(&req)?;
    ok(&settings::update(&state.db, &admin, spec, &body.value).await?)
}

//! `PUT /api/v1/admin/models/{slug}/config`: replaces a model's settings, validated against its
//! schema (422 listing every bad field); secret fields are write-only and sealed at rest
//! (admins only; docs/admin.md).

use shared::admin::model_settings;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, ok, path_param};
use shared::platform::state::AdminSecretsState;
use shared::serde_json::Value;

pub async fn handle(state: &AdminSecretsState, req: Request) -> ApiResult {
    let admin = state.api.current_admin(&req).await?;
    let spec = model_settings::by_slug(path_param(&req, "slug")?)?;
    let body: Value = json_body(&req)?;
    ok(&model_settings::update_config(&state.api.db, &state.cipher, &admin, spec, &body).await?)
}

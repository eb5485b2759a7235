//! `PUT /api/v1/admin/models/active` `{"model_id": "<registry id>"}`: switches the model of new
//! staging jobs (admins only). 422 when the model is not registered or a setting it needs (such
//! as gpt-image-1's OpenAI key) is not set; the next job claimed uses the new model.

use shared::admin::model_settings;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, ok};
use shared::platform::state::ApiState;
use shared::serde::Deserialize;

#[derive(Deserialize)]
#[serde(crate = "shared::serde", deny_unknown_fields)]
struct ActivateBody {
    /// `value` is what the earlier front end sends.
    #[serde(alias = "value")]
    model_id: String,
}

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let admin = state.current_admin(&req).await?;
    let body: ActivateBody = json_body(&req)?;
    ok(&model_settings::activate(&state.db, &admin, &body.model_id, "model_id").await?)
}

//! `PATCH /api/v1/user/profile`: a true partial update; only the fields sent change.

use shared::ApiError;
use shared::db::users;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, ok};
use shared::platform::state::ApiState;
use shared::profile::{ProfilePatch, ProfileView};

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let changes = json_body::<ProfilePatch>(&req)?.validate()?;
    let updated = users::update_profile(&state.db, user.id, &changes)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    ok(&ProfileView::from(updated))
}

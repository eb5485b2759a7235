//! `GET /api/v1/projects/{id}/cost`: model spend of one of the caller's projects. Deleted images
//! count: the money was spent.

use shared::ApiError;
use shared::db::images;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok, path_uuid};
use shared::platform::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let project_id = path_uuid(&req, "id")?;
    let cost = images::project_cost(&state.db, user.id, project_id)
        .await?
        .ok_or(ApiError::NotFound("project"))?;
    ok(&cost)
}

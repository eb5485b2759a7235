//! `GET /api/v1/projects/{id}`: one of the caller's projects.

use shared::ApiError;
use shared::db::projects;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok, path_uuid};
use shared::platform::state::ApiState;
use shared::projects::ProjectView;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    let project = projects::find_owned(&state.db, user.id, id)
        .await?
        .ok_or(ApiError::NotFound("project"))?;
    ok(&ProjectView::from(project))
}

//! `PUT /api/v1/projects/{id}`: rename one of the caller's projects.

use shared::ApiError;
use shared::db::projects;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, ok, path_uuid};
use shared::platform::state::ApiState;
use shared::projects::{ProjectName, ProjectNameBody, ProjectView};

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    let body: ProjectNameBody = json_body(&req)?;
    let name = ProjectName::parse(&body.name)?;
    let project = projects::rename_owned(&state.db, user.id, id, &name)
        .await?
        .ok_or(ApiError::NotFound("project"))?;
    ok(&ProjectView::from(project))
}

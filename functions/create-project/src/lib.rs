//! `POST /api/v1/projects`: create a project for the caller.

use shared::db::projects;
use shared::http_types::{HeaderValue, StatusCode, header};
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, json_response};
use shared::platform::state::ApiState;
use shared::projects::{ProjectName, ProjectNameBody, ProjectView};

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let body: ProjectNameBody = json_body(&req)?;
    let name = ProjectName::parse(&body.name)?;
    let project = projects::create(&state.db, user.id, &name).await?;
    let location = format!("/api/v1/projects/{}", project.id);
    let mut response = json_response(StatusCode::CREATED, &ProjectView::from(project));
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

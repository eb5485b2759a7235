//! `GET /api/v1/projects`: the caller's projects, newest first, paginated by cursor.

use shared::db::projects;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::pagination::page_params;
use shared::platform::state::ApiState;
use shared::projects::{ProjectList, ProjectView};

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let (limit, after) = page_params(&req)?;
    let page = projects::list_owned(&state.db, user.id, limit, after.as_ref()).await?;
    ok(&ProjectList {
        projects: page.items.into_iter().map(ProjectView::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    })
}

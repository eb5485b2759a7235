//! `GET /api/v1/projects`: the caller's projects, newest first, paginated by cursor.

use shared::db::projects;
use shared::http::{ApiResult, ok};
use shared::lambda_http::Request;
use shared::pagination::page_params;
use shared::projects::{ProjectList, ProjectView};
use shared::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let (limit, after) = page_params(&req)?;
    let page = projects::list_owned(&state.db, user.id, limit, after.as_ref()).await?;
    ok(&ProjectList {
        projects: page.items.into_iter().map(ProjectView::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    })
}

//! `GET /api/v1/projects/{id}/cost`: model spend of one of the caller's projects. Deleted images
//! count: the money was spent.

use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok, path_uuid};
use shared::platform::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let project_id = path_uuid(&req, "id")?;
    ok(&shared::projects::cost(&state.db, user.id, project_id).await?)
}

//! `GET /api/v1/projects/{id}/share`: the public disclosure link of a whole project (every
//! original with its altered versions), created on first request (201), the same link after (200).

use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_response, path_uuid};
use shared::platform::state::SharingState;
use shared::sharing::links::{share_base, share_project};

pub async fn handle(state: &SharingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    let base = share_base(state, &req)?;
    let (status, view) = share_project(state, user.id, id, &base).await?;
    Ok(json_response(status, &view))
}

//! `DELETE /api/v1/projects/{id}/share`: revokes the project's public link (the page answers 410
//! from now on). 404 when the project was not shared.

use shared::http_types::StatusCode;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, empty, path_uuid};
use shared::platform::state::SharingState;
use shared::sharing::links::revoke;

pub async fn handle(state: &SharingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    revoke(state, user.id, Some(id), None).await?;
    empty(StatusCode::NO_CONTENT)
}

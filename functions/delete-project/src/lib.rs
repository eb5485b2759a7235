//! `DELETE /api/v1/projects/{id}`: soft-delete one of the caller's projects and its images.
//! Storage is purged later by the reconciler; usage history (the ledger) is never touched.

use shared::ApiError;
use shared::db::projects;
use shared::http_types::StatusCode;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, empty, path_uuid};
use shared::platform::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    if !projects::delete_owned(&state.db, user.id, id).await? {
        return Err(ApiError::NotFound("project"));
    }
    empty(StatusCode::NO_CONTENT)
}

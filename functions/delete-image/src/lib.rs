//! `DELETE /api/v1/images/{id}`: soft-delete one of the caller's images. Its storage objects are
//! purged later by the reconciler (`purged_at`); usage history (the ledger) is never touched.

use shared::ApiError;
use shared::db::images;
use shared::http_types::StatusCode;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, empty, path_uuid};
use shared::platform::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    if !images::soft_delete_owned(&state.db, user.id, id).await? {
        return Err(ApiError::NotFound("image"));
    }
    empty(StatusCode::NO_CONTENT)
}

//! `DELETE /api/v1/images/{id}/share`: revokes the image's public link (the page answers 410
//! from now on; sharing again makes a new link). 404 when the image was not shared.

use shared::http_types::StatusCode;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, empty, path_uuid};
use shared::platform::state::SharingState;
use shared::sharing::links::revoke;

pub async fn handle(state: &SharingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    revoke(state, user.id, None, Some(id)).await?;
    empty(StatusCode::NO_CONTENT)
}

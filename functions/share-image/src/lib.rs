//! `POST /api/v1/images/{id}/share`: the public disclosure link of one of the caller's ready
//! images (201 when created, 200 when it already existed), with its disclosed photo
//! (see [`shared::sharing::links`]).

use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_response, path_uuid};
use shared::platform::state::SharingState;
use shared::sharing::links::{share_base, share_image};

pub async fn handle(state: &SharingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    let base = share_base(state, &req)?;
    let (status, view) = share_image(state, user.id, id, &base).await?;
    Ok(json_response(status, &view))
}

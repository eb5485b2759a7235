//! `GET /api/v1/images/{id}`: one of the caller's live images, with short-lived photo links.

use shared::ApiError;
use shared::db::images;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok, path_uuid};
use shared::platform::state::StorageState;
use shared::staging::views::ImageView;

pub async fn handle(state: &StorageState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    let image = images::find_owned(&state.api.db, user.id, id)
        .await?
        .ok_or(ApiError::NotFound("image"))?;
    ok(&ImageView::build(image, &state.storage).await)
}

//! `GET /api/v1/projects/{id}/images`: the live images of one of the caller's projects, newest first.

use serde::Serialize;
use shared::ApiError;
use shared::db::images;
use shared::http::{ApiResult, ok, path_uuid};
use shared::images::{ImageView, views};
use shared::lambda_http::Request;
use shared::serde;
use shared::state::StorageState;

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct ImageList {
    images: Vec<ImageView>,
}

pub async fn handle(state: &StorageState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let project_id = path_uuid(&req, "id")?;
    let images = images::list_for_project(&state.api.db, user.id, project_id)
        .await?
        .ok_or(ApiError::NotFound("project"))?;
    ok(&ImageList {
        images: views(images, &state.storage).await,
    })
}

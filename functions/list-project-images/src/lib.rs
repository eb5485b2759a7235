//! `GET /api/v1/projects/{id}/images`: the live images of one of the caller's projects, newest first.

use serde::Serialize;
use shared::http::{ApiResult, ok, path_uuid};
use shared::images::{ImageView, owned_project_views};
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
    let images = owned_project_views(&state.api.db, &state.storage, user.id, project_id).await?;
    ok(&ImageList { images })
}

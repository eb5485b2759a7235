//! `GET /api/v1/projects/{id}/images/grouped`: the project's live images grouped by original
//! photo (groups by newest variant, variants newest first).

use serde::Serialize;
use shared::ApiError;
use shared::db::images;
use shared::http::{ApiResult, ok, path_uuid};
use shared::images::{ImageGroup, group_by_original, views};
use shared::lambda_http::Request;
use shared::serde;
use shared::state::StorageState;

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct GroupList {
    images: Vec<ImageGroup>,
}

pub async fn handle(state: &StorageState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let project_id = path_uuid(&req, "id")?;
    let images = images::list_for_project(&state.api.db, user.id, project_id)
        .await?
        .ok_or(ApiError::NotFound("project"))?;
    ok(&GroupList {
        images: group_by_original(views(images, &state.storage).await),
    })
}

//! `GET /api/v1/projects/{id}/images/grouped`: the project's live images grouped by original
//! photo (groups by newest variant, variants newest first).

use serde::Serialize;
use shared::http::{ApiResult, ok, path_uuid};
use shared::images::{ImageGroup, group_by_original, owned_project_views};
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
    let images = owned_project_views(&state.api.db, &state.storage, user.id, project_id).await?;
    ok(&GroupList {
        images: group_by_original(images),
    })
}

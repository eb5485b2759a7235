//! `GET /api/v1/projects/{id}/images/grouped`: the project's live images grouped by original
//! photo (groups by newest variant, variants newest first), paginated by cursor over the images
//! exactly like the flat list (`?limit=` images per page, `next_cursor`). A group whose older
//! variants fall on a later page appears there again with the same `file_key`.

use serde::Serialize;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok, path_uuid};
use shared::platform::pagination::page_params;
use shared::platform::state::StorageState;
use shared::serde;
use shared::staging::views::{ImageGroup, group_by_original, owned_project_views};

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct GroupList {
    images: Vec<ImageGroup>,
    next_cursor: Option<String>,
}

pub async fn handle(state: &StorageState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let project_id = path_uuid(&req, "id")?;
    let (limit, after) = page_params(&req)?;
    let (images, next) = owned_project_views(
        &state.api.db,
        &state.storage,
        user.id,
        project_id,
        limit,
        after.as_ref(),
    )
    .await?;
    ok(&GroupList {
        images: group_by_original(images),
        next_cursor: next.map(|c| c.encode()),
    })
}

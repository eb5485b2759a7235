//! `GET /api/v1/projects/{id}/images`: the live images of one of the caller's projects, newest
//! first, paginated by cursor (`?limit=` 1–100, default 50; `next_cursor` while more remain), so a
//! project of thousands of images still answers far under Lambda's 6 MB response limit.

use serde::Serialize;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok, path_uuid};
use shared::platform::pagination::page_params;
use shared::platform::state::StorageState;
use shared::serde;
use shared::staging::views::{ImageView, owned_project_views};

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct ImageList {
    images: Vec<ImageView>,
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
    ok(&ImageList {
        images,
        next_cursor: next.map(|c| c.encode()),
    })
}

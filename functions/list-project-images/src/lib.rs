//! `GET /api/v1/projects/{id}/images`: the live images of one of the caller's projects, newest
//! first, paginated by cursor (`?limit=` 1–100, default 50; `next_cursor` while more remain), so a
//! project of thousands of images still answers far under Lambda's 6 MB response limit.

use serde::Serialize;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::StorageState;
use shared::serde;
use shared::staging::views::{ImageView, requested_project_page};

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct ImageList {
    images: Vec<ImageView>,
    next_cursor: Option<String>,
}

pub async fn handle(state: &StorageState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let (images, next_cursor) = requested_project_page(&state.api.db, &state.storage, user.id, &req).await?;
    ok(&ImageList { images, next_cursor })
}

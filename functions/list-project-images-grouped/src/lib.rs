//! `GET /api/v1/projects/{id}/images/grouped`: the project's live images grouped by original
//! photo (groups by newest variant, variants newest first), paginated by cursor over the images
//! exactly like the flat list (`?limit=` images per page, `next_cursor`). A group whose older
//! variants fall on a later page appears there again with the same `file_key`.

use serde::Serialize;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::StorageState;
use shared::serde;
use shared::staging::views::{ImageGroup, group_by_original, requested_project_page};

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct GroupList {
    images: Vec<ImageGroup>,
    next_cursor: Option<String>,
}

pub async fn handle(state: &StorageState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let (images, next_cursor) = requested_project_page(&state.api.db, &state.storage, user.id, &req).await?;
    ok(&GroupList {
        images: group_by_original(images),
        next_cursor,
    })
}

//! `POST /api/v1/images/{id}/restage`: a new image from the same original photo with another
//! operation, style, room type or seed (see [`shared::staging::restage`]). Quota, job and queue
//! as for `POST /api/v1/images`; one image answers its view, `variations` 2–4 the batch shape.

use shared::ApiError;
use shared::db::images;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, path_uuid};
use shared::platform::state::StagingState;
use shared::staging::create::create_one;
use shared::staging::restage::RestageBody;

pub async fn handle(state: &StagingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    let body = json_body::<RestageBody>(&req)?;
    // Another user's image, and a deleted one, are both simply not found.
    let source = images::find_owned(&state.api.db, user.id, id)
        .await?
        .ok_or(ApiError::NotFound("image"))?;
    let request = body.into_request(user.id, &source)?;
    create_one(state, user.id, request).await
}

//! `POST /api/v1/images`: stage one uploaded photo (reserves the monthly allowance and queues one
//! job per image; see [`shared::staging::create::create_images`]). One image answers its view;
//! `variations` 2–4 answer the batch shape with every image made.

use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body};
use shared::platform::state::StagingState;
use shared::staging::create::create_one;
use shared::staging::requests::CreateImageBody;

pub async fn handle(state: &StagingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let request = json_body::<CreateImageBody>(&req)?.into_request(user.id)?;
    create_one(state, user.id, request).await
}

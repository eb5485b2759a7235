//! `POST /api/v1/images/batch`: stage 1–50 photos at once (variations included), all or nothing.
//! Any invalid item fails the whole batch with every problem named `images[i].<field>`; the
//! allowance is reserved for every image in one transaction (402 when they do not all fit, and
//! nothing is created).

use shared::http_types::StatusCode;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, json_response};
use shared::platform::state::StagingState;
use shared::staging::create::create_images;
use shared::staging::requests::{CreateImagesBatchBody, batch_field};
use shared::staging::views::ImageBatch;

pub async fn handle(state: &StagingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let requests = json_body::<CreateImagesBatchBody>(&req)?.into_requests(user.id)?;
    let images = create_images(
        &state.api.db,
        &state.storage,
        &state.queue,
        user.id,
        requests,
        batch_field,
    )
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &ImageBatch::build(images, &state.storage).await,
    ))
}

//! `POST /api/v1/images/batch`: stage 1–50 photos at once, all or nothing. Any invalid item
//! fails the whole batch with every problem named `images[i].<field>`; the allowance is reserved
//! for every image in one transaction (402 when they do not all fit, and nothing is created).

use shared::http_types::StatusCode;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, json_response};
use shared::platform::state::StagingState;
use shared::serde::Serialize;
use shared::staging::create::create_images;
use shared::staging::requests::{CreateImagesBatchBody, batch_field};
use shared::staging::views::{ImageView, views};

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct BatchView {
    images: Vec<ImageView>,
    success: usize,
    /// Always 0: a batch is all or nothing, so a failure answers an error instead.
    failed: usize,
}

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
    let images = views(images, &state.storage).await;
    Ok(json_response(
        StatusCode::CREATED,
        &BatchView {
            success: images.len(),
            failed: 0,
            images,
        },
    ))
}

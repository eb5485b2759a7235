//! `POST /api/v1/images/batch`: stage 1–50 photos at once, all or nothing. Any invalid item
//! fails the whole batch with every problem named `images[i].<field>`; the allowance is reserved
//! for every image in one transaction (402 when they do not all fit, and nothing is created).

use shared::ApiError;
use shared::http_types::StatusCode;
use shared::lambda_http::Request;
use shared::platform::error::FieldError;
use shared::platform::http::{ApiResult, json_body, json_response};
use shared::platform::state::StagingState;
use shared::serde::Serialize;
use shared::staging::images::{CreateImagesBatchBody, ImageView, MAX_BATCH, create_images, views};

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct BatchView {
    images: Vec<ImageView>,
    success: usize,
    /// Always 0: a batch is all or nothing, so a failure answers an error instead.
    failed: usize,
}

fn prefix(i: usize) -> String {
    format!("images[{i}].")
}

pub async fn handle(state: &StagingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let body: CreateImagesBatchBody = json_body(&req)?;
    if body.images.is_empty() || body.images.len() > MAX_BATCH {
        return Err(ApiError::validation(
            "images",
            format!("must contain between 1 and {MAX_BATCH} images"),
        ));
    }
    let mut errors: Vec<FieldError> = Vec::new();
    let mut requests = Vec::with_capacity(body.images.len());
    for (i, item) in body.images.into_iter().enumerate() {
        if let Some(request) = item.validate(user.id, &prefix(i), &mut errors) {
            requests.push(request);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let images = create_images(&state.api.db, &state.storage, &state.queue, user.id, requests, prefix).await?;
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

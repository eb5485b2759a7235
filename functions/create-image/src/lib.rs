//! `POST /api/v1/images`: stage one uploaded photo (reserves one image of the monthly allowance
//! and queues one job; see [`shared::staging::create::create_images`]).

use shared::http_types::StatusCode;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, json_response};
use shared::platform::state::StagingState;
use shared::staging::create::create_images;
use shared::staging::requests::CreateImageBody;
use shared::staging::views::ImageView;

pub async fn handle(state: &StagingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let request = json_body::<CreateImageBody>(&req)?.into_request(user.id)?;
    let image = create_images(
        &state.api.db,
        &state.storage,
        &state.queue,
        user.id,
        vec![request],
        |_| String::new(),
    )
    .await?
    .into_iter()
    .next()
    .expect("create_images returns one image per request");
    Ok(json_response(
        StatusCode::CREATED,
        &ImageView::build(image, &state.storage).await,
    ))
}

//! `GET /api/v1/events?image_id=<uuid>`: an image's status as Server-Sent Events, long-poll style
//! (API Gateway HTTP APIs buffer responses, so each response is short and complete and
//! EventSource's reconnect with `Last-Event-ID` makes the stream). The only route that accepts
//! `?access_token=` (EventSource cannot set headers). Rules in `shared::staging::events`, docs/events.md.

use std::time::Duration;

use shared::ApiError;
use shared::http_types::{HeaderValue, StatusCode, header};
use shared::lambda_http::{Body, Request, Response};
use shared::platform::http::{ApiResult, empty, query_param};
use shared::platform::state::ApiState;
use shared::staging::events::{self, Next};
use shared::uuid::Uuid;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    handle_with_wait(state, req, events::MAX_WAIT).await
}

/// [`handle`] with the longest time to wait for a change as a parameter (tests use ~1 s).
pub async fn handle_with_wait(state: &ApiState, req: Request, max_wait: Duration) -> ApiResult {
    let user = state.current_user_of_event_stream(&req).await?;
    let image_id =
        query_param(&req, "image_id")?.ok_or_else(|| ApiError::bad_request("Missing query parameter `image_id`"))?;
    let image_id = Uuid::parse_str(image_id.trim()).map_err(|_| ApiError::bad_request("`image_id` must be a UUID"))?;
    // Anything unreadable is simply "not the current id": the client gets the current status.
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::trim);
    let next = events::next(&state.db, user.id, image_id, last_event_id, max_wait).await?;
    if next == Next::Finished {
        return empty(StatusCode::NO_CONTENT);
    }
    let mut response = Response::new(Body::Text(events::render(&next)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

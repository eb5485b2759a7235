//! `GET /api/v1/images/{id}/share/qr?format=png|svg`: the image's public link as a QR code, for
//! print (409 until the image is shared).

use shared::ApiError;
use shared::http_types::{HeaderValue, StatusCode, header};
use shared::lambda_http::{Body, Request, Response};
use shared::platform::http::{ApiResult, path_uuid, query_param};
use shared::platform::state::SharingState;
use shared::sharing::links::{page_url, share_base};
use shared::sharing::qr;

pub async fn handle(state: &SharingState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    let svg = match query_param(&req, "format")? {
        None | Some("png") => false,
        Some("svg") => true,
        Some(_) => return Err(ApiError::bad_request("`format` must be `png` or `svg`")),
    };
    shared::db::images::find_owned(&state.api.db, user.id, id)
        .await?
        .ok_or(ApiError::NotFound("image"))?;
    let link = shared::db::share_links::live_for_image(&state.api.db, user.id, id)
        .await?
        .ok_or_else(|| ApiError::Conflict("The image is not shared: POST /api/v1/images/{id}/share first".into()))?;
    let url = page_url(&share_base(state, &req)?, &link.token);
    let (body, content_type) = if svg {
        (
            Body::Text(qr::qr_svg(&url).map_err(|e| ApiError::Internal(e.into()))?),
            "image/svg+xml",
        )
    } else {
        (
            Body::Binary(qr::qr_png(&url).map_err(|e| ApiError::Internal(e.into()))?),
            "image/png",
        )
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

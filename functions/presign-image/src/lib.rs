//! `GET /api/v1/images/{id}/presign?kind=original|staged|disclosed&download=1&expires_in=60..3600`:
//! a short-lived GET URL for one of the caller's photos, optionally as an attachment
//! (see [`shared::staging::views::presign_photo`]).

use shared::ApiError;
use shared::db::images;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok, path_uuid, query_param};
use shared::platform::state::StorageState;
use shared::staging::views::{PhotoKind, download_ttl, parse_download, presign_photo};

pub async fn handle(state: &StorageState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    let kind = PhotoKind::parse(query_param(&req, "kind")?)?;
    let download = parse_download(query_param(&req, "download")?)?;
    let ttl = download_ttl(query_param(&req, "expires_in")?)?;
    let image = images::find_owned(&state.api.db, user.id, id)
        .await?
        .ok_or(ApiError::NotFound("image"))?;
    ok(&presign_photo(&state.api.db, &state.storage, image, kind, download, ttl).await?)
}

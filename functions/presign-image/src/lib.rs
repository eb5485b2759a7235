//! `GET /api/v1/images/{id}/presign?kind=original|staged&download=1&expires_in=60..3600`:
//! a short-lived GET URL for one of the caller's photos, optionally as an attachment.

use serde::Serialize;
use shared::ApiError;
use shared::db::images;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok, path_uuid, query_param};
use shared::platform::state::StorageState;
use shared::serde;
use shared::staging::images::download_ttl;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Original,
    Staged,
}

impl Kind {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None | Some("original") => Ok(Kind::Original),
            Some("staged") => Ok(Kind::Staged),
            Some(_) => Err(ApiError::bad_request("`kind` must be `original` or `staged`")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Original => "original",
            Kind::Staged => "staged",
        }
    }
}

fn parse_download(raw: Option<&str>) -> Result<bool, ApiError> {
    match raw {
        None | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(_) => Err(ApiError::bad_request("`download` must be 1, true, 0 or false")),
    }
}

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct PresignedDownload {
    url: String,
    expires_in: u64,
}

pub async fn handle(state: &StorageState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let id = path_uuid(&req, "id")?;
    let kind = Kind::parse(query_param(&req, "kind")?)?;
    let download = parse_download(query_param(&req, "download")?)?;
    let ttl = download_ttl(query_param(&req, "expires_in")?)?;
    let image = images::find_owned(&state.api.db, user.id, id)
        .await?
        .ok_or(ApiError::NotFound("image"))?;
    let key = match kind {
        Kind::Original => image.original_key,
        Kind::Staged => image
            .staged_key
            .ok_or_else(|| ApiError::Conflict("The staged photo is not ready yet".into()))?,
    };
    // Keys are server-generated (`.../<uuid>.<ext>`), so the extension is safe to echo back.
    let ext = key.rsplit_once('.').map_or("jpg", |(_, ext)| ext);
    let filename = format!("{id}-{}.{ext}", kind.as_str());
    let presigned = state
        .storage
        .presign_download(&key, ttl, download.then_some(filename.as_str()))
        .await
        .map_err(|e| ApiError::unavailable("Storage is temporarily unavailable", e))?;
    ok(&PresignedDownload {
        url: presigned.url,
        expires_in: presigned.expires_in.as_secs(),
    })
}

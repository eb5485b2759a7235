//! Share links (docs/disclosure.md): creating one for a ready image or a whole project (idempotent:
//! the live link is answered again), revoking it, and the disclosed photo of an image link: the
//! staged photo with "Virtually staged · original: <short URL>" burned in.
//!
//! A token is 128 random bits (URL-safe base64, 22 characters): the only key to a public page.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use http::StatusCode;
use lambda_http::{Request, RequestExt};
use serde::Serialize;
use url::Url;
use uuid::Uuid;

use crate::clients::storage::{Storage, disclosed_key};
use crate::db::images::{Image, ImageStatus};
use crate::db::share_links::{self, ShareLink};
use crate::platform::error::ApiError;
use crate::platform::state::SharingState;
use crate::staging::imaging::{self, ImageLimits};

/// Random bytes in a token: 128 bits.
const TOKEN_BYTES: usize = 16;
/// The disclosed photo is re-encoded at the worker's default quality.
const DISCLOSED_JPEG_QUALITY: u8 = 90;
/// Staged photos are at most this big (the worker's re-encoded JPEG); more is not ours.
const STAGED_MAX_BYTES: usize = 25 * 1024 * 1024;
const DISCLOSED_CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// A fresh token: 128 bits from the operating system's CSPRNG.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ApiError::Internal(anyhow::anyhow!("no randomness available")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether text could be a token (checked before any query, so junk is a plain 404).
pub fn looks_like_token(raw: &str) -> bool {
    (22..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the share routes answer.
#[derive(Debug, Serialize)]
pub struct ShareView {
    /// The public page, e.g. `https://api.example.com/s/<token>`.
    pub url: String,
    pub token: String,
    /// `image` or `project`.
    pub scope: &'static str,
    pub project_id: Uuid,
    pub image_id: Option<Uuid>,
    /// The text burned into the disclosed photo (also good for a listing's remarks).
    pub disclosure_text: String,
    /// For an image link: the disclosed photo can be fetched with
    /// `GET /api/v1/images/{id}/presign?kind=disclosed`.
    pub disclosed_photo: bool,
    pub created_at: DateTime<Utc>,
}

impl ShareView {
    fn of(link: &ShareLink, base: &Url) -> Self {
        let url = page_url(base, &link.token);
        ShareView {
            disclosure_text: crate::sharing::label::disclosure_text(&url),
            url,
            token: link.token.clone(),
            scope: if link.image_id.is_some() { "image" } else { "project" },
            project_id: link.project_id,
            image_id: link.image_id,
            disclosed_photo: link.disclosed_key.is_some(),
            created_at: link.created_at,
        }
    }
}

/// `<base>/s/<token>`.
pub fn page_url(base: &Url, token: &str) -> String {
    format!("{}/s/{token}", base.as_str().trim_end_matches('/'))
}

/// Where share pages live: `SHARE_BASE_URL`, or else the host the request came in on (API
/// Gateway's domain name, https; the Host header locally, with its forwarded scheme).
pub fn share_base(state: &SharingState, req: &Request) -> Result<Url, ApiError> {
    if let Some(base) = &state.share_base {
        return Ok(base.clone());
    }
    let from_context = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
        _ => None,
    };
    let host = from_context
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .ok_or_else(|| ApiError::bad_request("The request has no host to build a share link on"))?;
    let scheme = match req.headers().get("x-forwarded-proto").and_then(|h| h.to_str().ok()) {
        Some("http") => "http",
        _ if host.starts_with("127.0.0.1") || host.starts_with("localhost") => "http",
        _ => "https",
    };
    Url::parse(&format!("{scheme}://{host}")).map_err(|_| ApiError::bad_request("The request's host is not valid"))
}

/// `POST /api/v1/images/{id}/share`: the image's live link (created when there is none: 201,
/// otherwise 200), with its disclosed photo made if it is missing.
pub async fn share_image(
    state: &SharingState,
    owner: Uuid,
    image_id: Uuid,
    base: &Url,
) -> Result<(StatusCode, ShareView), ApiError> {
    let image = crate::db::images::find_owned(&state.api.db, owner, image_id)
        .await?
        .ok_or(ApiError::NotFound("image"))?;
    if image.status != ImageStatus::Ready {
        return Err(ApiError::Conflict(
            "Only a ready image can be shared: its staged photo does not exist yet".into(),
        ));
    }
    let token = new_token()?;
    let mut link = share_links::ensure_for_image(&state.api.db, owner, image.project_id, image.id, &token).await?;
    let status = if link.token == token {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    if link.disclosed_key.is_none() {
        let key = store_disclosed_photo(&state.storage, &image, &link, base).await?;
        link.disclosed_key = share_links::set_disclosed_key(&state.api.db, link.id, &key).await?;
    }
    Ok((status, ShareView::of(&link, base)))
}

/// Renders and stores the disclosed photo of an image link; returns its key.
async fn store_disclosed_photo(
    storage: &Storage,
    image: &Image,
    link: &ShareLink,
    base: &Url,
) -> Result<String, ApiError> {
    let staged_key = image
        .staged_key
        .as_deref()
        .ok_or_else(|| ApiError::Conflict("The staged photo is not ready yet".into()))?;
    let staged = storage
        .get_bounded(staged_key, STAGED_MAX_BYTES)
        .await
        .map_err(|e| ApiError::unavailable("Storage is temporarily unavailable", e))?
        .ok_or_else(|| ApiError::Conflict("The staged photo is missing from storage".into()))?;
    let text = crate::sharing::label::disclosure_text(&page_url(base, &link.token));
    let rendered = tokio::task::spawn_blocking(move || {
        imaging::disclosed_variant(&staged, &text, &ImageLimits::MODEL_OUTPUT, DISCLOSED_JPEG_QUALITY)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("rendering the disclosed photo panicked: {e}")))?
    .map_err(|problem| ApiError::Internal(anyhow::anyhow!("the staged photo could not be labelled: {problem}")))?;
    let key = disclosed_key(image.user_id, image.id, link.id);
    storage
        .put(&key, rendered.bytes, "image/jpeg", DISCLOSED_CACHE_CONTROL)
        .await
        .map_err(|e| ApiError::unavailable("Storage is temporarily unavailable", e))?;
    Ok(key)
}

/// `GET /api/v1/projects/{id}/share`: the project's live link (created when there is none).
pub async fn share_project(
    state: &SharingState,
    owner: Uuid,
    project_id: Uuid,
    base: &Url,
) -> Result<(StatusCode, ShareView), ApiError> {
    crate::db::projects::find_owned(&state.api.db, owner, project_id)
        .await?
        .ok_or(ApiError::NotFound("project"))?;
    let token = new_token()?;
    let link = share_links::ensure_for_project(&state.api.db, owner, project_id, &token).await?;
    let status = if link.token == token {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ShareView::of(&link, base)))
}

/// `DELETE /api/v1/images/{id}/share` and `DELETE /api/v1/projects/{id}/share`: the page answers
/// 410 from now on; the disclosed photo (which names that page) is deleted. 404 when nothing of
/// the caller's was shared.
pub async fn revoke(
    state: &SharingState,
    owner: Uuid,
    project_id: Option<Uuid>,
    image_id: Option<Uuid>,
) -> Result<(), ApiError> {
    let link = share_links::revoke(&state.api.db, owner, project_id, image_id)
        .await?
        .ok_or(ApiError::NotFound("share link"))?;
    if let Some(key) = &link.disclosed_key
        && let Err(err) = state.storage.delete(key).await
    {
        // The page is already gone; the object stays listed on the link for the image's purge.
        tracing::warn!(error = %format!("{err:#}"), "could not delete a revoked link's disclosed photo");
    }
    Ok(())
}

/// The key of the image's disclosed photo, for `presign?kind=disclosed`: 409 until it is shared.
pub async fn disclosed_photo_key(db: &sqlx::PgPool, image: &Image) -> Result<String, ApiError> {
    share_links::live_for_image(db, image.user_id, image.id)
        .await?
        .and_then(|link| link.disclosed_key)
        .ok_or_else(|| {
            ApiError::Conflict(
                "The image has no disclosed photo: share it first (POST /api/v1/images/{id}/share)".into(),
            )
        })
}

/// How long the public page's image links last.
pub const PAGE_IMAGE_TTL: Duration = Duration::from_secs(15 * 60);

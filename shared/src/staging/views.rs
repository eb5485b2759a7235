//! Images as the API shows them: the image JSON with short-lived photo links, pages of a
//! project's images, the grouping by original photo, and links to download one photo.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::clients::storage::{DOWNLOAD_URL_TTL, Storage};
use crate::db::images::{Image, ImageStatus};
use crate::platform::error::ApiError;
use crate::staging::imaging::RenditionSize;
use crate::staging::renditions::{self, Photo};
use crate::staging::vocabulary::{Operation, RoomType, Style};

/// An image as the API shows it, with short-lived links to the photos.
#[derive(Debug, Serialize)]
pub struct ImageView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub status: ImageStatus,
    pub room_type: RoomType,
    pub operation: Operation,
    /// Null for operations that do not furnish (declutter, twilight).
    pub style: Option<Style>,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
    pub error: Option<String>,
    pub model_used: Option<String>,
    pub cost_usd: Option<f64>,
    pub processing_time_ms: Option<i32>,
    pub file_key: String,
    pub original_url: Option<String>,
    pub staged_url: Option<String>,
    /// The original at most 480 px on the long side, for grids; null until the renditions exist
    /// (`presign?kind=original_web` has the 1600 px one).
    pub original_preview_url: Option<String>,
    /// The result at most 480 px on the long side; null until it is ready with its renditions.
    pub staged_preview_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ImageView {
    /// Mints the GET links (local signing, no network call). A signing failure leaves the link
    /// out rather than failing the whole response.
    pub async fn build(image: Image, storage: &Storage) -> Self {
        let sign = |key: Option<&str>| {
            let key = key.map(str::to_string);
            async move {
                let key = key?;
                match storage.presign_download(&key, DOWNLOAD_URL_TTL, None).await {
                    Ok(p) => Some(p.url),
                    Err(err) => {
                        tracing::warn!(error = %format!("{err:#}"), "could not presign an image link");
                        None
                    }
                }
            }
        };
        let original_url = sign(Some(&image.original_key)).await;
        let staged_url = sign(image.staged_key.as_deref()).await;
        let rendition = |photo: Photo| {
            image
                .renditions_at
                .map(|_| renditions::key(image.user_id, image.id, photo, RenditionSize::Preview))
        };
        let original_preview_url = sign(rendition(Photo::Original).as_deref()).await;
        let staged_preview_url = sign(rendition(Photo::Staged).as_deref()).await;
        ImageView {
            id: image.id,
            project_id: image.project_id,
            status: image.status,
            room_type: image.room_type,
            operation: image.operation,
            style: image.style,
            seed: image.seed,
            prompt: image.prompt,
            error: image.error,
            model_used: image.model_used,
            cost_usd: image.cost_usd,
            processing_time_ms: image.processing_time_ms,
            file_key: image.original_key,
            original_url,
            staged_url,
            original_preview_url,
            staged_preview_url,
            created_at: image.created_at,
            updated_at: image.updated_at,
        }
    }
}

/// What a create of several images answers (a batch, or one photo with variations).
#[derive(Debug, Serialize)]
pub struct ImageBatch {
    pub images: Vec<ImageView>,
    pub success: usize,
    /// Always 0: a create is all or nothing, so a failure answers an error instead.
    pub failed: usize,
}

impl ImageBatch {
    pub async fn build(images: Vec<Image>, storage: &Storage) -> Self {
        let images = views(images, storage).await;
        ImageBatch {
            success: images.len(),
            failed: 0,
            images,
        }
    }
}

/// The 201 of a create of one request (`POST /api/v1/images`, `.../restage`): the image's view,
/// or the batch shape when the request made several variations.
pub async fn created_response(mut images: Vec<Image>, storage: &Storage) -> crate::platform::http::ApiResult {
    use http::StatusCode;
    if images.len() == 1
        && let Some(image) = images.pop()
    {
        return Ok(crate::platform::http::json_response(
            StatusCode::CREATED,
            &ImageView::build(image, storage).await,
        ));
    }
    Ok(crate::platform::http::json_response(
        StatusCode::CREATED,
        &ImageBatch::build(images, storage).await,
    ))
}

pub async fn views(images: Vec<Image>, storage: &Storage) -> Vec<ImageView> {
    let mut out = Vec::with_capacity(images.len());
    for image in images {
        out.push(ImageView::build(image, storage).await);
    }
    out
}

/// The page both project image lists answer (flat and grouped, so both page the same way): the
/// project from the path (`{id}`), `?limit=` and `?cursor=` from the query (see
/// [`crate::platform::pagination`]); the owner's live images newest first as views, and the
/// cursor of the next page. 404 when the project is not theirs (or missing, or deleted).
pub async fn requested_project_page(
    db: &sqlx::PgPool,
    storage: &Storage,
    owner: Uuid,
    req: &lambda_http::Request,
) -> Result<(Vec<ImageView>, Option<String>), ApiError> {
    let project_id = crate::platform::http::path_uuid(req, "id")?;
    let (limit, after) = crate::platform::pagination::page_params(req)?;
    if crate::db::projects::find_owned(db, owner, project_id).await?.is_none() {
        return Err(ApiError::NotFound("project"));
    }
    let page = crate::db::images::page_for_project(db, owner, project_id, limit, after.as_ref()).await?;
    Ok((views(page.items, storage).await, page.next.map(|c| c.encode())))
}

/// One original photo and the staged variants made from it.
#[derive(Debug, Serialize)]
pub struct ImageGroup {
    pub file_key: String,
    pub original_url: Option<String>,
    pub room_type: RoomType,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
    pub variants: Vec<ImageView>,
}

/// Groups views (already newest first) by original photo: groups ordered by their newest
/// variant, variants newest first, ties broken by id — the same input always gives the same output.
///
/// The grouped list is paged by images, like the flat list, so one page stays bounded however many
/// variants a photo has: a group whose older variants fall on the next page appears again there
/// (same `file_key`); merging pages by `file_key` gives exactly the unpaged grouping.
pub fn group_by_original(views: Vec<ImageView>) -> Vec<ImageGroup> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<ImageView>> = HashMap::new();
    for view in views {
        if !groups.contains_key(&view.file_key) {
            order.push(view.file_key.clone());
        }
        groups.entry(view.file_key.clone()).or_default().push(view);
    }
    order
        .into_iter()
        .filter_map(|key| {
            let variants = groups.remove(&key)?;
            let newest = variants.first()?;
            Some(ImageGroup {
                file_key: key,
                original_url: newest.original_url.clone(),
                room_type: newest.room_type,
                seed: newest.seed,
                prompt: newest.prompt.clone(),
                variants,
            })
        })
        .collect()
}

/// `?expires_in=` for download links: 60–3600 seconds, default 600.
pub fn download_ttl(raw: Option<&str>) -> Result<Duration, ApiError> {
    match raw {
        None => Ok(DOWNLOAD_URL_TTL),
        Some(raw) => match raw.parse::<u64>() {
            Ok(secs) if (60..=3600).contains(&secs) => Ok(Duration::from_secs(secs)),
            _ => Err(ApiError::bad_request(
                "`expires_in` must be an integer from 60 to 3600 (seconds)",
            )),
        },
    }
}

/// Which photo of an image a download link is for (`?kind=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoKind {
    Original,
    Staged,
    /// The staged photo with its burned-in disclosure label (once the image is shared).
    Disclosed,
    /// A rendition of the original or the result (once the image has its renditions).
    Rendition(Photo, RenditionSize),
}

impl PhotoKind {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None | Some("original") => Ok(PhotoKind::Original),
            Some("staged") => Ok(PhotoKind::Staged),
            Some("disclosed") => Ok(PhotoKind::Disclosed),
            Some("original_preview") => Ok(PhotoKind::Rendition(Photo::Original, RenditionSize::Preview)),
            Some("original_web") => Ok(PhotoKind::Rendition(Photo::Original, RenditionSize::Web)),
            Some("staged_preview") => Ok(PhotoKind::Rendition(Photo::Staged, RenditionSize::Preview)),
            Some("staged_web") => Ok(PhotoKind::Rendition(Photo::Staged, RenditionSize::Web)),
            Some(_) => Err(ApiError::bad_request(
                "`kind` must be `original`, `staged`, `disclosed`, `original_preview`, `original_web`, \
                 `staged_preview` or `staged_web`",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PhotoKind::Original => "original",
            PhotoKind::Staged => "staged",
            PhotoKind::Disclosed => "disclosed",
            PhotoKind::Rendition(Photo::Original, RenditionSize::Preview) => "original_preview",
            PhotoKind::Rendition(Photo::Original, RenditionSize::Web) => "original_web",
            PhotoKind::Rendition(Photo::Staged, RenditionSize::Preview) => "staged_preview",
            PhotoKind::Rendition(Photo::Staged, RenditionSize::Web) => "staged_web",
        }
    }
}

/// `?download=`: whether the link makes the browser save the file.
pub fn parse_download(raw: Option<&str>) -> Result<bool, ApiError> {
    match raw {
        None | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(_) => Err(ApiError::bad_request("`download` must be 1, true, 0 or false")),
    }
}

/// What `GET /api/v1/images/{id}/presign` answers.
#[derive(Debug, Serialize)]
pub struct PresignedDownload {
    pub url: String,
    pub expires_in: u64,
}

/// A GET link to one photo of the image, valid for `ttl`; with `download`, the browser saves it
/// as `<image id>-<kind>.<ext>`. 409 while the staged photo does not exist yet, and for the
/// disclosed photo until the image is shared.
pub async fn presign_photo(
    db: &sqlx::PgPool,
    storage: &Storage,
    image: Image,
    kind: PhotoKind,
    download: bool,
    ttl: Duration,
) -> Result<PresignedDownload, ApiError> {
    let key = match kind {
        PhotoKind::Original => image.original_key,
        PhotoKind::Staged => image
            .staged_key
            .ok_or_else(|| ApiError::Conflict("The staged photo is not ready yet".into()))?,
        PhotoKind::Disclosed => crate::sharing::links::disclosed_photo_key(db, &image).await?,
        // A result's renditions exist once the image is ready with them; an original's too.
        PhotoKind::Rendition(photo, size) => match image.renditions_at {
            Some(_) => renditions::key(image.user_id, image.id, photo, size),
            None => return Err(ApiError::Conflict("The image's smaller sizes are not made yet".into())),
        },
    };
    // Keys are server-generated (`.../<uuid>.<ext>`), so the extension is safe to echo back.
    let ext = key.rsplit_once('.').map_or("jpg", |(_, ext)| ext);
    let filename = format!("{}-{}.{ext}", image.id, kind.as_str());
    let presigned = storage
        .presign_download(&key, ttl, download.then_some(filename.as_str()))
        .await
        .map_err(|e| ApiError::unavailable("Storage is temporarily unavailable", e))?;
    Ok(PresignedDownload {
        url: presigned.url,
        expires_in: presigned.expires_in.as_secs(),
    })
}

//! Staging requests and images as the API shows them.
//!
//! Request bodies are parsed leniently (every field optional, text as text) and then validated
//! field by field, so a 422 lists every problem at once instead of serde's first one.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clients::storage::{DOWNLOAD_URL_TTL, ImageFormat, MAX_UPLOAD_BYTES, ObjectInfo, Storage, UploadKey};
use crate::db::images::Image;
use crate::platform::error::{ApiError, FieldError};
use crate::platform::pagination::Cursor;
use crate::staging::vocabulary::{RoomType, Style};

pub const MAX_BATCH: usize = 50;
pub const MAX_SEED: i64 = 4_294_967_295;

/// Body of `POST /api/v1/uploads/presign`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresignUploadBody {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub file_size: Option<i64>,
}

/// A validated upload request.
#[derive(Debug, Clone, Copy)]
pub struct UploadRequest {
    pub format: ImageFormat,
    pub size: u64,
}

impl PresignUploadBody {
    pub fn validate(self) -> Result<UploadRequest, ApiError> {
        let mut errors = Vec::new();
        let name_format = match self.filename.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push(FieldError::new("filename", "is required"));
                None
            }
            Some(name) if name.chars().count() > 255 => {
                errors.push(FieldError::new("filename", "must be at most 255 characters"));
                None
            }
            Some(name) if name.chars().any(char::is_control) => {
                errors.push(FieldError::new("filename", "must not contain control characters"));
                None
            }
            Some(name) => match ImageFormat::from_filename(name) {
                Some(format) => Some(format),
                None => {
                    errors.push(FieldError::new("filename", "must end in .jpg, .jpeg, .png or .webp"));
                    None
                }
            },
        };
        let type_format = match self.content_type.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push(FieldError::new("content_type", "is required"));
                None
            }
            Some(ct) => match ImageFormat::from_content_type(ct) {
                Some(format) => Some(format),
                None => {
                    errors.push(FieldError::new(
                        "content_type",
                        "must be image/jpeg, image/png or image/webp",
                    ));
                    None
                }
            },
        };
        if let (Some(by_name), Some(by_type)) = (name_format, type_format)
            && by_name != by_type
        {
            errors.push(FieldError::new(
                "content_type",
                format!(
                    "{} does not match the file extension (expected {})",
                    by_type.content_type(),
                    by_name.content_type()
                ),
            ));
        }
        let size = match self.file_size {
            None => {
                errors.push(FieldError::new("file_size", "is required"));
                None
            }
            Some(size) if size < 1 || size as u64 > MAX_UPLOAD_BYTES => {
                errors.push(FieldError::new(
                    "file_size",
                    format!("must be between 1 byte and {MAX_UPLOAD_BYTES} bytes (10 MiB)"),
                ));
                None
            }
            Some(size) => Some(size as u64),
        };
        match (type_format, size) {
            (Some(format), Some(size)) if errors.is_empty() => Ok(UploadRequest { format, size }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// One image to stage, as sent by the client (`POST /api/v1/images`, and each batch item).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateImageBody {
    pub project_id: Option<String>,
    pub file_key: Option<String>,
    pub room_type: Option<String>,
    pub style: Option<String>,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
}

/// Body of `POST /api/v1/images/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateImagesBatchBody {
    pub images: Vec<CreateImageBody>,
}

/// A create request whose fields are well-formed; ownership and storage are checked next.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    pub project_id: Uuid,
    pub file_key: UploadKey,
    pub room_type: RoomType,
    pub style: Style,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
}

impl CreateImageBody {
    /// Validates every field; errors are named with `prefix` (e.g. `images[3].`).
    pub fn validate(self, owner: Uuid, prefix: &str, errors: &mut Vec<FieldError>) -> Option<ImageRequest> {
        let field = |name: &str| format!("{prefix}{name}");
        let project_id = match self.project_id.as_deref() {
            None => {
                errors.push(FieldError::new(field("project_id"), "is required"));
                None
            }
            Some(raw) => Uuid::parse_str(raw.trim()).ok().or_else(|| {
                errors.push(FieldError::new(field("project_id"), "must be a UUID"));
                None
            }),
        };
        let file_key = match self.file_key.as_deref() {
            None => {
                errors.push(FieldError::new(field("file_key"), "is required"));
                None
            }
            Some(raw) => match UploadKey::parse(raw) {
                Some(key) if key.user_id == owner => Some(key),
                _ => {
                    errors.push(FieldError::new(
                        field("file_key"),
                        "must be a file_key returned to you by POST /api/v1/uploads/presign",
                    ));
                    None
                }
            },
        };
        let room_type = match self.room_type.as_deref() {
            None => {
                errors.push(FieldError::new(field("room_type"), "is required"));
                None
            }
            Some(raw) => raw
                .parse::<RoomType>()
                .map_err(|m| errors.push(FieldError::new(field("room_type"), m)))
                .ok(),
        };
        let style = match self.style.as_deref() {
            None => {
                errors.push(FieldError::new(field("style"), "is required"));
                None
            }
            Some(raw) => raw
                .parse::<Style>()
                .map_err(|m| errors.push(FieldError::new(field("style"), m)))
                .ok(),
        };
        if let Some(seed) = self.seed
            && !(1..=MAX_SEED).contains(&seed)
        {
            errors.push(FieldError::new(
                field("seed"),
                format!("must be between 1 and {MAX_SEED}"),
            ));
        }
        let prompt = match self.prompt.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) if !(10..=2000).contains(&p.chars().count()) => {
                errors.push(FieldError::new(
                    field("prompt"),
                    "must be between 10 and 2000 characters",
                ));
                None
            }
            Some(p) if p.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
                errors.push(FieldError::new(field("prompt"), "must not contain control characters"));
                None
            }
            Some(p) => Some(p.to_string()),
        };
        Some(ImageRequest {
            project_id: project_id?,
            file_key: file_key?,
            room_type: room_type?,
            style: style?,
            seed: self.seed,
            prompt,
        })
    }
}

/// Checks what HEAD says about an uploaded original: present, within limits, the right type.
pub fn check_uploaded(info: Option<&ObjectInfo>, key: &UploadKey) -> Result<(), &'static str> {
    let Some(info) = info else {
        return Err("no file has been uploaded with this key (PUT it to the upload_url first)");
    };
    if info.size == 0 || info.size > MAX_UPLOAD_BYTES {
        return Err("the uploaded file is empty or larger than 10 MiB");
    }
    let declared = info.content_type.as_deref().and_then(ImageFormat::from_content_type);
    if declared != Some(key.format) {
        return Err("the uploaded file's content type does not match its key");
    }
    Ok(())
}

/// An image as the API shows it, with short-lived links to the photos.
#[derive(Debug, Serialize)]
pub struct ImageView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub status: crate::db::images::ImageStatus,
    pub room_type: String,
    pub style: String,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
    pub error: Option<String>,
    pub model_used: Option<String>,
    pub cost_usd: Option<f64>,
    pub processing_time_ms: Option<i32>,
    pub file_key: String,
    pub original_url: Option<String>,
    pub staged_url: Option<String>,
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
        ImageView {
            id: image.id,
            project_id: image.project_id,
            status: image.status,
            room_type: image.room_type,
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
            created_at: image.created_at,
            updated_at: image.updated_at,
        }
    }
}

pub async fn views(images: Vec<Image>, storage: &Storage) -> Vec<ImageView> {
    let mut out = Vec::with_capacity(images.len());
    for image in images {
        out.push(ImageView::build(image, storage).await);
    }
    out
}

/// One page of the live images of the owner's project as views, newest first, and the cursor of
/// the next page; 404 when the project is not theirs (or missing, or deleted). Serves the flat and
/// the grouped list, so both page the same way (`?limit=`, `?cursor=`, see [`crate::platform::pagination`]).
pub async fn owned_project_views(
    db: &sqlx::PgPool,
    storage: &Storage,
    owner: Uuid,
    project_id: Uuid,
    limit: u32,
    after: Option<&Cursor>,
) -> Result<(Vec<ImageView>, Option<Cursor>), ApiError> {
    let page = crate::db::images::page_for_project(db, owner, project_id, limit, after)
        .await?
        .ok_or(ApiError::NotFound("project"))?;
    Ok((views(page.items, storage).await, page.next))
}

/// One original photo and the staged variants made from it.
#[derive(Debug, Serialize)]
pub struct ImageGroup {
    pub file_key: String,
    pub original_url: Option<String>,
    pub room_type: String,
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
                room_type: newest.room_type.clone(),
                seed: newest.seed,
                prompt: newest.prompt.clone(),
                variants,
            })
        })
        .collect()
}

/// Creates images and their jobs for validated requests, all or nothing:
///
/// 0. unless an operator paused staging (`staging_enabled` is false: 503, nothing reserved);
/// 1. one transaction takes each original's lock (`db::images::lock_original`, shared with the
///    reconciler's purge) and HEAD-checks it in storage (present, ≤ 10 MiB, the type its key
///    says): an original a purge deleted is reported gone (422), and one that is present cannot
///    be purged until the new images that use it are committed;
/// 2. the same transaction checks every project is the caller's (404 otherwise), reserves
///    allowance for every image (402 when it does not all fit), inserts the images and jobs;
/// 3. after commit, one SQS message per job; jobs SQS did not accept stay `enqueued_at IS NULL`
///    for the reconciler to re-send, and the request still succeeds (the work is recorded).
pub async fn create_images(
    db: &sqlx::PgPool,
    storage: &Storage,
    queue: &crate::staging::queue::JobQueue,
    owner: Uuid,
    requests: Vec<ImageRequest>,
    field_prefix: impl Fn(usize) -> String,
) -> Result<Vec<Image>, ApiError> {
    use crate::db::images::{
        NewImage, insert_with_jobs, lock_original, mark_enqueued, original_purged, owned_live_projects,
    };

    // The operator's switch (docs/admin.md): checked before anything is looked at or reserved.
    if !crate::admin::settings::staging_enabled(db).await? {
        return Err(ApiError::Unavailable {
            message: "Staging is paused by the operator; nothing was reserved. Please try again later.".into(),
            source: None,
        });
    }

    let mut tx = db.begin().await?;
    // Batches usually stage one upload in several styles: lock and HEAD each distinct key once,
    // in sorted order (two creates sharing uploads never wait on each other in a cycle). Under
    // the lock, a purge of the same original has either finished (the HEAD finds nothing) or
    // waits for this commit (and then sees the new images using it).
    let mut distinct: Vec<UploadKey> = requests.iter().map(|r| r.file_key).collect();
    distinct.sort_by_key(|key| key.to_string());
    distinct.dedup();
    let mut heads: HashMap<UploadKey, Option<ObjectInfo>> = HashMap::new();
    let mut purged: Vec<UploadKey> = Vec::new();
    for key in distinct {
        let name = key.to_string();
        lock_original(&mut tx, &name).await?;
        let info = storage
            .head(&name)
            .await
            .map_err(|e| ApiError::unavailable("Storage is temporarily unavailable", e))?;
        if info.is_none() && original_purged(&mut tx, &name).await? {
            purged.push(key);
        }
        heads.insert(key, info);
    }
    let mut errors = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        let checked = if purged.contains(&request.file_key) {
            Err(
                "this upload was deleted together with the images made from it; upload the photo again \
                 (POST /api/v1/uploads/presign)",
            )
        } else {
            check_uploaded(heads[&request.file_key].as_ref(), &request.file_key)
        };
        if let Err(message) = checked {
            errors.push(FieldError::new(format!("{}file_key", field_prefix(i)), message));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let items: Vec<NewImage> = requests
        .iter()
        .map(|r| {
            let info = heads[&r.file_key].as_ref().expect("checked above");
            NewImage {
                project_id: r.project_id,
                original_key: r.file_key.to_string(),
                original_content_type: r.file_key.format.content_type().to_string(),
                original_size_bytes: info.size as i64,
                room_type: r.room_type.as_str().to_string(),
                style: r.style.as_str().to_string(),
                seed: r.seed,
                prompt: r.prompt.clone(),
            }
        })
        .collect();
    let image_ids: Vec<Uuid> = items.iter().map(|_| Uuid::new_v4()).collect();

    let mut project_ids: Vec<Uuid> = items.iter().map(|i| i.project_id).collect();
    project_ids.sort();
    project_ids.dedup();
    let owned = owned_live_projects(&mut tx, owner, &project_ids).await?;
    if owned.len() != project_ids.len() {
        return Err(ApiError::NotFound("project"));
    }
    crate::billing::usage::reserve(&mut tx, owner, &image_ids).await?;
    let (images, messages) = insert_with_jobs(&mut tx, owner, &image_ids, &items).await?;
    tx.commit().await?;

    let accepted = queue.send(&messages).await;
    if accepted.len() < messages.len() {
        tracing::warn!(
            sent = accepted.len(),
            total = messages.len(),
            "some staging jobs were not queued; the reconciler will re-send them"
        );
    }
    // The images exist and are paid for whatever happens here; a failure to record the send only
    // means the reconciler may send a duplicate, which the worker's guarded claim ignores.
    if let Err(err) = mark_enqueued(db, &accepted).await {
        tracing::warn!(error = %err, "could not record which jobs were queued");
    }
    Ok(images)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn presign(json: &str) -> Result<UploadRequest, ApiError> {
        serde_json::from_str::<PresignUploadBody>(json).unwrap().validate()
    }

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn presign_lists_every_bad_field() {
        assert!(presign(r#"{"filename":"room.JPG","content_type":"image/jpeg","file_size":1}"#).is_ok());
        assert_eq!(
            fields(presign("{}").unwrap_err()),
            vec!["filename", "content_type", "file_size"]
        );
        assert_eq!(
            fields(presign(r#"{"filename":"a.gif","content_type":"text/html","file_size":10485761}"#).unwrap_err()),
            vec!["filename", "content_type", "file_size"]
        );
        assert_eq!(
            fields(presign(r#"{"filename":"a.png","content_type":"image/jpeg","file_size":5}"#).unwrap_err()),
            vec!["content_type"]
        );
        assert!(presign(r#"{"filename":"a.webp","content_type":"image/webp","file_size":10485760}"#).is_ok());
        assert_eq!(
            fields(presign(r#"{"filename":"a.png","content_type":"image/png","file_size":0}"#).unwrap_err()),
            vec!["file_size"]
        );
    }

    #[test]
    fn image_requests_are_validated_field_by_field() {
        let owner = Uuid::new_v4();
        let key = UploadKey::generate(owner, ImageFormat::Jpeg).to_string();
        let foreign = UploadKey::generate(Uuid::new_v4(), ImageFormat::Jpeg).to_string();
        let mut errors = Vec::new();
        let ok = CreateImageBody {
            project_id: Some(Uuid::new_v4().to_string()),
            file_key: Some(key),
            room_type: Some("bedroom".into()),
            style: Some("modern".into()),
            seed: Some(42),
            prompt: None,
        };
        assert!(ok.validate(owner, "", &mut errors).is_some());
        assert!(errors.is_empty());
        let bad = CreateImageBody {
            project_id: Some("nope".into()),
            file_key: Some(foreign),
            room_type: Some("garage".into()),
            style: Some("baroque".into()),
            seed: Some(0),
            prompt: Some("short".into()),
        };
        assert!(bad.validate(owner, "images[2].", &mut errors).is_none());
        let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "images[2].project_id",
                "images[2].file_key",
                "images[2].room_type",
                "images[2].style",
                "images[2].seed",
                "images[2].prompt"
            ]
        );
    }
}

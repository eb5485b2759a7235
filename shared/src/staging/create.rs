//! Creating images: the one path every create takes (single and batch), from checked requests
//! to committed images, reserved allowance and queued jobs.

use std::collections::HashMap;

use uuid::Uuid;

use crate::clients::storage::{ObjectInfo, Storage, UploadKey};
use crate::db::images::Image;
use crate::platform::error::{ApiError, FieldError};
use crate::staging::queue::{JobMessage, JobQueue};
use crate::staging::requests::ImageRequest;
use crate::staging::uploads::check_uploaded;

/// Creates images and their jobs for validated requests, all or nothing:
///
/// 0. unless an operator paused staging (`staging_enabled` is false: 503, nothing reserved), and
///    only for operations the active model can do (422 otherwise);
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
    queue: &JobQueue,
    owner: Uuid,
    requests: Vec<ImageRequest>,
    field_prefix: impl Fn(usize) -> String,
) -> Result<Vec<Image>, ApiError> {
    use crate::db::images::{NewImage, lock_original, original_purged};

    // The operator's switch (docs/admin.md): checked before anything is looked at or reserved.
    if !crate::admin::settings::staging_enabled(db).await? {
        return Err(ApiError::Unavailable {
            message: "Staging is paused by the operator; nothing was reserved. Please try again later.".into(),
            source: None,
        });
    }

    // Each operation is offered by the models that can do it (the registry says which): refused
    // here, before anything is reserved, when the model jobs will run on cannot.
    let active = crate::db::settings::active_model(db).await?;
    let spec = crate::models::find(active.as_deref().unwrap_or(crate::models::DEFAULT_MODEL_ID));
    if let Some(spec) = spec {
        let errors: Vec<FieldError> = requests
            .iter()
            .enumerate()
            .filter(|(_, r)| !spec.can(r.treatment.operation()))
            .map(|(i, r)| {
                let offered: Vec<&str> = spec.operations.iter().map(|(op, _)| op.as_str()).collect();
                FieldError::new(
                    format!("{}operation", field_prefix(i)),
                    format!(
                        "the current staging model ({}) cannot {}; it offers: {}",
                        spec.display_name,
                        r.treatment.operation(),
                        offered.join(", ")
                    ),
                )
            })
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
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
    // One image per variation: all of them are reserved, inserted and queued together.
    let items: Vec<NewImage> = requests
        .iter()
        .flat_map(|r| {
            let info = heads[&r.file_key].as_ref().expect("checked above");
            r.seeds().into_iter().map(move |seed| NewImage {
                project_id: r.project_id,
                original_key: r.file_key.to_string(),
                original_content_type: r.file_key.format.content_type().to_string(),
                original_size_bytes: info.size as i64,
                room_type: r.room_type,
                treatment: r.treatment,
                seed,
                prompt: r.prompt.clone(),
            })
        })
        .collect();
    let image_ids: Vec<Uuid> = items.iter().map(|_| Uuid::new_v4()).collect();

    let mut project_ids: Vec<Uuid> = items.iter().map(|i| i.project_id).collect();
    project_ids.sort();
    project_ids.dedup();
    let owned = crate::db::projects::lock_owned_live(&mut tx, owner, &project_ids).await?;
    if owned.len() != project_ids.len() {
        return Err(ApiError::NotFound("project"));
    }
    crate::billing::usage::reserve(&mut tx, owner, &image_ids).await?;
    let mut images = Vec::with_capacity(items.len());
    let mut messages = Vec::with_capacity(items.len());
    for (id, item) in image_ids.iter().zip(&items) {
        let image = crate::db::images::insert(&mut tx, owner, *id, item).await?;
        // The job's id is chosen here so the message it is queued with is stored with it.
        let message = JobMessage::new(Uuid::new_v4(), image.id);
        crate::db::jobs::insert(&mut tx, message.job_id, message.image_id, &message.to_json()).await?;
        messages.push(message);
        images.push(image);
    }
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
    if let Err(err) = crate::db::jobs::mark_enqueued(db, &accepted).await {
        tracing::warn!(error = %err, "could not record which jobs were queued");
    }
    Ok(images)
}

/// One request (`POST /api/v1/images`, `POST /api/v1/images/{id}/restage`) created and answered:
/// 201 with the image's view, or the batch shape when it made several variations.
pub async fn create_one(
    state: &crate::platform::state::StagingState,
    owner: Uuid,
    request: ImageRequest,
) -> crate::platform::http::ApiResult {
    let images = create_images(
        &state.api.db,
        &state.storage,
        &state.queue,
        owner,
        vec![request],
        |_| String::new(),
    )
    .await?;
    crate::staging::views::created_response(images, &state.storage).await
}

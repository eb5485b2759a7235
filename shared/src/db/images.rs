use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::platform::pagination::{Cursor, Page};
use crate::staging::vocabulary::{Operation, RoomType, Style, Treatment};

/// An image's staging status, as stored in `images.status` (text with a CHECK constraint):
/// `queued → processing → ready | error`. Typed from the row to the JSON, never compared as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ImageStatus {
    Queued,
    Processing,
    Ready,
    Error,
}

impl ImageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Queued => "queued",
            ImageStatus::Processing => "processing",
            ImageStatus::Ready => "ready",
            ImageStatus::Error => "error",
        }
    }

    /// `ready` and `error` are final: nothing changes after them.
    pub fn is_terminal(self) -> bool {
        matches!(self, ImageStatus::Ready | ImageStatus::Error)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct Image {
    pub id: Uuid,
    pub project_id: Uuid,
    pub user_id: Uuid,
    pub original_key: String,
    pub staged_key: Option<String>,
    pub room_type: RoomType,
    pub operation: Operation,
    /// Set exactly when the operation furnishes the room (`images_style_fits_operation`).
    pub style: Option<Style>,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
    pub status: ImageStatus,
    pub error: Option<String>,
    pub model_used: Option<String>,
    pub cost_usd: Option<f64>,
    pub processing_time_ms: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the four renditions were stored (`shared::staging::renditions`); `None` before.
    pub renditions_at: Option<DateTime<Utc>>,
}

impl Image {
    /// The image's operation and style, as the `images_style_fits_operation` CHECK guarantees they
    /// pair; `None` only for a row that constraint would have refused.
    pub fn treatment(&self) -> Option<Treatment> {
        Treatment::new(self.operation, self.style).ok()
    }
}

macro_rules! columns {
    () => {
        "i.id, i.project_id, i.user_id, i.original_key, i.staged_key, i.room_type, i.operation, i.style, i.seed, i.prompt, \
         i.status, i.error, i.model_used, i.cost_usd::float8 AS cost_usd, i.processing_time_ms, i.created_at, i.updated_at, \
         i.renditions_at"
    };
}
pub(crate) use columns;

/// One image to create, already validated.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub project_id: Uuid,
    pub original_key: String,
    pub original_content_type: String,
    pub original_size_bytes: i64,
    pub room_type: RoomType,
    pub treatment: Treatment,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
}

/// Inserts one image (its job is inserted next, in the same transaction, by `db::jobs::insert`).
pub async fn insert(conn: &mut PgConnection, owner: Uuid, id: Uuid, item: &NewImage) -> Result<Image, sqlx::Error> {
    const SQL: &str = concat!(
        "WITH i AS (INSERT INTO images (id, project_id, user_id, original_key, original_content_type, \
         original_size_bytes, room_type, operation, style, seed, prompt) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *) SELECT ",
        columns!(),
        " FROM i"
    );
    sqlx::query_as(SQL)
        .bind(id)
        .bind(item.project_id)
        .bind(owner)
        .bind(&item.original_key)
        .bind(&item.original_content_type)
        .bind(item.original_size_bytes)
        .bind(item.room_type)
        .bind(item.treatment.operation())
        .bind(item.treatment.style())
        .bind(item.seed)
        .bind(&item.prompt)
        .fetch_one(&mut *conn)
        .await
}

/// The owner's live image.
pub async fn find_owned(db: &PgPool, owner: Uuid, id: Uuid) -> Result<Option<Image>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM images i WHERE i.id = $1 AND i.user_id = $2 AND i.deleted_at IS NULL"
    );
    sqlx::query_as(SQL).bind(id).bind(owner).fetch_optional(db).await
}

/// One page of the owner's live images in a project, newest first (ties broken by id so pages
/// never overlap or skip). The caller checks the project is theirs and live.
pub async fn page_for_project(
    db: &PgPool,
    owner: Uuid,
    project_id: Uuid,
    limit: u32,
    after: Option<&Cursor>,
) -> Result<Page<Image>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM images i WHERE i.project_id = $1 AND i.user_id = $2 AND i.deleted_at IS NULL \
           AND ($3::timestamptz IS NULL OR (i.created_at, i.id) < ($3, $4)) \
         ORDER BY i.created_at DESC, i.id DESC LIMIT $5"
    );
    let rows: Vec<Image> = sqlx::query_as(SQL)
        .bind(project_id)
        .bind(owner)
        .bind(after.map(|c| c.created_at))
        .bind(after.map(|c| c.id))
        .bind(i64::from(limit) + 1)
        .fetch_all(db)
        .await?;
    Ok(Page::from_rows_plus_one(rows, limit, |row| Cursor {
        created_at: row.created_at,
        id: row.id,
    }))
}

/// Soft-deletes the owner's image; its storage objects are purged later (`purged_at`).
/// Usage history is untouched. Returns false when there was nothing of the owner's to delete.
pub async fn soft_delete_owned(db: &PgPool, owner: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted =
        sqlx::query("UPDATE images SET deleted_at = now() WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL")
            .bind(id)
            .bind(owner)
            .execute(db)
            .await?
            .rows_affected();
    Ok(deleted == 1)
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ProjectCost {
    pub project_id: Uuid,
    pub total_cost_usd: f64,
    pub image_count: i64,
    pub avg_cost_usd: f64,
}

/// Model spend of the owner's images in a project (the caller checks the project is theirs).
/// Deleted images count: the money was spent.
pub async fn project_cost(db: &PgPool, owner: Uuid, project_id: Uuid) -> Result<ProjectCost, sqlx::Error> {
    sqlx::query_as(
        "SELECT $1::uuid AS project_id, COALESCE(SUM(cost_usd), 0)::float8 AS total_cost_usd, \
                    COUNT(*)::bigint AS image_count, COALESCE(AVG(cost_usd), 0)::float8 AS avg_cost_usd \
             FROM images WHERE project_id = $1 AND user_id = $2",
    )
    .bind(project_id)
    .bind(owner)
    .fetch_one(db)
    .await
}

/// A deleted image whose storage objects are still to be removed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PurgeCandidate {
    pub id: Uuid,
    pub user_id: Uuid,
    pub original_key: String,
    pub staged_key: Option<String>,
    /// Another image that is not deleted still points at the same original photo (variants of
    /// one upload share it), so the original must stay. Decided under [`lock_original`], so no
    /// create using the same upload can be halfway through.
    pub original_in_use: bool,
    /// Its renditions were stored (`renditions_at`), so their objects go too.
    pub renditions: bool,
}

/// Serializes everything that decides an uploaded original's fate: a create that makes an image
/// of it, and the purge that deletes it once no live image uses it. A transaction-scoped
/// advisory lock on the key (two-key form, in a class of its own), held until commit.
/// Callers taking several lock them in sorted order.
pub async fn lock_original(conn: &mut PgConnection, original_key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('images.original_key'), hashtext($1))")
        .bind(original_key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether the original `original_key` was deleted by a purge: a purged image of it exists and
/// no live image does. Under [`lock_original`], this is settled.
pub async fn original_purged(conn: &mut PgConnection, original_key: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM images WHERE original_key = $1 AND purged_at IS NOT NULL) \
            AND NOT EXISTS (SELECT 1 FROM images WHERE original_key = $1 AND deleted_at IS NULL)",
    )
    .bind(original_key)
    .fetch_one(&mut *conn)
    .await
}

/// Deleted, not yet purged images that no worker is busy with (oldest deletion first). Each is
/// then taken with [`lock_purgeable`] in its own transaction.
pub async fn purgeable(db: &PgPool, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT i.id FROM images i \
         WHERE i.deleted_at IS NOT NULL AND i.purged_at IS NULL \
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.image_id = i.id AND j.status IN ('queued', 'processing') \
                           AND j.lease_until > now()) \
         ORDER BY i.deleted_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Takes one purge candidate for this transaction: the image row (`SKIP LOCKED`: a second
/// reconciler skips it; `None` also when it is no longer purgeable), then its original's lock
/// ([`lock_original`]), and only then decides whether the original is still in use, so a create
/// of the same upload either committed before (and keeps it) or waits and finds it gone.
pub async fn lock_purgeable(conn: &mut PgConnection, id: Uuid) -> Result<Option<PurgeCandidate>, sqlx::Error> {
    let image: Option<(Uuid, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT i.user_id, i.original_key, i.staged_key, i.renditions_at IS NOT NULL FROM images i \
         WHERE i.id = $1 AND i.deleted_at IS NOT NULL AND i.purged_at IS NULL \
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.image_id = i.id AND j.status IN ('queued', 'processing') \
                           AND j.lease_until > now()) \
         FOR UPDATE OF i SKIP LOCKED",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((user_id, original_key, staged_key, renditions)) = image else {
        return Ok(None);
    };
    lock_original(&mut *conn, &original_key).await?;
    // A statement after the lock: it sees every create that committed before the lock was ours.
    let original_in_use: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM images WHERE original_key = $1 AND id <> $2 AND deleted_at IS NULL)",
    )
    .bind(&original_key)
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(PurgeCandidate {
        id,
        user_id,
        original_key,
        staged_key,
        original_in_use,
        renditions,
    }))
}

/// Records that an image's objects are gone.
pub async fn mark_purged(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE images SET purged_at = now() WHERE id = $1 AND deleted_at IS NOT NULL")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ready, live images whose renditions were never stored (staged before renditions existed),
/// oldest first: the reconciler's backfill.
pub async fn renditions_pending(db: &PgPool, limit: i64) -> Result<Vec<Image>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM images i WHERE i.status = 'ready' AND i.renditions_at IS NULL AND i.deleted_at IS NULL \
         ORDER BY i.updated_at, i.id LIMIT $1"
    );
    sqlx::query_as(SQL).bind(limit).fetch_all(db).await
}

/// Records that an image's four renditions exist (idempotent: the first time stays).
pub async fn mark_renditions(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE images SET renditions_at = coalesce(renditions_at, now()) WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

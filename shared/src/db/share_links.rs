//! `share_links`: public disclosure pages (`GET /s/{token}`) of one image or a whole project.
//! Owner-facing queries take the owner's id; the public page finds a link by its token only.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::db::images::Image;

#[derive(Debug, Clone, FromRow)]
pub struct ShareLink {
    pub id: Uuid,
    pub token: String,
    pub user_id: Uuid,
    pub project_id: Uuid,
    /// `None`: the whole project is shared.
    pub image_id: Option<Uuid>,
    pub disclosed_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

macro_rules! columns {
    () => {
        "id, token, user_id, project_id, image_id, disclosed_key, created_at, revoked_at"
    };
}

/// The live link of the owner's image, creating it with `token` when there is none. Two racing
/// shares of one image get the same link: the partial unique index lets one insert win and the
/// other reads the winner.
pub async fn ensure_for_image(
    db: &PgPool,
    owner: Uuid,
    project_id: Uuid,
    image_id: Uuid,
    token: &str,
) -> Result<ShareLink, sqlx::Error> {
    let inserted: Option<ShareLink> = sqlx::query_as(concat!(
        "INSERT INTO share_links (token, user_id, project_id, image_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (image_id) WHERE revoked_at IS NULL AND image_id IS NOT NULL DO NOTHING \
         RETURNING ",
        columns!()
    ))
    .bind(token)
    .bind(owner)
    .bind(project_id)
    .bind(image_id)
    .fetch_optional(db)
    .await?;
    match inserted {
        Some(link) => Ok(link),
        None => {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM share_links WHERE image_id = $1 AND user_id = $2 AND revoked_at IS NULL"
            ))
            .bind(image_id)
            .bind(owner)
            .fetch_one(db)
            .await
        }
    }
}

/// The live link of the owner's project, creating it with `token` when there is none.
pub async fn ensure_for_project(
    db: &PgPool,
    owner: Uuid,
    project_id: Uuid,
    token: &str,
) -> Result<ShareLink, sqlx::Error> {
    let inserted: Option<ShareLink> = sqlx::query_as(concat!(
        "INSERT INTO share_links (token, user_id, project_id) VALUES ($1, $2, $3) \
         ON CONFLICT (project_id) WHERE revoked_at IS NULL AND image_id IS NULL DO NOTHING \
         RETURNING ",
        columns!()
    ))
    .bind(token)
    .bind(owner)
    .bind(project_id)
    .fetch_optional(db)
    .await?;
    match inserted {
        Some(link) => Ok(link),
        None => {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM share_links \
             WHERE project_id = $1 AND user_id = $2 AND image_id IS NULL AND revoked_at IS NULL"
            ))
            .bind(project_id)
            .bind(owner)
            .fetch_one(db)
            .await
        }
    }
}

/// The live link of the owner's image, if any.
pub async fn live_for_image(db: &PgPool, owner: Uuid, image_id: Uuid) -> Result<Option<ShareLink>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM share_links WHERE image_id = $1 AND user_id = $2 AND revoked_at IS NULL"
    ))
    .bind(image_id)
    .bind(owner)
    .fetch_optional(db)
    .await
}

/// Records the disclosed photo of a live image link (first writer wins; returns the key kept).
pub async fn set_disclosed_key(db: &PgPool, link_id: Uuid, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE share_links SET disclosed_key = coalesce(disclosed_key, $2) WHERE id = $1 AND revoked_at IS NULL \
         RETURNING disclosed_key",
    )
    .bind(link_id)
    .bind(key)
    .fetch_optional(db)
    .await
    .map(Option::flatten)
}

/// Revokes the owner's live link of an image, or of a project (`image_id` `None`). Returns the
/// revoked link (its disclosed photo is deleted next), `None` when nothing was shared.
pub async fn revoke(
    db: &PgPool,
    owner: Uuid,
    project_id: Option<Uuid>,
    image_id: Option<Uuid>,
) -> Result<Option<ShareLink>, sqlx::Error> {
    sqlx::query_as(concat!("UPDATE share_links SET revoked_at = now() \
         WHERE user_id = $1 AND revoked_at IS NULL \
           AND (($3::uuid IS NOT NULL AND image_id = $3) OR ($3::uuid IS NULL AND image_id IS NULL AND project_id = $2)) \
         RETURNING ", columns!()))
    .bind(owner)
    .bind(project_id)
    .bind(image_id)
    .fetch_optional(db)
    .await
}

/// A link by its token, revoked or not (the page tells 410 from 404).
pub async fn by_token(db: &PgPool, token: &str) -> Result<Option<ShareLink>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", columns!(), " FROM share_links WHERE token = $1"))
        .bind(token)
        .fetch_optional(db)
        .await
}

/// What a public page shows: the project's name (`None` when the project was deleted) and its
/// live, ready images (only `image_id` for an image link), grouped by original, newest first.
pub async fn page_contents(
    db: &PgPool,
    link: &ShareLink,
    limit: i64,
) -> Result<(Option<String>, Vec<Image>), sqlx::Error> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM projects WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL")
            .bind(link.project_id)
            .bind(link.user_id)
            .fetch_optional(db)
            .await?;
    if name.is_none() {
        return Ok((None, Vec::new()));
    }
    let images: Vec<Image> = sqlx::query_as(concat!(
        "SELECT ",
        crate::db::images::columns!(),
        " FROM images i WHERE i.project_id = $1 AND i.user_id = $2 AND i.deleted_at IS NULL \
           AND i.status = 'ready' AND ($3::uuid IS NULL OR i.id = $3) \
         ORDER BY max(i.created_at) OVER (PARTITION BY i.original_key) DESC, i.original_key, i.created_at DESC, i.id DESC \
         LIMIT $4"
    ))
    .bind(link.project_id)
    .bind(link.user_id)
    .bind(link.image_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok((name, images))
}

/// The disclosed photos of an image's links, revoked or not, for the purge.
pub async fn disclosed_keys_of_image(conn: &mut PgConnection, image_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT disclosed_key FROM share_links WHERE image_id = $1 AND disclosed_key IS NOT NULL")
        .bind(image_id)
        .fetch_all(&mut *conn)
        .await
}

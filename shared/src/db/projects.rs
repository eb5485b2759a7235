use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::platform::pagination::{Cursor, Page};
use crate::projects::ProjectName;

#[derive(Debug, Clone, FromRow)]
pub struct Project {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! columns {
    () => {
        "id, user_id, name, created_at, updated_at"
    };
}

pub async fn create(db: &PgPool, owner: Uuid, name: &ProjectName) -> Result<Project, sqlx::Error> {
    const SQL: &str = concat!(
        "INSERT INTO projects (user_id, name) VALUES ($1, $2) RETURNING ",
        columns!()
    );
    Ok(sqlx::query_as(SQL)
        .bind(owner)
        .bind(name.as_str())
        .fetch_one(db)
        .await?)
}

/// The owner's live project, or `None` when it does not exist, was deleted, or is someone else's.
pub async fn find_owned(db: &PgPool, owner: Uuid, id: Uuid) -> Result<Option<Project>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM projects WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"
    );
    Ok(sqlx::query_as(SQL).bind(id).bind(owner).fetch_optional(db).await?)
}

/// The ids of the owner's live projects among `ids`, share-locked until the transaction ends so
/// none can be deleted while images are being added to it.
pub async fn lock_owned_live(
    conn: &mut sqlx::PgConnection,
    owner: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM projects WHERE id = ANY($1) AND user_id = $2 AND deleted_at IS NULL FOR SHARE")
        .bind(ids)
        .bind(owner)
        .fetch_all(&mut *conn)
        .await
}

/// One page of the owner's projects, newest first (ties broken by id so pages never overlap).
pub async fn list_owned(
    db: &PgPool,
    owner: Uuid,
    limit: u32,
    after: Option<&Cursor>,
) -> Result<Page<Project>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM projects \
         WHERE user_id = $1 AND deleted_at IS NULL \
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let rows: Vec<Project> = sqlx::query_as(SQL)
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

pub async fn rename_owned(
    db: &PgPool,
    owner: Uuid,
    id: Uuid,
    name: &ProjectName,
) -> Result<Option<Project>, sqlx::Error> {
    const SQL: &str = concat!(
        "UPDATE projects SET name = $3 WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL RETURNING ",
        columns!()
    );
    Ok(sqlx::query_as(SQL)
        .bind(id)
        .bind(owner)
        .bind(name.as_str())
        .fetch_optional(db)
        .await?)
}

/// Soft-deletes the owner's project and its images in one transaction. The images' storage
/// objects are purged later by the reconciler; the usage ledger is never touched.
/// Returns false when there was nothing of the owner's to delete.
pub async fn delete_owned(db: &PgPool, owner: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let deleted =
        sqlx::query("UPDATE projects SET deleted_at = now() WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL")
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE images SET deleted_at = now() WHERE project_id = $1 AND user_id = $2 AND deleted_at IS NULL")
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

//! The append-only `usage_ledger`: one row per reserved or refunded image, never updated or
//! deleted, so deleting an image or a project can never lower what was used.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Images used by the user in `[start, end)` (reservations minus refunds).
pub async fn units_used(
    conn: &mut PgConnection,
    user_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(units), 0)::bigint FROM usage_ledger WHERE user_id = $1 AND period_at >= $2 AND period_at < $3",
    )
    .bind(user_id)
    .bind(start)
    .bind(end)
    .fetch_one(&mut *conn)
    .await
}

/// One `reserve` row per image, dated now (inside the create's transaction).
pub async fn insert_reservations(
    conn: &mut PgConnection,
    user_id: Uuid,
    image_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO usage_ledger (user_id, image_id, kind, units, period_at, reason) \
         SELECT $1, image_id, 'reserve', 1, now(), 'image created' FROM UNNEST($2::uuid[]) AS t(image_id)",
    )
    .bind(user_id)
    .bind(image_ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The database's clock (the one every ledger row is dated with).
pub async fn now(conn: &mut PgConnection) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar("SELECT now()").fetch_one(&mut *conn).await
}

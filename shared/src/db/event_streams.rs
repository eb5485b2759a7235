//! Leases on the long-poll waits of `GET /api/v1/events` (table `event_stream_leases`): a user may
//! hold only a few waiting requests at once (docs/events.md, "Limits").

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Advisory-lock class of "one user's event stream leases" (the two-key form; the other key is
/// the user id's hash). Serialises the count-then-insert per user, so two requests racing for the
/// last slot cannot both get it.
const LOCK_CLASS: i32 = 0x6576; // "ev"

/// The answer to a request for a lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Lease {
    /// Granted: delete it with [`release`] when the wait ends.
    Granted(Uuid),
    /// The user already holds `cap` live leases; the oldest was taken at `oldest_taken_at`.
    Full { oldest_taken_at: DateTime<Utc> },
}

/// Takes one of the user's `cap` lease slots for up to `lifetime`; a lease whose `expires_at` has
/// passed (its instance died mid-wait) is swept first and no longer counts.
pub async fn acquire(db: &PgPool, user_id: Uuid, cap: i64, lifetime: Duration) -> Result<Lease, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(LOCK_CLASS)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM event_stream_leases WHERE user_id = $1 AND expires_at <= now()")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let (held, oldest): (i64, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT count(*), min(created_at) FROM event_stream_leases WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
    if held >= cap {
        tx.commit().await?;
        return Ok(Lease::Full {
            oldest_taken_at: oldest.unwrap_or_else(Utc::now),
        });
    }
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO event_stream_leases (user_id, expires_at) \
         VALUES ($1, now() + make_interval(secs => $2)) RETURNING id",
    )
    .bind(user_id)
    .bind(lifetime.as_secs_f64())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Lease::Granted(id))
}

/// Frees a lease (the wait is over). Idempotent.
pub async fn release(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM event_stream_leases WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

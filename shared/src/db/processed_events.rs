//! `processed_events`: every provider event applied (or deliberately not applied), recorded once
//! by (source, event id), so a redelivery is recognised and changes nothing.

use serde_json::Value;
use uuid::Uuid;

/// Records a Stripe event; `None` when it was recorded before (a duplicate delivery). Inside the
/// webhook's transaction, a concurrent delivery of the same event waits here until this one
/// commits or rolls back.
pub async fn record_stripe<'e>(
    db: impl sqlx::PgExecutor<'e>,
    event_id: &str,
    kind: &str,
    payload: &Value,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO processed_events (source, event_id, type, payload) VALUES ('stripe', $1, $2, $3) \
         ON CONFLICT (source, event_id) DO NOTHING RETURNING id",
    )
    .bind(event_id)
    .bind(kind)
    .bind(payload)
    .fetch_optional(db)
    .await
}

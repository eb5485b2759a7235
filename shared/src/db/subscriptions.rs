//! Mirror of the user's Stripe subscriptions. Only the webhook writes here (it mirrors Stripe);
//! the billing routes read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Subscription {
    pub id: Uuid,
    pub stripe_subscription_id: String,
    pub stripe_customer_id: Option<String>,
    pub status: String,
    pub price_id: Option<String>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! columns {
    () => {
        "id, stripe_subscription_id, stripe_customer_id, status, price_id, current_period_start, \
         current_period_end, cancel_at, canceled_at, cancel_at_period_end, created_at, updated_at"
    };
}

/// The user's current subscription: the newest row with status active or trialing (the same rule
/// `crate::usage::current_usage` uses), if any.
pub async fn current_for_user(db: &PgPool, user_id: Uuid) -> Result<Option<Subscription>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM subscriptions WHERE user_id = $1 AND status IN ('active', 'trialing') \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    );
    sqlx::query_as(SQL).bind(user_id).fetch_optional(db).await
}

/// The user's newest subscription that still exists at Stripe but is not in good standing
/// (`past_due`, `unpaid`, `paused`): a new checkout would give the user a second subscription, so
/// the billing routes send them to the portal to settle this one instead.
pub async fn unsettled_for_user(db: &PgPool, user_id: Uuid) -> Result<Option<Subscription>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM subscriptions WHERE user_id = $1 AND status IN ('past_due', 'unpaid', 'paused') \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    );
    sqlx::query_as(SQL).bind(user_id).fetch_optional(db).await
}

/// The user's subscriptions, newest first.
pub async fn list_for_user(
    db: &PgPool,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<Subscription>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM subscriptions WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    );
    sqlx::query_as(SQL)
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(db)
        .await
}

/// A subscription's state as a Stripe event carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSubscriptionState<'a> {
    pub stripe_subscription_id: &'a str,
    pub stripe_customer_id: Option<&'a str>,
    /// One of the values the table's CHECK allows (Stripe's subscription statuses).
    pub status: &'a str,
    pub price_id: Option<&'a str>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    /// `created` of the event that carried this state.
    pub event_created: DateTime<Utc>,
}

/// What [`upsert_from_stripe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Inserted,
    Updated,
    /// The stored state came from a newer event; nothing was written.
    Stale,
}

/// Mirrors a subscription from a webhook event, unless the row already holds the state of a newer
/// event. Equal event timestamps apply (Stripe's `created` has one-second resolution, so ties are
/// common and the later delivery is usually the later change). A terminal status (`canceled`,
/// `incomplete_expired`: Stripe never leaves them) is never overwritten, whatever comes later.
/// The owner of an existing row never changes.
pub async fn upsert_from_stripe(
    conn: &mut PgConnection,
    user_id: Uuid,
    state: &StripeSubscriptionState<'_>,
) -> Result<UpsertOutcome, sqlx::Error> {
    const SQL: &str = "INSERT INTO subscriptions AS s (user_id, stripe_subscription_id, stripe_customer_id, status, \
             price_id, current_period_start, current_period_end, cancel_at_period_end, cancel_at, canceled_at, \
             stripe_event_created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (stripe_subscription_id) DO UPDATE SET \
             stripe_customer_id = COALESCE(EXCLUDED.stripe_customer_id, s.stripe_customer_id), \
             status = EXCLUDED.status, price_id = EXCLUDED.price_id, \
             current_period_start = EXCLUDED.current_period_start, current_period_end = EXCLUDED.current_period_end, \
             cancel_at_period_end = EXCLUDED.cancel_at_period_end, cancel_at = EXCLUDED.cancel_at, \
             canceled_at = EXCLUDED.canceled_at, stripe_event_created = EXCLUDED.stripe_event_created \
         WHERE s.status NOT IN ('canceled', 'incomplete_expired') \
           AND (s.stripe_event_created IS NULL OR s.stripe_event_created <= EXCLUDED.stripe_event_created) \
         RETURNING (xmax = 0) AS inserted";
    let inserted: Option<bool> = sqlx::query_scalar(SQL)
        .bind(user_id)
        .bind(state.stripe_subscription_id)
        .bind(state.stripe_customer_id)
        .bind(state.status)
        .bind(state.price_id)
        .bind(state.current_period_start)
        .bind(state.current_period_end)
        .bind(state.cancel_at_period_end)
        .bind(state.cancel_at)
        .bind(state.canceled_at)
        .bind(state.event_created)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match inserted {
        Some(true) => UpsertOutcome::Inserted,
        Some(false) => UpsertOutcome::Updated,
        None => UpsertOutcome::Stale,
    })
}

/// The owner of a subscription already mirrored, if any.
pub async fn owner_of(conn: &mut PgConnection, stripe_subscription_id: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM subscriptions WHERE stripe_subscription_id = $1")
        .bind(stripe_subscription_id)
        .fetch_optional(&mut *conn)
        .await
}

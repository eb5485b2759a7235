//! Mirror of the user's Stripe subscriptions. Only the webhook writes here (it mirrors Stripe);
//! the billing routes read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
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

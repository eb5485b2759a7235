//! Mirror of the user's Stripe invoices. Only the webhook writes here; the billing routes read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Invoice {
    pub id: Uuid,
    pub stripe_invoice_id: String,
    pub stripe_subscription_id: Option<String>,
    pub status: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: Option<String>,
    pub invoice_number: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! columns {
    () => {
        "id, stripe_invoice_id, stripe_subscription_id, status, amount_due, amount_paid, currency, \
         invoice_number, hosted_invoice_url, period_start, period_end, created_at, updated_at"
    };
}

/// The user's invoices, newest first (by Stripe's creation time when known).
pub async fn list_for_user(db: &PgPool, user_id: Uuid, limit: i64, offset: i64) -> Result<Vec<Invoice>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM invoices WHERE user_id = $1 \
         ORDER BY COALESCE(stripe_created_at, created_at) DESC, id DESC LIMIT $2 OFFSET $3"
    );
    sqlx::query_as(SQL)
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(db)
        .await
}

//! Mirror of the user's Stripe invoices. Only the webhook writes here; the billing routes read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};
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

/// An invoice as a Stripe event carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeInvoiceState<'a> {
    pub stripe_invoice_id: &'a str,
    pub stripe_subscription_id: Option<&'a str>,
    pub status: &'a str,
    pub amount_due: i64,
    pub amount_paid: i64,
    /// Lower-case ISO code (the table checks `^[a-z]{3}$`).
    pub currency: Option<&'a str>,
    pub invoice_number: Option<&'a str>,
    pub hosted_invoice_url: Option<&'a str>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub stripe_created_at: Option<DateTime<Utc>>,
    /// `created` of the event that carried this state.
    pub event_created: DateTime<Utc>,
}

/// Mirrors an invoice from a webhook event, unless the row already holds the state of a newer
/// event (the same rule as subscriptions: ties apply, except over `paid` or `void`, which Stripe
/// never leaves). Returns false when the stored state was newer and nothing was written.
pub async fn upsert_from_stripe(
    conn: &mut PgConnection,
    user_id: Uuid,
    state: &StripeInvoiceState<'_>,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "INSERT INTO invoices AS i (user_id, stripe_invoice_id, stripe_subscription_id, status, amount_due, \
             amount_paid, currency, invoice_number, hosted_invoice_url, period_start, period_end, stripe_created_at, \
             stripe_event_created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (stripe_invoice_id) DO UPDATE SET \
             stripe_subscription_id = COALESCE(EXCLUDED.stripe_subscription_id, i.stripe_subscription_id), \
             status = EXCLUDED.status, amount_due = EXCLUDED.amount_due, amount_paid = EXCLUDED.amount_paid, \
             currency = COALESCE(EXCLUDED.currency, i.currency), \
             invoice_number = COALESCE(EXCLUDED.invoice_number, i.invoice_number), \
             hosted_invoice_url = COALESCE(EXCLUDED.hosted_invoice_url, i.hosted_invoice_url), \
             period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end, \
             stripe_created_at = COALESCE(EXCLUDED.stripe_created_at, i.stripe_created_at), \
             stripe_event_created = EXCLUDED.stripe_event_created \
         WHERE i.stripe_event_created IS NULL \
            OR i.stripe_event_created < EXCLUDED.stripe_event_created \
            OR (i.stripe_event_created = EXCLUDED.stripe_event_created AND i.status NOT IN ('paid', 'void')) \
         RETURNING id";
    let written: Option<Uuid> = sqlx::query_scalar(SQL)
        .bind(user_id)
        .bind(state.stripe_invoice_id)
        .bind(state.stripe_subscription_id)
        .bind(state.status)
        .bind(state.amount_due)
        .bind(state.amount_paid)
        .bind(state.currency)
        .bind(state.invoice_number)
        .bind(state.hosted_invoice_url)
        .bind(state.period_start)
        .bind(state.period_end)
        .bind(state.stripe_created_at)
        .bind(state.event_created)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(written.is_some())
}

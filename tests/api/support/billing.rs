//! Billing fixtures shared by the billing, webhook and usage tests.

use sqlx::PgPool;

#[allow(unused_imports)]
use super::*;

/// Links a Stripe customer to a user, as checkout (or its webhook) does.
pub async fn link_stripe_customer(db: &PgPool, user: uuid::Uuid, customer: &str) {
    sqlx::query("UPDATE users SET stripe_customer_id = $2 WHERE id = $1")
        .bind(user)
        .bind(customer)
        .execute(db)
        .await
        .unwrap();
}

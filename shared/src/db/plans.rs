use sqlx::{FromRow, PgPool};

use crate::billing::plans::PlanDefinition;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct Plan {
    pub code: String,
    pub name: String,
    pub price_id: Option<String>,
    pub monthly_limit: i32,
}

/// Active plans, cheapest allowance first.
pub async fn list_active(db: &PgPool) -> Result<Vec<Plan>, sqlx::Error> {
    Ok(sqlx::query_as(
        "SELECT code, name, price_id, monthly_limit FROM plans WHERE active ORDER BY sort_order, monthly_limit, code",
    )
    .fetch_all(db)
    .await?)
}

/// The active free plan's monthly allowance, if the plans table has one.
pub async fn free_limit(conn: &mut sqlx::PgConnection) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar("SELECT monthly_limit FROM plans WHERE code = 'free' AND active")
        .fetch_optional(&mut *conn)
        .await
}

/// Makes the plans table match configuration, in one transaction: configured plans are upserted,
/// plans no longer configured are deactivated (never deleted: subscriptions may still name them).
pub async fn sync(db: &PgPool, definitions: &[PlanDefinition]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    // Clear prices first so a configuration that moves a price from one plan to another does not
    // trip the unique constraint mid-way (it is deferred to commit as well).
    sqlx::query("UPDATE plans SET price_id = NULL WHERE price_id IS NOT NULL")
        .execute(&mut *tx)
        .await?;
    for (position, plan) in definitions.iter().enumerate() {
        sqlx::query(
            "INSERT INTO plans (code, name, price_id, monthly_limit, sort_order, active) \
             VALUES ($1, $2, $3, $4, $5, true) \
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, price_id = EXCLUDED.price_id, \
                 monthly_limit = EXCLUDED.monthly_limit, sort_order = EXCLUDED.sort_order, active = true",
        )
        .bind(plan.code)
        .bind(plan.name)
        .bind(plan.price_id.as_deref())
        .bind(plan.monthly_limit as i32)
        .bind(position as i32)
        .execute(&mut *tx)
        .await?;
    }
    let codes: Vec<&str> = definitions.iter().map(|p| p.code).collect();
    sqlx::query("UPDATE plans SET active = false WHERE NOT (code = ANY($1))")
        .bind(&codes)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

//! Monthly allowance: which plan applies, which period is current, how much of it is used, and
//! the atomic reservation image creation goes through.
//!
//! Usage is read from the append-only `usage_ledger` only (never from `images`), so deleting an
//! image or a project can never lower it. The plan is the one active or trialing subscription's
//! price; no subscription, or a price not in the plans table, means the free plan — never 0.
//! The period is the subscription's current period, else the calendar month in UTC.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db;
use crate::platform::error::ApiError;

/// Used when the plans table has no `free` row yet (before the first deploy's plan sync).
pub const FALLBACK_FREE_LIMIT: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub plan_code: String,
    pub monthly_limit: i64,
    pub images_used: i64,
    pub remaining: i64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub has_subscription: bool,
}

/// `[first of this month, first of next month)` in UTC.
pub fn calendar_month(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .expect("valid date");
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    let end = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().expect("valid date");
    (start, end)
}

/// The caller's usage right now (database clock). One function serves both the usage route and
/// the reservation, so what the API shows is what it enforces.
pub async fn current_usage(conn: &mut PgConnection, user_id: Uuid) -> Result<Usage, ApiError> {
    let now = db::usage::now(conn).await?;
    let subscription = db::subscriptions::current_plan(conn, user_id).await?;
    let has_subscription = subscription.is_some();
    let (plan_code, monthly_limit) = match subscription
        .as_ref()
        .and_then(|s| s.plan_code.clone().zip(s.monthly_limit))
    {
        Some((code, limit)) => (code, i64::from(limit)),
        None => {
            if has_subscription {
                tracing::warn!(%user_id, "active subscription has a price that is not a known plan; using the free plan");
            }
            let free = db::plans::free_limit(conn).await?;
            ("free".to_string(), free.map(i64::from).unwrap_or(FALLBACK_FREE_LIMIT))
        }
    };
    let (period_start, period_end) = match subscription.and_then(|s| s.current_period_start.zip(s.current_period_end)) {
        Some((start, end)) if start <= now && now < end => (start, end),
        _ => calendar_month(now),
    };
    let images_used = db::usage::units_used(conn, user_id, period_start, period_end).await?;
    Ok(Usage {
        remaining: (monthly_limit - images_used).max(0),
        plan_code,
        monthly_limit,
        images_used,
        period_start,
        period_end,
        has_subscription,
    })
}

/// Reserves one unit of allowance per image, all or nothing, inside the caller's transaction.
///
/// The user's row is locked first, so concurrent reservations of one user run one after another
/// and can never together exceed the limit. Fails closed: any error aborts the transaction.
pub async fn reserve(conn: &mut PgConnection, user_id: Uuid, image_ids: &[Uuid]) -> Result<Usage, ApiError> {
    db::users::lock(conn, user_id).await?;
    let usage = current_usage(conn, user_id).await?;
    let requested = image_ids.len() as i64;
    if usage.images_used + requested > usage.monthly_limit {
        return Err(ApiError::UsageLimitExceeded {
            monthly_limit: usage.monthly_limit,
            images_used: usage.images_used,
            remaining: usage.remaining,
            requested,
        });
    }
    db::usage::insert_reservations(conn, user_id, image_ids).await?;
    Ok(Usage {
        images_used: usage.images_used + requested,
        remaining: usage.remaining - requested,
        ..usage
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_months_wrap_the_year() {
        let (start, end) = calendar_month(Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap());
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        let (start, end) = calendar_month(Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap());
        assert_eq!((start.month(), end.month()), (2, 3));
    }
}

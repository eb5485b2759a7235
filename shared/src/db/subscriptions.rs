//! Mirror of the user's Stripe subscriptions. Only the webhook writes here (it mirrors Stripe);
//! the billing routes read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// A Stripe subscription's status, as Stripe names it and `subscriptions.status` stores it (text
/// with a CHECK listing the same values). Typed from Stripe's JSON to the row and the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 8] = [
        SubscriptionStatus::Incomplete,
        SubscriptionStatus::IncompleteExpired,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Canceled,
        SubscriptionStatus::Unpaid,
        SubscriptionStatus::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::IncompleteExpired => "incomplete_expired",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Unpaid => "unpaid",
            SubscriptionStatus::Paused => "paused",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Active or trialing: the subscription gives its plan now.
    pub fn is_current(self) -> bool {
        matches!(self, SubscriptionStatus::Active | SubscriptionStatus::Trialing)
    }

    /// Canceled or expired before its first payment: Stripe never moves it again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
        )
    }
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Subscription {
    pub id: Uuid,
    pub stripe_subscription_id: String,
    pub stripe_customer_id: Option<String>,
    pub status: SubscriptionStatus,
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
/// `crate::billing::usage::current_usage` uses), if any.
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
    pub status: SubscriptionStatus,
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

/// Mirrors a subscription from a webhook event, unless that would move the row backwards:
///
/// * an event older than the stored state (its `created` is earlier) is not applied;
/// * a terminal status (`canceled`, `incomplete_expired`: Stripe never leaves them) is never
///   overwritten, whatever comes later;
/// * `incomplete` never replaces another status (every subscription starts there and none
///   returns to it), even from a newer event;
/// * on a tie (the same `created` second, common: Checkout sends `created` and `updated` within
///   one), the event applies only if its status is not earlier in the lifecycle than the stored
///   one (SQL `subscription_status_rank`: incomplete < trialing = active < past_due = paused <
///   unpaid < canceled). A newer event may move backwards where Stripe does (past_due → active
///   after a successful payment).
///
/// `current_since` keeps the `created` of the first event that showed the subscription active or
/// trialing. The owner of an existing row never changes.
pub async fn upsert_from_stripe(
    conn: &mut PgConnection,
    user_id: Uuid,
    state: &StripeSubscriptionState<'_>,
) -> Result<UpsertOutcome, sqlx::Error> {
    const SQL: &str = "INSERT INTO subscriptions AS s (user_id, stripe_subscription_id, stripe_customer_id, status, \
             price_id, current_period_start, current_period_end, cancel_at_period_end, cancel_at, canceled_at, \
             stripe_event_created, current_since) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                 CASE WHEN $4 IN ('active', 'trialing') THEN $11::timestamptz END) \
         ON CONFLICT (stripe_subscription_id) DO UPDATE SET \
             stripe_customer_id = COALESCE(EXCLUDED.stripe_customer_id, s.stripe_customer_id), \
             status = EXCLUDED.status, price_id = EXCLUDED.price_id, \
             current_period_start = EXCLUDED.current_period_start, current_period_end = EXCLUDED.current_period_end, \
             cancel_at_period_end = EXCLUDED.cancel_at_period_end, cancel_at = EXCLUDED.cancel_at, \
             canceled_at = EXCLUDED.canceled_at, stripe_event_created = EXCLUDED.stripe_event_created, \
             current_since = COALESCE(s.current_since, EXCLUDED.current_since) \
         WHERE s.status NOT IN ('canceled', 'incomplete_expired') \
           AND NOT (EXCLUDED.status = 'incomplete' AND s.status <> 'incomplete') \
           AND (s.stripe_event_created IS NULL \
                OR s.stripe_event_created < EXCLUDED.stripe_event_created \
                OR (s.stripe_event_created = EXCLUDED.stripe_event_created \
                    AND subscription_status_rank(EXCLUDED.status) >= subscription_status_rank(s.status))) \
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

/// Serializes the webhook's subscription changes for one user (a row lock on the user until the
/// transaction ends), so two deliveries about two different subscriptions cannot each miss the
/// other and leave the user with two current ones.
pub async fn lock_owner(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    crate::db::users::lock(conn, user_id).await
}

/// A current (active or trialing) subscription, in the order the webhook keeps them.
#[derive(Debug, Clone, FromRow)]
pub struct CurrentSubscription {
    pub stripe_subscription_id: String,
    pub status: SubscriptionStatus,
    pub price_id: Option<String>,
    pub current_since: Option<DateTime<Utc>>,
}

/// The user's current subscriptions, the one that became current first first (then by row age and
/// id, so the order is total).
pub async fn current_in_order(conn: &mut PgConnection, user_id: Uuid) -> Result<Vec<CurrentSubscription>, sqlx::Error> {
    sqlx::query_as(
        "SELECT stripe_subscription_id, status, price_id, current_since FROM subscriptions \
         WHERE user_id = $1 AND status IN ('active', 'trialing') \
         ORDER BY current_since ASC NULLS LAST, created_at ASC, stripe_subscription_id ASC",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await
}

/// Marks a subscription canceled now that Stripe confirmed it (the webhook cancelled it). Its own
/// `customer.subscription.deleted` event follows and changes nothing: `canceled` is terminal.
pub async fn mark_canceled(
    conn: &mut PgConnection,
    stripe_subscription_id: &str,
    canceled_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE subscriptions SET status = 'canceled', canceled_at = COALESCE(canceled_at, $2), \
             cancel_at_period_end = false \
         WHERE stripe_subscription_id = $1",
    )
    .bind(stripe_subscription_id)
    .bind(canceled_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The owner of a subscription already mirrored, if any.
pub async fn owner_of(conn: &mut PgConnection, stripe_subscription_id: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM subscriptions WHERE stripe_subscription_id = $1")
        .bind(stripe_subscription_id)
        .fetch_optional(&mut *conn)
        .await
}

/// The plan of the user's newest current (active or trialing) subscription, with its period.
/// `plan_code`/`monthly_limit` are NULL when its price is not an active plan.
#[derive(Debug, Clone, FromRow)]
pub struct SubscriptionPlan {
    pub plan_code: Option<String>,
    pub monthly_limit: Option<i32>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
}

pub async fn current_plan(conn: &mut PgConnection, user_id: Uuid) -> Result<Option<SubscriptionPlan>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.code AS plan_code, p.monthly_limit, s.current_period_start, s.current_period_end \
         FROM subscriptions s LEFT JOIN plans p ON p.price_id = s.price_id AND p.active \
         WHERE s.user_id = $1 AND s.status IN ('active', 'trialing') \
         ORDER BY s.created_at DESC, s.id DESC LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await
}

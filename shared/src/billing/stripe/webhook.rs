//! The Stripe webhook: a delivery is verified over its raw bytes ([`signature`]), then recorded
//! and applied in one transaction, so "recorded in `processed_events`" always means "applied".
//!
//! * A duplicate delivery (the event id is already recorded) changes nothing.
//! * A transient failure — the database, or a subscription/invoice whose user is not linked yet
//!   (its checkout.session.completed has not arrived) — rolls everything back and is answered 503,
//!   so Stripe delivers the event again later.
//! * Ordering: rows remember the `created` of the newest event applied to them; an older event
//!   never overwrites them, and a tie never moves a subscription backwards in its lifecycle (see
//!   `db::subscriptions::upsert_from_stripe`).
//! * One subscription per user: a second current subscription is cancelled at Stripe (and its
//!   payment refunded) before the event is recorded, with an audit entry ([`cancel_duplicates`]).
//! * An event nobody here can be linked to is retried (503) while it is younger than
//!   [`UNLINKED_EVENT_GRACE`], then recorded and acknowledged.
//!
//! The objects are read in the shape of API version [`super::STRIPE_VERSION`] and the older one
//! the earlier system used: the subscription period is read at the top level or, failing that,
//! from the first item; an invoice's subscription from `subscription` or
//! `parent.subscription_details.subscription`. docs/billing.md "Webhook" has the whole story.

pub mod signature;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::billing::stripe::Stripe;
use crate::billing::stripe::client::{RefundOutcome, StripeError};
use crate::db::audit::{self, AuditAction, AuditActor, AuditRecord};
use crate::db::invoices::{self, StripeInvoiceState};
use crate::db::subscriptions::{self, StripeSubscriptionState, SubscriptionStatus, UpsertOutcome};
use crate::db::{processed_events, users};

pub use signature::{SignatureError, TOLERANCE_SECONDS};

/// Stripe's events are a few KiB; this leaves ample room and bounds the work done for anyone
/// who can reach the URL.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// How long an event that concerns nobody here yet is answered 503 (so Stripe retries it). The
/// wait covers the one race there is: a subscription or invoice event overtaking what links its
/// customer (create-checkout stores the customer before the session exists and names the user in
/// the subscription's metadata, so in practice the window is a failed write and a retry). An
/// event still unlinked once this old is for a customer this app never created (the dashboard,
/// `stripe trigger`, another integration on the account): it is recorded, with its payload, and
/// answered 200, instead of failing for Stripe's three days of retries.
pub const UNLINKED_EVENT_GRACE: chrono::Duration = chrono::Duration::minutes(30);

/// Who the audit trail names for what the webhook does on its own.
pub const WEBHOOK_ACTOR: &str = "system:stripe-webhook";
/// What happened to a verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded, and its effect written.
    Applied,
    /// Recorded; the rows it concerns already hold the state of a newer event.
    Stale,
    /// Recorded; an event this service does not act on, or one that concerns nobody here (e.g. a
    /// checkout session not created by this service).
    Ignored,
    /// Already recorded by an earlier delivery; nothing was done.
    Duplicate,
    /// Recorded without effect: it concerns a customer or subscription no user here is linked
    /// to, and it is older than [`UNLINKED_EVENT_GRACE`].
    Unlinked,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A signed payload that is not an event of the shape Stripe documents. Not recorded.
    #[error("the event is malformed: {0}")]
    InvalidEvent(String),
    /// The event concerns a customer or subscription not yet linked to a user (its checkout has
    /// not been seen yet). Not recorded, so Stripe's retry can apply it later.
    #[error("{0} is not linked to a user yet")]
    NotLinked(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A call to Stripe the event needs (cancelling a duplicate subscription) failed. Not
    /// recorded, so Stripe's retry does it again (the calls are safe to repeat).
    #[error("Stripe call failed: {0}")]
    Stripe(Box<StripeError>),
}

impl From<StripeError> for WebhookError {
    fn from(err: StripeError) -> Self {
        WebhookError::Stripe(Box::new(err))
    }
}

impl WebhookError {
    /// Worth Stripe's retry: the same delivery may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            WebhookError::NotLinked(_) | WebhookError::Database(_) | WebhookError::Stripe(_)
        )
    }
}

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Value,
}

/// A reference Stripe may send as an id or, when expanded, as the object itself.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    fn id(&self) -> &str {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

#[derive(Debug, Deserialize)]
struct CheckoutSession {
    client_reference_id: Option<String>,
    customer: Option<Expandable>,
    subscription: Option<Expandable>,
}

#[derive(Debug, Deserialize)]
struct StripeSubscription {
    id: String,
    customer: Option<Expandable>,
    status: String,
    items: Option<List<SubscriptionItem>>,
    current_period_start: Option<i64>,
    current_period_end: Option<i64>,
    #[serde(default)]
    cancel_at_period_end: bool,
    cancel_at: Option<i64>,
    canceled_at: Option<i64>,
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
struct List<T> {
    data: Vec<T>,
}

#[derive(Debug, Deserialize)]
struct SubscriptionItem {
    price: Option<Expandable>,
    current_period_start: Option<i64>,
    current_period_end: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct StripeInvoice {
    id: String,
    customer: Option<Expandable>,
    status: Option<String>,
    #[serde(default)]
    amount_due: i64,
    #[serde(default)]
    amount_paid: i64,
    currency: Option<String>,
    number: Option<String>,
    hosted_invoice_url: Option<String>,
    period_start: Option<i64>,
    period_end: Option<i64>,
    created: Option<i64>,
    /// API versions before 2025-03-31.basil.
    subscription: Option<Expandable>,
    /// API versions from 2025-03-31.basil.
    parent: Option<InvoiceParent>,
}

#[derive(Debug, Deserialize)]
struct InvoiceParent {
    subscription_details: Option<SubscriptionDetails>,
}

#[derive(Debug, Deserialize)]
struct SubscriptionDetails {
    subscription: Option<Expandable>,
    metadata: Option<serde_json::Map<String, Value>>,
}

/// Records and applies one verified delivery, all in one transaction. `stripe` is used to cancel
/// a user's second subscription (without it, a duplicate is only logged).
pub async fn process(db: &PgPool, stripe: Option<&Stripe>, payload: &[u8]) -> Result<Outcome, WebhookError> {
    let document: Value = serde_json::from_slice(payload)
        .map_err(|e| WebhookError::InvalidEvent(format!("the body is not JSON ({e})")))?;
    let event: Event = parse(document.clone(), "event")?;
    if event.id.is_empty() || event.id.len() > 255 {
        return Err(WebhookError::InvalidEvent("the event id is empty or too long".into()));
    }
    let created = timestamp(event.created)
        .ok_or_else(|| WebhookError::InvalidEvent("the event's `created` is not a unix time".into()))?;
    let mut tx = db.begin().await?;
    let recorded = processed_events::record_stripe(&mut *tx, &event.id, &event.kind, &document).await?;
    if recorded.is_none() {
        // A concurrent delivery of the same event waits on our row above until that one commits
        // or rolls back, so a duplicate is only ever reported for an event actually applied.
        tracing::info!(event_id = %event.id, event_type = %event.kind, "duplicate Stripe event ignored");
        return Ok(Outcome::Duplicate);
    }
    let outcome = match apply(&mut tx, stripe, &event, created).await {
        Ok(outcome) => outcome,
        Err(WebhookError::NotLinked(what)) if Utc::now() - created > UNLINKED_EVENT_GRACE => {
            // Nothing was written before the lookup failed, but start clean anyway: only the
            // recording itself is kept.
            tx.rollback().await?;
            return record_unlinked(db, &event, &document, &what).await;
        }
        Err(err) => {
            tracing::warn!(event_id = %event.id, event_type = %event.kind, error = %err, "Stripe event not applied");
            return Err(err);
        }
    };
    tx.commit().await?;
    tracing::info!(event_id = %event.id, event_type = %event.kind, ?outcome, "Stripe event processed");
    Ok(outcome)
}

/// Records an event past [`UNLINKED_EVENT_GRACE`] that still concerns nobody here, so that it is
/// acknowledged (and kept, payload included, for an operator) rather than retried for days.
async fn record_unlinked(db: &PgPool, event: &Event, document: &Value, what: &str) -> Result<Outcome, WebhookError> {
    let recorded = processed_events::record_stripe(db, &event.id, &event.kind, document).await?;
    if recorded.is_none() {
        return Ok(Outcome::Duplicate);
    }
    tracing::warn!(
        error_code = "stripe_event_unlinked",
        event_id = %event.id,
        event_type = %event.kind,
        subject = what,
        "Stripe event for a customer no user is linked to, past the grace period: recorded, not applied"
    );
    Ok(Outcome::Unlinked)
}

async fn apply(
    conn: &mut PgConnection,
    stripe: Option<&Stripe>,
    event: &Event,
    created: DateTime<Utc>,
) -> Result<Outcome, WebhookError> {
    let object = event.data.object.clone();
    let subscription_event = |deleted| SubscriptionEvent {
        stripe,
        event_id: &event.id,
        created,
        deleted,
    };
    match event.kind.as_str() {
        "checkout.session.completed" => checkout_completed(conn, parse(object, "checkout session")?).await,
        "customer.subscription.created" | "customer.subscription.updated" => {
            subscription_changed(conn, parse(object, "subscription")?, subscription_event(false)).await
        }
        "customer.subscription.deleted" => {
            subscription_changed(conn, parse(object, "subscription")?, subscription_event(true)).await
        }
        "invoice.paid" | "invoice.payment_succeeded" => {
            invoice_changed(conn, parse(object, "invoice")?, created, "paid").await
        }
        "invoice.payment_failed" => invoice_changed(conn, parse(object, "invoice")?, created, "open").await,
        _ => Ok(Outcome::Ignored),
    }
}

fn parse<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, WebhookError> {
    serde_path_to_error::deserialize(value)
        .map_err(|err| WebhookError::InvalidEvent(format!("{what} at `{}`: {}", err.path(), err.inner())))
}

/// Stripe sends unix seconds; 0 or less (and absurd values) mean "not set".
fn timestamp(seconds: i64) -> Option<DateTime<Utc>> {
    (seconds > 0).then(|| DateTime::from_timestamp(seconds, 0)).flatten()
}

fn optional_timestamp(seconds: Option<i64>) -> Option<DateTime<Utc>> {
    seconds.and_then(timestamp)
}

/// Links the session's customer to the user named by `client_reference_id` (our user id, set by
/// create-checkout). The subscription itself is mirrored by its own `customer.subscription.*`
/// events, which carry its status and period; the session carries neither.
async fn checkout_completed(conn: &mut PgConnection, session: CheckoutSession) -> Result<Outcome, WebhookError> {
    let Some(user_id) = session
        .client_reference_id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
    else {
        // Not a session this service created (a payment link, the dashboard): nobody to link.
        tracing::info!("checkout session without our client_reference_id ignored");
        return Ok(Outcome::Ignored);
    };
    if !users::exists(conn, user_id).await? {
        // User ids are created before any checkout, so a missing one was deleted: no retry helps.
        tracing::warn!(%user_id, "checkout session for a user that does not exist ignored");
        return Ok(Outcome::Ignored);
    }
    let Some(customer) = session.customer.as_ref().map(Expandable::id) else {
        return Ok(Outcome::Ignored);
    };
    link_customer(conn, user_id, customer).await?;
    if let Some(subscription) = &session.subscription {
        tracing::info!(%user_id, subscription = subscription.id(), "checkout completed");
    }
    Ok(Outcome::Applied)
}

/// Stores the customer id on the user once. Never moves a customer between users and never
/// replaces a user's customer: either would hand one user's billing to another.
async fn link_customer(conn: &mut PgConnection, user_id: Uuid, customer: &str) -> Result<(), WebhookError> {
    let linked = users::link_stripe_customer(conn, user_id, customer).await?;
    match linked {
        Some(Some(stored)) if stored == customer => {}
        Some(stored) => {
            tracing::warn!(%user_id, customer, ?stored, "user already has another Stripe customer; not relinked")
        }
        None => tracing::warn!(%user_id, customer, "Stripe customer belongs to another user; not relinked"),
    }
    Ok(())
}

/// The user named by `metadata.user_id` (set by create-checkout through
/// `subscription_data[metadata][user_id]`), if it is one of ours.
async fn user_from_metadata(
    conn: &mut PgConnection,
    metadata: Option<&serde_json::Map<String, Value>>,
) -> Result<Option<Uuid>, sqlx::Error> {
    let Some(user_id) = metadata
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())
    else {
        return Ok(None);
    };
    Ok(users::exists(conn, user_id).await?.then_some(user_id))
}

/// The delivery a subscription change came in.
struct SubscriptionEvent<'a> {
    stripe: Option<&'a Stripe>,
    event_id: &'a str,
    created: DateTime<Utc>,
    deleted: bool,
}

async fn subscription_changed(
    conn: &mut PgConnection,
    subscription: StripeSubscription,
    event: SubscriptionEvent<'_>,
) -> Result<Outcome, WebhookError> {
    let SubscriptionEvent {
        created: event_created,
        deleted,
        ..
    } = event;
    let status = if deleted {
        SubscriptionStatus::Canceled
    } else {
        SubscriptionStatus::parse(&subscription.status).ok_or_else(|| {
            WebhookError::InvalidEvent(format!("unknown subscription status `{}`", subscription.status))
        })?
    };
    let first_item = subscription.items.as_ref().and_then(|items| items.data.first());
    // Newer API versions moved the period onto the items; read whichever this payload has.
    let (period_start, period_end) = match (subscription.current_period_start, subscription.current_period_end) {
        (Some(start), Some(end)) => (timestamp(start), timestamp(end)),
        _ => (
            optional_timestamp(first_item.and_then(|item| item.current_period_start)),
            optional_timestamp(first_item.and_then(|item| item.current_period_end)),
        ),
    };
    if let (Some(start), Some(end)) = (period_start, period_end)
        && end < start
    {
        return Err(WebhookError::InvalidEvent(
            "the subscription period ends before it starts".into(),
        ));
    }
    let customer = subscription.customer.as_ref().map(Expandable::id);
    let user_id = match user_from_metadata(conn, subscription.metadata.as_ref()).await? {
        Some(user_id) => {
            if let Some(customer) = customer {
                link_customer(conn, user_id, customer).await?;
            }
            Some(user_id)
        }
        None => match customer {
            Some(customer) => users::by_stripe_customer(conn, customer).await?,
            None => None,
        },
    };
    let user_id = match user_id {
        Some(user_id) => user_id,
        None => subscriptions::owner_of(conn, &subscription.id)
            .await?
            .ok_or_else(|| WebhookError::NotLinked(format!("subscription {}", subscription.id)))?,
    };
    // Changes to one user's subscriptions are applied one at a time, so the duplicate check
    // below always sees the other subscription's committed row.
    subscriptions::lock_owner(conn, user_id).await?;
    let state = StripeSubscriptionState {
        stripe_subscription_id: &subscription.id,
        stripe_customer_id: customer,
        status,
        price_id: first_item.and_then(|item| item.price.as_ref()).map(Expandable::id),
        current_period_start: period_start,
        current_period_end: period_end,
        cancel_at_period_end: subscription.cancel_at_period_end,
        cancel_at: optional_timestamp(subscription.cancel_at),
        canceled_at: optional_timestamp(subscription.canceled_at),
        event_created,
    };
    match subscriptions::upsert_from_stripe(conn, user_id, &state).await? {
        UpsertOutcome::Inserted | UpsertOutcome::Updated => {
            if status.is_current() {
                cancel_duplicates(conn, user_id, &event).await?;
            }
            Ok(Outcome::Applied)
        }
        UpsertOutcome::Stale => {
            tracing::info!(subscription = %subscription.id, "event not applied: older than, or behind, the stored state");
            Ok(Outcome::Stale)
        }
    }
}

/// A user holds at most one current subscription: create-checkout refuses a subscriber and
/// expires earlier sessions, but two sessions paid at once (two tabs) still make two. The one
/// that became current first (`current_since`, the `created` of the event that first showed it
/// active, so the choice does not depend on delivery order) is kept; every other current one is
/// refunded in full at Stripe (the payments of its latest invoice) and then cancelled, marked
/// canceled here and written to the audit trail, all before the event is recorded. A Stripe
/// failure fails the delivery (503); the retry repeats the calls safely (the refund key is derived
/// from the payment, an already canceled subscription is not cancelled again).
async fn cancel_duplicates(
    conn: &mut PgConnection,
    user_id: Uuid,
    event: &SubscriptionEvent<'_>,
) -> Result<(), WebhookError> {
    let current = subscriptions::current_in_order(conn, user_id).await?;
    let Some((kept, duplicates)) = current.split_first() else {
        return Ok(());
    };
    for duplicate in duplicates {
        let Some(stripe) = event.stripe else {
            tracing::error!(
                error_code = "stripe_duplicate_subscription",
                %user_id,
                kept = %kept.stripe_subscription_id,
                duplicate = %duplicate.stripe_subscription_id,
                "a second current subscription, and no Stripe key to cancel it"
            );
            continue;
        };
        // Refund first, cancel last. Once the cancellation is done, Stripe's own
        // `customer.subscription.deleted` may be applied before this delivery is retried, and
        // the retry then finds the subscription canceled and nothing to do: every other step
        // must be done by then. (A refund repeated by a retry gets the first refund back.)
        let id = duplicate.stripe_subscription_id.as_str();
        let at_stripe = stripe.retrieve_subscription(id).await?;
        let invoice = at_stripe.latest_invoice.clone();
        let mut refunds = Vec::new();
        if let Some(invoice) = &invoice {
            for payment in stripe.paid_invoice_payments(invoice).await? {
                refunds.push(match stripe.refund(&payment, "duplicate").await? {
                    RefundOutcome::Refunded(id) => Value::String(id),
                    RefundOutcome::AlreadyRefunded => Value::String("already_refunded".into()),
                });
            }
        }
        let canceled = if at_stripe.status.is_terminal() {
            at_stripe
        } else {
            stripe.cancel_subscription_now(id).await?
        };
        subscriptions::mark_canceled(conn, &duplicate.stripe_subscription_id, event.created).await?;
        let actor = AuditActor {
            user_id: None,
            label: WEBHOOK_ACTOR.into(),
            request_id: Some(event.event_id.to_string()),
        };
        audit::record(
            conn,
            AuditRecord {
                action: AuditAction::SubscriptionCancelDuplicate,
                target: &duplicate.stripe_subscription_id,
                actor: &actor,
                before: serde_json::json!({
                    "user_id": user_id,
                    "status": duplicate.status,
                    "price_id": duplicate.price_id,
                    "kept_subscription": kept.stripe_subscription_id,
                }),
                after: serde_json::json!({
                    "status": canceled.status,
                    "latest_invoice": invoice,
                    "refunds": refunds,
                }),
            },
        )
        .await?;
        tracing::warn!(
            %user_id,
            kept = %kept.stripe_subscription_id,
            canceled = %duplicate.stripe_subscription_id,
            refunds = refunds.len(),
            "second current subscription cancelled and refunded"
        );
    }
    Ok(())
}

async fn invoice_changed(
    conn: &mut PgConnection,
    invoice: StripeInvoice,
    event_created: DateTime<Utc>,
    default_status: &str,
) -> Result<Outcome, WebhookError> {
    let details = invoice.parent.as_ref().and_then(|p| p.subscription_details.as_ref());
    let subscription_id = invoice
        .subscription
        .as_ref()
        .or_else(|| details.and_then(|d| d.subscription.as_ref()))
        .map(Expandable::id);
    let mut user_id = match invoice.customer.as_ref().map(Expandable::id) {
        Some(customer) => users::by_stripe_customer(conn, customer).await?,
        None => None,
    };
    if user_id.is_none()
        && let Some(subscription_id) = subscription_id
    {
        user_id = subscriptions::owner_of(conn, subscription_id).await?;
    }
    if user_id.is_none() {
        user_id = user_from_metadata(conn, details.and_then(|d| d.metadata.as_ref())).await?;
    }
    let user_id = user_id.ok_or_else(|| WebhookError::NotLinked(format!("invoice {}", invoice.id)))?;
    let currency = invoice.currency.as_deref();
    if let Some(currency) = currency
        && !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return Err(WebhookError::InvalidEvent(format!("unknown currency `{currency}`")));
    }
    if invoice.amount_due < 0 || invoice.amount_paid < 0 {
        return Err(WebhookError::InvalidEvent("a negative invoice amount".into()));
    }
    let state = StripeInvoiceState {
        stripe_invoice_id: &invoice.id,
        stripe_subscription_id: subscription_id,
        status: invoice.status.as_deref().unwrap_or(default_status),
        amount_due: invoice.amount_due,
        amount_paid: invoice.amount_paid,
        currency,
        invoice_number: invoice.number.as_deref(),
        hosted_invoice_url: invoice.hosted_invoice_url.as_deref(),
        period_start: optional_timestamp(invoice.period_start),
        period_end: optional_timestamp(invoice.period_end),
        stripe_created_at: optional_timestamp(invoice.created),
        event_created,
    };
    if invoices::upsert_from_stripe(conn, user_id, &state).await? {
        Ok(Outcome::Applied)
    } else {
        tracing::info!(invoice = %invoice.id, "older invoice event not applied over newer state");
        Ok(Outcome::Stale)
    }
}

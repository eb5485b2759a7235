//! The Stripe objects the billing routes read, parsed from Stripe's JSON into what they need.

use serde::Deserialize;

use crate::db::subscriptions::SubscriptionStatus;

/// The parts of a Checkout Session the routes answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
    /// Unix seconds, when Stripe answered with it.
    pub created: Option<i64>,
}

/// An open Checkout Session of a customer, as `GET /v1/checkout/sessions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OpenCheckoutSession {
    pub id: String,
    /// Unix seconds.
    pub created: i64,
}

/// What paid an invoice: a PaymentIntent or, for older charges without one, a Charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoicePayment {
    PaymentIntent(String),
    Charge(String),
}

/// What [`Stripe::refund`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// A refund exists for the payment (this call's, or the one a repeat of this call made).
    Refunded(String),
    /// Stripe says the payment was already refunded in full.
    AlreadyRefunded,
}

/// A subscription as Stripe has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub status: SubscriptionStatus,
    pub customer: String,
    pub cancel_at_period_end: bool,
    /// Unix seconds. Newer API versions keep the period on the items only; this is the top-level
    /// value when present, else the first item's.
    pub current_period_end: Option<i64>,
    pub items: Vec<SubscriptionItem>,
    /// The id of the subscription's most recent invoice.
    pub latest_invoice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionItem {
    pub id: String,
    pub price_id: String,
    pub current_period_end: Option<i64>,
}

impl Subscription {
    pub fn is_current(&self) -> bool {
        self.status.is_current()
    }
}

#[derive(Deserialize)]
pub(super) struct IdOnly {
    pub(super) id: String,
}

#[derive(Deserialize)]
pub(super) struct RawSession {
    pub(super) id: String,
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) created: Option<i64>,
}

/// A field Stripe returns as an id, or as the object when expanded.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    pub(super) fn into_id(self) -> String {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct RawSubscription {
    pub(super) id: String,
    pub(super) status: SubscriptionStatus,
    pub(super) customer: Expandable,
    #[serde(default)]
    pub(super) cancel_at_period_end: bool,
    #[serde(default)]
    pub(super) current_period_end: Option<i64>,
    pub(super) items: RawList<RawItem>,
    #[serde(default)]
    pub(super) latest_invoice: Option<Expandable>,
}

#[derive(Deserialize)]
pub(super) struct RawInvoicePayment {
    #[serde(default)]
    pub(super) status: Option<String>,
    pub(super) payment: RawPaymentRef,
}

#[derive(Deserialize)]
pub(super) struct RawPaymentRef {
    #[serde(default)]
    pub(super) payment_intent: Option<Expandable>,
    #[serde(default)]
    pub(super) charge: Option<Expandable>,
}

#[derive(Deserialize)]
pub(super) struct RawList<T> {
    pub(super) data: Vec<T>,
}

#[derive(Deserialize)]
pub(super) struct RawItem {
    pub(super) id: String,
    pub(super) price: Expandable,
    #[serde(default)]
    pub(super) current_period_end: Option<i64>,
}

impl From<RawSubscription> for Subscription {
    fn from(raw: RawSubscription) -> Self {
        let items: Vec<SubscriptionItem> = raw
            .items
            .data
            .into_iter()
            .map(|item| SubscriptionItem {
                id: item.id,
                price_id: item.price.into_id(),
                current_period_end: item.current_period_end,
            })
            .collect();
        Subscription {
            current_period_end: raw
                .current_period_end
                .or_else(|| items.first().and_then(|i| i.current_period_end)),
            id: raw.id,
            status: raw.status,
            customer: raw.customer.into_id(),
            cancel_at_period_end: raw.cancel_at_period_end,
            items,
            latest_invoice: raw.latest_invoice.map(Expandable::into_id),
        }
    }
}

//! The Stripe API client the billing routes use: plain HTTPS with reqwest, form-encoded bodies
//! (`line_items[0][price]=…`, as Stripe's own libraries send them), the pinned
//! [`super::STRIPE_VERSION`], an `Idempotency-Key` on every POST and a 10 s timeout per request.
//!
//! Nothing retries automatically: a failed call becomes a 4xx/503 answer (one mapping, the
//! `From<StripeError> for ApiError` below) and the user tries again. The idempotency key decides
//! what that second try does at Stripe ([`IdempotencyKey`]).
//!
//! The secret key goes into the `Authorization` header and nowhere else: not into URLs, errors,
//! logs or `Debug` output ([`crate::platform::config::Secret`]).

use std::fmt::Write as _;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

use super::{STRIPE_VERSION, StripeConfig};
use crate::platform::error::ApiError;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Stripe objects the routes read are a few KiB; anything near this is not one of them.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Stripe's limit on idempotency keys.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The Stripe API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Stripe {
    pub(crate) config: StripeConfig,
    pub(crate) http: reqwest::Client,
}

/// What makes a POST safe to repeat. Stripe stores the first answer to a key (even a 500) for at
/// least 24 h and replays it for a request with the same key, so the choice per call is:
///
/// * [`IdempotencyKey::derived`] for *create* calls, where a repeat must return the first
///   object rather than make a second one (customers, checkout sessions). The client appends a
///   hash of the form body, so one key never meets two different bodies (Stripe refuses that).
/// * [`IdempotencyKey::fresh`] for *set* calls (change a price, cancel at period end, open a
///   portal session): replaying an older answer after the state moved on (upgrade, downgrade,
///   upgrade again) would report a change that did not happen, while repeating the call is
///   harmless because it sets the same value again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(KeyKind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyKind {
    Derived(String),
    Fresh(String),
}

impl IdempotencyKey {
    /// `"<operation>:<part>:<part>…:<hash of the body>"`, e.g. `checkout:<user id>:pro:<minute>`.
    pub fn derived(operation: &str, parts: &[&str]) -> Self {
        let mut key = operation.to_string();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        IdempotencyKey(KeyKind::Derived(key))
    }

    /// `"<operation>:<random v4 UUID>"`.
    pub fn fresh(operation: &str) -> Self {
        IdempotencyKey(KeyKind::Fresh(format!("{operation}:{}", Uuid::new_v4())))
    }

    /// The header value for a request with this form body, at most 255 characters.
    fn header_value(&self, body: &str) -> String {
        let key = match &self.0 {
            KeyKind::Derived(prefix) => format!("{prefix}:{:016x}", fnv1a64(body.as_bytes())),
            KeyKind::Fresh(key) => key.clone(),
        };
        if key.len() <= MAX_IDEMPOTENCY_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic()) {
            key
        } else {
            // Only reachable with oversized or odd parts; keep the key deterministic anyway.
            format!("hashed:{:016x}", fnv1a64(key.as_bytes()))
        }
    }
}

/// FNV-1a: a stable, dependency-free 64-bit hash. Not for security, only to tell bodies apart.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// An `application/x-www-form-urlencoded` body with Stripe's nested keys (`a[b][0][c]`), in the
/// order the fields were added. Keys and values are percent-encoded byte by byte (UTF-8), leaving
/// only RFC 3986's unreserved characters as they are, as stripe-go does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn new() -> Self {
        Form(Vec::new())
    }

    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.push((key.into(), value.into()));
        self
    }

    pub fn fields(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            percent_encode_into(&mut out, key);
            out.push('=');
            percent_encode_into(&mut out, value);
        }
        out
    }
}

fn percent_encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// Why a Stripe call failed. `Display` carries Stripe's parsed error (type, code, message) for the
/// logs, never the raw body and never the key; clients see [`ApiError`]'s short message instead.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with an error object (`{"error": {"type", "code", "message", …}}`).
    #[error(
        "Stripe answered {status} ({kind}, code {code:?}, decline code {decline_code:?}, param {param:?}): {message}"
    )]
    Api {
        status: u16,
        /// `type`: `card_error`, `invalid_request_error`, `idempotency_error`, `api_error`, …
        kind: String,
        code: Option<String>,
        decline_code: Option<String>,
        param: Option<String>,
        message: String,
    },
    /// Connection failure or timeout: Stripe may or may not have acted.
    #[error("Stripe could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// A 2xx that is not the object asked for, or an error answer that is not Stripe's shape.
    #[error("unexpected answer from Stripe (HTTP {status}): {detail}")]
    InvalidResponse { status: u16, detail: String },
    /// An id that is not a Stripe id (`prefix_alphanumeric`); never put into a request path.
    #[error("not a Stripe object id")]
    InvalidId,
}

impl StripeError {
    pub fn status(&self) -> Option<u16> {
        match self {
            StripeError::Api { status, .. } | StripeError::InvalidResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Identifiers and codes from Stripe echoed to clients: `[a-z0-9_]`, at most 64 characters, so a
/// fake or hostile answer cannot smuggle text into our messages.
fn safe_code(code: Option<&str>) -> Option<&str> {
    code.filter(|c| {
        !c.is_empty()
            && c.len() <= 64
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

const UNAVAILABLE: &str = "Billing is temporarily unavailable. Please try again later.";

/// The one mapping of Stripe failures to API answers.
///
/// * our key refused (401/403): 503 with the generic text (logged at ERROR with
///   `error_code = "stripe_auth"` and counted as `StripeAuthFailures` when it arrived);
/// * throttled (429), Stripe's own failures (5xx), no answer, or an answer we cannot read: 503;
/// * card declined (`card_error`, 402): 409 naming the decline code;
/// * a concurrent request with the same idempotency key (`idempotency_error`, 409): 409, retry;
/// * an object Stripe no longer has (404): 409 (our records are out of date);
/// * any other refusal (`invalid_request_error`, 400): 400 naming Stripe's error code.
impl From<StripeError> for ApiError {
    fn from(err: StripeError) -> Self {
        let StripeError::Api {
            status,
            kind,
            code,
            decline_code,
            ..
        } = &err
        else {
            return match err {
                StripeError::InvalidId => ApiError::Internal(anyhow::Error::new(err).context("calling Stripe")),
                StripeError::InvalidResponse { .. } => ApiError::BadGateway {
                    message: UNAVAILABLE.into(),
                    source: Some(anyhow::Error::new(err)),
                },
                other => ApiError::unavailable(UNAVAILABLE, other),
            };
        };
        let status = *status;
        let code = safe_code(code.as_deref());
        match (status, kind.as_str()) {
            // Already logged at ERROR and counted where the answer arrived (`report_auth_failure`):
            // an operator fault, never the user's, so the user reads the generic text only.
            (401 | 403, _) => ApiError::unavailable(UNAVAILABLE, err),
            (429, _) => ApiError::unavailable("Billing is busy right now. Please try again in a moment.", err),
            // Stripe itself failed: a bad gateway, worth retrying later.
            (500.., _) => ApiError::BadGateway {
                message: UNAVAILABLE.into(),
                source: Some(anyhow::Error::new(err)),
            },
            (_, "card_error") | (402, _) => {
                let reason = safe_code(decline_code.as_deref()).or(code).unwrap_or("card_declined");
                log_refusal(&err);
                ApiError::Conflict(format!(
                    "The payment was declined ({reason}). Update your payment method in the billing portal and try again."
                ))
            }
            (_, "idempotency_error") | (409, _) => {
                log_refusal(&err);
                ApiError::Conflict(
                    "Another billing request for this account is in progress. Try again in a moment.".into(),
                )
            }
            (404, _) => {
                log_refusal(&err);
                ApiError::Conflict(
                    "Stripe no longer has this billing record. Please contact support if this persists.".into(),
                )
            }
            _ => {
                log_refusal(&err);
                ApiError::bad_request(format!(
                    "Stripe could not process this billing request ({}).",
                    code.unwrap_or("invalid_request")
                ))
            }
        }
    }
}

fn log_refusal(err: &StripeError) {
    tracing::warn!(error = %err, "Stripe refused a billing request");
}

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
    pub status: String,
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
        matches!(self.status.as_str(), "active" | "trialing")
    }
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct RawSession {
    id: String,
    url: Option<String>,
    #[serde(default)]
    created: Option<i64>,
}

/// A field Stripe returns as an id, or as the object when expanded.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    fn into_id(self) -> String {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

#[derive(Deserialize)]
struct RawSubscription {
    id: String,
    status: String,
    customer: Expandable,
    #[serde(default)]
    cancel_at_period_end: bool,
    #[serde(default)]
    current_period_end: Option<i64>,
    items: RawList<RawItem>,
    #[serde(default)]
    latest_invoice: Option<Expandable>,
}

#[derive(Deserialize)]
struct RawInvoicePayment {
    #[serde(default)]
    status: Option<String>,
    payment: RawPaymentRef,
}

#[derive(Deserialize)]
struct RawPaymentRef {
    #[serde(default)]
    payment_intent: Option<Expandable>,
    #[serde(default)]
    charge: Option<Expandable>,
}

#[derive(Deserialize)]
struct RawList<T> {
    data: Vec<T>,
}

#[derive(Deserialize)]
struct RawItem {
    id: String,
    price: Expandable,
    #[serde(default)]
    current_period_end: Option<i64>,
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

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    param: Option<String>,
    message: Option<String>,
}

/// A Stripe object id (`cus_…`, `sub_…`, `si_…`, `price_…`): ASCII letters, digits and `_`.
fn checked_id(id: &str) -> Result<&str, StripeError> {
    let valid = (1..=255).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid { Ok(id) } else { Err(StripeError::InvalidId) }
}

impl Stripe {
    pub fn new(config: StripeConfig, http: reqwest::Client) -> Self {
        Stripe { config, http }
    }

    /// `POST /v1/customers` with the email (when known) and our ids in metadata. Returns its id.
    pub async fn create_customer(
        &self,
        email: Option<&str>,
        user_id: Uuid,
        auth0_sub: Option<&str>,
        key: &IdempotencyKey,
    ) -> Result<String, StripeError> {
        let mut form = Form::new();
        if let Some(email) = email {
            form = form.field("email", email);
        }
        form = form.field("metadata[user_id]", user_id.to_string());
        if let Some(sub) = auth0_sub {
            form = form.field("metadata[auth0_sub]", sub);
        }
        let customer: IdOnly = self.post(&["customers"], &form, key).await?;
        Ok(customer.id)
    }

    /// `POST /v1/checkout/sessions` in subscription mode for one price. `client_reference_id` and
    /// both metadata copies carry our user id, so the webhook can link the session and every later
    /// subscription event to the user.
    pub async fn create_checkout_session(
        &self,
        request: &CheckoutRequest<'_>,
        key: &IdempotencyKey,
    ) -> Result<CheckoutSession, StripeError> {
        let user_id = request.user_id.to_string();
        let form = Form::new()
            .field("mode", "subscription")
            .field("customer", checked_id(request.customer)?)
            .field("line_items[0][price]", checked_id(request.price_id)?)
            .field("line_items[0][quantity]", "1")
            .field("client_reference_id", user_id.as_str())
            .field("subscription_data[metadata][user_id]", user_id.as_str())
            .field("metadata[user_id]", user_id.as_str())
            .field("success_url", request.success_url)
            .field("cancel_url", request.cancel_url);
        let session: RawSession = self.post(&["checkout", "sessions"], &form, key).await?;
        let url = session.url.ok_or_else(|| StripeError::InvalidResponse {
            status: 200,
            detail: "checkout session without a url".into(),
        })?;
        Ok(CheckoutSession {
            id: session.id,
            url,
            created: session.created,
        })
    }

    /// `GET /v1/checkout/sessions?customer=…&status=open`: the customer's sessions that can still
    /// be paid (at most 100, newest first).
    pub async fn list_open_checkout_sessions(&self, customer: &str) -> Result<Vec<OpenCheckoutSession>, StripeError> {
        let mut url = self.endpoint(&["checkout", "sessions"])?;
        url.query_pairs_mut()
            .append_pair("customer", checked_id(customer)?)
            .append_pair("status", "open")
            .append_pair("limit", "100");
        let list: RawList<OpenCheckoutSession> = self.send(Method::GET, url, None).await?;
        Ok(list.data)
    }

    /// `POST /v1/checkout/sessions/{id}/expire`: the session can no longer be paid. Stripe refuses
    /// (400) a session that is not open any more (completed or already expired).
    pub async fn expire_checkout_session(&self, session_id: &str) -> Result<(), StripeError> {
        let key = IdempotencyKey::derived("expire", &[session_id]);
        let _: IdOnly = self
            .post(
                &["checkout", "sessions", checked_id(session_id)?, "expire"],
                &Form::new(),
                &key,
            )
            .await?;
        Ok(())
    }

    /// `DELETE /v1/subscriptions/{id}`: cancels now (no proration, no final invoice). Cancelling
    /// a subscription that is already canceled is not an error here: Stripe refuses it, so the
    /// subscription is read back and returned when it is canceled.
    pub async fn cancel_subscription_now(&self, subscription_id: &str) -> Result<Subscription, StripeError> {
        let url = self.endpoint(&["subscriptions", checked_id(subscription_id)?])?;
        match self.send::<RawSubscription>(Method::DELETE, url, None).await {
            Ok(raw) => Ok(raw.into()),
            Err(err @ StripeError::Api { status: 400 | 404, .. }) => {
                let now = self.retrieve_subscription(subscription_id).await?;
                if matches!(now.status.as_str(), "canceled" | "incomplete_expired") {
                    Ok(now)
                } else {
                    Err(err)
                }
            }
            Err(err) => Err(err),
        }
    }

    /// `GET /v1/invoice_payments?invoice=…&status=paid`: what paid the invoice (API versions
    /// from 2025-03-31.basil keep payments here, not on the invoice).
    pub async fn paid_invoice_payments(&self, invoice_id: &str) -> Result<Vec<InvoicePayment>, StripeError> {
        let mut url = self.endpoint(&["invoice_payments"])?;
        url.query_pairs_mut()
            .append_pair("invoice", checked_id(invoice_id)?)
            .append_pair("status", "paid")
            .append_pair("limit", "100");
        let list: RawList<RawInvoicePayment> = self.send(Method::GET, url, None).await?;
        Ok(list
            .data
            .into_iter()
            .filter(|payment| payment.status.as_deref().is_none_or(|status| status == "paid"))
            .filter_map(
                |payment| match (payment.payment.payment_intent, payment.payment.charge) {
                    (Some(intent), _) => Some(InvoicePayment::PaymentIntent(intent.into_id())),
                    (None, Some(charge)) => Some(InvoicePayment::Charge(charge.into_id())),
                    (None, None) => None,
                },
            )
            .collect())
    }

    /// `POST /v1/refunds` for the whole of one payment. The key is derived from the payment, so
    /// a repeat (a retried webhook delivery) gets the first refund back instead of a second one.
    pub async fn refund(&self, payment: &InvoicePayment, reason: &str) -> Result<RefundOutcome, StripeError> {
        let (field, id) = match payment {
            InvoicePayment::PaymentIntent(id) => ("payment_intent", id.as_str()),
            InvoicePayment::Charge(id) => ("charge", id.as_str()),
        };
        let form = Form::new().field(field, checked_id(id)?).field("reason", reason);
        let key = IdempotencyKey::derived("refund", &[id]);
        match self.post::<IdOnly>(&["refunds"], &form, &key).await {
            Ok(refund) => Ok(RefundOutcome::Refunded(refund.id)),
            Err(StripeError::Api { code: Some(code), .. }) if code == "charge_already_refunded" => {
                Ok(RefundOutcome::AlreadyRefunded)
            }
            Err(err) => Err(err),
        }
    }

    /// `GET /v1/subscriptions/{id}`.
    pub async fn retrieve_subscription(&self, subscription_id: &str) -> Result<Subscription, StripeError> {
        let url = self.endpoint(&["subscriptions", checked_id(subscription_id)?])?;
        let raw: RawSubscription = self.send(Method::GET, url, None).await?;
        Ok(raw.into())
    }

    /// `POST /v1/subscriptions/{id}` moving one existing item to another price, prorated. This
    /// modifies the subscription in place; it never creates one.
    pub async fn update_subscription_price(
        &self,
        subscription_id: &str,
        item_id: &str,
        price_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Subscription, StripeError> {
        let form = Form::new()
            .field("items[0][id]", checked_id(item_id)?)
            .field("items[0][price]", checked_id(price_id)?)
            .field("proration_behavior", "create_prorations");
        let raw: RawSubscription = self
            .post(&["subscriptions", checked_id(subscription_id)?], &form, key)
            .await?;
        Ok(raw.into())
    }

    /// `POST /v1/subscriptions/{id}` with `cancel_at_period_end=true`: paid time is kept.
    pub async fn cancel_at_period_end(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Subscription, StripeError> {
        let form = Form::new().field("cancel_at_period_end", "true");
        let raw: RawSubscription = self
            .post(&["subscriptions", checked_id(subscription_id)?], &form, key)
            .await?;
        Ok(raw.into())
    }

    /// `POST /v1/billing_portal/sessions`: a short-lived portal URL for the customer.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        key: &IdempotencyKey,
    ) -> Result<String, StripeError> {
        let form = Form::new()
            .field("customer", checked_id(customer)?)
            .field("return_url", return_url);
        let session: RawSession = self.post(&["billing_portal", "sessions"], &form, key).await?;
        session.url.ok_or_else(|| StripeError::InvalidResponse {
            status: 200,
            detail: "portal session without a url".into(),
        })
    }

    fn endpoint(&self, segments: &[&str]) -> Result<Url, StripeError> {
        let mut url = self.config.api_base.clone();
        url.path_segments_mut()
            .map_err(|()| StripeError::InvalidResponse {
                status: 0,
                detail: "STRIPE_API_BASE cannot take a path".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        form: &Form,
        key: &IdempotencyKey,
    ) -> Result<T, StripeError> {
        let url = self.endpoint(segments)?;
        self.send(Method::POST, url, Some((form, key))).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        form: Option<(&Form, &IdempotencyKey)>,
    ) -> Result<T, StripeError> {
        let path = url.path().to_string();
        let path = path.as_str();
        let mut request = self
            .http
            .request(method, url)
            .timeout(REQUEST_TIMEOUT)
            .header(AUTHORIZATION, format!("Bearer {}", self.config.secret_key.expose()))
            .header("Stripe-Version", STRIPE_VERSION);
        if let Some((form, key)) = form {
            let body = form.encode();
            request = request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("Idempotency-Key", key.header_value(&body))
                .body(body);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| StripeError::Transport(e.without_url()))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| StripeError::Transport(e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(StripeError::InvalidResponse {
                    status: status.as_u16(),
                    detail: format!("answer larger than {MAX_BODY_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            serde_json::from_slice(&body).map_err(|e| StripeError::InvalidResponse {
                status: status.as_u16(),
                detail: format!("not the expected object ({e})"),
            })
        } else {
            if matches!(status.as_u16(), 401 | 403) {
                report_auth_failure(status.as_u16(), path);
            }
            Err(api_error(status, &body))
        }
    }
}

/// The error code of every log line about Stripe refusing our key, for log searches and alarms.
pub const AUTH_ERROR_CODE: &str = "stripe_auth";
/// The CloudWatch metric counting those refusals (namespace [`crate::platform::metrics::NAMESPACE`],
/// dimension `Stack`); template.yaml's `StripeAuthFailuresAlarm` watches it.
pub const AUTH_FAILURE_METRIC: crate::platform::metrics::Counter =
    crate::platform::metrics::Counter::StripeAuthFailures;

/// Stripe refused our key (401: missing, revoked or rotated; 403: a restricted key without the
/// permission this call needs). Nothing a user can do about it: an operator must fix the key, so
/// it is logged at ERROR with a stable code and counted for the alarm, on every Stripe call (the
/// routes and the webhook alike).
fn report_auth_failure(status: u16, path: &str) {
    tracing::error!(
        error_code = AUTH_ERROR_CODE,
        status,
        path,
        "Stripe refused our API key: check STRIPE_SECRET_KEY and its permissions"
    );
    crate::platform::metrics::count(AUTH_FAILURE_METRIC, 1);
}

/// What [`Stripe::create_checkout_session`] needs.
#[derive(Debug, Clone, Copy)]
pub struct CheckoutRequest<'a> {
    pub customer: &'a str,
    pub price_id: &'a str,
    pub user_id: Uuid,
    /// May contain Stripe's literal `{CHECKOUT_SESSION_ID}` placeholder.
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

fn api_error(status: StatusCode, body: &[u8]) -> StripeError {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(ErrorEnvelope { error }) => StripeError::Api {
            status: status.as_u16(),
            kind: error.kind.unwrap_or_else(|| "unknown".into()),
            code: error.code,
            decline_code: error.decline_code,
            param: error.param,
            message: one_line(error.message.as_deref().unwrap_or(""), 300),
        },
        // Not Stripe's shape (a proxy's HTML page, say): keep the status, drop the body.
        Err(_) => StripeError::InvalidResponse {
            status: status.as_u16(),
            detail: "error answer without a Stripe error object".into(),
        },
    }
}

fn one_line(text: &str, max_chars: usize) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::config::Secret;

    #[test]
    fn forms_encode_nested_keys_and_reserved_characters() {
        let form = Form::new()
            .field("line_items[0][price]", "price_123")
            .field(
                "success_url",
                "https://app.test/profile?checkout=success&session_id={CHECKOUT_SESSION_ID}",
            )
            .field("email", "a+b c@exämple.com");
        assert_eq!(
            form.encode(),
            "line_items%5B0%5D%5Bprice%5D=price_123\
             &success_url=https%3A%2F%2Fapp.test%2Fprofile%3Fcheckout%3Dsuccess%26session_id%3D%7BCHECKOUT_SESSION_ID%7D\
             &email=a%2Bb%20c%40ex%C3%A4mple.com"
        );
        let decoded: Vec<(String, String)> = url::form_urlencoded::parse(form.encode().as_bytes())
            .into_owned()
            .collect();
        assert_eq!(decoded, form.fields());
        assert_eq!(Form::new().encode(), "");
    }

    #[test]
    fn derived_keys_depend_on_the_body_and_fresh_keys_never_repeat() {
        let key = IdempotencyKey::derived("checkout", &["user", "pro", "123"]);
        let a = key.header_value("a=1");
        assert!(a.starts_with("checkout:user:pro:123:"), "{a}");
        assert_eq!(a, key.header_value("a=1"));
        assert_ne!(a, key.header_value("a=2"));
        let fresh = IdempotencyKey::fresh("cancel");
        assert_eq!(fresh.header_value("x"), fresh.header_value("y"));
        assert_ne!(
            fresh.header_value("x"),
            IdempotencyKey::fresh("cancel").header_value("x")
        );
        let long = IdempotencyKey::derived(&"x".repeat(300), &[]).header_value("");
        assert!(long.len() <= MAX_IDEMPOTENCY_KEY_LEN && long.starts_with("hashed:"));
    }

    #[test]
    fn ids_are_checked_before_they_reach_a_path() {
        assert!(checked_id("sub_1AbC").is_ok());
        for bad in ["", "../customers", "sub_1/../x", "sub 1", "sub%2F"] {
            assert!(checked_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_map_to_safe_answers() {
        let api = |status: u16, kind: &str, code: Option<&str>| StripeError::Api {
            status,
            kind: kind.into(),
            code: code.map(str::to_string),
            decline_code: None,
            param: None,
            message: "raw detail from stripe sk_test_secret".into(),
        };
        let cases = [
            (api(402, "card_error", Some("card_declined")), 409),
            (api(400, "invalid_request_error", Some("parameter_invalid")), 400),
            (api(404, "invalid_request_error", Some("resource_missing")), 409),
            (api(409, "idempotency_error", None), 409),
            (api(401, "invalid_request_error", None), 503),
            (api(403, "invalid_request_error", None), 503),
            (api(429, "invalid_request_error", Some("rate_limit")), 503),
            (api(500, "api_error", None), 502),
        ];
        for (err, status) in cases {
            let response = ApiError::from(err).into_response();
            assert_eq!(response.status().as_u16(), status);
            let text = String::from_utf8(response.body().to_vec()).unwrap();
            assert!(!text.contains("raw detail") && !text.contains("sk_test"), "{text}");
        }
        let odd_code = api(400, "invalid_request_error", Some("<script>alert(1)</script>"));
        let text = String::from_utf8(ApiError::from(odd_code).into_response().body().to_vec()).unwrap();
        assert!(!text.contains("script"), "{text}");
    }

    #[test]
    fn error_bodies_are_parsed_and_others_dropped() {
        let body = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","param":""}}"#;
        match api_error(StatusCode::PAYMENT_REQUIRED, body) {
            StripeError::Api {
                status,
                kind,
                decline_code,
                ..
            } => {
                assert_eq!((status, kind.as_str()), (402, "card_error"));
                assert_eq!(decline_code.as_deref(), Some("insufficient_funds"));
            }
            other => panic!("{other:?}"),
        }
        let html = api_error(StatusCode::BAD_GATEWAY, b"<html>secret internals</html>");
        assert!(!html.to_string().contains("secret internals"));
    }

    #[test]
    fn subscriptions_read_the_period_from_items_on_new_api_versions() {
        let raw: RawSubscription = serde_json::from_str(
            r#"{"id":"sub_1","object":"subscription","status":"active","customer":"cus_1","cancel_at_period_end":false,
                "items":{"object":"list","data":[{"id":"si_1","price":{"id":"price_pro","object":"price"},"current_period_end":1800000000}]}}"#,
        )
        .unwrap();
        let sub = Subscription::from(raw);
        assert_eq!(sub.current_period_end, Some(1_800_000_000));
        assert_eq!(sub.items[0].price_id, "price_pro");
        assert!(sub.is_current());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let stripe = Stripe::new(
            StripeConfig {
                secret_key: Secret::new("sk_test_very_secret"),
                api_base: Url::parse("https://api.stripe.com/v1").unwrap(),
            },
            reqwest::Client::new(),
        );
        assert!(!format!("{stripe:?}").contains("very_secret"));
    }
}

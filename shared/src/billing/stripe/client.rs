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

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

mod error;
mod form;
mod objects;

pub use error::{AUTH_ERROR_CODE, AUTH_FAILURE_METRIC, StripeError};
use error::{api_error, report_auth_failure};
pub use form::{Form, IdempotencyKey};
pub use objects::*;

use super::{STRIPE_VERSION, StripeConfig};

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
                if now.status.is_terminal() { Ok(now) } else { Err(err) }
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

#[cfg(test)]
mod tests;

//! What the billing routes share: the Stripe client or a 503, the plan a request names, the
//! user's Stripe customer (created once), the URLs Stripe sends the browser back to, and the
//! `limit`/`offset` pagination of the subscription and invoice lists.
//!
//! The routes never write subscription or invoice state: Stripe is the source of truth and the
//! webhook mirrors it (docs/billing.md). The only write here is the user's customer id.

use chrono::Utc;
use lambda_http::Request;
use serde::{Deserialize, Serialize};

use crate::billing::stripe::Stripe;
use crate::billing::stripe::client::{CheckoutSession, IdempotencyKey};
use crate::db::plans::{self, Plan};
use crate::db::users::{self, User};
use crate::platform::config::WebConfig;
use crate::platform::error::{ApiError, FieldError};
use crate::platform::http::query_param;
use crate::platform::state::BillingState;

pub const DEFAULT_PAGE_LIMIT: i64 = 50;
pub const MAX_PAGE_LIMIT: i64 = 100;

/// The Stripe client, or 503 when `STRIPE_SECRET_KEY` is not set (development without Stripe).
pub fn stripe(state: &BillingState) -> Result<&Stripe, ApiError> {
    state.stripe.as_ref().ok_or_else(|| ApiError::Unavailable {
        message: "Billing is not configured on this server".into(),
        source: None,
    })
}

/// `{"plan": "pro"}`: the body of create-checkout and upgrade-subscription.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    pub plan: String,
}

/// A plan a user can pay for: active, with a Stripe price, not the free plan. Anything else is a
/// 422 on `plan` listing the codes that would work.
pub async fn paid_plan(state: &BillingState, code: &str) -> Result<(Plan, String), ApiError> {
    let paid: Vec<(Plan, String)> = plans::list_active(&state.api.db)
        .await?
        .into_iter()
        .filter(|plan| plan.code != "free")
        .filter_map(|plan| plan.price_id.clone().map(|price| (plan, price)))
        .collect();
    if let Some(found) = paid.iter().find(|(plan, _)| plan.code == code) {
        return Ok(found.clone());
    }
    let codes: Vec<&str> = paid.iter().map(|(plan, _)| plan.code.as_str()).collect();
    let message = if codes.is_empty() {
        "no paid plan is available".to_string()
    } else {
        format!("must be one of: {}", codes.join(", "))
    };
    Err(ApiError::Validation(vec![FieldError::new("plan", message)]))
}

/// The code of the active plan whose price this is, if any.
pub async fn plan_code_for_price(state: &BillingState, price_id: &str) -> Result<Option<String>, ApiError> {
    Ok(plans::list_active(&state.api.db)
        .await?
        .into_iter()
        .find(|plan| plan.price_id.as_deref() == Some(price_id))
        .map(|plan| plan.code))
}

/// The user's Stripe customer: the stored one, or a new one (email and our ids in metadata)
/// stored once. The creation key is derived from the user and the body, so a repeat after a
/// failure between Stripe's answer and our write gets the same customer back instead of a second.
pub async fn ensure_customer(state: &BillingState, stripe: &Stripe, user: &User) -> Result<String, ApiError> {
    if let Some(id) = &user.stripe_customer_id {
        return Ok(id.clone());
    }
    let user_id = user.id.to_string();
    let key = IdempotencyKey::derived("customer", &[&user_id]);
    let created = stripe
        .create_customer(user.email.as_deref(), user.id, Some(&user.auth0_sub), &key)
        .await?;
    let stored = users::set_stripe_customer_id_if_unset(&state.api.db, user.id, &created)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if stored != created {
        tracing::warn!(user_id = %user.id, unused_customer = %created, "a concurrent request stored another Stripe customer");
    }
    Ok(stored)
}

/// Where Checkout sends the browser: `(success, cancel)` under `FRONTEND_URL`. Stripe replaces
/// the literal `{CHECKOUT_SESSION_ID}`; the page must still wait for the webhook, not the redirect.
pub fn checkout_urls(web: &WebConfig) -> (String, String) {
    let origin = &web.frontend_origin;
    (
        format!("{origin}/profile?checkout=success&session_id={{CHECKOUT_SESSION_ID}}"),
        format!("{origin}/profile?checkout=canceled"),
    )
}

/// Expires the customer's open Checkout Sessions created before `new_session`, so that only the
/// newest one can still be paid (two tabs, or a checkout abandoned and restarted, cannot both
/// become subscriptions). Best effort: the session just created is already the answer, and the
/// webhook cancels a second subscription should one get through anyway, so a failure here is
/// logged and never fails the checkout. Skipped:
///
/// * the new session itself (a double click within the minute gets the same session back);
/// * sessions created in the same second or later: two tabs racing would otherwise expire each
///   other's session and leave the user none;
/// * sessions Stripe refuses to expire (already completed or expired: 400), logged only.
pub async fn expire_earlier_checkouts(stripe: &Stripe, customer: &str, new_session: &CheckoutSession) {
    let Some(created) = new_session.created else {
        tracing::warn!(session = %new_session.id, "checkout session without `created`; earlier sessions left open");
        return;
    };
    let open = match stripe.list_open_checkout_sessions(customer).await {
        Ok(open) => open,
        Err(err) => {
            tracing::warn!(error = %err, customer, "could not list open checkout sessions; earlier sessions left open");
            return;
        }
    };
    for session in open
        .iter()
        .filter(|session| session.id != new_session.id && session.created < created)
    {
        match stripe.expire_checkout_session(&session.id).await {
            Ok(()) => {
                tracing::info!(session = %session.id, newer = %new_session.id, "earlier checkout session expired")
            }
            Err(err) => tracing::warn!(session = %session.id, error = %err, "earlier checkout session not expired"),
        }
    }
}

/// Where the billing portal returns to.
pub fn portal_return_url(web: &WebConfig) -> String {
    format!("{}/profile", web.frontend_origin)
}

/// Checkout sessions from repeated clicks within one minute are the same session.
pub fn checkout_key(user: &User, plan: &str) -> IdempotencyKey {
    let minute = (Utc::now().timestamp() / 60).to_string();
    IdempotencyKey::derived("checkout", &[&user.id.to_string(), plan, &minute])
}

/// `limit` (1..=100, default 50) and `offset` (≥ 0, default 0); anything else is a 400 that says
/// what is accepted.
pub fn page_params(req: &Request) -> Result<(i64, i64), ApiError> {
    let limit = match query_param(req, "limit")? {
        None => DEFAULT_PAGE_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_LIMIT).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("`limit` must be an integer from 1 to {MAX_PAGE_LIMIT}")))?,
    };
    let offset = match query_param(req, "offset")? {
        None => 0,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::bad_request("`offset` must be an integer of 0 or more"))?,
    };
    Ok((limit, offset))
}

/// `{"items": [...], "limit": n, "offset": n}`.
#[derive(Debug, Serialize)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub limit: i64,
    pub offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::config::AppEnv;
    use lambda_http::RequestExt;
    use std::collections::HashMap;

    fn request(query: &[(&str, &str)]) -> Request {
        let params: HashMap<String, Vec<String>> = query
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect();
        http::Request::builder()
            .uri("/x")
            .body(lambda_http::Body::Empty)
            .unwrap()
            .with_query_string_parameters(params)
    }

    #[test]
    fn page_parameters_are_bounded() {
        assert_eq!(page_params(&request(&[])).unwrap(), (50, 0));
        assert_eq!(
            page_params(&request(&[("limit", "100"), ("offset", "12")])).unwrap(),
            (100, 12)
        );
        assert_eq!(page_params(&request(&[("limit", "1")])).unwrap(), (1, 0));
        for (name, value) in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "-1"),
            ("limit", "x"),
            ("offset", "-1"),
        ] {
            let err = page_params(&request(&[(name, value)])).unwrap_err();
            assert_eq!(err.status(), 400, "{name}={value}");
        }
    }

    #[test]
    fn return_urls_sit_under_the_frontend() {
        let web = WebConfig {
            app_env: AppEnv::Test,
            frontend_origin: "https://app.test".into(),
        };
        let (success, cancel) = checkout_urls(&web);
        assert_eq!(
            success,
            "https://app.test/profile?checkout=success&session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(cancel, "https://app.test/profile?checkout=canceled");
        assert_eq!(portal_return_url(&web), "https://app.test/profile");
    }
}

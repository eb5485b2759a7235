//! The billing routes against a fake Stripe (wiremock, Stripe's documented shapes: form-encoded
//! requests, JSON objects, `{"error": {...}}` failures): checkout, upgrade, cancel, portal and the
//! subscription and invoice lists. Subscription rows are inserted directly, as the webhook would.

use std::collections::HashMap;

use serde_json::{Value, json};
use shared::billing::plans::PlansConfig;
use shared::billing::stripe::{STRIPE_VERSION, Stripe, StripeConfig};
use shared::platform::config::{AppEnv, Env, Secret};
use shared::platform::state::{ApiState, BillingState, outbound_http_client};
use shared::reqwest::Url;
use sqlx::PgPool;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request as StripeRequest, ResponseTemplate};

use crate::support::*;

pub(crate) const ALICE: &str = "auth0|alice";
pub(crate) const BOB: &str = "auth0|bob";
pub(crate) const PRO_PRICE: &str = "price_pro_billing";
pub(crate) const BUSINESS_PRICE: &str = "price_business_billing";
pub(crate) const SECRET_KEY: &str = "sk_test_billing_secret";

pub(crate) const CHECKOUT: &str = "/api/v1/billing/create-checkout";
pub(crate) const UPGRADE: &str = "/api/v1/billing/upgrade-subscription";
pub(crate) const CANCEL: &str = "/api/v1/billing/cancel-subscription";
pub(crate) const PORTAL: &str = "/api/v1/billing/portal";
const SUBSCRIPTIONS: &str = "/api/v1/billing/subscriptions";
const INVOICES: &str = "/api/v1/billing/invoices";

pub(crate) struct Billing {
    pub(crate) app: TestApp,
    pub(crate) stripe: MockServer,
    pub(crate) state: BillingState,
}

pub(crate) async fn billing(db: PgPool) -> Billing {
    let app = spawn_app(db).await;
    let vars: HashMap<&str, &str> = [
        ("STRIPE_PRICE_PRO", PRO_PRICE),
        ("STRIPE_PRICE_BUSINESS", BUSINESS_PRICE),
    ]
    .into();
    let plans = PlansConfig::from_env(&Env(&vars), AppEnv::Test).unwrap();
    shared::db::migrate::migrate_and_sync(&app.db, &plans).await.unwrap();
    let stripe = MockServer::start().await;
    let config = StripeConfig {
        secret_key: Secret::new(SECRET_KEY),
        api_base: format!("{}/v1", stripe.uri()).parse().unwrap(),
    };
    let state = BillingState {
        api: ApiState::new(web_config(), app.db.clone(), app.auth.clone()).unwrap(),
        stripe: Some(Stripe::new(config, outbound_http_client().unwrap())),
    };
    Billing { app, stripe, state }
}

impl Billing {
    pub(crate) async fn user(&self, sub: &str) -> Uuid {
        shared::db::users::ensure_by_sub(&self.app.db, sub).await.unwrap().id
    }

    pub(crate) async fn post(&self, route: &'static str, sub: &str, body: Option<Value>) -> TestResponse {
        let mut request = call("POST", route).bearer(&self.app.token(sub));
        if let Some(body) = body {
            request = request.json(body);
        }
        let web = &self.state.api.web;
        match route {
            CHECKOUT => request.send(&self.state, web, create_checkout::handle).await,
            UPGRADE => request.send(&self.state, web, upgrade_subscription::handle).await,
            CANCEL => request.send(&self.state, web, cancel_subscription::handle).await,
            PORTAL => request.send(&self.state, web, billing_portal::handle).await,
            other => panic!("not a POST billing route: {other}"),
        }
    }

    async fn list(&self, route: &'static str, sub: &str, query: &[(&str, &str)]) -> TestResponse {
        let mut request = call("GET", route).bearer(&self.app.token(sub));
        for (name, value) in query {
            request = request.query(name, value);
        }
        let web = &self.state.api.web;
        match route {
            SUBSCRIPTIONS => request.send(&self.state, web, list_subscriptions::handle).await,
            INVOICES => request.send(&self.state, web, list_invoices::handle).await,
            other => panic!("not a list route: {other}"),
        }
    }

    /// What the fake Stripe received on `path`, in order.
    pub(crate) async fn received(&self, method_name: &str, route: &str) -> Vec<StripeRequest> {
        self.stripe
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == method_name && r.url.path() == route)
            .collect()
    }

    async fn stored_customer(&self, user: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT stripe_customer_id FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }
}

/// The form fields of a request body, decoded.
pub(crate) fn form(request: &StripeRequest) -> HashMap<String, String> {
    let body = String::from_utf8(request.body.clone()).unwrap();
    let url = Url::parse(&format!("http://form.test/?{body}")).unwrap();
    url.query_pairs().into_owned().collect()
}

pub(crate) fn header<'a>(request: &'a StripeRequest, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// Every Stripe request carries our key, the pinned version; a POST also a form body and a key.
pub(crate) fn assert_stripe_headers(request: &StripeRequest) {
    assert_eq!(header(request, "authorization"), format!("Bearer {SECRET_KEY}"));
    assert_eq!(header(request, "stripe-version"), STRIPE_VERSION);
    if request.method.as_str() == "POST" {
        assert_eq!(header(request, "content-type"), "application/x-www-form-urlencoded");
        let key = header(request, "idempotency-key");
        assert!(!key.is_empty() && key.len() <= 255, "{key}");
    }
}

/// A subscription row as the webhook writes it; `age` shifts created_at (e.g. '-10 days').
pub(crate) async fn insert_subscription(
    db: &PgPool,
    user: Uuid,
    stripe_id: &str,
    status: &str,
    price: &str,
    age: &str,
) {
    sqlx::query(
        "INSERT INTO subscriptions (user_id, stripe_subscription_id, stripe_customer_id, status, price_id, \
             current_period_start, current_period_end, created_at) \
         VALUES ($1, $2, 'cus_existing', $3, $4, date_trunc('second', now()) - interval '5 days', \
                 date_trunc('second', now()) + interval '25 days', now() + $5::interval)",
    )
    .bind(user)
    .bind(stripe_id)
    .bind(status)
    .bind(price)
    .bind(age)
    .execute(db)
    .await
    .unwrap();
}

async fn insert_invoice(db: &PgPool, user: Uuid, stripe_id: &str, age: &str) {
    sqlx::query(
        "INSERT INTO invoices (user_id, stripe_invoice_id, stripe_subscription_id, status, amount_due, amount_paid, \
             currency, stripe_created_at) \
         VALUES ($1, $2, 'sub_x', 'paid', 1900, 1900, 'usd', now() + $3::interval)",
    )
    .bind(user)
    .bind(stripe_id)
    .bind(age)
    .execute(db)
    .await
    .unwrap();
}

pub(crate) fn stripe_subscription(id: &str, item: &str, price: &str, cancel_at_period_end: bool) -> Value {
    json!({
        "id": id, "object": "subscription", "status": "active", "customer": "cus_existing",
        "cancel_at_period_end": cancel_at_period_end,
        "items": {"object": "list", "data": [{
            "id": item, "object": "subscription_item",
            "price": {"id": price, "object": "price"},
            "current_period_start": 1_790_000_000, "current_period_end": 1_792_592_000
        }]}
    })
}

pub(crate) async fn mount_checkout(stripe: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "cus_new", "object": "customer"})))
        .mount(stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_1", "object": "checkout.session", "mode": "subscription",
            "url": "https://checkout.stripe.com/c/pay/cs_test_1"
        })))
        .mount(stripe)
        .await;
}

#[sqlx::test]
async fn checkout_creates_the_customer_once_and_links_the_session_to_the_user(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    sqlx::query("UPDATE users SET email = 'alice@example.com' WHERE id = $1")
        .bind(alice)
        .execute(&b.app.db)
        .await
        .unwrap();
    mount_checkout(&b.stripe).await;

    let first = b.post(CHECKOUT, ALICE, Some(json!({"plan": "pro"}))).await;
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    assert_eq!(
        first.json(),
        json!({"url": "https://checkout.stripe.com/c/pay/cs_test_1", "session_id": "cs_test_1"})
    );
    let second = b.post(CHECKOUT, ALICE, Some(json!({"plan": "business"}))).await;
    assert_eq!(second.status, 200);

    let customers = b.received("POST", "/v1/customers").await;
    assert_eq!(customers.len(), 1, "the stored customer is reused");
    assert_stripe_headers(&customers[0]);
    let fields = form(&customers[0]);
    assert_eq!(fields["email"], "alice@example.com");
    assert_eq!(fields["metadata[user_id]"], alice.to_string());
    assert_eq!(fields["metadata[auth0_sub]"], ALICE);
    assert!(header(&customers[0], "idempotency-key").starts_with(&format!("customer:{alice}:")));
    assert_eq!(b.stored_customer(alice).await.as_deref(), Some("cus_new"));

    let sessions = b.received("POST", "/v1/checkout/sessions").await;
    assert_eq!(sessions.len(), 2);
    for session in &sessions {
        assert_stripe_headers(session);
    }
    let fields = form(&sessions[0]);
    let expected: HashMap<String, String> = [
        ("mode", "subscription".to_string()),
        ("customer", "cus_new".into()),
        ("line_items[0][price]", PRO_PRICE.into()),
        ("line_items[0][quantity]", "1".into()),
        ("client_reference_id", alice.to_string()),
        ("subscription_data[metadata][user_id]", alice.to_string()),
        ("metadata[user_id]", alice.to_string()),
        (
            "success_url",
            format!("{FRONTEND}/profile?checkout=success&session_id={{CHECKOUT_SESSION_ID}}"),
        ),
        ("cancel_url", format!("{FRONTEND}/profile?checkout=canceled")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(fields, expected);
    assert_eq!(form(&sessions[1])["line_items[0][price]"], BUSINESS_PRICE);
    let key = header(&sessions[0], "idempotency-key");
    assert!(key.starts_with(&format!("checkout:{alice}:pro:")), "{key}");
    assert_ne!(key, header(&sessions[1], "idempotency-key"));
}

#[sqlx::test]
async fn a_customer_stored_by_a_concurrent_request_wins(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    let stored = shared::db::users::set_stripe_customer_id_if_unset(&b.app.db, alice, "cus_first")
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("cus_first"));
    let second = shared::db::users::set_stripe_customer_id_if_unset(&b.app.db, alice, "cus_second")
        .await
        .unwrap();
    assert_eq!(second.as_deref(), Some("cus_first"));
    assert_eq!(b.stored_customer(alice).await.as_deref(), Some("cus_first"));
}

#[sqlx::test]
async fn checkout_for_a_subscribed_user_is_refused_without_calling_stripe(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    insert_subscription(&b.app.db, alice, "sub_alice", "active", PRO_PRICE, "0 days").await;
    mount_checkout(&b.stripe).await;

    for plan in ["pro", "business"] {
        let response = b.post(CHECKOUT, ALICE, Some(json!({ "plan": plan }))).await;
        response.assert_error(409, "conflict");
        assert!(
            response.json()["message"]
                .as_str()
                .unwrap()
                .contains("upgrade-subscription")
        );
    }
    assert!(b.received("POST", "/v1/checkout/sessions").await.is_empty());
    assert!(b.received("POST", "/v1/customers").await.is_empty());
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions")
        .fetch_one(&b.app.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[sqlx::test]
async fn checkout_for_a_user_with_an_unpaid_subscription_points_to_the_portal(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    mount_checkout(&b.stripe).await;
    for status in ["past_due", "unpaid", "paused"] {
        sqlx::query("DELETE FROM subscriptions")
            .execute(&b.app.db)
            .await
            .unwrap();
        insert_subscription(&b.app.db, alice, "sub_alice", status, PRO_PRICE, "0 days").await;
        let response = b.post(CHECKOUT, ALICE, Some(json!({ "plan": "pro" }))).await;
        response.assert_error(409, "conflict");
        assert!(
            response.json()["message"].as_str().unwrap().contains("billing portal"),
            "{status}"
        );
    }
    // A canceled subscription is history: subscribing again is fine.
    sqlx::query("UPDATE subscriptions SET status = 'canceled'")
        .execute(&b.app.db)
        .await
        .unwrap();
    let response = b.post(CHECKOUT, ALICE, Some(json!({ "plan": "pro" }))).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(b.received("POST", "/v1/checkout/sessions").await.len(), 1);
}

#[sqlx::test]
async fn checkout_takes_only_a_paid_plan_code(db: PgPool) {
    let b = billing(db).await;
    mount_checkout(&b.stripe).await;
    for body in [
        json!({"plan": "enterprise"}),
        json!({"plan": "free"}),
        json!({"plan": PRO_PRICE}),
        json!({"plan": "pro", "price_id": "price_other"}),
        json!({}),
        json!({"plan": 5}),
    ] {
        let response = b.post(CHECKOUT, ALICE, Some(body.clone())).await;
        assert!(
            !response.invalid_fields().is_empty(),
            "{body}: {}",
            String::from_utf8_lossy(&response.body)
        );
    }
    let response = b.post(CHECKOUT, ALICE, Some(json!({"plan": "free"}))).await;
    assert_eq!(response.json()["validation_errors"][0]["field"], "plan");
    assert!(b.stripe.received_requests().await.unwrap().is_empty());
}

#[sqlx::test]
async fn upgrade_changes_the_existing_item_and_never_creates_a_subscription(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    insert_subscription(&b.app.db, alice, "sub_alice", "active", PRO_PRICE, "0 days").await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_alice"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_subscription(
            "sub_alice",
            "si_alice",
            PRO_PRICE,
            false,
        )))
        .mount(&b.stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_alice"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_subscription(
            "sub_alice",
            "si_alice",
            BUSINESS_PRICE,
            false,
        )))
        .mount(&b.stripe)
        .await;

    let response = b.post(UPGRADE, ALICE, Some(json!({"plan": "business"}))).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(
        response.json(),
        json!({"subscription_id": "sub_alice", "plan": "business", "status": "active"})
    );
    let updates = b.received("POST", "/v1/subscriptions/sub_alice").await;
    assert_eq!(updates.len(), 1);
    assert_stripe_headers(&updates[0]);
    let fields = form(&updates[0]);
    assert_eq!(fields["items[0][id]"], "si_alice");
    assert_eq!(fields["items[0][price]"], BUSINESS_PRICE);
    assert_eq!(fields["proration_behavior"], "create_prorations");
    assert_eq!(fields.len(), 3);
    assert!(header(&updates[0], "idempotency-key").starts_with("upgrade:"));
    assert_stripe_headers(&b.received("GET", "/v1/subscriptions/sub_alice").await[0]);

    let all = b.stripe.received_requests().await.unwrap();
    assert!(
        all.iter()
            .all(|r| r.url.path() != "/v1/subscriptions" && r.url.path() != "/v1/checkout/sessions")
    );

    // The mirror still says pro (no webhook has run): asking for pro is refused before any call.
    let same = b.post(UPGRADE, ALICE, Some(json!({"plan": "pro"}))).await;
    same.assert_error(409, "conflict");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions")
        .fetch_one(&b.app.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[sqlx::test]
async fn upgrade_needs_a_current_subscription_and_a_different_plan(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    let response = b.post(UPGRADE, ALICE, Some(json!({"plan": "business"}))).await;
    response.assert_error(409, "conflict");
    assert!(response.json()["message"].as_str().unwrap().contains("create-checkout"));

    insert_subscription(&b.app.db, alice, "sub_gone", "canceled", PRO_PRICE, "0 days").await;
    b.post(UPGRADE, ALICE, Some(json!({"plan": "business"})))
        .await
        .assert_error(409, "conflict");

    // The mirror lags a portal change: Stripe already has business, so nothing is sent.
    insert_subscription(&b.app.db, alice, "sub_live", "active", PRO_PRICE, "1 second").await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_live"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_subscription(
            "sub_live",
            "si_live",
            BUSINESS_PRICE,
            false,
        )))
        .mount(&b.stripe)
        .await;
    b.post(UPGRADE, ALICE, Some(json!({"plan": "business"})))
        .await
        .assert_error(409, "conflict");
    assert!(b.received("POST", "/v1/subscriptions/sub_live").await.is_empty());
    b.post(UPGRADE, ALICE, Some(json!({"plan": "free"})))
        .await
        .assert_error(422, "validation_failed");
}

#[sqlx::test]
async fn cancel_targets_the_active_subscription_even_when_a_newer_one_is_canceled(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    b.post(CANCEL, ALICE, None).await.assert_error(409, "conflict");

    insert_subscription(&b.app.db, alice, "sub_active", "active", PRO_PRICE, "-10 days").await;
    insert_subscription(&b.app.db, alice, "sub_canceled", "canceled", BUSINESS_PRICE, "0 days").await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_active"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_subscription(
            "sub_active",
            "si_active",
            PRO_PRICE,
            true,
        )))
        .mount(&b.stripe)
        .await;

    let response = b.post(CANCEL, ALICE, None).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(
        response.json(),
        json!({"subscription_id": "sub_active", "cancel_at_period_end": true, "current_period_end": "2026-10-21T14:13:20Z"})
    );
    let calls = b.stripe.received_requests().await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].url.path(), "/v1/subscriptions/sub_active");
    assert_stripe_headers(&calls[0]);
    assert_eq!(
        form(&calls[0]),
        HashMap::from([("cancel_at_period_end".into(), "true".into())])
    );
    assert!(header(&calls[0], "idempotency-key").starts_with("cancel:"));
    let stored: bool = sqlx::query_scalar(
        "SELECT cancel_at_period_end FROM subscriptions WHERE stripe_subscription_id = 'sub_active'",
    )
    .fetch_one(&b.app.db)
    .await
    .unwrap();
    assert!(!stored, "the route leaves the mirror to the webhook");
}

#[sqlx::test]
async fn portal_needs_a_customer_and_returns_to_the_profile(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    let response = b.post(PORTAL, ALICE, None).await;
    response.assert_error(409, "conflict");
    assert!(response.json()["message"].as_str().unwrap().contains("subscribe first"));

    link_stripe_customer(&b.app.db, alice, "cus_alice").await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "bps_1", "object": "billing_portal.session", "url": "https://billing.stripe.com/p/session/test_1"
        })))
        .expect(1)
        .mount(&b.stripe)
        .await;
    let response = b.post(PORTAL, ALICE, None).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(
        response.json(),
        json!({"url": "https://billing.stripe.com/p/session/test_1"})
    );
    let calls = b.received("POST", "/v1/billing_portal/sessions").await;
    assert_stripe_headers(&calls[0]);
    assert_eq!(
        form(&calls[0]),
        HashMap::from([
            ("customer".into(), "cus_alice".into()),
            ("return_url".into(), format!("{FRONTEND}/profile")),
        ])
    );
}

#[sqlx::test]
async fn lists_show_only_the_callers_rows_newest_first(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    let bob = b.user(BOB).await;
    insert_subscription(&b.app.db, alice, "sub_a_old", "canceled", PRO_PRICE, "-30 days").await;
    insert_subscription(&b.app.db, alice, "sub_a_new", "active", BUSINESS_PRICE, "0 days").await;
    insert_subscription(&b.app.db, bob, "sub_b", "active", PRO_PRICE, "-1 day").await;
    insert_invoice(&b.app.db, alice, "in_a_old", "-30 days").await;
    insert_invoice(&b.app.db, alice, "in_a_new", "0 days").await;
    insert_invoice(&b.app.db, bob, "in_b", "-1 day").await;

    let ids = |body: &Value, field: &str| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i[field].as_str().unwrap().to_string())
            .collect()
    };
    let alice_subs = b.list(SUBSCRIPTIONS, ALICE, &[]).await;
    assert_eq!(alice_subs.status, 200);
    let body = alice_subs.json();
    assert_eq!(ids(&body, "stripe_subscription_id"), ["sub_a_new", "sub_a_old"]);
    assert_eq!((body["limit"].as_i64(), body["offset"].as_i64()), (Some(50), Some(0)));
    assert_eq!(body["items"][0]["status"], "active");
    assert_eq!(body["items"][0]["price_id"], BUSINESS_PRICE);

    let bob_subs = b.list(SUBSCRIPTIONS, BOB, &[]).await.json();
    assert_eq!(ids(&bob_subs, "stripe_subscription_id"), ["sub_b"]);
    let bob_invoices = b.list(INVOICES, BOB, &[]).await.json();
    assert_eq!(ids(&bob_invoices, "stripe_invoice_id"), ["in_b"]);

    let alice_invoices = b.list(INVOICES, ALICE, &[]).await.json();
    assert_eq!(ids(&alice_invoices, "stripe_invoice_id"), ["in_a_new", "in_a_old"]);
    assert_eq!(alice_invoices["items"][0]["amount_due"], 1900);
    let second_page = b.list(INVOICES, ALICE, &[("limit", "1"), ("offset", "1")]).await.json();
    assert_eq!(ids(&second_page, "stripe_invoice_id"), ["in_a_old"]);
    assert_eq!(
        (second_page["limit"].as_i64(), second_page["offset"].as_i64()),
        (Some(1), Some(1))
    );

    for (name, value) in [("limit", "0"), ("limit", "101"), ("limit", "ten"), ("offset", "-1")] {
        for route in [SUBSCRIPTIONS, INVOICES] {
            let response = b.list(route, ALICE, &[(name, value)]).await;
            response.assert_error(400, "bad_request");
            assert!(response.json()["message"].as_str().unwrap().contains(name));
        }
    }
    // The lists read the database only: they work without Stripe.
    assert!(b.stripe.received_requests().await.unwrap().is_empty());
}

#[sqlx::test]
async fn stripe_failures_become_clear_answers_without_stripes_text(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    link_stripe_customer(&b.app.db, alice, "cus_alice").await;
    let sentinel = "INTERNAL-STRIPE-DETAIL do not show";
    let cases = [
        (
            402,
            json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds", "message": sentinel}}),
            409,
            "conflict",
        ),
        (
            400,
            json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "line_items[0][price]", "message": sentinel}}),
            400,
            "bad_request",
        ),
        (
            401,
            json!({"error": {"type": "invalid_request_error", "message": format!("Invalid API Key provided: {SECRET_KEY} {sentinel}")}}),
            503,
            "service_unavailable",
        ),
        (
            429,
            json!({"error": {"type": "invalid_request_error", "code": "rate_limit", "message": sentinel}}),
            503,
            "service_unavailable",
        ),
        (
            500,
            json!({"error": {"type": "api_error", "message": sentinel}}),
            502,
            "bad_gateway",
        ),
    ];
    for (stripe_status, stripe_body, status, code) in cases {
        b.stripe.reset().await;
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(ResponseTemplate::new(stripe_status).set_body_json(stripe_body))
            .mount(&b.stripe)
            .await;
        let response = b.post(CHECKOUT, ALICE, Some(json!({"plan": "pro"}))).await;
        response.assert_error(status, code);
        let text = String::from_utf8_lossy(&response.body).to_string();
        assert!(
            !text.contains("INTERNAL-STRIPE-DETAIL") && !text.contains(SECRET_KEY),
            "{text}"
        );
        if stripe_status == 402 {
            assert!(text.contains("insufficient_funds"), "{text}");
        }
    }
    // Not Stripe's shape at all (a proxy's error page).
    b.stripe.reset().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(502).set_body_string(format!("<html>{sentinel}</html>")))
        .mount(&b.stripe)
        .await;
    let response = b.post(CHECKOUT, ALICE, Some(json!({"plan": "pro"}))).await;
    response.assert_error(502, "bad_gateway");
    assert!(!String::from_utf8_lossy(&response.body).contains("INTERNAL-STRIPE-DETAIL"));
}

#[sqlx::test]
async fn without_a_stripe_key_billing_calls_answer_503(db: PgPool) {
    let mut b = billing(db).await;
    b.state.stripe = None;
    for (route, body) in [
        (CHECKOUT, Some(json!({"plan": "pro"}))),
        (UPGRADE, Some(json!({"plan": "business"}))),
        (CANCEL, None),
        (PORTAL, None),
    ] {
        let response = b.post(route, ALICE, body).await;
        response.assert_error(503, "service_unavailable");
        assert!(
            response.json()["message"].as_str().unwrap().contains("not configured"),
            "{route}"
        );
    }
    assert_eq!(b.list(SUBSCRIPTIONS, ALICE, &[]).await.status, 200);
    assert_eq!(b.list(INVOICES, ALICE, &[]).await.status, 200);
}

#[sqlx::test]
async fn every_billing_route_needs_a_token(db: PgPool) {
    let b = billing(db).await;
    let web = &b.state.api.web;
    let body = json!({"plan": "pro"});
    let responses = [
        call("POST", CHECKOUT)
            .json(body.clone())
            .send(&b.state, web, create_checkout::handle)
            .await,
        call("POST", UPGRADE)
            .json(body)
            .send(&b.state, web, upgrade_subscription::handle)
            .await,
        call("POST", CANCEL)
            .send(&b.state, web, cancel_subscription::handle)
            .await,
        call("POST", PORTAL).send(&b.state, web, billing_portal::handle).await,
        call("GET", SUBSCRIPTIONS)
            .send(&b.state, web, list_subscriptions::handle)
            .await,
        call("GET", INVOICES).send(&b.state, web, list_invoices::handle).await,
    ];
    for response in responses {
        response.assert_error(401, "unauthorized");
    }
    assert!(b.stripe.received_requests().await.unwrap().is_empty());
    assert_eq!(b.app.user_count().await, 0);
}

#[sqlx::test]
async fn malformed_bodies_are_refused_before_anything_reaches_stripe(db: PgPool) {
    let b = billing(db).await;
    let alice = b.user(ALICE).await;
    insert_subscription(&b.app.db, alice, "sub_alice", "active", PRO_PRICE, "0 days").await;
    mount_checkout(&b.stripe).await;
    let web = &b.state.api.web;
    let oversized = format!("{{\"plan\":\"{}\"}}", "p".repeat(70 * 1024));
    let cases: [(&str, &str, u16, &str); 5] = [
        ("application/json", "{\"plan\":", 400, "bad_request"),
        ("application/json", "[\"pro\"]", 400, "bad_request"),
        ("text/plain", "{\"plan\":\"pro\"}", 415, "unsupported_media_type"),
        ("application/json", &oversized, 413, "payload_too_large"),
        (
            "application/json",
            "{\"plan\":\"pro\",\"price_id\":\"price_x\"}",
            422,
            "validation_failed",
        ),
    ];
    for (content_type, body, status, code) in cases {
        for route in [CHECKOUT, UPGRADE] {
            let request = call("POST", route)
                .bearer(&b.app.token(ALICE))
                .raw_body(content_type, body);
            let response = match route {
                CHECKOUT => request.send(&b.state, web, create_checkout::handle).await,
                _ => request.send(&b.state, web, upgrade_subscription::handle).await,
            };
            response.assert_error(status, code);
        }
    }
    assert!(
        b.stripe.received_requests().await.unwrap_or_default().is_empty(),
        "nothing sent to Stripe"
    );
}

//! POST /api/v1/stripe/webhook: deliveries signed by the test exactly as Stripe signs them (the
//! HMAC computed here, independently of the code under test), in the shape of API version
//! 2025-08-27.basil (and the older top-level period shape).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shared::billing::plans::PlansConfig;
use shared::platform::config::{AppEnv, Env, Secret};
use shared::platform::state::WebhookState;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

const WEBHOOK: &str = "/api/v1/stripe/webhook";
pub(crate) const SECRET: &str = "whsec_test_5f0c2d9a1b7e4c3f8a6d";
const ALICE: &str = "auth0|alice";
const BOB: &str = "auth0|bob";
const PRO_PRICE: &str = "price_1PRO0webhooktest";
const BUSINESS_PRICE: &str = "price_1BIZ0webhooktest";
pub(crate) const DAY: i64 = 86_400;

pub(crate) fn webhook_state(app: &TestApp, secret: Option<&str>) -> WebhookState {
    WebhookState {
        web: web_config(),
        db: app.db.clone(),
        webhook_secret: secret.map(Secret::new),
        stripe: None,
    }
}

/// Stripe's v1 scheme, computed with aws-lc through jsonwebtoken's HS256 (base64url → hex).
fn v1(secret: &str, timestamp: i64, body: &str) -> String {
    use base64::Engine;
    let message = format!("{timestamp}.{body}");
    let b64 = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn signed_header(body: &str) -> String {
    format!("t={},v1={}", now(), v1(SECRET, now(), body))
}

/// A Stripe event envelope around `object`.
pub(crate) fn event(id: &str, kind: &str, created: i64, object: Value) -> String {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2025-08-27.basil",
        "created": created,
        "type": kind,
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": format!("req_{}", Uuid::new_v4().simple()), "idempotency_key": Uuid::new_v4().to_string() }
    })
    .to_string()
}

async fn deliver_with(state: &WebhookState, body: &str, header: Option<String>) -> TestResponse {
    let mut request = call("POST", WEBHOOK).raw_body("application/json; charset=utf-8", body);
    if let Some(header) = header {
        request = request.header("Stripe-Signature", header);
    }
    request.send(state, &state.web, stripe_webhook::handle).await
}

/// Delivers a correctly signed event.
pub(crate) async fn deliver(state: &WebhookState, body: &str) -> TestResponse {
    deliver_with(state, body, Some(signed_header(body))).await
}

#[track_caller]
pub(crate) fn assert_received(response: &TestResponse) {
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(response.json(), json!({ "received": true }));
}

pub(crate) async fn processed(db: &PgPool, event_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE source = 'stripe' AND event_id = $1")
        .bind(event_id)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn processed_total(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(db)
        .await
        .unwrap()
}

pub(crate) async fn user(db: &PgPool, sub: &str) -> Uuid {
    shared::db::users::ensure_by_sub(db, sub).await.unwrap().id
}

async fn customer_of(db: &PgPool, user: Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT stripe_customer_id FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn sync_plans(db: &PgPool) {
    let vars: HashMap<&str, &str> = [
        ("STRIPE_PRICE_PRO", PRO_PRICE),
        ("STRIPE_PRICE_BUSINESS", BUSINESS_PRICE),
    ]
    .into();
    let plans = PlansConfig::from_env(&Env(&vars), AppEnv::Test).unwrap();
    shared::db::migrate::migrate_and_sync(db, &plans).await.unwrap();
}

/// Where a subscription's current period is: top level (API versions before 2025-03-31.basil) or
/// on its items (since).
#[derive(Clone, Copy)]
pub(crate) enum PeriodShape {
    TopLevel,
    OnItems,
}

pub(crate) struct Sub<'a> {
    pub(crate) id: &'a str,
    pub(crate) customer: &'a str,
    pub(crate) status: &'a str,
    pub(crate) price: &'a str,
    pub(crate) period: (i64, i64),
    pub(crate) shape: PeriodShape,
    pub(crate) user_id: Option<Uuid>,
    pub(crate) cancel_at_period_end: bool,
}

impl<'a> Sub<'a> {
    pub(crate) fn new(id: &'a str, customer: &'a str, user_id: Option<Uuid>) -> Self {
        Sub {
            id,
            customer,
            status: "active",
            price: PRO_PRICE,
            period: (now() - 5 * DAY, now() + 25 * DAY),
            shape: PeriodShape::OnItems,
            user_id,
            cancel_at_period_end: false,
        }
    }

    pub(crate) fn object(&self) -> Value {
        let (start, end) = self.period;
        let mut item = json!({
            "id": format!("si_{}", &self.id[4..]),
            "object": "subscription_item",
            "price": {
                "id": self.price, "object": "price", "active": true, "currency": "usd", "unit_amount": 1900,
                "recurring": { "interval": "month", "interval_count": 1 }, "type": "recurring"
            },
            "quantity": 1,
            "subscription": self.id,
        });
        let mut object = json!({
            "id": self.id,
            "object": "subscription",
            "customer": self.customer,
            "status": self.status,
            "billing_cycle_anchor": start,
            "cancel_at": null,
            "cancel_at_period_end": self.cancel_at_period_end,
            "canceled_at": null,
            "collection_method": "charge_automatically",
            "created": start,
            "currency": "usd",
            "latest_invoice": "in_1Latest",
            "livemode": false,
            "metadata": match self.user_id { Some(id) => json!({ "user_id": id.to_string() }), None => json!({}) },
            "start_date": start,
        });
        match self.shape {
            PeriodShape::TopLevel => {
                object["current_period_start"] = json!(start);
                object["current_period_end"] = json!(end);
            }
            PeriodShape::OnItems => {
                item["current_period_start"] = json!(start);
                item["current_period_end"] = json!(end);
            }
        }
        object["items"] = json!({
            "object": "list", "data": [item], "has_more": false, "total_count": 1,
            "url": format!("/v1/subscription_items?subscription={}", self.id)
        });
        object
    }
}

#[derive(sqlx::FromRow, Debug)]
pub(crate) struct SubscriptionRow {
    pub(crate) user_id: Uuid,
    pub(crate) status: String,
    pub(crate) price_id: Option<String>,
    pub(crate) current_period_start: Option<DateTime<Utc>>,
    pub(crate) current_period_end: Option<DateTime<Utc>>,
    pub(crate) cancel_at_period_end: bool,
    pub(crate) canceled_at: Option<DateTime<Utc>>,
}

pub(crate) async fn subscription_rows(db: &PgPool, stripe_id: &str) -> Vec<SubscriptionRow> {
    sqlx::query_as(
        "SELECT user_id, status, price_id, current_period_start, current_period_end, cancel_at_period_end, canceled_at \
         FROM subscriptions WHERE stripe_subscription_id = $1",
    )
    .bind(stripe_id)
    .fetch_all(db)
    .await
    .unwrap()
}

pub(crate) async fn usage(app: &TestApp, sub: &str) -> Value {
    let response = call("GET", "/api/v1/billing/usage")
        .bearer(&app.token(sub))
        .send(&app.api, &app.api.web, billing_usage::handle)
        .await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

fn at(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Signature

#[sqlx::test]
async fn only_correctly_signed_fresh_deliveries_are_recorded(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, Some(SECRET));
    let object = json!({ "id": "cus_1Sig", "object": "customer", "email": "a@example.com" });

    let body = event("evt_1Valid", "customer.created", now(), object.clone());
    assert_received(&deliver(&state, &body).await);
    assert_eq!(processed(&app.db, "evt_1Valid").await, 1);

    // Tampered body: signed one payload, sent another.
    let signed = event("evt_1Tampered", "customer.created", now(), object.clone());
    let tampered = signed.replace("a@example.com", "b@example.com");
    deliver_with(&state, &tampered, Some(signed_header(&signed)))
        .await
        .assert_error(400, "invalid_signature");

    // Signed with another endpoint's secret; and with the secret stripped of its prefix.
    let body = event("evt_1WrongSecret", "customer.created", now(), object.clone());
    for secret in ["whsec_test_someone_else", &SECRET["whsec_".len()..]] {
        let header = format!("t={},v1={}", now(), v1(secret, now(), &body));
        deliver_with(&state, &body, Some(header))
            .await
            .assert_error(400, "invalid_signature");
    }

    // Correctly signed, but outside the 300 s tolerance either way.
    let body = event("evt_1Stale", "customer.created", now(), object.clone());
    for timestamp in [now() - 301, now() - 3600, now() + 400] {
        let header = format!("t={timestamp},v1={}", v1(SECRET, timestamp, &body));
        deliver_with(&state, &body, Some(header))
            .await
            .assert_error(400, "invalid_signature");
    }

    // No header, an empty one, one with only v0.
    let body = event("evt_1Unsigned", "customer.created", now(), object.clone());
    deliver_with(&state, &body, None)
        .await
        .assert_error(400, "invalid_signature");
    for header in [String::new(), format!("t={},v0={}", now(), v1(SECRET, now(), &body))] {
        deliver_with(&state, &body, Some(header))
            .await
            .assert_error(400, "invalid_signature");
    }

    for refused in ["evt_1Tampered", "evt_1WrongSecret", "evt_1Stale", "evt_1Unsigned"] {
        assert_eq!(processed(&app.db, refused).await, 0, "{refused} must not be recorded");
    }
    assert_eq!(processed_total(&app.db).await, 1);

    // Secret rotation: one stale signature and one valid one; any match passes.
    let body = event("evt_1Rotation", "customer.created", now(), object);
    let header = format!(
        "t={t},v1={old},v1={new}",
        t = now(),
        old = v1("whsec_test_previous_secret", now(), &body),
        new = v1(SECRET, now(), &body)
    );
    assert_received(&deliver_with(&state, &body, Some(header)).await);
    assert_eq!(processed(&app.db, "evt_1Rotation").await, 1);
}

#[sqlx::test]
async fn without_a_secret_every_delivery_is_refused(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, None);
    let body = event("evt_1NoSecret", "customer.created", now(), json!({ "id": "cus_1" }));
    let response = deliver(&state, &body).await;
    response.assert_error(503, "service_unavailable");
    assert!(
        response.json()["message"]
            .as_str()
            .unwrap()
            .contains("webhook secret not configured")
    );
    assert_eq!(processed_total(&app.db).await, 0);
}

#[sqlx::test]
async fn oversized_and_malformed_signed_bodies_are_refused_unrecorded(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, Some(SECRET));
    let padding = "x".repeat(300 * 1024);
    let body = event(
        "evt_1Huge",
        "customer.created",
        now(),
        json!({ "id": "cus_1", "padding": padding }),
    );
    deliver(&state, &body).await.assert_error(413, "payload_too_large");

    for body in [
        "not json".to_string(),
        json!({ "object": "event", "type": "customer.created" }).to_string(),
        event(
            "evt_1BadSub",
            "customer.subscription.updated",
            now(),
            json!({ "id": "sub_1", "customer": "cus_1", "status": "exploded", "items": { "data": [] } }),
        ),
    ] {
        deliver(&state, &body).await.assert_error(400, "bad_request");
    }
    assert_eq!(processed_total(&app.db).await, 0);
}

#[sqlx::test]
async fn events_it_does_not_act_on_are_acknowledged_and_recorded(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, Some(SECRET));
    let body = event(
        "evt_1Trial",
        "customer.subscription.trial_will_end",
        now(),
        json!({ "id": "sub_1", "object": "subscription" }),
    );
    assert_received(&deliver(&state, &body).await);
    let kind: String = sqlx::query_scalar("SELECT type FROM processed_events WHERE event_id = 'evt_1Trial'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(kind, "customer.subscription.trial_will_end");
}

// ---------------------------------------------------------------------------------------------
// Idempotency, ordering, transient failures

#[sqlx::test]
async fn the_same_event_three_times_has_one_effect(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, Some(SECRET));
    let alice = user(&app.db, ALICE).await;
    let body = event(
        "evt_1Thrice",
        "customer.subscription.created",
        now(),
        Sub::new("sub_1Thrice", "cus_1Alice", Some(alice)).object(),
    );
    assert_received(&deliver(&state, &body).await);
    for _ in 0..2 {
        let response = deliver(&state, &body).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.json(), json!({ "received": true, "duplicate": true }));
    }
    assert_eq!(subscription_rows(&app.db, "sub_1Thrice").await.len(), 1);
    assert_eq!(processed(&app.db, "evt_1Thrice").await, 1);
    assert_eq!(processed_total(&app.db).await, 1);
    // The metadata named the user, so the customer is linked too (invoices find the user by it).
    assert_eq!(customer_of(&app.db, alice).await.as_deref(), Some("cus_1Alice"));
}

#[sqlx::test]
async fn concurrent_deliveries_of_one_event_apply_once(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, Some(SECRET));
    let alice = user(&app.db, ALICE).await;
    let body = event(
        "evt_1Race",
        "customer.subscription.created",
        now(),
        Sub::new("sub_1Race", "cus_1Alice", Some(alice)).object(),
    );
    let responses = futures::future::join_all((0..4).map(|_| deliver(&state, &body))).await;
    assert!(responses.iter().all(|r| r.status == 200));
    let duplicates = responses.iter().filter(|r| r.json()["duplicate"] == true).count();
    assert_eq!(duplicates, 3);
    assert_eq!(subscription_rows(&app.db, "sub_1Race").await.len(), 1);
}

#[sqlx::test]
async fn updates_delivered_out_of_order_end_in_the_newest_state(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, Some(SECRET));
    let alice = user(&app.db, ALICE).await;
    let t = now() - 120;
    let created = Sub::new("sub_1Order", "cus_1Alice", Some(alice));
    let upgraded = Sub {
        price: BUSINESS_PRICE,
        ..Sub::new("sub_1Order", "cus_1Alice", Some(alice))
    };
    let canceling = Sub {
        price: BUSINESS_PRICE,
        cancel_at_period_end: true,
        ..Sub::new("sub_1Order", "cus_1Alice", Some(alice))
    };
    // Newest first, then the older ones arrive late.
    let events = [
        event(
            "evt_1Order3",
            "customer.subscription.updated",
            t + 20,
            canceling.object(),
        ),
        event("evt_1Order1", "customer.subscription.created", t, created.object()),
        event(
            "evt_1Order2",
            "customer.subscription.updated",
            t + 10,
            upgraded.object(),
        ),
    ];
    for body in &events {
        assert_received(&deliver(&state, body).await);
    }
    let rows = subscription_rows(&app.db, "sub_1Order").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].price_id.as_deref(), Some(BUSINESS_PRICE));
    assert!(rows[0].cancel_at_period_end);
    // Every delivery was recorded, stale ones included (they were handled: by being ignored).
    assert_eq!(processed_total(&app.db).await, 3);

    // deleted, then an older update arriving late: still canceled.
    let deleted = Sub {
        status: "canceled",
        ..Sub::new("sub_1Order", "cus_1Alice", Some(alice))
    };
    let mut deleted_object = deleted.object();
    deleted_object["canceled_at"] = json!(t + 30);
    assert_received(
        &deliver(
            &state,
            &event("evt_1Order5", "customer.subscription.deleted", t + 30, deleted_object),
        )
        .await,
    );
    assert_received(
        &deliver(
            &state,
            &event(
                "evt_1Order4",
                "customer.subscription.updated",
                t + 25,
                upgraded.object(),
            ),
        )
        .await,
    );
    // A tie with a canceled row does not resurrect it either, nor does a newer event: Stripe
    // never leaves `canceled`, so whatever claims otherwise is not applied.
    for (id, created) in [("evt_1Order6", t + 30), ("evt_1Order7", t + 60)] {
        assert_received(
            &deliver(
                &state,
                &event(id, "customer.subscription.updated", created, upgraded.object()),
            )
            .await,
        );
    }
    let rows = subscription_rows(&app.db, "sub_1Order").await;
    assert_eq!(rows[0].status, "canceled");
    assert_eq!(rows[0].canceled_at, Some(at(t + 30)));
}

#[sqlx::test]
async fn an_event_for_a_customer_not_linked_yet_is_retried_until_checkout_links_it(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, Some(SECRET));
    let alice = user(&app.db, ALICE).await;
    // No metadata, an unknown customer: nobody to attribute it to yet.
    let early = event(
        "evt_1Early",
        "customer.subscription.created",
        now(),
        Sub::new("sub_1Early", "cus_1New", None).object(),
    );
    deliver(&state, &early).await.assert_error(503, "service_unavailable");
    assert_eq!(
        processed(&app.db, "evt_1Early").await,
        0,
        "not marked processed: Stripe will retry"
    );
    assert!(subscription_rows(&app.db, "sub_1Early").await.is_empty());

    let checkout = event(
        "evt_1Checkout",
        "checkout.session.completed",
        now(),
        json!({
            "id": "cs_test_a1Checkout",
            "object": "checkout.session",
            "client_reference_id": alice.to_string(),
            "customer": "cus_1New",
            "customer_email": null,
            "mode": "subscription",
            "payment_status": "paid",
            "status": "complete",
            "subscription": "sub_1Early",
            "metadata": { "user_id": alice.to_string() },
            "success_url": "https://app.realstaging.test/billing/success?session_id={CHECKOUT_SESSION_ID}"
        }),
    );
    assert_received(&deliver(&state, &checkout).await);
    assert_eq!(customer_of(&app.db, alice).await.as_deref(), Some("cus_1New"));

    // Stripe's retry of the first delivery now applies.
    assert_received(&deliver(&state, &early).await);
    let rows = subscription_rows(&app.db, "sub_1Early").await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].user_id, rows[0].status.as_str()), (alice, "active"));
    assert_eq!(processed(&app.db, "evt_1Early").await, 1);
}

#[sqlx::test]
async fn checkout_sessions_link_only_their_own_user_once(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, Some(SECRET));
    let alice = user(&app.db, ALICE).await;
    let bob = user(&app.db, BOB).await;
    link_stripe_customer(&app.db, bob, "cus_1Bob").await;
    let session = |id: &str, reference: Value, customer: &str| {
        event(
            id,
            "checkout.session.completed",
            now(),
            json!({ "id": format!("cs_test_{id}"), "object": "checkout.session", "client_reference_id": reference,
                    "customer": customer, "mode": "subscription", "status": "complete", "subscription": "sub_1X" }),
        )
    };
    // Bob's customer is never moved to Alice.
    assert_received(&deliver(&state, &session("evt_1Steal", json!(alice.to_string()), "cus_1Bob")).await);
    assert_eq!(customer_of(&app.db, alice).await, None);
    assert_eq!(customer_of(&app.db, bob).await.as_deref(), Some("cus_1Bob"));
    // Not our session (no reference, or not a user id), or a user that no longer exists: ignored.
    for reference in [Value::Null, json!("auth0|alice"), json!(Uuid::new_v4().to_string())] {
        let id = format!("evt_1Ref{}", Uuid::new_v4().simple());
        assert_received(&deliver(&state, &session(&id, reference, "cus_1Other")).await);
    }
    assert_eq!(customer_of(&app.db, alice).await, None);
    // Bob already has a customer: a second one never replaces it.
    assert_received(&deliver(&state, &session("evt_1Second", json!(bob.to_string()), "cus_1BobAgain")).await);
    assert_eq!(customer_of(&app.db, bob).await.as_deref(), Some("cus_1Bob"));
}

// ---------------------------------------------------------------------------------------------
// Usage follows the mirrored subscription

async fn assert_plan_follows_subscription_lifecycle(db: PgPool, shape: PeriodShape) {
    let app = spawn_app(db).await;
    sync_plans(&app.db).await;
    let state = webhook_state(&app, Some(SECRET));
    let alice = user(&app.db, ALICE).await;
    link_stripe_customer(&app.db, alice, "cus_1Alice").await;

    let body = usage(&app, ALICE).await;
    assert_eq!(
        (body["plan_code"].as_str(), body["monthly_limit"].as_i64()),
        (Some("free"), Some(10))
    );
    assert_eq!(body["has_subscription"], false);

    let period = (now() - 5 * DAY, now() + 25 * DAY);
    // No metadata: the user is found by the linked customer.
    let sub = Sub {
        period,
        shape,
        ..Sub::new("sub_1Usage", "cus_1Alice", None)
    };
    assert_received(
        &deliver(
            &state,
            &event(
                "evt_1UsageCreated",
                "customer.subscription.created",
                now(),
                sub.object(),
            ),
        )
        .await,
    );
    let body = usage(&app, ALICE).await;
    assert_eq!(
        (body["plan_code"].as_str(), body["monthly_limit"].as_i64()),
        (Some("pro"), Some(100))
    );
    assert_eq!(body["has_subscription"], true);
    assert_eq!(
        (time(&body["period_start"]), time(&body["period_end"])),
        (at(period.0), at(period.1))
    );
    let rows = subscription_rows(&app.db, "sub_1Usage").await;
    assert_eq!(
        (rows[0].current_period_start, rows[0].current_period_end),
        (Some(at(period.0)), Some(at(period.1)))
    );

    let mut deleted = Sub {
        status: "canceled",
        ..sub
    }
    .object();
    deleted["canceled_at"] = json!(now());
    assert_received(
        &deliver(
            &state,
            &event("evt_1UsageDeleted", "customer.subscription.deleted", now() + 1, deleted),
        )
        .await,
    );
    let body = usage(&app, ALICE).await;
    assert_eq!(
        (body["plan_code"].as_str(), body["monthly_limit"].as_i64()),
        (Some("free"), Some(10))
    );
    assert_eq!(body["has_subscription"], false);
    let month = shared::billing::usage::calendar_month(Utc::now());
    assert_eq!((time(&body["period_start"]), time(&body["period_end"])), month);
}

#[sqlx::test]
async fn usage_follows_a_subscription_with_the_period_on_its_items(db: PgPool) {
    assert_plan_follows_subscription_lifecycle(db, PeriodShape::OnItems).await;
}

#[sqlx::test]
async fn usage_follows_a_subscription_with_the_period_at_the_top_level(db: PgPool) {
    assert_plan_follows_subscription_lifecycle(db, PeriodShape::TopLevel).await;
}

// ---------------------------------------------------------------------------------------------
// Invoices

fn invoice(id: &str, customer: &str, status: &str, paid: i64, subscription: Value, new_shape: bool) -> Value {
    let mut object = json!({
        "id": id,
        "object": "invoice",
        "customer": customer,
        "status": status,
        "amount_due": 1900,
        "amount_paid": paid,
        "amount_remaining": 1900 - paid,
        "currency": "usd",
        "number": format!("RS-{}", &id[3..]),
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_1Test/{id}"),
        "period_start": now() - 30 * DAY,
        "period_end": now(),
        "created": now() - 60,
        "livemode": false,
    });
    if new_shape {
        object["parent"] = json!({
            "type": "subscription_details",
            "quote_details": null,
            "subscription_details": { "metadata": {}, "subscription": subscription }
        });
    } else {
        object["subscription"] = subscription;
    }
    object
}

#[derive(sqlx::FromRow, Debug, PartialEq)]
struct InvoiceRow {
    user_id: Uuid,
    stripe_subscription_id: Option<String>,
    status: String,
    amount_due: i64,
    amount_paid: i64,
    currency: Option<String>,
    invoice_number: Option<String>,
}

async fn invoice_row(db: &PgPool, id: &str) -> Option<InvoiceRow> {
    sqlx::query_as(
        "SELECT user_id, stripe_subscription_id, status, amount_due, amount_paid, currency, invoice_number \
         FROM invoices WHERE stripe_invoice_id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn invoices_are_upserted_for_their_customer_only(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, Some(SECRET));
    let alice = user(&app.db, ALICE).await;
    let bob = user(&app.db, BOB).await;
    link_stripe_customer(&app.db, alice, "cus_1Alice").await;
    link_stripe_customer(&app.db, bob, "cus_1Bob").await;
    let bob_sub = Sub::new("sub_1Bob", "cus_1Bob", Some(bob));
    assert_received(
        &deliver(
            &state,
            &event("evt_1BobSub", "customer.subscription.created", now(), bob_sub.object()),
        )
        .await,
    );

    let paid = invoice("in_1Paid", "cus_1Alice", "paid", 1900, json!("sub_1Alice"), true);
    assert_received(&deliver(&state, &event("evt_1Paid", "invoice.paid", now() - 10, paid.clone())).await);
    // invoice.payment_succeeded comes with invoice.paid for the same invoice: same row.
    assert_received(
        &deliver(
            &state,
            &event("evt_1Succeeded", "invoice.payment_succeeded", now() - 10, paid),
        )
        .await,
    );
    let failed = invoice("in_1Failed", "cus_1Alice", "open", 0, json!("sub_1Alice"), false);
    assert_received(&deliver(&state, &event("evt_1Failed", "invoice.payment_failed", now(), failed)).await);

    assert_eq!(
        invoice_row(&app.db, "in_1Paid").await,
        Some(InvoiceRow {
            user_id: alice,
            stripe_subscription_id: Some("sub_1Alice".into()),
            status: "paid".into(),
            amount_due: 1900,
            amount_paid: 1900,
            currency: Some("usd".into()),
            invoice_number: Some("RS-1Paid".into()),
        })
    );
    let failed = invoice_row(&app.db, "in_1Failed").await.unwrap();
    assert_eq!(
        (failed.user_id, failed.status.as_str(), failed.amount_paid),
        (alice, "open", 0)
    );
    assert_eq!(failed.stripe_subscription_id.as_deref(), Some("sub_1Alice"));

    // The failed invoice is paid on a retry; a late copy of the failure does not undo it.
    let retried = invoice("in_1Failed", "cus_1Alice", "paid", 1900, json!("sub_1Alice"), false);
    assert_received(&deliver(&state, &event("evt_1Retried", "invoice.paid", now() + 5, retried)).await);
    let late = invoice("in_1Failed", "cus_1Alice", "open", 0, json!("sub_1Alice"), false);
    assert_received(
        &deliver(
            &state,
            &event("evt_1LateFail", "invoice.payment_failed", now() - 5, late),
        )
        .await,
    );
    assert_eq!(invoice_row(&app.db, "in_1Failed").await.unwrap().status, "paid");

    // Alice's events never touched Bob; the read paths show each user only their own rows.
    let alice_invoices = shared::db::invoices::list_for_user(&app.db, alice, 50, 0)
        .await
        .unwrap();
    assert_eq!(alice_invoices.len(), 2);
    assert!(
        shared::db::invoices::list_for_user(&app.db, bob, 50, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let bob_subs = shared::db::subscriptions::list_for_user(&app.db, bob, 50, 0)
        .await
        .unwrap();
    assert_eq!(bob_subs.len(), 1);
    assert_eq!(bob_subs[0].stripe_subscription_id, "sub_1Bob");
    assert!(
        shared::db::subscriptions::list_for_user(&app.db, alice, 50, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        shared::db::subscriptions::current_for_user(&app.db, alice)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        shared::db::subscriptions::current_for_user(&app.db, bob)
            .await
            .unwrap()
            .map(|s| s.stripe_subscription_id),
        Some("sub_1Bob".into())
    );
}

#[sqlx::test]
async fn an_invoice_for_an_unknown_customer_is_retried(db: PgPool) {
    let app = spawn_app(db).await;
    let state = webhook_state(&app, Some(SECRET));
    let body = event(
        "evt_1Orphan",
        "invoice.paid",
        now(),
        invoice("in_1Orphan", "cus_1Nobody", "paid", 1900, json!("sub_1Nobody"), true),
    );
    deliver(&state, &body).await.assert_error(503, "service_unavailable");
    assert_eq!(processed_total(&app.db).await, 0);
    assert!(invoice_row(&app.db, "in_1Orphan").await.is_none());
}

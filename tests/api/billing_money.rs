//! The money paths under real Stripe behaviour (issue 11): signed webhook events delivered in the
//! orders Stripe really uses, the billing routes against a fake Stripe (wiremock, Stripe's
//! documented shapes), and what a user then reads.
//!
//! * subscription state never moves backwards (a tie between `updated` and `created`, shuffles);
//! * one subscription per user (earlier Checkout Sessions expired; a second paid subscription
//!   cancelled, refunded and audited by the webhook);
//! * events for customers this app never created are acknowledged after a bounded time;
//! * Stripe refusing our key is an operator fault: generic 503, ERROR with a stable code.

use serde_json::{Value, json};
use shared::platform::config::Secret;
use shared::platform::state::WebhookState;
use sqlx::PgPool;
use uuid::Uuid;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::billing::{
    ALICE, BOB, BUSINESS_PRICE, Billing, CHECKOUT, PORTAL, PRO_PRICE, SECRET_KEY, UPGRADE, assert_stripe_headers,
    billing, form, header, insert_subscription, mount_checkout, stripe_subscription,
};
use crate::stripe_webhook::{DAY, SECRET, Sub, assert_received, deliver, event, processed, subscription_rows, usage};
use crate::support::*;

const GENERIC_UNAVAILABLE: &str = "Billing is temporarily unavailable. Please try again later.";

/// The billing routes and the webhook over one database and one fake Stripe, as deployed.
struct Money {
    b: Billing,
    hook: WebhookState,
}

async fn money(db: PgPool) -> Money {
    let b = billing(db).await;
    let hook = WebhookState {
        web: web_config(),
        db: b.app.db.clone(),
        webhook_secret: Some(Secret::new(SECRET)),
        stripe: b.state.stripe.clone(),
    };
    Money { b, hook }
}

impl Money {
    async fn user_with_customer(&self, sub: &str, customer: &str) -> Uuid {
        let user = self.b.user(sub).await;
        link_stripe_customer(&self.b.app.db, user, customer).await;
        user
    }

    async fn plan_code(&self, sub: &str) -> String {
        usage(&self.b.app, sub).await["plan_code"].as_str().unwrap().to_string()
    }

    async fn stripe_calls(&self, verb: &str, route: &str) -> usize {
        self.b.received(verb, route).await.len()
    }
}

/// A paid subscription of `user` on the billing tests' pro price.
fn paid<'a>(id: &'a str, customer: &'a str, user: Uuid) -> Sub<'a> {
    Sub {
        price: PRO_PRICE,
        ..Sub::new(id, customer, Some(user))
    }
}

// ---------------------------------------------------------------------------------------------
// Subscription state never moves backwards

#[sqlx::test]
async fn updated_active_then_created_incomplete_in_the_same_second_keeps_the_paid_plan(db: PgPool) {
    let m = money(db).await;
    let alice = m.user_with_customer(ALICE, "cus_alice").await;
    let t = now() - 30;
    let active = paid("sub_1Tie", "cus_alice", alice);
    let incomplete = Sub {
        status: "incomplete",
        ..paid("sub_1Tie", "cus_alice", alice)
    };
    // What Checkout sends within one second, delivered in the unlucky order.
    assert_received(
        &deliver(
            &m.hook,
            &event("evt_1TieUpdated", "customer.subscription.updated", t, active.object()),
        )
        .await,
    );
    assert_received(
        &deliver(
            &m.hook,
            &event(
                "evt_1TieCreated",
                "customer.subscription.created",
                t,
                incomplete.object(),
            ),
        )
        .await,
    );
    assert_eq!(subscription_rows(&m.b.app.db, "sub_1Tie").await[0].status, "active");
    assert_eq!(
        processed(&m.b.app.db, "evt_1TieCreated").await,
        1,
        "recorded, not applied"
    );

    // The user reads the paid plan ...
    let body = usage(&m.b.app, ALICE).await;
    assert_eq!(
        (body["plan_code"].as_str(), body["has_subscription"].as_bool()),
        (Some("pro"), Some(true))
    );

    // ... a second checkout is refused as for any subscriber, before anything reaches Stripe ...
    mount_checkout(&m.b.stripe).await;
    let checkout = m.b.post(CHECKOUT, ALICE, Some(json!({"plan": "business"}))).await;
    checkout.assert_error(409, "conflict");
    assert!(
        checkout.json()["message"]
            .as_str()
            .unwrap()
            .contains("upgrade-subscription")
    );
    assert_eq!(m.stripe_calls("POST", "/v1/checkout/sessions").await, 0);

    // ... and upgrade works on that subscription instead of answering 409 as if free.
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1Tie"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(stripe_subscription("sub_1Tie", "si_1Tie", PRO_PRICE, false)),
        )
        .mount(&m.b.stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_1Tie"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_subscription(
            "sub_1Tie",
            "si_1Tie",
            BUSINESS_PRICE,
            false,
        )))
        .mount(&m.b.stripe)
        .await;
    let upgrade = m.b.post(UPGRADE, ALICE, Some(json!({"plan": "business"}))).await;
    assert_eq!(upgrade.status, 200, "{}", String::from_utf8_lossy(&upgrade.body));
    assert_eq!(upgrade.json()["subscription_id"], "sub_1Tie");
}

#[sqlx::test]
async fn three_subscription_events_in_any_order_end_in_the_newest_state(db: PgPool) {
    let m = money(db).await;
    let t = now() - 120;
    // Two sets of three events, each replayed in three orders into a fresh user:
    // * what Checkout sends within one second (created as incomplete, updated to active, updated
    //   again as the payment method is attached): the newest state is the furthest in the
    //   lifecycle, whatever arrives last;
    // * created and activated in one second, then changed a second later: the newest wins.
    let orders: [[usize; 3]; 3] = [[1, 2, 0], [2, 0, 1], [0, 1, 2]];
    for (set, step) in [("Tie", 0), ("Step", 1)] {
        for (run, order) in orders.iter().enumerate() {
            let sub = format!("auth0|shuffle-{set}-{run}");
            let customer = format!("cus_{set}{run}");
            let subscription = format!("sub_1{set}{run}");
            let user = m.user_with_customer(&sub, &customer).await;
            let created = Sub {
                status: "incomplete",
                ..paid(&subscription, &customer, user)
            };
            let activated = paid(&subscription, &customer, user);
            let last = if step == 0 {
                paid(&subscription, &customer, user)
            } else {
                Sub {
                    price: BUSINESS_PRICE,
                    cancel_at_period_end: true,
                    ..paid(&subscription, &customer, user)
                }
            };
            let events = [
                event(
                    &format!("evt_1{set}{run}A"),
                    "customer.subscription.created",
                    t,
                    created.object(),
                ),
                event(
                    &format!("evt_1{set}{run}B"),
                    "customer.subscription.updated",
                    t,
                    activated.object(),
                ),
                event(
                    &format!("evt_1{set}{run}C"),
                    "customer.subscription.updated",
                    t + step,
                    last.object(),
                ),
            ];
            for index in order {
                assert_received(&deliver(&m.hook, &events[*index]).await);
            }
            let rows = subscription_rows(&m.b.app.db, &subscription).await;
            assert_eq!(rows.len(), 1);
            let row = &rows[0];
            let expected_price = if step == 0 { PRO_PRICE } else { BUSINESS_PRICE };
            assert_eq!(
                (
                    row.user_id,
                    row.status.as_str(),
                    row.price_id.as_deref(),
                    row.cancel_at_period_end
                ),
                (user, "active", Some(expected_price), step == 1),
                "{set} in order {order:?}"
            );
            let plan = if step == 0 { "pro" } else { "business" };
            assert_eq!(m.plan_code(&sub).await, plan, "{set} in order {order:?}");
        }
    }
}

#[sqlx::test]
async fn a_newer_event_still_moves_past_due_back_to_active_but_never_to_incomplete(db: PgPool) {
    let m = money(db).await;
    let alice = m.user_with_customer(ALICE, "cus_alice").await;
    let t = now() - 300;
    let with_status = |status| Sub {
        status,
        ..paid("sub_1Dunning", "cus_alice", alice)
    };
    let deliveries = [
        ("evt_1D1", t, "active"),
        ("evt_1D2", t + 10, "past_due"),
        // A tie may not undo the failed payment ...
        ("evt_1D3", t + 10, "active"),
    ];
    for (id, created, status) in deliveries {
        let body = event(
            id,
            "customer.subscription.updated",
            created,
            with_status(status).object(),
        );
        assert_received(&deliver(&m.hook, &body).await);
    }
    assert_eq!(
        subscription_rows(&m.b.app.db, "sub_1Dunning").await[0].status,
        "past_due"
    );
    // ... but the payment that succeeded later does.
    let paid_again = event(
        "evt_1D4",
        "customer.subscription.updated",
        t + 20,
        with_status("active").object(),
    );
    assert_received(&deliver(&m.hook, &paid_again).await);
    assert_eq!(subscription_rows(&m.b.app.db, "sub_1Dunning").await[0].status, "active");
    // Nothing ever returns a subscription to `incomplete`, not even a newer event.
    let backwards = event(
        "evt_1D5",
        "customer.subscription.updated",
        t + 30,
        with_status("incomplete").object(),
    );
    assert_received(&deliver(&m.hook, &backwards).await);
    assert_eq!(subscription_rows(&m.b.app.db, "sub_1Dunning").await[0].status, "active");
    assert_eq!(m.plan_code(ALICE).await, "pro");
}

// ---------------------------------------------------------------------------------------------
// One subscription per user

#[sqlx::test]
async fn a_second_checkout_expires_the_first_open_session(db: PgPool) {
    let m = money(db).await;
    let alice = m.user_with_customer(ALICE, "cus_alice").await;
    let created = now();
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_new", "object": "checkout.session", "mode": "subscription", "status": "open",
            "created": created, "url": "https://checkout.stripe.com/c/pay/cs_test_new"
        })))
        .mount(&m.b.stripe)
        .await;
    let session = |id: &str, created: i64| {
        json!({"id": id, "object": "checkout.session", "mode": "subscription", "status": "open", "created": created,
               "customer": "cus_alice", "client_reference_id": alice.to_string()})
    };
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions"))
        .and(query_param("customer", "cus_alice"))
        .and(query_param("status", "open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/checkout/sessions", "has_more": false,
            "data": [
                session("cs_test_new", created),
                // Opened in another tab at the same second: left alone (no mutual expiry).
                session("cs_test_sametime", created),
                session("cs_test_old", created - 120),
                // Paid meanwhile: the list was stale; Stripe refuses to expire it.
                session("cs_test_paid", created - 600),
            ]
        })))
        .mount(&m.b.stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions/cs_test_old/expire"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_old", "object": "checkout.session", "status": "expired", "created": created - 120
        })))
        .expect(1)
        .mount(&m.b.stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions/cs_test_paid/expire"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error",
            "message": "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"complete\"."
        }})))
        .mount(&m.b.stripe)
        .await;

    let response = m.b.post(CHECKOUT, ALICE, Some(json!({"plan": "pro"}))).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(response.json()["session_id"], "cs_test_new");

    let expired = m.b.received("POST", "/v1/checkout/sessions/cs_test_old/expire").await;
    assert_eq!(expired.len(), 1, "the earlier session was expired at Stripe");
    assert_stripe_headers(&expired[0]);
    assert_eq!(
        m.stripe_calls("POST", "/v1/checkout/sessions/cs_test_paid/expire")
            .await,
        1
    );
    assert_eq!(
        m.stripe_calls("POST", "/v1/checkout/sessions/cs_test_new/expire").await,
        0
    );
    assert_eq!(
        m.stripe_calls("POST", "/v1/checkout/sessions/cs_test_sametime/expire")
            .await,
        0
    );
    let listed = m.b.received("GET", "/v1/checkout/sessions").await;
    assert_eq!(listed.len(), 1);
    assert_stripe_headers(&listed[0]);

    // Listing failing (Stripe down) does not fail a checkout either.
    m.b.stripe.reset().await;
    mount_checkout(&m.b.stripe).await;
    let response = m.b.post(CHECKOUT, ALICE, Some(json!({"plan": "business"}))).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
}

/// Stripe's answers to the webhook's cancellation of `subscription`, paid through `intent`.
async fn mount_cancellation(m: &Money, subscription: &str, invoice: &str, intent: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{subscription}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": subscription, "object": "subscription", "status": "active", "customer": "cus_alice",
            "cancel_at_period_end": false, "latest_invoice": invoice,
            "items": {"object": "list", "data": [{"id": "si_dup", "object": "subscription_item",
                      "price": {"id": PRO_PRICE, "object": "price"}}]}
        })))
        .mount(&m.b.stripe)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/subscriptions/{subscription}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": subscription, "object": "subscription", "status": "canceled", "customer": "cus_alice",
            "cancel_at_period_end": false, "canceled_at": now(), "latest_invoice": invoice,
            "items": {"object": "list", "data": [{"id": "si_dup", "object": "subscription_item",
                      "price": {"id": PRO_PRICE, "object": "price"}}]}
        })))
        .mount(&m.b.stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/invoice_payments"))
        .and(query_param("invoice", invoice))
        .and(query_param("status", "paid"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/invoice_payments", "has_more": false,
            "data": [{"id": format!("inpay_{intent}"), "object": "invoice_payment", "amount_paid": 1900,
                      "amount_requested": 1900, "currency": "usd", "invoice": invoice, "is_default": true,
                      "payment": {"type": "payment_intent", "payment_intent": intent}, "status": "paid"}]
        })))
        .mount(&m.b.stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": format!("re_{intent}"), "object": "refund", "amount": 1900, "currency": "usd",
            "payment_intent": intent, "reason": "duplicate", "status": "succeeded"
        })))
        .mount(&m.b.stripe)
        .await;
}

#[derive(sqlx::FromRow, Debug)]
struct AuditRow {
    action: String,
    target: String,
    actor: String,
    actor_user_id: Option<Uuid>,
    request_id: Option<String>,
    before: Value,
    after: Value,
}

async fn audit_rows(db: &PgPool) -> Vec<AuditRow> {
    sqlx::query_as(
        "SELECT action, target, actor, actor_user_id, request_id, before, after FROM admin_audit_log ORDER BY created_at",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn two_paid_checkouts_end_in_one_subscription_and_a_refund(db: PgPool) {
    let m = money(db).await;
    let alice = m.user_with_customer(ALICE, "cus_alice").await;
    let t = now() - 60;
    mount_cancellation(&m, "sub_1Second", "in_1Second", "pi_1Second").await;
    // Stripe fails the first attempt: the delivery fails (503), nothing is recorded, the retry
    // does it all.
    Mock::given(method("DELETE"))
        .and(path("/v1/subscriptions/sub_1Second"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {"type": "api_error", "message": "x"}})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&m.b.stripe)
        .await;

    let first = event(
        "evt_1First",
        "customer.subscription.created",
        t,
        paid("sub_1First", "cus_alice", alice).object(),
    );
    assert_received(&deliver(&m.hook, &first).await);
    assert_eq!(m.stripe_calls("DELETE", "/v1/subscriptions/sub_1First").await, 0);

    let second = event(
        "evt_1Second",
        "customer.subscription.created",
        t + 30,
        paid("sub_1Second", "cus_alice", alice).object(),
    );
    deliver(&m.hook, &second).await.assert_error(503, "service_unavailable");
    assert_eq!(processed(&m.b.app.db, "evt_1Second").await, 0);
    // The refund comes before the cancellation, so a retry always still has it to do.
    assert_eq!(m.stripe_calls("POST", "/v1/refunds").await, 1);
    assert!(audit_rows(&m.b.app.db).await.is_empty());
    assert!(
        subscription_rows(&m.b.app.db, "sub_1Second").await.is_empty(),
        "rolled back"
    );

    assert_received(&deliver(&m.hook, &second).await);
    assert_eq!(subscription_rows(&m.b.app.db, "sub_1First").await[0].status, "active");
    assert_eq!(
        subscription_rows(&m.b.app.db, "sub_1Second").await[0].status,
        "canceled"
    );
    assert_eq!(m.stripe_calls("DELETE", "/v1/subscriptions/sub_1Second").await, 2);
    let refunds = m.b.received("POST", "/v1/refunds").await;
    assert_eq!(refunds.len(), 2, "asked again by the retry ...");
    assert_eq!(
        header(&refunds[0], "idempotency-key"),
        header(&refunds[1], "idempotency-key"),
        "... with the same key, so Stripe answers with the first refund"
    );
    assert_stripe_headers(&refunds[0]);
    let fields = form(&refunds[0]);
    assert_eq!(
        (
            fields["payment_intent"].as_str(),
            fields["reason"].as_str(),
            fields.len()
        ),
        ("pi_1Second", "duplicate", 2)
    );
    assert!(header(&refunds[0], "idempotency-key").starts_with("refund:pi_1Second:"));

    let audit = audit_rows(&m.b.app.db).await;
    assert_eq!(audit.len(), 1);
    let entry = &audit[0];
    assert_eq!(
        (
            entry.action.as_str(),
            entry.target.as_str(),
            entry.actor.as_str(),
            entry.actor_user_id
        ),
        (
            "billing.subscription.cancel_duplicate",
            "sub_1Second",
            "system:stripe-webhook",
            None
        )
    );
    assert_eq!(entry.request_id.as_deref(), Some("evt_1Second"));
    assert_eq!(entry.before["kept_subscription"], "sub_1First");
    assert_eq!(entry.before["user_id"], alice.to_string());
    assert_eq!(entry.after["status"], "canceled");
    assert_eq!(entry.after["refunds"], json!(["re_pi_1Second"]));

    // The user has one plan; Stripe's own deleted event and redeliveries change nothing more.
    assert_eq!(m.plan_code(ALICE).await, "pro");
    let mut deleted = Sub {
        status: "canceled",
        ..paid("sub_1Second", "cus_alice", alice)
    }
    .object();
    deleted["canceled_at"] = json!(t + 40);
    assert_received(
        &deliver(
            &m.hook,
            &event("evt_1SecondDeleted", "customer.subscription.deleted", t + 40, deleted),
        )
        .await,
    );
    let again = deliver(&m.hook, &second).await;
    assert_eq!(again.json(), json!({"received": true, "duplicate": true}));
    assert_eq!(m.stripe_calls("DELETE", "/v1/subscriptions/sub_1Second").await, 2);
    assert_eq!(m.stripe_calls("POST", "/v1/refunds").await, 2);
    assert_eq!(audit_rows(&m.b.app.db).await.len(), 1);
}

#[sqlx::test]
async fn the_webhook_retries_a_duplicate_while_stripe_refuses_its_key(db: PgPool) {
    let m = money(db).await;
    let alice = m.user_with_customer(ALICE, "cus_alice").await;
    let t = now() - 60;
    let first = event(
        "evt_1KeyFirst",
        "customer.subscription.created",
        t,
        paid("sub_1KeyFirst", "cus_alice", alice).object(),
    );
    assert_received(&deliver(&m.hook, &first).await);
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1KeySecond"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****cret"}})))
        .mount(&m.b.stripe)
        .await;
    let second = event(
        "evt_1KeySecond",
        "customer.subscription.created",
        t + 30,
        paid("sub_1KeySecond", "cus_alice", alice).object(),
    );
    let (logs, guard) = capture_logs();
    deliver(&m.hook, &second).await.assert_error(503, "service_unavailable");
    drop(guard);
    assert!(
        logs.text()
            .lines()
            .any(|line| line.contains("ERROR") && line.contains("error_code=\"stripe_auth\"")),
        "{}",
        logs.text()
    );
    assert_eq!(
        processed(&m.b.app.db, "evt_1KeySecond").await,
        0,
        "Stripe will retry it"
    );
    assert_eq!(m.stripe_calls("POST", "/v1/refunds").await, 0);

    // The operator fixes the key; Stripe's retry completes the cancellation.
    m.b.stripe.reset().await;
    mount_cancellation(&m, "sub_1KeySecond", "in_1KeySecond", "pi_1KeySecond").await;
    assert_received(&deliver(&m.hook, &second).await);
    assert_eq!(
        subscription_rows(&m.b.app.db, "sub_1KeySecond").await[0].status,
        "canceled"
    );
    assert_eq!(
        subscription_rows(&m.b.app.db, "sub_1KeyFirst").await[0].status,
        "active"
    );
    assert_eq!(audit_rows(&m.b.app.db).await.len(), 1);
}

#[sqlx::test]
async fn the_subscription_current_first_is_kept_whatever_the_delivery_order(db: PgPool) {
    let m = money(db).await;
    let bob = m.user_with_customer(BOB, "cus_bob").await;
    let t = now() - 60;
    mount_cancellation(&m, "sub_1Later", "in_1Later", "pi_1Later").await;
    // The later subscription's event arrives first, the earlier one's afterwards.
    let later = event(
        "evt_1Later",
        "customer.subscription.updated",
        t + 30,
        paid("sub_1Later", "cus_bob", bob).object(),
    );
    let earlier = event(
        "evt_1Earlier",
        "customer.subscription.updated",
        t,
        paid("sub_1Earlier", "cus_bob", bob).object(),
    );
    assert_received(&deliver(&m.hook, &later).await);
    assert_eq!(m.stripe_calls("DELETE", "/v1/subscriptions/sub_1Later").await, 0);
    assert_received(&deliver(&m.hook, &earlier).await);

    assert_eq!(m.stripe_calls("DELETE", "/v1/subscriptions/sub_1Later").await, 1);
    assert_eq!(m.stripe_calls("DELETE", "/v1/subscriptions/sub_1Earlier").await, 0);
    assert_eq!(subscription_rows(&m.b.app.db, "sub_1Earlier").await[0].status, "active");
    assert_eq!(subscription_rows(&m.b.app.db, "sub_1Later").await[0].status, "canceled");
    let audit = audit_rows(&m.b.app.db).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].target.as_str(), audit[0].request_id.as_deref()),
        ("sub_1Later", Some("evt_1Earlier"))
    );
}

// ---------------------------------------------------------------------------------------------
// Events for customers this app never created

fn checkout_completed(id: &str, user: Uuid, customer: &str, subscription: &str) -> String {
    event(
        id,
        "checkout.session.completed",
        now(),
        json!({
            "id": format!("cs_test_{id}"), "object": "checkout.session", "client_reference_id": user.to_string(),
            "customer": customer, "mode": "subscription", "payment_status": "paid", "status": "complete",
            "subscription": subscription, "metadata": { "user_id": user.to_string() }
        }),
    )
}

#[sqlx::test]
async fn an_unknown_customers_event_is_retried_within_the_bound_and_recorded_after_it(db: PgPool) {
    let m = money(db).await;
    let alice = m.b.user(ALICE).await;

    // 20 minutes old, nobody linked yet: retried, and applied once checkout links the customer.
    let recent = event(
        "evt_1Recent",
        "customer.subscription.created",
        now() - 20 * 60,
        Sub {
            price: PRO_PRICE,
            ..Sub::new("sub_1Recent", "cus_1Late", None)
        }
        .object(),
    );
    deliver(&m.hook, &recent).await.assert_error(503, "service_unavailable");
    assert_eq!(processed(&m.b.app.db, "evt_1Recent").await, 0);
    assert_received(
        &deliver(
            &m.hook,
            &checkout_completed("evt_1Link", alice, "cus_1Late", "sub_1Recent"),
        )
        .await,
    );
    assert_received(&deliver(&m.hook, &recent).await);
    let rows = subscription_rows(&m.b.app.db, "sub_1Recent").await;
    assert_eq!((rows[0].user_id, rows[0].status.as_str()), (alice, "active"));
    assert_eq!(m.plan_code(ALICE).await, "pro");

    // Past the bound (31 minutes old) and still nobody's: recorded with its payload, answered 200.
    let (logs, _guard) = capture_logs();
    let stranger = event(
        "evt_1Stranger",
        "customer.subscription.created",
        now() - 31 * 60,
        Sub::new("sub_1Stranger", "cus_1Dashboard", None).object(),
    );
    assert_received(&deliver(&m.hook, &stranger).await);
    assert_eq!(processed(&m.b.app.db, "evt_1Stranger").await, 1);
    assert!(subscription_rows(&m.b.app.db, "sub_1Stranger").await.is_empty());
    assert!(logs.text().contains("stripe_event_unlinked"), "{}", logs.text());
    let again = deliver(&m.hook, &stranger).await;
    assert_eq!(again.json(), json!({"received": true, "duplicate": true}));

    // The same for an invoice.
    let invoice = event(
        "evt_1StrangerInvoice",
        "invoice.paid",
        now() - 2 * DAY,
        json!({"id": "in_1Stranger", "object": "invoice", "customer": "cus_1Dashboard", "status": "paid",
               "amount_due": 1900, "amount_paid": 1900, "currency": "usd", "created": now() - 2 * DAY}),
    );
    assert_received(&deliver(&m.hook, &invoice).await);
    assert_eq!(processed(&m.b.app.db, "evt_1StrangerInvoice").await, 1);
    let invoices: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices")
        .fetch_one(&m.b.app.db)
        .await
        .unwrap();
    assert_eq!(invoices, 0);
}

// ---------------------------------------------------------------------------------------------
// Stripe refusing our key

#[sqlx::test]
async fn stripe_refusing_our_key_is_a_generic_503_and_an_operator_error(db: PgPool) {
    let m = money(db).await;
    m.user_with_customer(ALICE, "cus_alice").await;
    let bob = m.user_with_customer(BOB, "cus_bob").await;
    insert_subscription(&m.b.app.db, bob, "sub_bob", "active", PRO_PRICE, "0 days").await;
    let sentinel = "STRIPE-TEXT-NOT-FOR-USERS";
    let refusals = [
        (
            401,
            json!({"error": {"type": "invalid_request_error",
                               // Stripe masks the key it echoes.
                               "message": format!("Invalid API Key provided: sk_test_****cret {sentinel}")}}),
        ),
        (
            403,
            json!({"error": {"type": "invalid_request_error", "code": "secret_key_required",
                               "message": format!("The provided key does not have the required permissions {sentinel}")}}),
        ),
    ];
    for (status, body) in refusals {
        m.b.stripe.reset().await;
        for (verb, route) in [
            ("POST", "/v1/checkout/sessions"),
            ("GET", "/v1/subscriptions/sub_bob"),
            ("POST", "/v1/billing_portal/sessions"),
        ] {
            Mock::given(method(verb))
                .and(path(route))
                .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
                .mount(&m.b.stripe)
                .await;
        }
        let (logs, guard) = capture_logs();
        let answers = [
            m.b.post(CHECKOUT, ALICE, Some(json!({"plan": "pro"}))).await,
            m.b.post(UPGRADE, BOB, Some(json!({"plan": "business"}))).await,
            m.b.post(PORTAL, ALICE, None).await,
        ];
        drop(guard);
        for answer in &answers {
            answer.assert_error(503, "service_unavailable");
            assert_eq!(answer.json()["message"], GENERIC_UNAVAILABLE);
            let text = String::from_utf8_lossy(&answer.body);
            assert!(!text.contains(sentinel) && !text.contains(SECRET_KEY), "{text}");
        }
        let logged = logs.text();
        let operator_errors: Vec<&str> = logged
            .lines()
            .filter(|line| line.contains("ERROR") && line.contains("error_code=\"stripe_auth\""))
            .collect();
        assert_eq!(
            operator_errors.len(),
            3,
            "one ERROR per refused call ({status}):\n{logged}"
        );
        assert!(!logged.contains(SECRET_KEY), "the key is never logged");
    }
}

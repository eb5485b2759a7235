//! GET /api/v1/billing/usage: plan, allowance and use in the current period, read from the
//! append-only ledger through the same function image creation enforces.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::billing::plans::PlansConfig;
use shared::clients::storage::{ImageFormat, UploadKey};
use shared::platform::config::{AppEnv, Env};
use shared::staging::requests::ImageRequest;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

const USAGE: &str = "/api/v1/billing/usage";
const ALICE: &str = "auth0|alice";
const PRO_PRICE: &str = "price_pro_usage";

async fn usage(app: &TestApp, sub: &str) -> Value {
    let response = call("GET", USAGE)
        .bearer(&app.token(sub))
        .send(&app.api, &app.api.web, billing_usage::handle)
        .await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

async fn sync_plans(db: &PgPool, extra: &[(&str, &str)]) {
    let mut vars: HashMap<&str, &str> = [
        ("STRIPE_PRICE_PRO", PRO_PRICE),
        ("STRIPE_PRICE_BUSINESS", "price_biz_usage"),
    ]
    .into();
    vars.extend(extra.iter().copied());
    let plans = PlansConfig::from_env(&Env(&vars), AppEnv::Test).unwrap();
    shared::db::migrate::migrate_and_sync(db, &plans).await.unwrap();
}

async fn user(db: &PgPool, sub: &str) -> Uuid {
    shared::db::users::ensure_by_sub(db, sub).await.unwrap().id
}

/// A ledger entry as image creation (`reserve`, +1) or a permanent failure (`refund`, -1) writes it.
async fn ledger_entry(db: &PgPool, user: Uuid, kind: &str, units: i32, period_at: &str) {
    sqlx::query(
        "INSERT INTO usage_ledger (user_id, image_id, kind, units, period_at, reason) \
         VALUES ($1, gen_random_uuid(), $2, $3, now() + $4::interval, 'test')",
    )
    .bind(user)
    .bind(kind)
    .bind(units)
    .bind(period_at)
    .execute(db)
    .await
    .unwrap();
}

async fn subscribe(db: &PgPool, user: Uuid, status: &str, price: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    sqlx::query_as(
        "INSERT INTO subscriptions (user_id, stripe_subscription_id, status, price_id, current_period_start, current_period_end) \
         VALUES ($1, 'sub_' || md5(random()::text), $2, $3, date_trunc('second', now()) - interval '5 days', \
                 date_trunc('second', now()) + interval '25 days') \
         RETURNING current_period_start, current_period_end",
    )
    .bind(user)
    .bind(status)
    .bind(price)
    .fetch_one(db)
    .await
    .unwrap()
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// The calendar month in UTC: either side of the call, in case it straddles a month boundary.
fn assert_calendar_month(body: &Value, before: DateTime<Utc>) {
    let got = (time(&body["period_start"]), time(&body["period_end"]));
    let candidates = [
        shared::billing::usage::calendar_month(before),
        shared::billing::usage::calendar_month(Utc::now()),
    ];
    assert!(candidates.contains(&got), "{got:?} is not the current calendar month");
}

#[sqlx::test]
async fn a_new_user_is_on_the_free_plan_with_nothing_used(db: PgPool) {
    let app = spawn_app(db).await;
    sync_plans(&app.db, &[]).await;
    let before = Utc::now();
    let body = usage(&app, ALICE).await;
    assert_eq!(
        body.as_object().unwrap().keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "has_subscription",
            "images_used",
            "monthly_limit",
            "period_end",
            "period_start",
            "plan_code",
            "remaining",
            "remaining_images"
        ]
    );
    assert_eq!(body["plan_code"], "free");
    assert_eq!(body["monthly_limit"], 10);
    assert_eq!(body["images_used"], 0);
    assert_eq!(body["remaining"], 10);
    assert_eq!(body["remaining_images"], 10);
    assert_eq!(body["has_subscription"], false);
    assert_calendar_month(&body, before);
    let start = time(&body["period_start"]);
    assert_eq!(start.format("%d %H:%M:%S").to_string(), "01 00:00:00");
}

#[sqlx::test]
async fn the_free_limit_comes_from_the_plans_table_with_a_fallback_never_zero(db: PgPool) {
    let app = spawn_app(db).await;
    // Before the first plan sync the table is empty: the fallback applies, never 0.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM plans")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
    let body = usage(&app, ALICE).await;
    assert_eq!(
        (body["plan_code"].as_str(), body["monthly_limit"].as_i64()),
        (Some("free"), Some(10))
    );
    assert_eq!(body["remaining"], 10);
    // A configured free limit is what the API shows (and enforces).
    sync_plans(&app.db, &[("PLAN_FREE_MONTHLY_LIMIT", "3")]).await;
    let body = usage(&app, ALICE).await;
    assert_eq!(body["monthly_limit"], 3);
    assert_eq!(body["remaining"], 3);
}

#[sqlx::test]
async fn usage_counts_the_ledger_of_this_month_only(db: PgPool) {
    let app = spawn_app(db).await;
    sync_plans(&app.db, &[]).await;
    let alice = user(&app.db, ALICE).await;
    let bob = user(&app.db, "auth0|bob").await;
    for _ in 0..3 {
        ledger_entry(&app.db, alice, "reserve", 1, "0 seconds").await;
    }
    ledger_entry(&app.db, alice, "refund", -1, "0 seconds").await;
    // Last month's and another user's entries are not this month's use.
    ledger_entry(&app.db, alice, "reserve", 1, "-40 days").await;
    ledger_entry(&app.db, bob, "reserve", 1, "0 seconds").await;
    let body = usage(&app, ALICE).await;
    assert_eq!(body["images_used"], 2);
    assert_eq!(body["remaining"], 8);
    assert_eq!(body["remaining_images"], 8);
    // Over the limit (a plan downgraded mid-month): remaining stops at 0.
    for _ in 0..9 {
        ledger_entry(&app.db, alice, "reserve", 1, "0 seconds").await;
    }
    let body = usage(&app, ALICE).await;
    assert_eq!(body["images_used"], 11);
    assert_eq!(body["remaining"], 0);
    assert_eq!(body["remaining_images"], 0);
}

#[sqlx::test]
async fn deleting_images_and_projects_never_lowers_usage(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    sync_plans(&sa.app.db, &[]).await;
    let alice = user(&sa.app.db, ALICE).await;
    let project = sa.project(ALICE, "Maple").await;
    let other = sa.project(ALICE, "Oak").await;
    let key = sa.upload(ALICE, ImageFormat::Jpeg, 100).await;
    let request = |project_id: Uuid, style: &str| ImageRequest {
        project_id,
        file_key: UploadKey::parse(&key).unwrap(),
        room_type: "bedroom".parse().unwrap(),
        treatment: shared::staging::vocabulary::Treatment::Stage(style.parse().unwrap()),
        seed: None,
        prompt: None,
        variations: 1,
    };
    let created = shared::staging::create::create_images(
        &sa.app.db,
        &sa.staging.storage,
        &sa.staging.queue,
        alice,
        vec![
            request(project, "modern"),
            request(project, "industrial"),
            request(other, "modern"),
        ],
        |i| format!("images[{i}]."),
    )
    .await
    .unwrap();
    assert_eq!(created.len(), 3);
    let body = usage(&sa.app, ALICE).await;
    assert_eq!(
        (body["images_used"].as_i64(), body["remaining"].as_i64()),
        (Some(3), Some(7))
    );

    let deleted = call("DELETE", "/api/v1/images/{id}")
        .path_param("id", created[0].id)
        .bearer(&sa.app.token(ALICE))
        .send(&sa.app.api, &sa.app.api.web, delete_image::handle)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(usage(&sa.app, ALICE).await["images_used"], 3);

    let deleted = call("DELETE", "/api/v1/projects/{id}")
        .path_param("id", other)
        .bearer(&sa.app.token(ALICE))
        .send(&sa.app.api, &sa.app.api.web, delete_project::handle)
        .await;
    assert_eq!(deleted.status, 204);
    let body = usage(&sa.app, ALICE).await;
    assert_eq!(body["images_used"], 3);
    assert_eq!(body["remaining"], 7);
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM images WHERE deleted_at IS NULL")
        .fetch_one(&sa.app.db)
        .await
        .unwrap();
    assert_eq!(live, 1, "the deletes did happen");
}

#[sqlx::test]
async fn an_active_subscription_sets_plan_limit_and_period(db: PgPool) {
    let app = spawn_app(db).await;
    sync_plans(&app.db, &[("PLAN_PRO_MONTHLY_LIMIT", "150")]).await;
    let alice = user(&app.db, ALICE).await;
    let (start, end) = subscribe(&app.db, alice, "active", PRO_PRICE).await;
    // Inside the subscription period counts; before its start does not.
    ledger_entry(&app.db, alice, "reserve", 1, "-1 day").await;
    ledger_entry(&app.db, alice, "reserve", 1, "-4 days").await;
    ledger_entry(&app.db, alice, "reserve", 1, "-6 days").await;
    let body = usage(&app, ALICE).await;
    assert_eq!(body["plan_code"], "pro");
    assert_eq!(body["monthly_limit"], 150);
    assert_eq!(body["has_subscription"], true);
    assert_eq!(time(&body["period_start"]), start);
    assert_eq!(time(&body["period_end"]), end);
    assert_eq!(body["images_used"], 2);
    assert_eq!(body["remaining"], 148);

    // Trialing counts as a subscription too.
    sqlx::query("UPDATE subscriptions SET status = 'trialing' WHERE user_id = $1")
        .bind(alice)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(usage(&app, ALICE).await["plan_code"], "pro");
}

#[sqlx::test]
async fn a_subscription_with_an_unknown_price_falls_back_to_the_free_limit(db: PgPool) {
    let app = spawn_app(db).await;
    sync_plans(&app.db, &[]).await;
    let alice = user(&app.db, ALICE).await;
    subscribe(&app.db, alice, "active", "price_unknown_123").await;
    let body = usage(&app, ALICE).await;
    assert_eq!(body["plan_code"], "free");
    assert_eq!(body["monthly_limit"], 10);
    assert_eq!(body["remaining"], 10);
    assert_eq!(body["has_subscription"], true);

    // And with no plans synced at all: still the fallback, never 0.
    sqlx::query("DELETE FROM plans").execute(&app.db).await.unwrap();
    let body = usage(&app, ALICE).await;
    assert_eq!(body["monthly_limit"], 10);
    assert_eq!(body["has_subscription"], true);
}

#[sqlx::test]
async fn a_canceled_subscription_means_the_free_plan(db: PgPool) {
    let app = spawn_app(db).await;
    sync_plans(&app.db, &[]).await;
    let alice = user(&app.db, ALICE).await;
    subscribe(&app.db, alice, "canceled", PRO_PRICE).await;
    let before = Utc::now();
    let body = usage(&app, ALICE).await;
    assert_eq!(body["plan_code"], "free");
    assert_eq!(body["monthly_limit"], 10);
    assert_eq!(body["has_subscription"], false);
    assert_calendar_month(&body, before);
    // Another user's active subscription is not Alice's.
    let bob = user(&app.db, "auth0|bob").await;
    subscribe(&app.db, bob, "active", PRO_PRICE).await;
    assert_eq!(usage(&app, ALICE).await["plan_code"], "free");
    assert_eq!(usage(&app, "auth0|bob").await["plan_code"], "pro");
}

#[sqlx::test]
async fn usage_needs_a_token(db: PgPool) {
    let app = spawn_app(db).await;
    call("GET", USAGE)
        .send(&app.api, &app.api.web, billing_usage::handle)
        .await
        .assert_error(401, "unauthorized");
    call("GET", USAGE)
        .bearer("not-a-jwt")
        .send(&app.api, &app.api.web, billing_usage::handle)
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(app.user_count().await, 0);
}

//! The public routes: GET /health and GET /api/v1/plans.

use std::collections::HashMap;

use shared::billing::plans::PlansConfig;
use shared::platform::config::{AppEnv, DatabaseConfig, Env};
use shared::platform::state::PublicState;
use sqlx::PgPool;

use crate::support::*;

#[sqlx::test]
async fn health_reports_the_database(db: PgPool) {
    let app = spawn_app(db).await;
    let response = call("GET", "/health")
        .send(&app.public, &app.public.web, health::handle)
        .await;
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert!(body["checks"]["database"]["latency_ms"].is_u64());
    assert_eq!(response.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn health_is_503_when_the_database_is_down() {
    // Nothing listens on port 1: connecting fails at once.
    let vars: HashMap<&str, &str> = [("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")].into();
    let config = DatabaseConfig::from_env(&Env(&vars)).unwrap();
    let state = PublicState {
        web: web_config(),
        db: shared::db::pool(&config).unwrap(),
    };
    let response = call("GET", "/health").send(&state, &state.web, health::handle).await;
    assert_eq!(response.status, 503);
    let body = response.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"]["status"], "error");
    assert!(
        !response.body.windows(8).any(|w| w == b"postgres"),
        "no connection details leak"
    );
}

#[sqlx::test]
async fn plans_come_from_configuration(db: PgPool) {
    let app = spawn_app(db).await;
    let vars: HashMap<&str, &str> = [
        ("STRIPE_PRICE_PRO", "price_pro_123"),
        ("STRIPE_PRICE_BUSINESS", "price_biz_456"),
        ("PLAN_PRO_MONTHLY_LIMIT", "150"),
    ]
    .into();
    let plans = PlansConfig::from_env(&Env(&vars), AppEnv::Test).unwrap();
    shared::db::migrate::migrate_and_sync(&app.db, &plans).await.unwrap();

    let response = call("GET", "/api/v1/plans")
        .send(&app.public, &app.public.web, list_plans::handle)
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("cache-control"), Some("public, max-age=300"));
    let body = response.json();
    assert_eq!(
        body,
        serde_json::json!({"plans": [
            {"code": "free", "name": "Free", "monthly_limit": 10, "price_id": null},
            {"code": "pro", "name": "Pro", "monthly_limit": 150, "price_id": "price_pro_123"},
            {"code": "business", "name": "Business", "monthly_limit": 500, "price_id": "price_biz_456"},
        ]})
    );
}

#[sqlx::test]
async fn plans_resync_moves_prices_between_plans(db: PgPool) {
    let sync = |pro: &'static str, business: &'static str| {
        let vars: HashMap<&str, &str> = [("STRIPE_PRICE_PRO", pro), ("STRIPE_PRICE_BUSINESS", business)].into();
        PlansConfig::from_env(&Env(&vars), AppEnv::Test).unwrap()
    };
    shared::db::migrate::migrate_and_sync(&db, &sync("price_a", "price_b"))
        .await
        .unwrap();
    // Swapping two prices must not trip the unique constraint half-way.
    shared::db::migrate::migrate_and_sync(&db, &sync("price_b", "price_a"))
        .await
        .unwrap();
    let rows: Vec<(String, Option<String>)> = sqlx::query_as("SELECT code, price_id FROM plans ORDER BY sort_order")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(rows[1], ("pro".into(), Some("price_b".into())));
    assert_eq!(rows[2], ("business".into(), Some("price_a".into())));
}

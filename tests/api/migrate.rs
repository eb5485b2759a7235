//! The migrate function: CloudFormation custom-resource events in, a response PUT to the
//! pre-signed ResponseURL and a migrated database out.

use std::collections::HashMap;

use migrate::{MigrateState, PHYSICAL_RESOURCE_ID};
use serde_json::{Value, json};
use shared::billing::plans::PlansConfig;
use shared::platform::config::{AppEnv, DatabaseConfig, Env};
use shared::platform::state::outbound_http_client;
use sqlx::PgPool;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn state(db: PgPool) -> MigrateState {
    let vars: HashMap<&str, &str> = [
        ("STRIPE_PRICE_PRO", "price_pro"),
        ("STRIPE_PRICE_BUSINESS", "price_business"),
    ]
    .into();
    MigrateState::new(
        db,
        PlansConfig::from_env(&Env(&vars), AppEnv::Test).unwrap(),
        outbound_http_client().unwrap(),
    )
}

/// A request as CloudFormation sends it: Update and Delete also name the physical id, Update the
/// old properties.
fn custom_resource_event(request_type: &str, response_url: &str) -> Value {
    let mut event = json!({
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:migrate",
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/realstaging/1",
        "RequestId": "11111111-2222-3333-4444-555555555555",
        "LogicalResourceId": "DatabaseMigration",
        "ResourceType": "Custom::DatabaseMigration",
        "ResourceProperties": {"ServiceToken": "arn", "CodeVersion": "3"}
    });
    if request_type != "Create" {
        event["PhysicalResourceId"] = json!(PHYSICAL_RESOURCE_ID);
    }
    if request_type == "Update" {
        event["OldResourceProperties"] = json!({"ServiceToken": "arn", "CodeVersion": "2"});
    }
    event
}

async fn cloudformation() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/cfn-response"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

async fn answers(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn table_exists(db: &PgPool, table: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn create_applies_migrations_syncs_plans_and_reports_success(db: PgPool) {
    let cfn = cloudformation().await;
    let state = state(db.clone());
    let url = format!("{}/cfn-response", cfn.uri());
    let result = migrate::handle(&state, custom_resource_event("Create", &url))
        .await
        .unwrap();
    assert_eq!(result["status"], "SUCCESS");

    let answer = &answers(&cfn).await[0];
    assert_eq!(answer["Status"], "SUCCESS");
    assert_eq!(answer["PhysicalResourceId"], PHYSICAL_RESOURCE_ID);
    assert_eq!(answer["RequestId"], "11111111-2222-3333-4444-555555555555");
    assert_eq!(answer["LogicalResourceId"], "DatabaseMigration");
    assert_eq!(answer["Data"]["Plans"], "free,pro,business");
    assert!(table_exists(&db, "usage_ledger").await);
    let pro: Option<String> = sqlx::query_scalar("SELECT price_id FROM plans WHERE code = 'pro'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(pro.as_deref(), Some("price_pro"));

    // The next deploy (an Update) is a no-op for the schema and still succeeds.
    migrate::handle(&state, custom_resource_event("Update", &url))
        .await
        .unwrap();
    let second = &answers(&cfn).await[1];
    assert_eq!(second["Status"], "SUCCESS");
    assert_eq!(second["Data"]["Applied"], "");
}

#[sqlx::test(migrations = false)]
async fn delete_never_touches_the_database(db: PgPool) {
    let cfn = cloudformation().await;
    let state = state(db.clone());
    migrate::handle(
        &state,
        custom_resource_event("Delete", &format!("{}/cfn-response", cfn.uri())),
    )
    .await
    .unwrap();
    assert_eq!(answers(&cfn).await[0]["Status"], "SUCCESS");
    assert!(!table_exists(&db, "users").await);
}

#[tokio::test]
async fn a_failed_migration_fails_the_deploy_with_a_reason() {
    let cfn = cloudformation().await;
    let vars: HashMap<&str, &str> = [("DATABASE_URL", "postgres://postgres:hunter2@127.0.0.1:1/none")].into();
    let database = DatabaseConfig::from_env(&Env(&vars)).unwrap();
    let state = MigrateState::new(
        shared::db::pool_with(&database, shared::db::connect_options(&database).unwrap()),
        PlansConfig::from_env(&Env(&HashMap::<&str, &str>::new()), AppEnv::Test).unwrap(),
        outbound_http_client().unwrap(),
    );
    migrate::handle(
        &state,
        custom_resource_event("Create", &format!("{}/cfn-response", cfn.uri())),
    )
    .await
    .unwrap();
    let answer = &answers(&cfn).await[0];
    assert_eq!(answer["Status"], "FAILED");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(reason.starts_with("database migration failed"), "{reason}");
    assert!(
        !reason.contains("hunter2"),
        "the password must not reach CloudFormation: {reason}"
    );
}

/// A configuration the function cannot work with (here: production without its Stripe price ids)
/// still answers CloudFormation, with the reason, instead of exiting during init and leaving the
/// deploy to hang until CloudFormation gives up.
#[tokio::test]
async fn a_broken_configuration_fails_the_deploy_with_the_reason_and_never_blocks_a_delete() {
    let cfn = cloudformation().await;
    let vars: HashMap<&str, &str> = [
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://postgres:hunter2@127.0.0.1:1/none"),
    ]
    .into();
    let state = MigrateState::from_env(&Env(&vars)).expect("the function starts whatever the configuration");
    let url = format!("{}/cfn-response", cfn.uri());
    let result = migrate::handle(&state, custom_resource_event("Create", &url))
        .await
        .unwrap();
    assert_eq!(result["status"], "FAILED");
    let answer = &answers(&cfn).await[0];
    assert_eq!(answer["Status"], "FAILED");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(
        reason.contains("configuration is invalid") && reason.contains("STRIPE_PRICE"),
        "{reason}"
    );
    assert!(!reason.contains("hunter2"), "{reason}");

    migrate::handle(&state, custom_resource_event("Delete", &url))
        .await
        .unwrap();
    assert_eq!(answers(&cfn).await[1]["Status"], "SUCCESS");
    // A direct invoke reports the same problem as an error.
    let err = migrate::handle(&state, json!({})).await.unwrap_err();
    assert!(err.to_string().contains("STRIPE_PRICE"), "{err}");
}

#[sqlx::test(migrations = false)]
async fn a_direct_invoke_returns_the_report(db: PgPool) {
    let state = state(db.clone());
    let report = migrate::handle(&state, json!({})).await.unwrap();
    assert_eq!(report["plans"], json!(["free", "pro", "business"]));
    assert!(!report["applied"].as_array().unwrap().is_empty());
    let again = migrate::handle(&state, json!({})).await.unwrap();
    assert_eq!(again["applied"], json!([]));
    assert_eq!(again["current_version"], report["current_version"]);
}

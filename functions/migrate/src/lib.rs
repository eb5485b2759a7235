//! The `migrate` function: applies the database migrations and syncs the plans table.
//!
//! Invoked three ways, all running the same step ([`shared::db::migrate::migrate_and_sync`]):
//! - by CloudFormation on every deploy, as the `DatabaseMigration` custom resource: the result is
//!   PUT to the pre-signed `ResponseURL`; a failure fails (and rolls back) the deploy;
//! - directly (`aws lambda invoke` with any other payload): the report is the function's result;
//! - from the local scripts as a plain program (no Lambda runtime around it).

use std::time::Duration;

use shared::billing::plans::PlansConfig;
use shared::db::migrate::{MigrationReport, migrate_and_sync};
use shared::platform::config::{AppEnv, ConfigError, DatabaseConfig, Env};
use shared::serde_json::{self, Value, json};
use shared::sqlx::PgPool;
use shared::{db, reqwest, tracing};

pub struct MigrateState {
    pub db: PgPool,
    pub plans: PlansConfig,
    pub http: reqwest::Client,
}

impl MigrateState {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let app_env = AppEnv::from_env(env)?;
        let database = DatabaseConfig::from_env(env)?;
        let plans = PlansConfig::from_env(env, app_env)?;
        let db = db::pool_with(&database, db::connect_options(&database)?);
        Ok(MigrateState {
            db,
            plans,
            http: shared::platform::state::outbound_http_client()?,
        })
    }
}

/// What a CloudFormation custom-resource request carries that the answer must echo.
struct CustomResource<'a> {
    request_type: &'a str,
    response_url: &'a str,
    stack_id: &'a str,
    request_id: &'a str,
    logical_resource_id: &'a str,
}

impl<'a> CustomResource<'a> {
    fn parse(event: &'a Value) -> Option<Self> {
        let field = |name: &str| event.get(name).and_then(Value::as_str);
        Some(CustomResource {
            request_type: field("RequestType")?,
            response_url: field("ResponseURL")?,
            stack_id: field("StackId")?,
            request_id: field("RequestId")?,
            logical_resource_id: field("LogicalResourceId")?,
        })
    }
}

/// The stable physical id: updates never replace the resource, so CloudFormation never asks
/// for a Delete of an "old" migration resource during a deploy.
pub const PHYSICAL_RESOURCE_ID: &str = "realstaging-database-migrations";

/// Handles one invocation. Errors are returned only when CloudFormation could not be told the
/// outcome (so Lambda's retry of the asynchronous invocation tries again).
pub async fn handle(state: &MigrateState, event: Value) -> Result<Value, shared::lambda_runtime::Error> {
    let Some(request) = CustomResource::parse(&event) else {
        let report = migrate_and_sync(&state.db, &state.plans).await?;
        return Ok(serde_json::to_value(report)?);
    };
    tracing::info!(
        request_type = request.request_type,
        logical_resource_id = request.logical_resource_id,
        "CloudFormation custom resource request"
    );
    let outcome: Result<Option<MigrationReport>, String> = match request.request_type {
        // Removing the stack (or this resource) must never touch the data.
        "Delete" => Ok(None),
        "Create" | "Update" => migrate_and_sync(&state.db, &state.plans)
            .await
            .map(Some)
            .map_err(|err| format!("{err:#}")),
        other => Err(format!("unknown RequestType {other}")),
    };
    let (status, reason, data) = match &outcome {
        Ok(report) => (
            "SUCCESS",
            "database is current".to_string(),
            report.as_ref().map(report_data),
        ),
        Err(message) => {
            tracing::error!(error = %message, "database migration failed");
            // CloudFormation limits the whole response to 4 KiB.
            (
                "FAILED",
                truncate(&format!("database migration failed: {message}"), 1500),
                None,
            )
        }
    };
    let body = json!({
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": PHYSICAL_RESOURCE_ID,
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
        "NoEcho": false,
        "Data": data.unwrap_or_else(|| json!({})),
    });
    // The pre-signed S3 URL was signed for an empty Content-Type.
    state
        .http
        .put(request.response_url)
        .header("content-type", "")
        .timeout(Duration::from_secs(30))
        .body(body.to_string())
        .send()
        .await?
        .error_for_status()?;
    Ok(json!({ "status": status }))
}

fn report_data(report: &MigrationReport) -> Value {
    json!({
        "CurrentVersion": report.current_version.map(|v| v.to_string()).unwrap_or_default(),
        "Applied": report.applied.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
        "Plans": report.plans.join(","),
    })
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

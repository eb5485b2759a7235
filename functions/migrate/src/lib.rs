//! The `migrate` function: applies the database migrations and syncs the plans table.
//!
//! Invoked three ways, all running the same step ([`shared::db::migrate::migrate_and_sync`]):
//! - by CloudFormation on every deploy, as the `DatabaseMigration` custom resource: the result is
//!   PUT to the pre-signed `ResponseURL`; a failure fails (and rolls back) the deploy;
//! - directly (`aws lambda invoke` with any other payload): the report is the function's result;
//! - from the local scripts as a plain program (no Lambda runtime around it).

use std::collections::HashMap;
use std::time::Duration;

use shared::aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceRequest as Request, CloudFormationCustomResourceResponse as Response,
    CloudFormationCustomResourceResponseStatus as Status,
};
use shared::billing::plans::PlansConfig;
use shared::db::migrate::{MigrationReport, migrate_and_sync};
use shared::platform::config::{AppEnv, ConfigError, DatabaseConfig, Env};
use shared::serde_json::{self, Value, json};
use shared::sqlx::PgPool;
use shared::{db, reqwest, tracing};

/// What a migration needs.
pub struct MigrateSetup {
    pub db: PgPool,
    pub plans: PlansConfig,
}

pub struct MigrateState {
    /// Answers CloudFormation; built even when the rest of the configuration is wrong.
    pub http: reqwest::Client,
    /// The database and plans, or why the configuration cannot be used. A broken configuration
    /// (a missing price id, an unparsable DATABASE_URL) must still answer CloudFormation with the
    /// reason: a function that exits during init never answers, and the deploy hangs for an hour
    /// before it rolls back, taking the explaining log lines with it.
    pub setup: Result<MigrateSetup, String>,
}

impl MigrateState {
    pub fn new(db: PgPool, plans: PlansConfig, http: reqwest::Client) -> Self {
        MigrateState {
            http,
            setup: Ok(MigrateSetup { db, plans }),
        }
    }

    /// Fails only when no HTTP client can be built (then nothing could answer CloudFormation).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let http = shared::platform::state::outbound_http_client()?;
        let setup = MigrateSetup::from_env(env).map_err(|err| err.to_string());
        if let Err(reason) = &setup {
            tracing::error!(error = %reason, "the migrate function's configuration is invalid; every deploy fails with this reason");
        }
        Ok(MigrateState { http, setup })
    }

    async fn migrate(&self) -> Result<MigrationReport, String> {
        match &self.setup {
            Ok(setup) => migrate_and_sync(&setup.db, &setup.plans)
                .await
                .map_err(|err| format!("database migration failed: {err:#}")),
            Err(reason) => Err(format!("the migrate function's configuration is invalid: {reason}")),
        }
    }
}

impl MigrateSetup {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let app_env = AppEnv::from_env(env)?;
        let database = DatabaseConfig::from_env(env)?;
        let plans = PlansConfig::from_env(env, app_env)?;
        let db = db::pool_with(&database, db::connect_options(&database)?);
        Ok(MigrateSetup { db, plans })
    }
}

/// The stable physical id: updates never replace the resource, so CloudFormation never asks
/// for a Delete of an "old" migration resource during a deploy.
pub const PHYSICAL_RESOURCE_ID: &str = "realstaging-database-migrations";

/// Handles one invocation. Errors are returned only when CloudFormation could not be told the
/// outcome (so Lambda's retry of the asynchronous invocation tries again), or for a direct
/// invoke that failed.
pub async fn handle(state: &MigrateState, event: Value) -> Result<Value, shared::lambda_runtime::Error> {
    if event.get("RequestType").is_none() {
        // A direct invoke: the report is the result.
        let report = state.migrate().await?;
        return Ok(serde_json::to_value(report)?);
    }
    let request: Request =
        serde_json::from_value(event).map_err(|err| format!("not a CloudFormation custom-resource request: {err}"))?;
    let (kind, outcome, response_url, mut response) = match request {
        // Removing the stack (or this resource) must never touch the data, whatever the configuration.
        Request::Delete(r) => (
            "Delete",
            Ok(None),
            r.response_url,
            answer(r.stack_id, r.request_id, r.logical_resource_id),
        ),
        Request::Create(r) => (
            "Create",
            state.migrate().await.map(Some),
            r.response_url,
            answer(r.stack_id, r.request_id, r.logical_resource_id),
        ),
        Request::Update(r) => (
            "Update",
            state.migrate().await.map(Some),
            r.response_url,
            answer(r.stack_id, r.request_id, r.logical_resource_id),
        ),
        _ => return Err("an unknown CloudFormation RequestType".into()),
    };
    tracing::info!(
        request_type = kind,
        logical_resource_id = %response.logical_resource_id,
        "CloudFormation custom resource request"
    );
    match outcome {
        Ok(report) => {
            response.status = Status::Success;
            response.reason = Some("database is current".into());
            response.data = report.as_ref().map(report_data).unwrap_or_default();
        }
        Err(message) => {
            tracing::error!(error = %message, "database migration failed");
            // CloudFormation limits the whole response to 4 KiB.
            response.status = Status::Failed;
            response.reason = Some(truncate(&message, 1500));
        }
    }
    let status = response.status.clone();
    // The pre-signed S3 URL was signed for an empty Content-Type.
    state
        .http
        .put(&response_url)
        .header("content-type", "")
        .timeout(Duration::from_secs(30))
        .body(serde_json::to_string(&response)?)
        .send()
        .await?
        .error_for_status()?;
    Ok(json!({ "status": status }))
}

/// Run as a program (local scripts, CI): migrate once, print the report on stdout.
pub async fn run_program(state: &MigrateState) -> Result<(), shared::lambda_runtime::Error> {
    let report = state.migrate().await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The answer's fixed part: which request of which stack it settles.
fn answer(stack_id: String, request_id: String, logical_resource_id: String) -> Response {
    let mut response = Response::default();
    response.physical_resource_id = PHYSICAL_RESOURCE_ID.to_string();
    response.stack_id = stack_id;
    response.request_id = request_id;
    response.logical_resource_id = logical_resource_id;
    response.no_echo = false;
    response
}

fn report_data(report: &MigrationReport) -> HashMap<String, String> {
    HashMap::from([
        (
            "CurrentVersion".to_string(),
            report.current_version.map(|v| v.to_string()).unwrap_or_default(),
        ),
        (
            "Applied".to_string(),
            report.applied.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
        ),
        ("Plans".to_string(), report.plans.join(",")),
    ])
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

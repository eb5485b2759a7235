//! `GET /health`: is this function able to serve? Checks the database with a bounded query.

use std::time::{Duration, Instant};

use serde::Serialize;
use shared::http_types::StatusCode;
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_response};
use shared::platform::state::PublicState;
use shared::{serde, sqlx, tokio};

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct Health {
    status: &'static str,
    checks: Checks,
}

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct Checks {
    database: Check,
}

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct Check {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

pub async fn handle(state: &PublicState, _req: Request) -> ApiResult {
    let started = Instant::now();
    let probe = tokio::time::timeout(Duration::from_secs(3), sqlx::query("SELECT 1").execute(&state.db)).await;
    let database = match probe {
        Ok(Ok(_)) => Check {
            status: "ok",
            latency_ms: Some(started.elapsed().as_millis() as u64),
            message: None,
        },
        Ok(Err(err)) => {
            shared::tracing::warn!(error = %err, "health check: database query failed");
            Check {
                status: "error",
                latency_ms: None,
                message: Some("database unreachable"),
            }
        }
        Err(_) => {
            shared::tracing::warn!("health check: database query timed out");
            Check {
                status: "error",
                latency_ms: None,
                message: Some("database timed out"),
            }
        }
    };
    let healthy = database.status == "ok";
    let body = Health {
        status: if healthy { "ok" } else { "unavailable" },
        checks: Checks { database },
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_response(status, &body))
}

//! The scheduled uptime check (`shared::platform::uptime`): every minute, `GET /health` through
//! the public URL, and the `HealthCheckOk` metric that `ApiDownAlarm` watches. Any event starts a
//! check (EventBridge's scheduled event, or a manual `aws lambda invoke`); the answer is the report.

use std::sync::Arc;

use shared::lambda_runtime::LambdaEvent;
use shared::platform::lambda::Error;
use shared::platform::uptime::{UptimeCheck, UptimeReport};

pub async fn handle(
    check: Arc<UptimeCheck>,
    _event: LambdaEvent<shared::serde_json::Value>,
) -> Result<UptimeReport, Error> {
    Ok(check.run().await)
}

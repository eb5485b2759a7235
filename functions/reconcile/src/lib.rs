//! The scheduled reconciler (`shared::staging::reconcile`). Any event starts a run (EventBridge's
//! scheduled event, or a manual `aws lambda invoke`); the answer is what the run did.

use std::sync::Arc;
use std::time::Duration;

use shared::lambda_runtime::LambdaEvent;
use shared::platform::lambda::Error;
use shared::staging::reconcile::{ReconcileLimits, ReconcileReport};
use shared::staging::worker::Worker;

pub async fn handle(
    worker: Arc<Worker>,
    event: LambdaEvent<shared::serde_json::Value>,
) -> Result<ReconcileReport, Error> {
    let stop_at =
        shared::platform::lambda::stop_at(&event.context, worker.config.safety_margin, Duration::from_secs(90));
    Ok(shared::staging::reconcile::run(&worker, &ReconcileLimits::default(), stop_at).await)
}

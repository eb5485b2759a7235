//! The scheduled reconciler (`shared::reconcile`). Any event starts a run (EventBridge's
//! scheduled event, or a manual `aws lambda invoke`); the answer is what the run did.

use std::sync::Arc;
use std::time::Duration;

use shared::lambda::Error;
use shared::lambda_runtime::LambdaEvent;
use shared::reconcile::{ReconcileLimits, ReconcileReport};
use shared::worker::Worker;

pub async fn handle(
    worker: Arc<Worker>,
    event: LambdaEvent<shared::serde_json::Value>,
) -> Result<ReconcileReport, Error> {
    let stop_at = shared::lambda::stop_at(&event.context, worker.config.safety_margin, Duration::from_secs(90));
    Ok(shared::reconcile::run(&worker, &ReconcileLimits::default(), stop_at).await)
}

//! SQS → the staging worker (`shared::staging::worker`). Lambda event source mapping with
//! `ReportBatchItemFailures`: the answer lists only the messages to deliver again.

use std::sync::Arc;
use std::time::Duration;

use shared::aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::lambda_runtime::LambdaEvent;
use shared::platform::lambda::Error;
use shared::staging::worker::Worker;

pub async fn handle(worker: Arc<Worker>, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let stop_at =
        shared::platform::lambda::stop_at(&event.context, worker.config.safety_margin, Duration::from_secs(240));
    Ok(worker.handle_batch(event.payload, stop_at).await.response())
}

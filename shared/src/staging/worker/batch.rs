//! An SQS batch: every message on its own task and span, failures reported per message id
//! (`ReportBatchItemFailures`), so one bad message never fails or delays the others' outcome.

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::Instrument;

use super::{JobOutcome, Worker};
use crate::staging::queue::JobMessage;

/// What happened to one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    Done(JobOutcome),
    /// Reported as a failure: SQS delivers it again (and, after maxReceiveCount, dead-letters it).
    Failed(String),
}

impl MessageOutcome {
    fn is_failure(&self) -> bool {
        matches!(
            self,
            MessageOutcome::Failed(_) | MessageOutcome::Done(JobOutcome::RetryLater { .. })
        )
    }
}

/// Per-message outcomes (for logs and tests) and the answer Lambda expects.
#[derive(Debug, Default)]
pub struct BatchReport {
    pub outcomes: Vec<(String, MessageOutcome)>,
}

impl BatchReport {
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_failure())
            .map(|(id, _)| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                failure
            })
            .collect();
        response
    }
}

impl Worker {
    /// Handles a batch; `stop_at` is when work must stop to answer Lambda in time.
    pub async fn handle_batch(self: &Arc<Self>, event: SqsEvent, stop_at: Instant) -> BatchReport {
        let mut tasks = Vec::with_capacity(event.records.len());
        // The messages' tasks never outlive the batch: if this future is dropped (the invocation is
        // abandoned), they are aborted with it instead of running on detached into a later one.
        let mut running = AbortOnDrop(Vec::with_capacity(event.records.len()));
        for (index, message) in event.records.into_iter().enumerate() {
            // A message without an id cannot be reported on its own; Lambda treats an empty
            // identifier as a failure of the whole batch, which is the safe reading.
            let message_id = message.message_id.clone().unwrap_or_default();
            let span = tracing::info_span!("message", message_id = %message_id, index, job_id = tracing::field::Empty, image_id = tracing::field::Empty);
            let worker = Arc::clone(self);
            let task = tokio::spawn(async move { worker.handle_message(message, stop_at).await }.instrument(span));
            running.0.push(task.abort_handle());
            tasks.push((message_id, task));
        }
        let mut report = BatchReport::default();
        for (message_id, task) in tasks {
            let outcome = match task.await {
                Ok(outcome) => outcome,
                Err(err) => {
                    // A panic is confined to its message: the others were already running apart.
                    tracing::error!(message_id = %message_id, error = %err, "message handling crashed");
                    MessageOutcome::Failed(format!("crashed: {err}"))
                }
            };
            report.outcomes.push((message_id, outcome));
        }
        let failures = report.outcomes.iter().filter(|(_, o)| o.is_failure()).count();
        tracing::info!(messages = report.outcomes.len(), failures, "batch done");
        report
    }

    async fn handle_message(&self, message: SqsMessage, stop_at: Instant) -> MessageOutcome {
        let parsed = match message.body.as_deref() {
            Some(body) => JobMessage::parse(body),
            None => Err("the message has no body".to_string()),
        };
        let job = match parsed {
            Ok(job) => job,
            Err(problem) => {
                tracing::error!(%problem, receive_count = ?message.attributes.get("ApproximateReceiveCount"), "malformed job message");
                return MessageOutcome::Failed(problem);
            }
        };
        let span = tracing::Span::current();
        span.record("job_id", tracing::field::display(job.job_id));
        span.record("image_id", tracing::field::display(job.image_id));
        let outcome = match self.run_job(&job, stop_at).await {
            Ok(outcome) => outcome,
            Err(err) => {
                tracing::warn!(error = %err, "database unavailable; the message comes back later");
                return MessageOutcome::Failed(format!("database: {err}"));
            }
        };
        match &outcome {
            JobOutcome::RetryLater { after, .. } => {
                if let Some(receipt) = message.receipt_handle.as_deref() {
                    self.queue.return_after(receipt, *after).await;
                }
            }
            JobOutcome::Unknown => tracing::warn!("the message names no job (deleted with its user?); acknowledged"),
            JobOutcome::Skipped(why) => tracing::info!(why, "nothing to do"),
            // Acknowledged: redelivering every few seconds would not fix the account; the
            // reconciler sends the job again every 15 minutes until it runs or expires.
            JobOutcome::WaitingForOperator { code } => tracing::info!(code, "job waits for the operator"),
            JobOutcome::Staged | JobOutcome::Failed { .. } => {}
        }
        MessageOutcome::Done(outcome)
    }
}

/// Aborts the tasks it holds when dropped (finished tasks are unaffected).
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

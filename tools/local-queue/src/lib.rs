//! `local-queue`: the local stand-in for two pieces of AWS that `cargo lambda watch` does not have,
//! the SQS event source mapping of the staging worker and the reconciler's EventBridge schedule
//! (docs/local-stack.md). Development only; `scripts/dev` runs it.
//!
//! Like Lambda's mapping it long-polls the queue, sends a batch as one SQS event, deletes what the
//! worker handled, and leaves the messages the worker reported in `batchItemFailures` (or the whole
//! batch, when the invocation itself failed) to come back after the visibility timeout; after
//! `maxReceiveCount` receives the queue's redrive policy moves them to the dead-letter queue.
//! Unlike Lambda it runs one batch at a time, which is plenty on a laptop.

pub mod events;
pub mod invoke;
pub mod settings;

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use shared::chrono::Utc;
use shared::platform::config::Secret;
use shared::reqwest;
use shared::staging::queue::{JobQueue, QueueConfig};
use shared::tokio;

use events::{BatchOutcome, QueueSource, ReceivedMessage, preview, read_batch_response, scheduled_event, sqs_event};
use invoke::{Invoker, error_chain};
use settings::Settings;

/// One line on stdout, timestamped (scripts/dev sends it to .local/local-queue.log).
pub fn log(line: impl fmt::Display) {
    println!("{} {line}", Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"));
}

#[derive(Debug)]
pub enum RunError {
    QueueUrl(String),
    HttpClient(reqwest::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::QueueUrl(url) => write!(f, "the queue URL {url} does not end in /<account id>/<queue name>"),
            RunError::HttpClient(err) => write!(f, "could not build the HTTP client: {}", error_chain(err)),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs until the process is stopped.
pub async fn run(settings: Settings) -> Result<(), RunError> {
    let source = QueueSource::from_queue_url(&settings.queue_url, &settings.region)
        .ok_or_else(|| RunError::QueueUrl(settings.queue_url.to_string()))?;
    let queue = JobQueue::new(&QueueConfig {
        queue_url: settings.queue_url.clone(),
        endpoint: Some(settings.sqs_endpoint.clone()),
        region: settings.region.clone(),
        credentials: Some((
            settings.access_key_id.clone(),
            Secret::new(settings.secret_access_key.clone()),
        )),
    })
    .await;
    let invoker = Invoker::new(settings.invoke_url.clone(), settings.invoke_timeout).map_err(RunError::HttpClient)?;

    log(format!(
        "local-queue: {} (on {}) -> {} | batches of up to {}, long poll {} s | {}",
        settings.queue_url,
        settings.sqs_endpoint,
        invoker.invoke_url(&settings.worker),
        settings.batch_size,
        settings.wait_seconds,
        match settings.reconcile_every {
            Some(every) => format!("{} every {} s", settings.reconciler, every.as_secs()),
            None => "no reconciler runs".to_string(),
        }
    ));

    if let Some(every) = settings.reconcile_every {
        let invoker = invoker.clone();
        let source = source.clone();
        let reconciler = settings.reconciler.clone();
        tokio::spawn(async move { reconcile_on_schedule(&invoker, &source, &reconciler, every).await });
    }
    feed_worker(&settings, &queue, &invoker, &source).await;
    Ok(())
}

async fn feed_worker(settings: &Settings, queue: &JobQueue, invoker: &Invoker, source: &QueueSource) {
    let mut retry_in = Duration::from_secs(1);
    loop {
        invoker.wait_until_listening().await;
        let messages = match receive(queue, settings).await {
            Ok(messages) => {
                retry_in = Duration::from_secs(1);
                messages
            }
            Err(problem) => {
                log(format!(
                    "receive from {} failed: {problem}; retrying in {} s",
                    settings.queue_url,
                    retry_in.as_secs()
                ));
                tokio::time::sleep(retry_in).await;
                retry_in = (retry_in * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if !messages.is_empty() {
            deliver_batch(settings, queue, invoker, source, &messages).await;
        }
    }
}

async fn receive(queue: &JobQueue, settings: &Settings) -> Result<Vec<ReceivedMessage>, String> {
    queue
        .receive(settings.batch_size, settings.wait_seconds)
        .await
        .map_err(|err| format!("{err:#}"))
}

async fn deliver_batch(
    settings: &Settings,
    queue: &JobQueue,
    invoker: &Invoker,
    source: &QueueSource,
    messages: &[ReceivedMessage],
) {
    let started = Instant::now();
    let batch_ids: BTreeSet<String> = messages.iter().map(|m| m.message_id.clone()).collect();
    let outcome = match invoker.invoke(&settings.worker, &sqs_event(messages, source)).await {
        Ok(answer) => match answer.failure() {
            Some(reason) => BatchOutcome::AllFailed(format!("invocation failed ({reason})")),
            None => read_batch_response(&answer.body, &batch_ids),
        },
        Err(err) => BatchOutcome::AllFailed(format!("invocation failed ({err})")),
    };
    let handled: Vec<&ReceivedMessage> = match &outcome {
        BatchOutcome::AllSucceeded => messages.iter().collect(),
        BatchOutcome::SomeFailed(failed) => messages.iter().filter(|m| !failed.contains(&m.message_id)).collect(),
        BatchOutcome::AllFailed(_) => Vec::new(),
    };

    // One DeleteMessage per message: a local batch holds at most ten messages.
    let mut not_deleted = Vec::new();
    for message in &handled {
        if let Err(err) = queue.delete(&message.receipt_handle).await {
            not_deleted.push(format!("{} ({err:#})", message.message_id));
        }
    }

    let listed: Vec<String> = messages
        .iter()
        .map(|m| match m.receive_count() {
            Some(count) => format!("{} (receive {count})", m.message_id),
            None => m.message_id.clone(),
        })
        .collect();
    let result = match &outcome {
        BatchOutcome::AllSucceeded => format!("all {} done, deleted", messages.len()),
        BatchOutcome::SomeFailed(failed) => {
            let failed_ids = failed.iter().cloned().collect::<Vec<_>>().join(", ");
            match handled.len() {
                0 => format!("all {} failed, left for redelivery: {failed_ids}", failed.len()),
                done => format!(
                    "{done} done, deleted; {} failed, left for redelivery: {failed_ids}",
                    failed.len()
                ),
            }
        }
        BatchOutcome::AllFailed(reason) => format!("{reason}; all {} left for redelivery", messages.len()),
    };
    let delete_note = if not_deleted.is_empty() {
        String::new()
    } else {
        format!("; DeleteMessage failed for {}", not_deleted.join(", "))
    };
    log(format!(
        "{}: batch of {} [{}] in {:.1} s: {result}{delete_note}",
        settings.worker,
        messages.len(),
        listed.join(", "),
        started.elapsed().as_secs_f64()
    ));
}

async fn reconcile_on_schedule(invoker: &Invoker, source: &QueueSource, reconciler: &str, every: Duration) {
    let rule = format!("{reconciler}-schedule");
    loop {
        // Counted from the end of the previous run, so a slow run (the first one compiles the
        // function) is never followed by a burst of catch-up runs.
        tokio::time::sleep(every).await;
        let started = Instant::now();
        let event = scheduled_event(source, &rule, Utc::now());
        let result = match invoker.invoke(reconciler, &event).await {
            Ok(answer) => match answer.failure() {
                Some(reason) => format!("invocation failed ({reason})"),
                None => match shared::serde_json::from_slice(&answer.body) {
                    Ok(summary) => preview(&summary),
                    Err(_) => events::truncate(String::from_utf8_lossy(&answer.body).trim(), 300),
                },
            },
            Err(err) => format!("invocation failed ({err})"),
        };
        log(format!(
            "{reconciler}: {result} ({:.1} s)",
            started.elapsed().as_secs_f64()
        ));
    }
}

//! The reconciler (a scheduled function): nothing is stuck silently.
//!
//! Each run, with bounded work:
//! 1. re-sends jobs whose SQS send failed (`enqueued_at IS NULL`) or whose message went missing;
//! 2. runs jobs past their deadline through the worker once more, which asks Replicate about a
//!    stored prediction (finishing it if it succeeded) before failing the job and refunding;
//! 3. settles unfinished jobs of deleted images through the worker, which cancels a prediction
//!    still running at Replicate and fails the job without a refund;
//! 4. removes the storage objects of deleted images (an original only once no image that is not
//!    deleted uses it, decided under the original's lock that creates take too) and marks them
//!    purged;
//! 5. cancels running predictions that belong to no live job of ours (a create whose answer was
//!    lost for a job that then failed, a duplicate): nothing runs on the account unpaid-for;
//! 6. makes the renditions of ready images staged before renditions existed (a few per run).
//!
//! Two runs at once never double anything: rows are taken with `FOR UPDATE SKIP LOCKED` or
//! through the worker's guarded claim, and every step is idempotent.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clients::replicate::Prediction;
use crate::clients::storage::JobInputKey;
use crate::db::{images, jobs};
use crate::platform::metrics::{self, Counter};
use crate::staging::queue::JobMessage;
use crate::staging::worker::{JobOutcome, Provider, Worker};

/// How much one run does at most, and when jobs count as lost.
#[derive(Debug, Clone)]
pub struct ReconcileLimits {
    /// Never-sent jobs younger than this are left to the API that is probably still sending them.
    pub unsent_grace: Duration,
    /// A sent job still unfinished (and not held by a worker) this long after its last send is
    /// sent again.
    pub resend_after: Duration,
    pub max_resends: i64,
    pub max_expired: i64,
    pub max_deleted: i64,
    pub max_purges: i64,
    /// Pages (100 predictions each) of Replicate's recent predictions read for orphans.
    pub max_orphan_pages: usize,
    /// Images whose renditions are made in one run (two decodes and four encodes each).
    pub max_renditions: i64,
}

impl Default for ReconcileLimits {
    fn default() -> Self {
        ReconcileLimits {
            unsent_grace: Duration::from_secs(60),
            resend_after: Duration::from_secs(15 * 60),
            max_resends: 200,
            max_expired: 20,
            max_deleted: 50,
            max_purges: 200,
            max_orphan_pages: 5,
            max_renditions: 10,
        }
    }
}

/// What one run did (logged, and returned as the function's result).
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct ReconcileReport {
    pub resent: usize,
    pub resend_refused: usize,
    pub expired_staged: usize,
    pub expired_failed: usize,
    pub expired_other: usize,
    /// Unfinished jobs of deleted images settled (prediction canceled, no refund).
    pub deleted_settled: usize,
    pub purged_images: usize,
    pub deleted_objects: usize,
    pub orphans_canceled: usize,
    /// Images given their renditions (made from the stored original and result).
    pub renditions_made: usize,
    /// Ready images whose stored photos are missing or unreadable, so no renditions could be made.
    pub renditions_unavailable: usize,
    pub errors: Vec<String>,
}

/// One reconciler run; `stop_at` bounds the time spent on expired jobs.
pub async fn run(worker: &Worker, limits: &ReconcileLimits, stop_at: Instant) -> ReconcileReport {
    // Each step is boxed: in debug builds the worker's job future is large, and the steps' futures
    // nested in one would overflow a 2 MB thread stack (a test's, or a small runtime thread's).
    let mut report = ReconcileReport::default();
    if let Err(err) = Box::pin(resend(worker, limits, &mut report)).await {
        report.errors.push(format!("resend: {err:#}"));
    }
    if let Err(err) = Box::pin(expire(worker, limits, stop_at, &mut report)).await {
        report.errors.push(format!("expire: {err:#}"));
    }
    if let Err(err) = Box::pin(settle_deleted(worker, limits, stop_at, &mut report)).await {
        report.errors.push(format!("settle deleted: {err:#}"));
    }
    if let Err(err) = Box::pin(purge(worker, limits, &mut report)).await {
        report.errors.push(format!("purge: {err:#}"));
    }
    if let Err(err) = Box::pin(cancel_orphans(worker, limits, &mut report)).await {
        report.errors.push(format!("orphans: {err:#}"));
    }
    if let Err(err) = Box::pin(backfill_renditions(worker, limits, stop_at, &mut report)).await {
        report.errors.push(format!("renditions: {err:#}"));
    }
    if report.errors.is_empty() {
        tracing::info!(?report, "reconciler run done");
    } else {
        tracing::error!(?report, "reconciler run had errors");
    }
    report
}

async fn resend(worker: &Worker, limits: &ReconcileLimits, report: &mut ReconcileReport) -> anyhow::Result<()> {
    // The rows stay locked while SQS is called, so a second reconciler skips them.
    let mut tx = worker.db.begin().await?;
    let messages: Vec<JobMessage> =
        jobs::lock_resendable(&mut tx, limits.unsent_grace, limits.resend_after, limits.max_resends)
            .await?
            .into_iter()
            .map(JobMessage::from)
            .collect();
    if messages.is_empty() {
        return Ok(());
    }
    let accepted = worker.queue.send(&messages).await;
    jobs::mark_enqueued_in(&mut tx, &accepted).await?;
    tx.commit().await?;
    report.resent += accepted.len();
    report.resend_refused += messages.len() - accepted.len();
    for job in &accepted {
        tracing::info!(job_id = %job, "job message re-sent");
    }
    Ok(())
}

async fn expire(
    worker: &Worker,
    limits: &ReconcileLimits,
    stop_at: Instant,
    report: &mut ReconcileReport,
) -> anyhow::Result<()> {
    for job in jobs::expired(&worker.db, limits.max_expired).await? {
        let message = JobMessage::from(job);
        if Instant::now() + worker.config.safety_margin >= stop_at {
            break;
        }
        // The worker's claim is the lock: of two reconcilers, one gets the job, the other skips it.
        let outcome = Box::pin(worker.run_job(&message, stop_at)).await?;
        tracing::info!(job_id = %message.job_id, ?outcome, "expired job handled");
        match outcome {
            JobOutcome::Staged => report.expired_staged += 1,
            JobOutcome::Failed { .. } => report.expired_failed += 1,
            _ => report.expired_other += 1,
        }
    }
    Ok(())
}

/// Predictions older than this are finished at Replicate anyway (their own 30-minute timeout, and
/// every create carries the job's deadline as `Cancel-After`).
const ORPHAN_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(70);

/// Cancels running predictions whose input names a job of ours that is finished, or that runs
/// another prediction. A job this database does not know is left alone: another environment may
/// share the Replicate account, and `Cancel-After` bounds such a prediction anyway.
async fn cancel_orphans(worker: &Worker, limits: &ReconcileLimits, report: &mut ReconcileReport) -> anyhow::Result<()> {
    let Provider::Replicate(replicate) = &worker.provider else {
        return Ok(());
    };
    let listing = replicate
        .list_predictions_since(chrono::Utc::now() - ORPHAN_WINDOW, limits.max_orphan_pages)
        .await?;
    let running: Vec<(Prediction, JobInputKey)> = listing
        .predictions
        .into_iter()
        .filter(|p| !p.status.is_terminal())
        .filter_map(|p| {
            let key = p
                .input_strings()
                .into_iter()
                .find_map(|s| JobInputKey::find_in(s).into_iter().next())?;
            Some((p, key))
        })
        .collect();
    if running.is_empty() {
        return Ok(());
    }
    let job_ids: Vec<uuid::Uuid> = running.iter().map(|(_, key)| key.job_id).collect();
    let states = jobs::prediction_states(&worker.db, &job_ids).await?;
    for (prediction, key) in &running {
        let Some(state) = states
            .iter()
            .find(|s| s.job_id == key.job_id && s.user_id == key.user_id)
        else {
            continue;
        };
        let orphan = !state.live
            || state
                .prediction_id
                .as_deref()
                .is_some_and(|recorded| recorded != prediction.id.as_str());
        if !orphan {
            continue;
        }
        match replicate.cancel_prediction(&prediction.id).await {
            Ok(_) => {
                report.orphans_canceled += 1;
                metrics::count(Counter::OrphanPredictionsCanceled, 1);
                tracing::warn!(prediction = %prediction.id, job_id = %key.job_id, "canceled a prediction that belongs to no live job");
            }
            Err(err) => report
                .errors
                .push(format!("canceling orphan prediction {}: {err}", prediction.id)),
        }
    }
    Ok(())
}

/// Jobs of deleted images that no worker holds: a prediction may still be running (and billing)
/// at Replicate for a photo nobody will see. The worker's claim finds the image deleted, cancels
/// a stored prediction and fails the job without a refund; its image can then be purged.
async fn settle_deleted(
    worker: &Worker,
    limits: &ReconcileLimits,
    stop_at: Instant,
    report: &mut ReconcileReport,
) -> anyhow::Result<()> {
    for job in jobs::unfinished_of_deleted_images(&worker.db, limits.max_deleted).await? {
        let message = JobMessage::from(job);
        if Instant::now() + worker.config.safety_margin >= stop_at {
            break;
        }
        let outcome = Box::pin(worker.run_job(&message, stop_at)).await?;
        tracing::info!(job_id = %message.job_id, ?outcome, "job of a deleted image settled");
        if matches!(outcome, JobOutcome::Failed { .. }) {
            report.deleted_settled += 1;
        }
    }
    Ok(())
}

async fn purge(worker: &Worker, limits: &ReconcileLimits, report: &mut ReconcileReport) -> anyhow::Result<()> {
    for id in images::purgeable(&worker.db, limits.max_purges).await? {
        // One transaction per image: the original's lock (shared with creates of the same
        // upload) is held only while this image's objects are deleted.
        let mut tx = worker.db.begin().await?;
        let Some(image) = images::lock_purgeable(&mut tx, id).await? else {
            continue;
        };
        // The disclosed photos of its share links go with it (docs/disclosure.md).
        let disclosed = crate::db::share_links::disclosed_keys_of_image(&mut tx, image.id).await?;
        let renditions = match image.renditions {
            true => crate::staging::renditions::all_keys(image.user_id, image.id),
            false => Vec::new(),
        };
        let mut keys = Vec::with_capacity(2 + disclosed.len() + renditions.len());
        keys.extend(image.staged_key.as_deref());
        keys.extend(disclosed.iter().map(String::as_str));
        keys.extend(renditions.iter().map(String::as_str));
        if !image.original_in_use {
            keys.push(image.original_key.as_str());
        }
        let mut all_gone = true;
        for key in keys {
            match worker.storage.delete(key).await {
                Ok(()) => report.deleted_objects += 1,
                Err(err) => {
                    all_gone = false;
                    report.errors.push(format!("deleting {key}: {err:#}"));
                }
            }
        }
        // An image whose objects could not all be deleted stays pending for the next run.
        if all_gone {
            images::mark_purged(&mut tx, image.id).await?;
            report.purged_images += 1;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Renditions for ready images that have none: the stored original and result are read (bounded)
/// and decoded once each, then the four renditions stored and recorded. Idempotent: the same keys,
/// and `renditions_at` keeps its first value.
async fn backfill_renditions(
    worker: &Worker,
    limits: &ReconcileLimits,
    stop_at: Instant,
    report: &mut ReconcileReport,
) -> anyhow::Result<()> {
    use crate::staging::imaging::{self, ImageLimits};
    use crate::staging::renditions::{self, Photo};

    for image in images::renditions_pending(&worker.db, limits.max_renditions).await? {
        if Instant::now() >= stop_at {
            break;
        }
        let Some(staged_key) = image.staged_key.as_deref() else {
            continue;
        };
        let mut made = Vec::with_capacity(2);
        for (photo, key, limits) in [
            (Photo::Original, image.original_key.as_str(), ImageLimits::ORIGINAL),
            (Photo::Staged, staged_key, ImageLimits::MODEL_OUTPUT),
        ] {
            let Some(bytes) = worker.storage.get_bounded(key, limits.max_bytes).await.ok().flatten() else {
                break;
            };
            match tokio::task::spawn_blocking(move || imaging::renditions_of(&bytes, &limits)).await? {
                Ok(renditions) => made.push((photo, renditions)),
                Err(_) => break,
            }
        }
        if made.len() < 2 {
            tracing::warn!(image_id = %image.id, "a ready image's stored photos are missing or unreadable; no renditions");
            report.renditions_unavailable += 1;
            continue;
        }
        for (photo, renditions) in made {
            renditions::store(&worker.storage, image.user_id, image.id, photo, renditions).await?;
        }
        images::mark_renditions(&worker.db, image.id).await?;
        report.renditions_made += 1;
    }
    Ok(())
}

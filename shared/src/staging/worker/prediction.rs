//! The paid step: at most one Replicate prediction per job. A create is noted before it is sent;
//! after an ambiguous answer the next attempt looks for the prediction that create may have made
//! (by the job's input key in each recent prediction's input) and adopts it instead of paying
//! again; duplicates are canceled. docs/worker.md, "At most one paid prediction per job".

use std::time::{Duration, Instant};

use super::run::{Fault, JOB_INPUT_CACHE_CONTROL, replicate_fault};
use super::{Provider, Worker};
use crate::clients::replicate::{Prediction, PredictionStatus, Replicate};
use crate::clients::storage::JobInputKey;
use crate::db::jobs::{self, ClaimedJob};
use crate::models::{ModelSpec, StagingInput};
use crate::platform::metrics::{self, Counter};
use crate::staging::prompts;
use crate::staging::renditions::Photo;
use crate::staging::vocabulary::Treatment;

/// A lost create is looked for among predictions created since a little before it was sent
/// (Replicate's clock and ours may differ by a few seconds).
const CLOCK_SKEW_ALLOWANCE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// At most this many pages (100 predictions each) are read looking for a lost create. When the
/// window holds more, the worker cannot be sure, so it waits rather than risk paying twice.
const ADOPTION_MAX_PAGES: usize = 20;

impl Worker {
    pub(super) async fn create_prediction(
        &self,
        replicate: &crate::clients::replicate::Replicate,
        spec: &'static ModelSpec,
        job: &ClaimedJob,
        deadline: Instant,
        stop_at: Instant,
    ) -> Result<Prediction, Fault> {
        let treatment = job_treatment(job, spec)?;
        // Checked before the paid call: a pixel flood, a truncated file or HTML never reaches it.
        let (original, format, original_renditions) = self.checked_original(job).await?;
        self.store_renditions(job, Photo::Original, original_renditions).await?;
        let config = self.model_config(spec).await?;
        let prompt = prompts::build_prompt(job.room_type, treatment, job.prompt.as_deref());
        // The model reads a copy of exactly the bytes checked above, under a key only the worker
        // writes (an upload overwritten meanwhile changes nothing), and that key names the job: a
        // prediction whose create answer is lost is recognised by it (adopt_lost_prediction).
        let input_key = JobInputKey {
            user_id: job.user_id,
            job_id: job.job_id,
            format,
        }
        .to_string();
        self.storage
            .put(&input_key, original, format.content_type(), JOB_INPUT_CACHE_CONTROL)
            .await
            .map_err(|err| Fault::Retryable(format!("storing the job's input copy: {err:#}")))?;
        let image_url = self
            .storage
            .presign_download(&input_key, self.config.input_url_ttl, None)
            .await
            .map_err(|err| Fault::Retryable(format!("presigning the job's input: {err:#}")))?
            .url;
        let seed = job.seed.and_then(|s| u32::try_from(s).ok());
        let input = spec
            .build_input(
                &config,
                &StagingInput {
                    image_url: &image_url,
                    prompt: &prompt,
                    seed,
                },
            )
            .map_err(|err| Fault::Retryable(format!("model {}: {err}", spec.id)))?;
        let now = Instant::now();
        let wait = self.config.replicate_wait.min(stop_at.saturating_duration_since(now));
        // Whole seconds, rounded up: Replicate's duration syntax has no fractions.
        let cancel_after =
            Duration::from_secs(deadline.saturating_duration_since(now).as_secs_f64().ceil().max(1.0) as u64);
        // The trace goes down before the request leaves: from here on, any attempt that finds the
        // job without a prediction id looks for this create's prediction before making another.
        if !jobs::mark_create_started(&self.db, job.job_id).await? {
            return Err(Fault::Retryable("the job changed before the create was sent".into()));
        }
        let created = replicate
            .create_prediction(
                spec.id,
                &input,
                Some(wait),
                Some(cancel_after),
                tokio::time::Instant::from_std(stop_at),
            )
            .await;
        let prediction = match created {
            Ok(prediction) => prediction,
            Err(err) if err.is_ambiguous() => {
                metrics::count(Counter::ReplicateAmbiguousCreates, 1);
                return Err(Fault::Ambiguous(format!("creating the prediction: {err}")));
            }
            Err(err) => return Err(replicate_fault("creating the prediction", err)),
        };
        // Before anything else: a crash after this line resumes this prediction, and a crash (or a
        // database fault) before it is covered by the create trace.
        match jobs::record_prediction(&self.db, job.job_id, prediction.id.as_str()).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(Fault::Ambiguous(
                    "the job changed before its prediction was recorded".into(),
                ));
            }
            Err(err) => return Err(Fault::Ambiguous(format!("recording the prediction: {err}"))),
        }
        tracing::info!(prediction = %prediction.id, model = spec.id, status = ?prediction.status, "prediction created");
        Ok(prediction)
    }

    /// Finds the prediction an earlier attempt created but could not record (its answer was lost,
    /// or the instance died first), by the job's input key in each recent prediction's input. The
    /// best one is recorded and returned; any other one of this job still running is canceled.
    /// `None` only when Replicate's whole list since the create proves none exists.
    pub(super) async fn adopt_lost_prediction(
        &self,
        replicate: &Replicate,
        job: &ClaimedJob,
        sent_at: chrono::DateTime<chrono::Utc>,
        stop_at: Instant,
    ) -> Result<Option<Prediction>, Fault> {
        // Give Replicate's list a moment to show a prediction created an instant ago.
        let age = (chrono::Utc::now() - sent_at).to_std().unwrap_or(Duration::ZERO);
        if let Some(wait) = self.config.adoption_settle.checked_sub(age) {
            if Instant::now() + wait >= stop_at {
                return Err(Fault::StillRunning);
            }
            tokio::time::sleep(wait).await;
        }
        let listing = replicate
            .list_predictions_since(sent_at - CLOCK_SKEW_ALLOWANCE, ADOPTION_MAX_PAGES)
            .await
            .map_err(|err| {
                if err.is_account_fault() {
                    replicate_fault("listing predictions", err)
                } else {
                    // Never a reason to fail the job: without the list the worker only cannot create yet.
                    Fault::Retryable(format!("listing predictions to find a lost create: {err}"))
                }
            })?;
        let mut ours: Vec<Prediction> = listing.predictions.into_iter().filter(|p| belongs_to(p, job)).collect();
        if ours.is_empty() {
            if listing.complete {
                tracing::info!("no prediction of the earlier create exists; creating one");
                return Ok(None);
            }
            return Err(Fault::Retryable(
                "too many recent predictions to be sure the earlier create made none; trying again later".into(),
            ));
        }
        // Keep the most useful (succeeded, then running, then the rest), the oldest among equals.
        ours.sort_by_key(|p| (adoption_rank(p.status), p.created_at));
        let keeper = ours.remove(0);
        for extra in ours.iter().filter(|p| !p.status.is_terminal()) {
            match replicate.cancel_prediction(&extra.id).await {
                Ok(_) => metrics::count(Counter::OrphanPredictionsCanceled, 1),
                Err(err) => {
                    tracing::warn!(prediction = %extra.id, error = %err, "canceling a duplicate prediction failed")
                }
            }
        }
        if !jobs::record_prediction(&self.db, job.job_id, keeper.id.as_str()).await? {
            return Err(Fault::Retryable(
                "the job changed while its lost prediction was adopted".into(),
            ));
        }
        tracing::warn!(
            prediction = %keeper.id,
            status = %keeper.status,
            duplicates = ours.len(),
            "adopted the prediction of an earlier create whose answer was lost"
        );
        // A listed prediction may be abridged: read it whole.
        match replicate.get_prediction(&keeper.id).await {
            Ok(prediction) => Ok(Some(prediction)),
            Err(err) => Err(replicate_fault("reading the adopted prediction", err)),
        }
    }

    /// Best effort, after a job failed without knowing whether its last create made a prediction:
    /// every running prediction of the job is canceled (the reconciler's orphan sweep is the
    /// backstop when this cannot run).
    pub(super) async fn cancel_lost_predictions(&self, job: &ClaimedJob) {
        let Provider::Replicate(replicate) = &self.provider else {
            return;
        };
        // The lost create was sent in this invocation, or at the trace an earlier one left.
        let this_invocation = chrono::Utc::now() - chrono::TimeDelta::minutes(20);
        let since = job
            .create_started_at
            .map_or(this_invocation, |sent| sent.min(this_invocation))
            - CLOCK_SKEW_ALLOWANCE;
        match replicate.list_predictions_since(since, ADOPTION_MAX_PAGES).await {
            Ok(listing) => {
                for lost in listing
                    .predictions
                    .iter()
                    .filter(|p| belongs_to(p, job) && !p.status.is_terminal())
                {
                    match replicate.cancel_prediction(&lost.id).await {
                        Ok(_) => {
                            metrics::count(Counter::OrphanPredictionsCanceled, 1);
                            tracing::warn!(prediction = %lost.id, "canceled the prediction of a failed job");
                        }
                        Err(err) => tracing::warn!(prediction = %lost.id, error = %err, "canceling failed"),
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not look for the failed job's predictions"),
        }
    }
}

/// The prediction's input names this job's input key (the same user and job).
fn belongs_to(prediction: &Prediction, job: &ClaimedJob) -> bool {
    prediction.input_strings().into_iter().any(|text| {
        JobInputKey::find_in(text)
            .iter()
            .any(|key| key.job_id == job.job_id && key.user_id == job.user_id)
    })
}

/// Which of several predictions of one job to keep: a finished result first, then a running one.
fn adoption_rank(status: PredictionStatus) -> u8 {
    match status {
        PredictionStatus::Succeeded => 0,
        PredictionStatus::Starting | PredictionStatus::Processing | PredictionStatus::Unknown => 1,
        PredictionStatus::Failed => 2,
        PredictionStatus::Canceled | PredictionStatus::Aborted => 3,
    }
}

/// What the job does, when the model can do it. The model is fixed at the job's first claim; an
/// operator who switched to a model without the operation after the image was accepted fails
/// the job (refunded) rather than send it a prompt it was not chosen for.
pub(super) fn job_treatment(job: &ClaimedJob, spec: &ModelSpec) -> Result<Treatment, Fault> {
    let treatment = job.treatment().ok_or_else(|| {
        Fault::Permanent(
            "This image's operation and style do not fit together. Your image allowance was refunded.".into(),
        )
    })?;
    if !spec.can(treatment.operation()) {
        return Err(Fault::Permanent(format!(
            "The current staging model ({}) cannot {}. Your image allowance was refunded; try again later or \
             choose another operation.",
            spec.display_name,
            treatment.operation().as_str().replace('_', " ")
        )));
    }
    Ok(treatment)
}

//! One job, from claim to a staged photo (or a clear failure): the claim, the checks before any
//! paid call, the model step (the paid create itself and its adoption live in `prediction.rs`),
//! storing the result and the job's end. About 600 lines because each way a job can end is
//! spelled out here, next to the others.

use std::time::{Duration, Instant};

use url::Url;

use super::{Provider, Worker};
use crate::clients::replicate::{Prediction, PredictionId, PredictionStatus, ReplicateError};
use crate::clients::storage::{ImageFormat, JobInputKey, staged_key};
use crate::db::jobs::{self, Claim, ClaimedJob, Refund, StagedResult};
use crate::db::settings;
use crate::models::{self, ModelSpec};
use crate::platform::metrics::{self, Amount, Counter};
use crate::staging::imaging::{self, ImageLimits, ImageProblem, RenditionSize, Renditions};
use crate::staging::queue::JobMessage;
use crate::staging::renditions::{self, Photo};

/// `model_used` of images staged by the offline simulator.
pub const SIMULATOR_MODEL_ID: &str = "realstaging/offline-simulator";

/// Stored results are private to their owner and never change under their key.
const STAGED_CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// A job's input copy is read once by the model, then deleted.
pub(super) const JOB_INPUT_CACHE_CONTROL: &str = "private, no-store";

/// What a user sees on an image held back by an operator fault: never the vendor's text.
pub const DELAYED_NOTE: &str =
    "Staging is delayed. Your photo is queued and will be staged automatically as soon as the service is back.";

/// How a job ended for this delivery of its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The image is ready.
    Staged,
    /// The image is in error (permanent); `refunded` says whether the allowance came back.
    Failed { message: String, refunded: bool },
    /// Nothing to do: already finished, or another worker holds it.
    Skipped(&'static str),
    /// The provider refused the operator's account (credit, token, model access): the job is
    /// queued again without counting the attempt, and the message is acknowledged. The reconciler
    /// sends it again (every 15 minutes) until the operator fixes the account or the job expires.
    WaitingForOperator { code: &'static str },
    /// Not finished in this invocation; the message should come back after `after`.
    RetryLater { after: Duration, reason: String },
    /// The message names no job, or a job of another image (its user was deleted, or the message
    /// is forged): acknowledged without work, like a finished job.
    Unknown,
}

/// A fault inside a job, before it is turned into an outcome.
pub(super) enum Fault {
    /// Worth another try (throttling, 5xx, network, storage hiccups, operator configuration).
    Retryable(String),
    /// Will never work: fail the image with this user-facing message, refunding the allowance.
    Permanent(String),
    /// The prediction is still running and this invocation is out of time.
    StillRunning,
    /// A create may or may not have made a prediction (5xx, dropped connection, unreadable body,
    /// the id not stored): the next attempt looks for it before creating again.
    Ambiguous(String),
    /// The operator must act (provider account, token, model access); the user is not at fault
    /// and is not refunded or failed.
    Operator { code: &'static str, detail: String },
    /// The owner deleted the image while the job ran: fail it without a refund (a running
    /// prediction has been asked to cancel).
    ImageDeleted,
}

impl From<sqlx::Error> for Fault {
    fn from(err: sqlx::Error) -> Self {
        Fault::Retryable(format!("database: {err}"))
    }
}

pub(super) fn replicate_fault(context: &str, err: ReplicateError) -> Fault {
    if err.is_account_fault() {
        Fault::Operator {
            code: "replicate_account",
            detail: format!("{context}: {err}"),
        }
    } else if err.is_retryable() {
        Fault::Retryable(format!("{context}: {err}"))
    } else {
        tracing::warn!(error = %err, "{context} refused");
        Fault::Permanent(format!(
            "The staging model refused this photo ({err}). Your image allowance was refunded; try another photo or \
             a different prompt."
        ))
    }
}

fn unreadable_photo(problem: &ImageProblem) -> Fault {
    Fault::Permanent(format!(
        "The uploaded photo cannot be staged: {problem}. Upload a JPEG, PNG or WebP photo and try again; your image \
         allowance was refunded."
    ))
}

/// What a deleted image's job says (the owner no longer sees it; operators do).
const IMAGE_DELETED: &str = "The image was deleted before it was staged.";

/// Shown when the model's output URL is outside the download allowlist; the URL and the reason
/// go to the log only.
const OUTPUT_REFUSED: &str = "The staging model returned its image from a location this service does not download from, \
     so it was not saved. Your image allowance was refunded; please try again.";

const TOO_SLOW: &str = "Staging took too long and was stopped. Your image allowance was refunded; please try again.";

impl Worker {
    /// Runs one job until it is staged, failed, or this invocation must stop (`stop_at`).
    pub async fn run_job(&self, message: &JobMessage, stop_at: Instant) -> Result<JobOutcome, sqlx::Error> {
        let active_model = self.active_model().await?;
        // The lease covers this invocation plus a margin; a worker that dies lets it run out.
        let lease =
            stop_at.saturating_duration_since(Instant::now()) + self.config.safety_margin + Duration::from_secs(30);
        let job = match jobs::claim(&self.db, message.job(), lease, self.config.job_deadline, active_model).await? {
            Claim::Claimed(job) => *job,
            Claim::Finished => return Ok(JobOutcome::Skipped("already finished")),
            Claim::Held => return Ok(JobOutcome::Skipped("another worker holds the job")),
            Claim::Missing => return Ok(JobOutcome::Unknown),
        };
        tracing::info!(attempt = job.attempts, model = ?job.model_id, prediction = ?job.prediction_id, "job claimed");

        if job.image_deleted {
            // The owner deleted the image: nothing to stage, a prediction already paid for is
            // stopped, and deleting never returns allowance.
            self.cancel_stored_prediction(&job).await;
            return self.fail_deleted(&job).await;
        }
        if job.attempts > job.max_attempts {
            let message =
                "Staging failed repeatedly and was stopped. Your image allowance was refunded; please try again.";
            return self.fail(&job, message).await;
        }

        let started = Instant::now();
        let fault = match Box::pin(self.stage(&job, stop_at)).await {
            Ok(()) => {
                tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "image staged");
                self.discard_job_input(&job).await;
                return Ok(JobOutcome::Staged);
            }
            Err(fault) => fault,
        };
        match fault {
            Fault::Operator { code, detail } => {
                // Loud and counted: an alarm watches the metric, and the operator hears it before
                // customers do. The job waits; the user sees only a generic note.
                tracing::error!(error_code = code, detail = %detail, "the provider refused the operator's account; the job waits for the operator");
                metrics::count(Counter::ReplicateAccountFaults, 1);
                jobs::hold_for_operator(&self.db, job.job_id, &detail, DELAYED_NOTE).await?;
                Ok(JobOutcome::WaitingForOperator { code })
            }
            Fault::Permanent(message) => {
                let outcome = self.fail(&job, &message).await;
                self.discard_job_input(&job).await;
                outcome
            }
            Fault::Ambiguous(reason) if job.attempts >= job.max_attempts => {
                tracing::warn!(%reason, "last attempt ended with an ambiguous create");
                let message =
                    "Staging failed repeatedly and was stopped. Your image allowance was refunded; please try again.";
                let outcome = self.fail(&job, message).await;
                // The failed job may own a prediction after all: it must not run on unpaid-for.
                self.cancel_lost_predictions(&job).await;
                self.discard_job_input(&job).await;
                outcome
            }
            Fault::Ambiguous(reason) => {
                tracing::warn!(%reason, attempt = job.attempts, "the create's outcome is unknown; the next attempt looks for it");
                jobs::release(&self.db, job.job_id, &reason).await?;
                Ok(JobOutcome::RetryLater {
                    after: self.config.still_running_visibility,
                    reason,
                })
            }
            Fault::ImageDeleted => {
                let outcome = self.fail_deleted(&job).await;
                self.discard_job_input(&job).await;
                outcome
            }
            Fault::StillRunning => {
                jobs::release(&self.db, job.job_id, "prediction still running").await?;
                Ok(JobOutcome::RetryLater {
                    after: self.config.still_running_visibility,
                    reason: "prediction still running".into(),
                })
            }
            Fault::Retryable(reason) if job.attempts >= job.max_attempts => {
                tracing::warn!(%reason, "last attempt failed");
                let message =
                    "Staging failed repeatedly and was stopped. Your image allowance was refunded; please try again.";
                self.fail(&job, message).await
            }
            Fault::Retryable(reason) => {
                tracing::warn!(%reason, attempt = job.attempts, "retryable fault; the message comes back later");
                jobs::release(&self.db, job.job_id, &reason).await?;
                Ok(JobOutcome::RetryLater {
                    after: self.config.retry_visibility * job.attempts.max(1) as u32,
                    reason,
                })
            }
        }
    }

    async fn fail(&self, job: &ClaimedJob, message: &str) -> Result<JobOutcome, sqlx::Error> {
        // `fail_reporting` refunds unless the image was deleted meanwhile (decided in SQL).
        let failed = jobs::fail_reporting(&self.db, job.job_id, message, Refund::GiveBack).await?;
        if failed.is_some() {
            metrics::count(Counter::JobsFailed, 1);
        }
        let refunded = failed.is_some_and(|failed| failed.refunded);
        // `user_message`, not `message`: the JSON log line has one `message`, the text below.
        if refunded {
            tracing::warn!(user_message = %message, "image failed; allowance refunded");
        } else {
            tracing::warn!(user_message = %message, "image failed; no refund (deleted by its owner, or finished elsewhere)");
        }
        Ok(JobOutcome::Failed {
            message: message.to_string(),
            refunded,
        })
    }

    async fn fail_deleted(&self, job: &ClaimedJob) -> Result<JobOutcome, sqlx::Error> {
        jobs::fail(&self.db, job.job_id, IMAGE_DELETED, Refund::Keep).await?;
        tracing::info!("image deleted by its owner; job failed without a refund");
        Ok(JobOutcome::Failed {
            message: "image deleted".into(),
            refunded: false,
        })
    }

    /// Best effort: asks Replicate to cancel the job's stored prediction (its image was deleted).
    /// Canceling a finished prediction is harmless; a failure is logged and left to Replicate's
    /// own `Cancel-After` deadline.
    async fn cancel_stored_prediction(&self, job: &ClaimedJob) {
        let (Provider::Replicate(replicate), Some(stored)) = (&self.provider, job.prediction_id.as_deref()) else {
            return;
        };
        let Ok(id) = PredictionId::parse(stored) else {
            return;
        };
        self.cancel_for_deleted_image(replicate, &id).await;
    }

    async fn cancel_for_deleted_image(&self, replicate: &crate::clients::replicate::Replicate, id: &PredictionId) {
        match replicate.cancel_prediction(id).await {
            Ok(prediction) => {
                tracing::info!(prediction = %id, status = %prediction.status, "prediction of a deleted image canceled")
            }
            Err(err) => {
                tracing::warn!(prediction = %id, error = %err, "canceling the prediction of a deleted image failed")
            }
        }
    }

    /// Between polls: if the owner deleted the image, cancel its prediction and stop.
    async fn stop_if_deleted(
        &self,
        replicate: &crate::clients::replicate::Replicate,
        job: &ClaimedJob,
        prediction: &PredictionId,
    ) -> Result<(), Fault> {
        if jobs::image_deleted(&self.db, job.job_id).await? {
            self.cancel_for_deleted_image(replicate, prediction).await;
            return Err(Fault::ImageDeleted);
        }
        Ok(())
    }

    /// The active model id, if it names a registered model (anything else is logged loudly and
    /// treated as unset: the job then fails retryably until an operator fixes the setting).
    async fn active_model(&self) -> Result<Option<&'static str>, sqlx::Error> {
        let stored = settings::active_model(&self.db).await?;
        let id = stored.as_deref().unwrap_or(models::DEFAULT_MODEL_ID);
        match models::find(id) {
            Some(spec) => Ok(Some(spec.id)),
            None => {
                tracing::error!(active_model = id, "the active_model setting names no registered model");
                Ok(None)
            }
        }
    }

    async fn stage(&self, job: &ClaimedJob, stop_at: Instant) -> Result<(), Fault> {
        match &self.provider {
            Provider::Simulator => self.stage_offline(job).await,
            Provider::Replicate(_) => self.stage_with_replicate(job, stop_at).await,
        }
    }

    /// Loads and checks the original before anything is paid for; returns its bytes, its real
    /// format and its renditions (from the same decode).
    pub(super) async fn checked_original(&self, job: &ClaimedJob) -> Result<(Vec<u8>, ImageFormat, Renditions), Fault> {
        let limits = ImageLimits::ORIGINAL;
        let bytes = match self.storage.get_bounded(&job.original_key, limits.max_bytes).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Err(Fault::Permanent(
                    "The uploaded photo is missing from storage. Upload it again and retry; your image allowance was \
                     refunded."
                        .into(),
                ));
            }
            Err(err) if err.downcast_ref::<crate::clients::storage::ObjectTooLarge>().is_some() => {
                return Err(Fault::Permanent(format!(
                    "The uploaded photo is larger than {} MiB. Upload a smaller photo and try again; your image \
                     allowance was refunded.",
                    limits.max_bytes / (1024 * 1024)
                )));
            }
            Err(err) => return Err(Fault::Retryable(format!("reading the original: {err:#}"))),
        };
        // One decode serves the check and the original's renditions.
        let checked = blocking(move || {
            imaging::inspect_original_with_renditions(&bytes, &limits)
                .map(|(checked, renditions)| (bytes, checked.format, renditions))
        })
        .await?;
        checked.map_err(|problem| unreadable_photo(&problem))
    }

    /// Stores one photo's renditions; a storage hiccup is worth another try of the job.
    pub(super) async fn store_renditions(
        &self,
        job: &ClaimedJob,
        photo: Photo,
        renditions: Renditions,
    ) -> Result<(), Fault> {
        renditions::store(&self.storage, job.user_id, job.image_id, photo, renditions)
            .await
            .map_err(|err| Fault::Retryable(format!("storing the {} renditions: {err:#}", photo.as_str())))
    }

    async fn stage_offline(&self, job: &ClaimedJob) -> Result<(), Fault> {
        let started = Instant::now();
        let (original, _, original_renditions) = self.checked_original(job).await?;
        self.store_renditions(job, Photo::Original, original_renditions).await?;
        let room = job.room_type;
        let treatment = job.treatment().ok_or_else(|| {
            Fault::Permanent(
                "This image's operation and style do not fit together. Your image allowance was refunded.".into(),
            )
        })?;
        let seed = job.seed;
        let (staged, staged_renditions) = blocking(move || {
            imaging::simulated_staging_with_renditions(&original, room, treatment, seed, &ImageLimits::ORIGINAL)
        })
        .await?
        .map_err(|problem| unreadable_photo(&problem))?;
        self.store_renditions(job, Photo::Staged, staged_renditions).await?;
        let elapsed_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        self.store_and_complete(job, staged.bytes, SIMULATOR_MODEL_ID, None, Some(elapsed_ms), 0)
            .await
    }

    async fn stage_with_replicate(&self, job: &ClaimedJob, stop_at: Instant) -> Result<(), Fault> {
        let Provider::Replicate(replicate) = &self.provider else {
            return Err(Fault::Retryable("no Replicate client".into()));
        };
        let spec = job.model_id.as_deref().and_then(models::find).ok_or_else(|| {
            Fault::Retryable(format!("no usable model for the job (active_model {:?})", job.model_id))
        })?;
        let deadline = deadline_instant(job);

        let mut prediction = match job.prediction_id.as_deref() {
            Some(stored) => {
                // A stored prediction is resumed, never created again.
                let id = PredictionId::parse(stored)
                    .map_err(|_| Fault::Permanent(format!("Staging failed (bad prediction id {stored}).")))?;
                tracing::info!(prediction = %id, "resuming the stored prediction");
                match replicate.get_prediction(&id).await {
                    Ok(prediction) => prediction,
                    Err(ReplicateError::NotFound) => {
                        return Err(Fault::Permanent(
                            "The staging model lost track of this photo. Your image allowance was refunded; please \
                             try again."
                                .into(),
                        ));
                    }
                    Err(err) => return Err(replicate_fault("reading the prediction", err)),
                }
            }
            None => {
                // An earlier attempt sent a create whose answer was lost: that prediction is found
                // and adopted, and only when Replicate's list proves there is none is another made.
                let adopted = match job.create_started_at {
                    Some(sent_at) => Box::pin(self.adopt_lost_prediction(replicate, job, sent_at, stop_at)).await?,
                    None => None,
                };
                match adopted {
                    Some(prediction) => prediction,
                    None if Instant::now() >= deadline => return Err(Fault::Permanent(TOO_SLOW.into())),
                    None => Box::pin(self.create_prediction(replicate, spec, job, deadline, stop_at)).await?,
                }
            }
        };

        let mut delay = self.config.poll_initial;
        while !prediction.status.is_terminal() {
            let now = Instant::now();
            if now >= deadline {
                if let Err(err) = replicate.cancel_prediction(&prediction.id).await {
                    tracing::warn!(error = %err, "canceling the overdue prediction failed");
                }
                return Err(Fault::Permanent(TOO_SLOW.into()));
            }
            if now + delay >= stop_at {
                return Err(Fault::StillRunning);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.config.poll_max);
            self.stop_if_deleted(replicate, job, &prediction.id).await?;
            match replicate.get_prediction(&prediction.id).await {
                Ok(next) => prediction = next,
                Err(err) if err.is_retryable() => tracing::warn!(error = %err, "polling failed; polling on"),
                Err(ReplicateError::NotFound) => {
                    return Err(Fault::Permanent(
                        "The staging model lost track of this photo. Your image allowance was refunded; please try \
                         again."
                            .into(),
                    ));
                }
                Err(err) => return Err(replicate_fault("polling the prediction", err)),
            }
        }
        // Boxed, like the create and the adoption: the job's future stays small enough for the
        // stack of whoever awaits it (the batch's tasks, the reconciler).
        Box::pin(self.finish_prediction(replicate, spec, job, prediction, stop_at)).await
    }

    /// The job's input copy has served its purpose once the job is over (best effort: a leftover
    /// costs a little storage, nothing else). Its format is not known here, so every one goes.
    async fn discard_job_input(&self, job: &ClaimedJob) {
        if matches!(self.provider, Provider::Simulator) {
            return;
        }
        let deletes = JobInputKey::all_formats(job.user_id, job.job_id).map(|key| {
            let storage = self.storage.clone();
            async move { storage.delete(&key.to_string()).await }
        });
        for result in join3(deletes).await {
            if let Err(err) = result {
                tracing::warn!(error = %format!("{err:#}"), "could not delete a job's input copy");
            }
        }
    }

    /// The model's stored configuration (plus its secrets), checked against the registry. A
    /// missing row means the registry defaults; an invalid one is an operator error: retryable,
    /// logged loudly, never silently replaced by defaults.
    pub(super) async fn model_config(&self, spec: &'static ModelSpec) -> Result<models::ModelConfig, Fault> {
        let mut stored = match settings::model_config(&self.db, spec.slug).await? {
            Some(serde_json::Value::Object(map)) => map,
            Some(_) => return Err(Fault::Retryable(format!("settings for {} are not an object", spec.id))),
            None => serde_json::Map::new(),
        };
        for (field, key, sealed) in settings::sealed_model_secrets(&self.db, spec.slug).await? {
            // An operator error (the key was rotated away, or the row was edited by hand): retry,
            // loudly, so fixing the configuration rescues the job instead of failing it.
            let secret = self.cipher.open(&key, &sealed).map_err(|err| {
                tracing::error!(model = spec.id, setting = %key, error = %err, "a model secret does not open");
                Fault::Retryable(format!("the secret {field} of {} does not open: {err}", spec.id))
            })?;
            stored.insert(field, serde_json::Value::String(secret.expose().to_string()));
        }
        spec.validate_config(&serde_json::Value::Object(stored))
            .map_err(|errors| {
                let fields: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
                tracing::error!(model = spec.id, problems = ?fields, "stored model configuration is invalid");
                Fault::Retryable(format!("invalid configuration for {}: {}", spec.id, fields.join("; ")))
            })
    }

    async fn finish_prediction(
        &self,
        replicate: &crate::clients::replicate::Replicate,
        spec: &'static ModelSpec,
        job: &ClaimedJob,
        prediction: Prediction,
        stop_at: Instant,
    ) -> Result<(), Fault> {
        match prediction.status {
            PredictionStatus::Succeeded => {}
            PredictionStatus::Failed => {
                let reason = prediction.error_message().unwrap_or_else(|| "no reason given".into());
                return Err(Fault::Permanent(format!(
                    "The staging model could not stage this photo ({reason}). Your image allowance was refunded; try \
                     another photo or prompt."
                )));
            }
            _ => return Err(Fault::Permanent(TOO_SLOW.into())),
        }
        let url: Url = prediction.output.as_ref().and_then(models::output_url).ok_or_else(|| {
            Fault::Permanent(
                "The staging model returned no image. Your image allowance was refunded; please try again.".into(),
            )
        })?;
        // A result nobody will see is neither downloaded nor stored (the purge may already have
        // run for the image).
        if jobs::image_deleted(&self.db, job.job_id).await? {
            return Err(Fault::ImageDeleted);
        }
        // Bounded by what is left of this invocation, not only by the fixed timeout: a slow
        // output host must not run the Lambda into its own timeout with the job still leased.
        let budget = stop_at
            .saturating_duration_since(Instant::now())
            .saturating_sub(self.config.safety_margin)
            .min(self.config.download_timeout);
        if budget.is_zero() {
            return Err(Fault::Retryable(
                "no time left in this invocation to download the output".into(),
            ));
        }
        let limits = ImageLimits::MODEL_OUTPUT;
        let bytes = replicate
            .download(&url, limits.max_bytes, budget)
            .await
            .map_err(|err| match err {
                ReplicateError::OutputRefused(_) | ReplicateError::UnsupportedUrl { .. } => {
                    // Either Replicate moved its delivery hosts (extend REPLICATE_OUTPUT_HOSTS) or
                    // something is steering the worker elsewhere: an operator must look.
                    tracing::error!(
                        error_code = "output_url_refused",
                        scheme = url.scheme(),
                        host = url.host_str().unwrap_or(""),
                        error = %err,
                        "the model's output URL is outside the download allowlist; not downloaded"
                    );
                    Fault::Permanent(OUTPUT_REFUSED.into())
                }
                ReplicateError::TooLarge { .. } => Fault::Permanent(
                    "The staging model returned an image that is too large. Your image allowance was refunded.".into(),
                ),
                ReplicateError::NotFound => Fault::Permanent(
                    "The staged image expired at the model provider before it could be saved. Your image allowance \
                     was refunded; please try again."
                        .into(),
                ),
                other => Fault::Retryable(format!("downloading the output: {other}")),
            })?;
        let quality = self.config.jpeg_quality;
        let (jpeg, staged_renditions) = blocking(move || imaging::reencode_with_renditions(&bytes, &limits, quality))
            .await?
            .map_err(|problem| {
                Fault::Permanent(format!(
                    "The staging model returned an unusable image ({problem}). Your image allowance was refunded; \
                     please try again."
                ))
            })?;
        self.store_renditions(job, Photo::Staged, staged_renditions).await?;
        let processing_ms = prediction
            .metrics
            .as_ref()
            .and_then(|m| m.predict_time)
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(|t| (t * 1000.0).round().min(i32::MAX as f64) as i32);
        self.store_and_complete(
            job,
            jpeg.bytes,
            spec.id,
            Some(prediction.id.as_str()),
            processing_ms,
            i64::from(spec.price(job.operation).unwrap_or_default().0),
        )
        .await
    }

    async fn store_and_complete(
        &self,
        job: &ClaimedJob,
        jpeg: Vec<u8>,
        model_used: &str,
        prediction_id: Option<&str>,
        processing_time_ms: Option<i32>,
        cost_e4: i64,
    ) -> Result<(), Fault> {
        let key = staged_key(job.user_id, job.image_id);
        // The original's renditions were stored when its photo was checked, which may have been an
        // earlier attempt (or before renditions existed: then the reconciler makes them).
        let original_preview = renditions::key(job.user_id, job.image_id, Photo::Original, RenditionSize::Preview);
        let renditions = matches!(self.storage.head(&original_preview).await, Ok(Some(_)));
        // Same key on every attempt: storing the result twice is harmless.
        self.storage
            .put(&key, jpeg, "image/jpeg", STAGED_CACHE_CONTROL)
            .await
            .map_err(|err| Fault::Retryable(format!("storing the result: {err:#}")))?;
        let completed = jobs::complete(
            &self.db,
            job.job_id,
            &StagedResult {
                staged_key: &key,
                content_type: "image/jpeg",
                model_used,
                prediction_id,
                processing_time_ms,
                cost_e4,
                renditions,
            },
        )
        .await?;
        if completed {
            // Once per job: only the call that completed it reports it (a duplicate delivery
            // finds the job finished and reports nothing).
            metrics::count(Counter::JobsStaged, 1);
            metrics::amount(Amount::ModelSpendUsd, cost_e4 as f64 / 10_000.0);
        } else {
            tracing::warn!("job was finished elsewhere while this worker staged it");
        }
        Ok(())
    }
}

/// Awaits three futures at once (no `futures` dependency for one join).
async fn join3<F: std::future::Future>(futures: [F; 3]) -> [F::Output; 3] {
    let [a, b, c] = futures;
    let (a, b, c) = tokio::join!(a, b, c);
    [a, b, c]
}

/// The job's deadline on this machine's monotonic clock.
fn deadline_instant(job: &ClaimedJob) -> Instant {
    let remaining = (job.deadline_at - chrono::Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    Instant::now() + remaining
}

/// At most this many decodes/encodes at once per instance: a batch of 5 messages with 40 MP photos
/// would otherwise need ~1 GB of pixel buffers at the same moment.
static IMAGE_WORK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// CPU-heavy image work off the async thread. A panic inside becomes a retryable fault.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Fault> {
    let _permit = IMAGE_WORK
        .acquire()
        .await
        .map_err(|err| Fault::Retryable(format!("image work: {err}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Fault::Retryable(format!("image work crashed: {err}")))
}

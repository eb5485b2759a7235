//! The staging worker: one queued job becomes one staged photo, exactly once.
//!
//! SQS delivers at least once, Lambda instances die mid-job, Replicate throttles and fails. The
//! design that makes this safe (docs/worker.md):
//! - a job is *claimed* with a guarded update and a lease sized from the Lambda's remaining time;
//!   a duplicate or late delivery finds it finished or held and does nothing;
//! - the original is checked (format, dimensions, full decode with limits) before any paid call;
//! - the prediction id is stored the moment Replicate answers, and every later attempt resumes
//!   that prediction instead of creating another; a create whose answer was lost is found again
//!   in Replicate's list (by the job's input key in its input) before another may be created;
//! - a provider account fault (401/402/403, model gone) is the operator's: the job waits queued,
//!   loudly logged and counted, without failing or refunding;
//! - faults are either retryable (the job is released and its message comes back soon) or
//!   permanent (the image turns `error` with a message the user can act on, and its allowance is
//!   refunded once, in the same transaction);
//! - every job has an explicit deadline; past it the prediction is canceled and the job fails.

mod batch;
mod prediction;
mod run;

use std::time::Duration;

use sqlx::PgPool;

use crate::clients::replicate::{OutputPolicy, Replicate, ReplicateConfig};
use crate::clients::storage::{Storage, StorageConfig};
use crate::platform::config::{AppEnv, ConfigError, DatabaseConfig, Env};
use crate::platform::state::outbound_http_client;
use crate::staging::queue::{JobQueue, QueueConfig};

pub use batch::{BatchReport, MessageOutcome};
pub use run::{DELAYED_NOTE, JobOutcome, SIMULATOR_MODEL_ID};

/// Who produces the staged photo.
#[derive(Clone)]
pub enum Provider {
    /// The real models on Replicate.
    Replicate(Replicate),
    /// Offline stand-in for local development (no `REPLICATE_API_TOKEN` outside production and
    /// staging): the original, visibly labelled "SIMULATED", recorded as model
    /// [`SIMULATOR_MODEL_ID`] at no cost.
    Simulator,
}

/// Timing knobs. Production values come from [`WorkerConfig::default`] (and
/// `JOB_DEADLINE_SECONDS`); tests shorten the waits.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a job may take from its first claim (also Replicate's `Cancel-After`).
    pub job_deadline: Duration,
    /// `Prefer: wait=N` on create: most predictions finish inside it, saving the polls.
    pub replicate_wait: Duration,
    /// Polling backoff: first delay, doubling up to the max.
    pub poll_initial: Duration,
    pub poll_max: Duration,
    /// Stop working on a message this long before the invocation's deadline, to record the
    /// outcome and answer Lambda in time.
    pub safety_margin: Duration,
    /// How soon a message whose prediction is still running comes back.
    pub still_running_visibility: Duration,
    /// How soon a message that hit a retryable fault comes back (times the attempt number).
    pub retry_visibility: Duration,
    /// Lifetime of the presigned GET Replicate fetches the original through.
    pub input_url_ttl: Duration,
    /// Longest output download; shorter when less of the invocation is left (its remaining
    /// time minus `safety_margin`).
    pub download_timeout: Duration,
    /// JPEG quality of the stored result.
    pub jpeg_quality: u8,
    /// How long after a lost create the worker waits before trusting Replicate's list to show
    /// the prediction it may have made.
    pub adoption_settle: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            job_deadline: Duration::from_secs(900),
            replicate_wait: Duration::from_secs(30),
            poll_initial: Duration::from_secs(1),
            poll_max: Duration::from_secs(5),
            safety_margin: Duration::from_secs(15),
            still_running_visibility: Duration::from_secs(10),
            retry_visibility: Duration::from_secs(30),
            input_url_ttl: Duration::from_secs(900),
            download_timeout: Duration::from_secs(60),
            jpeg_quality: 90,
            adoption_settle: Duration::from_secs(5),
        }
    }
}

/// Everything the worker (and the reconciler, which reuses it) needs, built once per cold start.
#[derive(Clone)]
pub struct Worker {
    pub db: PgPool,
    pub storage: Storage,
    pub queue: JobQueue,
    pub provider: Provider,
    pub config: WorkerConfig,
    /// Opens the sealed model secrets (e.g. an OpenAI key) a job's input needs.
    pub cipher: std::sync::Arc<crate::admin::secrets::SettingsCipher>,
}

impl Worker {
    /// `APP_ENV`, `DATABASE_URL`, `S3_*`, `SQS_QUEUE_URL`, `REPLICATE_API_TOKEN` (required in
    /// production and staging; without it elsewhere the offline simulator stages),
    /// `REPLICATE_API_BASE` (optional), `REPLICATE_OUTPUT_HOSTS` (optional: the https domains
    /// output is downloaded from, default `replicate.delivery`), `JOB_DEADLINE_SECONDS` (default 900, 60..=3600),
    /// `SETTINGS_ENCRYPTION_KEY` (required) and `SETTINGS_ENCRYPTION_KEY_PREVIOUS` (optional).
    pub async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let app_env = AppEnv::from_env(env)?;
        let cipher = std::sync::Arc::new(crate::admin::secrets::SettingsCipher::from_env(env)?);
        let db = crate::db::pool(&DatabaseConfig::from_env(env)?)?;
        let storage = Storage::from_config(&StorageConfig::from_env(env)?).await;
        let queue = JobQueue::new(&QueueConfig::from_env(env)?).await;
        let provider = match ReplicateConfig::from_env(env)? {
            Some(config) => {
                let mut output = OutputPolicy::from_env(env)?;
                // A fake Replicate in local development serves its output files itself.
                if !app_env.is_deployed() && env.optional("REPLICATE_API_BASE").is_some() {
                    output = output.with_local_origin(&config.base_url);
                }
                Provider::Replicate(Replicate::new(config, outbound_http_client()?).with_output_policy(output))
            }
            None if app_env.is_deployed() => return Err(ConfigError::Missing("REPLICATE_API_TOKEN")),
            None => {
                tracing::warn!("REPLICATE_API_TOKEN is not set: staging with the offline simulator");
                Provider::Simulator
            }
        };
        let deadline_secs: u64 = env.parsed("JOB_DEADLINE_SECONDS", 900)?;
        if !(60..=3600).contains(&deadline_secs) {
            return Err(ConfigError::invalid(
                "JOB_DEADLINE_SECONDS",
                "must be between 60 and 3600",
            ));
        }
        let config = WorkerConfig {
            job_deadline: Duration::from_secs(deadline_secs),
            ..WorkerConfig::default()
        };
        Ok(Worker {
            db,
            storage,
            queue,
            provider,
            config,
            cipher,
        })
    }
}

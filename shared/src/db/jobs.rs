//! Staging jobs: the worker's state machine (`queued → processing → completed | failed`).
//!
//! Every transition is a guarded `UPDATE … WHERE status IN (…)`, so a duplicate SQS delivery, a
//! second reconciler or a late retry finds nothing to change. While a worker runs a job it holds
//! a lease (`lease_until`); nothing else touches a leased job, and a worker that dies simply lets
//! its lease run out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::staging::vocabulary::{Operation, RoomType, Style, Treatment};

/// Names one job (what its queue message carries, see `staging::queue::JobMessage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRef {
    pub job_id: Uuid,
    pub image_id: Uuid,
}

/// A job's status, as stored in `jobs.status` (text with a CHECK constraint):
/// `queued → processing → completed | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Processing,
    Completed,
    Failed,
}

/// A job this worker now holds, with what it needs from its image.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub job_id: Uuid,
    pub image_id: Uuid,
    pub user_id: Uuid,
    /// Counting this claim.
    pub attempts: i32,
    pub max_attempts: i32,
    pub prediction_id: Option<String>,
    /// Set when an earlier attempt sent a create whose prediction id was never stored: that
    /// prediction may exist and must be found before another is paid for.
    pub create_started_at: Option<DateTime<Utc>>,
    pub model_id: Option<String>,
    pub deadline_at: DateTime<Utc>,
    pub original_key: String,
    pub room_type: RoomType,
    pub operation: Operation,
    pub style: Option<Style>,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
    pub image_deleted: bool,
}

impl ClaimedJob {
    /// The job's operation and style, as the `images_style_fits_operation` CHECK guarantees they
    /// pair; `None` only for a row that constraint would have refused.
    pub fn treatment(&self) -> Option<Treatment> {
        Treatment::new(self.operation, self.style).ok()
    }
}

/// What a claim attempt found.
#[derive(Debug)]
pub enum Claim {
    Claimed(Box<ClaimedJob>),
    /// Completed or failed already: a duplicate or late delivery.
    Finished,
    /// Another worker holds it right now.
    Held,
    /// No such job for that image (a forged or stale message).
    Missing,
}

/// The latest moment a job may still be started: [`UNCLAIMED_JOB_MAX_AGE`] after its creation, or
/// [`OPERATOR_FAULT_MAX_AGE`] once an operator fault held it back (the operator gets a day to fix
/// the account before users' jobs fail). One SQL expression, used by every query that needs it.
macro_rules! job_expires_at {
    () => {
        "(created_at + make_interval(secs => CASE WHEN operator_fault_at IS NULL THEN 3600 ELSE 86400 END))"
    };
}

/// Takes the job for `lease` (and, on the first claim, fixes its model and its deadline: `deadline`
/// from now, but never later than the job's expiry, see [`job_expires_at`]). The image turns
/// `processing` in the same statement (and loses any "delayed" note).
pub async fn claim(
    db: &PgPool,
    job: JobRef,
    lease: Duration,
    deadline: Duration,
    active_model: Option<&str>,
) -> Result<Claim, sqlx::Error> {
    let claimed: Option<ClaimedJob> = sqlx::query_as(concat!(
        "WITH claimed AS ( \
             UPDATE jobs SET status = 'processing', attempts = attempts + 1, \
                 lease_until = now() + make_interval(secs => $3), \
                 started_at = coalesce(started_at, now()), \
                 deadline_at = coalesce(deadline_at, least(now() + make_interval(secs => $4), ",
        job_expires_at!(),
        ")), \
                 model_id = coalesce(model_id, $5) \
             WHERE id = $1 AND image_id = $2 AND status IN ('queued', 'processing') \
               AND (lease_until IS NULL OR lease_until <= now()) \
             RETURNING id, image_id, attempts, max_attempts, prediction_id, create_started_at, model_id, deadline_at \
         ), image AS ( \
             UPDATE images SET status = 'processing', error = NULL \
             WHERE id = (SELECT image_id FROM claimed) AND status = 'queued' \
         ) \
         SELECT c.id AS job_id, c.image_id, i.user_id, c.attempts, c.max_attempts, c.prediction_id, \
                c.create_started_at, c.model_id, c.deadline_at, i.original_key, i.room_type, i.operation, i.style, i.seed, \
                i.prompt, (i.deleted_at IS NOT NULL) AS image_deleted \
         FROM claimed c JOIN images i ON i.id = c.image_id"
    ))
    .bind(job.job_id)
    .bind(job.image_id)
    .bind(lease.as_secs_f64())
    .bind(deadline.as_secs_f64())
    .bind(active_model)
    .fetch_optional(db)
    .await?;
    if let Some(job) = claimed {
        return Ok(Claim::Claimed(Box::new(job)));
    }
    let status: Option<JobStatus> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1 AND image_id = $2")
        .bind(job.job_id)
        .bind(job.image_id)
        .fetch_optional(db)
        .await?;
    Ok(match status {
        None => Claim::Missing,
        Some(JobStatus::Completed | JobStatus::Failed) => Claim::Finished,
        Some(JobStatus::Queued | JobStatus::Processing) => Claim::Held,
    })
}

/// Notes that a create is about to be sent for this job (before the request leaves, so a crash or
/// a lost answer leaves the trace). False when the job is no longer this worker's to create for
/// (not processing, or it has a prediction already).
pub async fn mark_create_started(db: &PgPool, job_id: Uuid) -> Result<bool, sqlx::Error> {
    let marked: Option<Uuid> = sqlx::query_scalar(
        "UPDATE jobs SET create_started_at = now() \
         WHERE id = $1 AND status = 'processing' AND prediction_id IS NULL RETURNING id",
    )
    .bind(job_id)
    .fetch_optional(db)
    .await?;
    Ok(marked.is_some())
}

/// An operator fault (the provider account, not the photo): the job goes back to `queued` without
/// counting this attempt, its deadline restarts with the next claim when no prediction runs yet,
/// and it may now wait up to [`OPERATOR_FAULT_MAX_AGE`] from its creation. The image shows
/// `user_note` (generic, never the vendor's text); `operator_note` stays on the job for operators.
pub async fn hold_for_operator(
    db: &PgPool,
    job_id: Uuid,
    operator_note: &str,
    user_note: &str,
) -> Result<bool, sqlx::Error> {
    let held: Option<Uuid> = sqlx::query_scalar(
        "WITH j AS ( \
             UPDATE jobs SET status = 'queued', attempts = greatest(attempts - 1, 0), lease_until = NULL, \
                 error = $2, operator_fault_at = now(), \
                 deadline_at = CASE WHEN prediction_id IS NULL THEN NULL ELSE deadline_at END \
             WHERE id = $1 AND status = 'processing' RETURNING image_id \
         ) \
         UPDATE images SET status = 'queued', error = $3 \
         WHERE id = (SELECT image_id FROM j) AND status IN ('queued', 'processing') RETURNING id",
    )
    .bind(job_id)
    .bind(operator_note)
    .bind(user_note)
    .fetch_optional(db)
    .await?;
    Ok(held.is_some())
}

/// Where a job stands, as the reconciler's orphan sweep needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobPredictionState {
    pub job_id: Uuid,
    pub user_id: Uuid,
    /// Still queued or processing.
    pub live: bool,
    pub prediction_id: Option<String>,
}

/// The state of the given jobs (missing ids are simply absent).
pub async fn prediction_states(db: &PgPool, job_ids: &[Uuid]) -> Result<Vec<JobPredictionState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT j.id AS job_id, i.user_id, (j.status IN ('queued', 'processing')) AS live, j.prediction_id \
         FROM jobs j JOIN images i ON i.id = j.image_id WHERE j.id = ANY($1)",
    )
    .bind(job_ids)
    .fetch_all(db)
    .await
}

/// Stores the prediction id the moment Replicate answers, so any later attempt resumes it
/// instead of paying for a second prediction. Returns false if the job already had one.
pub async fn record_prediction(db: &PgPool, job_id: Uuid, prediction_id: &str) -> Result<bool, sqlx::Error> {
    let updated: Option<Uuid> = sqlx::query_scalar(
        "WITH j AS ( \
             UPDATE jobs SET prediction_id = $2 WHERE id = $1 AND prediction_id IS NULL AND status = 'processing' \
             RETURNING image_id \
         ) \
         UPDATE images SET replicate_prediction_id = $2 WHERE id = (SELECT image_id FROM j) RETURNING id",
    )
    .bind(job_id)
    .bind(prediction_id)
    .fetch_optional(db)
    .await?;
    Ok(updated.is_some())
}

/// What a finished job leaves on its image.
#[derive(Debug, Clone)]
pub struct StagedResult<'a> {
    pub staged_key: &'a str,
    pub content_type: &'a str,
    pub model_used: &'a str,
    pub prediction_id: Option<&'a str>,
    pub processing_time_ms: Option<i32>,
    /// Ten-thousandths of a dollar (the registry's price per image).
    pub cost_e4: i64,
    /// All four renditions are stored (`images.renditions_at`); otherwise the reconciler makes them.
    pub renditions: bool,
}

/// `processing → completed` and the image `ready`, in one statement. False when the job was no
/// longer processing (someone else finished it).
pub async fn complete(db: &PgPool, job_id: Uuid, result: &StagedResult<'_>) -> Result<bool, sqlx::Error> {
    let updated: Option<Uuid> = sqlx::query_scalar(
        "WITH j AS ( \
             UPDATE jobs SET status = 'completed', finished_at = now(), lease_until = NULL, error = NULL \
             WHERE id = $1 AND status = 'processing' RETURNING image_id \
         ) \
         UPDATE images SET status = 'ready', staged_key = $2, staged_content_type = $3, model_used = $4, \
             replicate_prediction_id = coalesce($5, replicate_prediction_id), processing_time_ms = $6, \
             cost_usd = $7::numeric / 10000, error = NULL, \
             renditions_at = CASE WHEN $8 THEN now() END \
         WHERE id = (SELECT image_id FROM j) RETURNING id",
    )
    .bind(job_id)
    .bind(result.staged_key)
    .bind(result.content_type)
    .bind(result.model_used)
    .bind(result.prediction_id)
    .bind(result.processing_time_ms)
    .bind(result.cost_e4)
    .bind(result.renditions)
    .fetch_optional(db)
    .await?;
    Ok(updated.is_some())
}

/// How a failed job treats the allowance its image reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refund {
    /// Give it back (a permanent failure the user did not cause by deleting the image).
    GiveBack,
    Keep,
}

/// `→ failed` and the image `error` with `message` (what the user sees), plus at most one refund
/// in the ledger, all in one transaction. False when the job had already finished.
pub async fn fail(db: &PgPool, job_id: Uuid, message: &str, refund: Refund) -> Result<bool, sqlx::Error> {
    Ok(fail_reporting(db, job_id, message, refund).await?.is_some())
}

/// How [`fail_reporting`] left the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// A refund row exists for the image now (written by this call or an earlier one).
    pub refunded: bool,
}

/// [`fail`], saying whether the image's allowance came back: never for an image its owner has
/// deleted, whatever `refund` asks (deleting never lowers usage, and a delete that lands while a
/// job runs must not turn its later failure into a refund). `None` when the job had already
/// finished.
pub async fn fail_reporting(
    db: &PgPool,
    job_id: Uuid,
    message: &str,
    refund: Refund,
) -> Result<Option<Failed>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let failed = fail_in(&mut tx, job_id, message, refund).await?;
    tx.commit().await?;
    Ok(failed)
}

async fn fail_in(
    conn: &mut PgConnection,
    job_id: Uuid,
    message: &str,
    refund: Refund,
) -> Result<Option<Failed>, sqlx::Error> {
    let image_id: Option<Uuid> = sqlx::query_scalar(
        "UPDATE jobs SET status = 'failed', finished_at = now(), lease_until = NULL, error = $2 \
         WHERE id = $1 AND status IN ('queued', 'processing') RETURNING image_id",
    )
    .bind(job_id)
    .bind(message)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(image_id) = image_id else {
        return Ok(None);
    };
    // The image row stays locked until commit: a delete landing now waits, and one that landed
    // before is seen by the refund below (a later statement, a later snapshot).
    sqlx::query("SELECT 1 FROM images WHERE id = $1 FOR UPDATE")
        .bind(image_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE images SET status = 'error', error = $2 WHERE id = $1 AND status IN ('queued', 'processing')")
        .bind(image_id)
        .bind(message)
        .execute(&mut *conn)
        .await?;
    if refund == Refund::GiveBack {
        // The refund carries the reservation's period, so it lowers the period that was charged;
        // the unique (image_id, kind) index makes a second refund impossible. A deleted image is
        // never refunded, decided here in SQL so every failure path obeys it.
        sqlx::query(
            "INSERT INTO usage_ledger (user_id, image_id, kind, units, period_at, reason) \
             SELECT l.user_id, l.image_id, 'refund', -l.units, l.period_at, 'staging failed' \
             FROM usage_ledger l JOIN images i ON i.id = l.image_id \
             WHERE l.image_id = $1 AND l.kind = 'reserve' AND i.deleted_at IS NULL \
             ON CONFLICT (image_id, kind) WHERE image_id IS NOT NULL DO NOTHING",
        )
        .bind(image_id)
        .execute(&mut *conn)
        .await?;
    }
    let refunded: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM usage_ledger WHERE image_id = $1 AND kind = 'refund')")
            .bind(image_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(Some(Failed { refunded }))
}

/// Whether the job's image has been deleted by its owner (checked while a prediction runs, so a
/// delete cancels it instead of paying for a result nobody will see).
pub async fn image_deleted(db: &PgPool, job_id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted: Option<bool> = sqlx::query_scalar(
        "SELECT i.deleted_at IS NOT NULL FROM jobs j JOIN images i ON i.id = j.image_id WHERE j.id = $1",
    )
    .bind(job_id)
    .fetch_optional(db)
    .await?;
    // A job without its image row (the user was deleted) is as good as deleted.
    Ok(deleted.unwrap_or(true))
}

/// Gives the job back after a retryable problem: the lease ends now, so the next delivery (or the
/// reconciler) can take it at once. `note` is kept for operators (not shown to the user).
pub async fn release(db: &PgPool, job_id: Uuid, note: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE jobs SET lease_until = NULL, error = $2 WHERE id = $1 AND status = 'processing'")
        .bind(job_id)
        .bind(note)
        .execute(db)
        .await?;
    Ok(())
}

/// Jobs whose message must be (re-)sent, locked for this transaction (`SKIP LOCKED`: a second
/// reconciler running at the same time gets other rows or none):
/// - never accepted by SQS (`enqueued_at IS NULL`) and older than `grace`;
/// - sent more than `stale` ago, not held by a worker, and still not finished (the message went
///   missing, or its retries ran out before the deadline).
///
/// Jobs past their deadline are left to [`expired`].
pub async fn lock_resendable(
    conn: &mut PgConnection,
    grace: Duration,
    stale: Duration,
    limit: i64,
) -> Result<Vec<JobRef>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT id AS job_id, image_id FROM jobs \
         WHERE status IN ('queued', 'processing') \
           AND (lease_until IS NULL OR lease_until <= now()) \
           AND coalesce(deadline_at, ",
        job_expires_at!(),
        ") > now() \
           AND ((enqueued_at IS NULL AND created_at <= now() - make_interval(secs => $1)) \
             OR enqueued_at <= now() - make_interval(secs => $2)) \
         ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED"
    ))
    .bind(grace.as_secs_f64())
    .bind(stale.as_secs_f64())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// A job never claimed by any worker still expires this long after it was created
/// (`job_expires_at!` holds the same number).
pub const UNCLAIMED_JOB_MAX_AGE: Duration = Duration::from_secs(3600);

/// A job held back by an operator fault may wait this long after its creation
/// (`job_expires_at!` holds the same number).
pub const OPERATOR_FAULT_MAX_AGE: Duration = Duration::from_secs(86_400);

/// Inserts the job of a new image (in the create's transaction). `payload` is the queue message
/// it is sent with, kept for the record.
pub async fn insert(
    conn: &mut PgConnection,
    job_id: Uuid,
    image_id: Uuid,
    payload: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO jobs (id, image_id, payload_json) VALUES ($1, $2, $3)")
        .bind(job_id)
        .bind(image_id)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records that SQS accepted these jobs' messages (jobs left NULL are re-sent by the reconciler).
pub async fn mark_enqueued(db: &PgPool, job_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    if job_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE jobs SET enqueued_at = now() WHERE id = ANY($1) AND enqueued_at IS NULL")
        .bind(job_ids)
        .execute(db)
        .await?;
    Ok(())
}

/// Marks messages as sent (inside the reconciler's transaction).
pub async fn mark_enqueued_in(conn: &mut PgConnection, job_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE jobs SET enqueued_at = now() WHERE id = ANY($1)")
        .bind(job_ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Unfinished jobs past their deadline that no worker holds: the reconciler runs each through the
/// worker once more, which asks Replicate about a stored prediction before failing it.
pub async fn expired(db: &PgPool, limit: i64) -> Result<Vec<JobRef>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT id AS job_id, image_id FROM jobs \
         WHERE status IN ('queued', 'processing') \
           AND (lease_until IS NULL OR lease_until <= now()) \
           AND coalesce(deadline_at, ",
        job_expires_at!(),
        ") <= now() \
         ORDER BY created_at LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Unfinished jobs of deleted images that no worker holds (the reconciler settles them through
/// the worker, which cancels a running prediction and fails the job without a refund).
pub async fn unfinished_of_deleted_images(db: &PgPool, limit: i64) -> Result<Vec<JobRef>, sqlx::Error> {
    sqlx::query_as(
        "SELECT j.id AS job_id, j.image_id FROM jobs j JOIN images i ON i.id = j.image_id \
         WHERE j.status IN ('queued', 'processing') \
           AND (j.lease_until IS NULL OR j.lease_until <= now()) \
           AND i.deleted_at IS NOT NULL \
         ORDER BY i.deleted_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

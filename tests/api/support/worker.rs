//! The staging worker: the real worker over the test database, bucket and queue, with Replicate
//! faked over HTTP by wiremock (its documented prediction shapes; `fake_replicate.rs` keeps a
//! stateful fake for the adoption tests).

use std::time::Duration;

use serde_json::Value;
use shared::platform::state::outbound_http_client;
use sqlx::PgPool;
use wiremock::MockServer;

#[allow(unused_imports)]
use super::*;

pub const REPLICATE_TOKEN: &str = "r8_test_token_never_logged";

/// The `SETTINGS_ENCRYPTION_KEY` of the tests: the worker and the admin routes share it, as the
/// deployed functions share the stack's parameter.
pub const SETTINGS_KEY: [u8; 32] = *b"test-settings-key-32-bytes-long!";

pub fn test_cipher() -> shared::admin::secrets::SettingsCipher {
    shared::admin::secrets::SettingsCipher::from_keys(&SETTINGS_KEY, None)
}

/// Fast timings for tests; the production defaults are in `WorkerConfig::default`.
pub fn fast_worker_config() -> shared::staging::worker::WorkerConfig {
    shared::staging::worker::WorkerConfig {
        job_deadline: Duration::from_secs(600),
        replicate_wait: Duration::from_secs(1),
        poll_initial: Duration::from_millis(10),
        poll_max: Duration::from_millis(40),
        safety_margin: Duration::from_millis(200),
        still_running_visibility: Duration::from_secs(0),
        retry_visibility: Duration::from_secs(0),
        input_url_ttl: Duration::from_secs(900),
        download_timeout: Duration::from_secs(10),
        jpeg_quality: 85,
        adoption_settle: Duration::ZERO,
    }
}

pub struct WorkerApp {
    pub staging: StagingApp,
    pub replicate: MockServer,
    pub worker: std::sync::Arc<shared::staging::worker::Worker>,
}

/// A staging app plus a worker that talks to a fake Replicate.
pub async fn spawn_worker(db: PgPool) -> WorkerApp {
    spawn_worker_with(db, fast_worker_config(), false).await
}

pub async fn spawn_worker_with(
    db: PgPool,
    config: shared::staging::worker::WorkerConfig,
    simulator: bool,
) -> WorkerApp {
    let staging = spawn_staging_app(db).await;
    let replicate = MockServer::start().await;
    let provider = if simulator {
        shared::staging::worker::Provider::Simulator
    } else {
        let client = shared::clients::replicate::Replicate::new(
            shared::clients::replicate::ReplicateConfig {
                base_url: format!("{}/v1", replicate.uri()).parse().unwrap(),
                token: shared::platform::config::Secret::new(REPLICATE_TOKEN),
            },
            outbound_http_client().unwrap(),
        )
        .with_retry_policy(shared::clients::replicate::RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        })
        // A create slower than this (past the sync wait) counts as lost: fake_replicate.rs plays it.
        .with_create_timeout_margin(Duration::from_secs(2))
        // The fake serves the output files too (`file_url`): allowed explicitly, as the default
        // allowlist is https from replicate.delivery only.
        .with_output_policy(shared::clients::replicate::OutputPolicy::local_origin(
            &replicate.uri().parse().unwrap(),
        ));
        shared::staging::worker::Provider::Replicate(client)
    };
    let worker = shared::staging::worker::Worker {
        db: staging.app.db.clone(),
        storage: staging.staging.storage.clone(),
        queue: staging.staging.queue.clone(),
        provider,
        config,
        cipher: std::sync::Arc::new(test_cipher()),
    };
    WorkerApp {
        staging,
        replicate,
        worker: std::sync::Arc::new(worker),
    }
}

/// One image asked for through the real create route.
#[derive(Debug, Clone, Copy)]
pub struct QueuedImage {
    pub image_id: uuid::Uuid,
    pub job_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
}

/// Runs the stage-worker function on an event, as Lambda would, with `budget` before the
/// invocation's deadline; returns the reported failures (the JSON shape of `batchItemFailures`).
pub async fn run_stage_worker(
    worker: std::sync::Arc<shared::staging::worker::Worker>,
    event: shared::aws_lambda_events::event::sqs::SqsEvent,
    budget: Duration,
) -> Vec<String> {
    let mut context = shared::lambda_runtime::Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.deadline = (std::time::SystemTime::now() + budget)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let response = stage_worker::handle(worker, shared::lambda_runtime::LambdaEvent::new(event, context))
        .await
        .unwrap();
    let json = serde_json::to_value(&response).unwrap();
    json["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

/// The number of entries in the admin audit trail.
pub async fn audit_count(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM admin_audit_log")
        .fetch_one(db)
        .await
        .unwrap()
}

impl WorkerApp {
    pub fn db(&self) -> &PgPool {
        &self.staging.app.db
    }

    /// Uploads `bytes` as `format` through a real presigned PUT and returns the key.
    pub async fn upload_bytes(
        &self,
        sub: &str,
        format: shared::clients::storage::ImageFormat,
        bytes: Vec<u8>,
    ) -> String {
        let user = shared::db::users::ensure_by_sub(self.db(), sub).await.unwrap();
        let key = shared::clients::storage::UploadKey::generate(user.id, format).to_string();
        let storage = &self.staging.storage.storage;
        let presigned = storage.presign_upload(&key, format, bytes.len() as u64).await.unwrap();
        assert_eq!(put_presigned(&presigned.url, &presigned.headers, bytes).await, 200);
        key
    }

    /// Uploads `bytes` and creates an image of it through POST /api/v1/images.
    pub async fn queue_image(&self, sub: &str, bytes: Vec<u8>, room_type: &str, style: &str) -> QueuedImage {
        let project = self.staging.project(sub, "14 Elm Road").await;
        let key = self
            .upload_bytes(sub, shared::clients::storage::ImageFormat::Jpeg, bytes)
            .await;
        self.queue_image_of(sub, project, &key, room_type, style).await
    }

    pub async fn queue_image_of(
        &self,
        sub: &str,
        project: uuid::Uuid,
        key: &str,
        room_type: &str,
        style: &str,
    ) -> QueuedImage {
        let response = call("POST", "/api/v1/images")
            .bearer(&self.staging.app.token(sub))
            .json(serde_json::json!({"project_id": project, "file_key": key, "room_type": room_type, "style": style}))
            .send(
                &self.staging.staging,
                &self.staging.staging.api.web,
                create_image::handle,
            )
            .await;
        assert_eq!(response.status, 201, "{}", String::from_utf8_lossy(&response.body));
        let image_id: uuid::Uuid = response.json()["id"].as_str().unwrap().parse().unwrap();
        let (job_id, user_id): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
            "SELECT j.id, i.user_id FROM jobs j JOIN images i ON i.id = j.image_id WHERE j.image_id = $1",
        )
        .bind(image_id)
        .fetch_one(self.db())
        .await
        .unwrap();
        QueuedImage {
            image_id,
            job_id,
            user_id,
        }
    }

    /// Receives what is on the queue as the SQS event Lambda would deliver (real message ids and
    /// receipt handles).
    pub async fn receive_event(&self, max: usize) -> shared::aws_lambda_events::event::sqs::SqsEvent {
        receive_event(&self.staging.staging.queue, max).await
    }

    /// Runs the stage-worker function on an event, as Lambda would, with `budget` before the
    /// invocation's deadline.
    pub async fn run_worker(
        &self,
        event: shared::aws_lambda_events::event::sqs::SqsEvent,
        budget: Duration,
    ) -> Vec<String> {
        run_stage_worker(std::sync::Arc::clone(&self.worker), event, budget).await
    }

    /// Receives the image's message and runs the worker on it; returns the reported failures.
    pub async fn deliver(&self) -> Vec<String> {
        let event = self.receive_event(10).await;
        assert!(!event.records.is_empty(), "no message on the queue");
        self.run_worker(event, Duration::from_secs(30)).await
    }

    pub async fn image_row(&self, id: uuid::Uuid) -> ImageRow {
        sqlx::query_as(
            "SELECT status, error, staged_key, staged_content_type, model_used, replicate_prediction_id, \
             cost_usd::text AS cost_usd, processing_time_ms FROM images WHERE id = $1",
        )
        .bind(id)
        .fetch_one(self.db())
        .await
        .unwrap()
    }

    pub async fn job_row(&self, id: uuid::Uuid) -> JobRow {
        sqlx::query_as("SELECT status, attempts, prediction_id, model_id, error, lease_until IS NOT NULL AS leased FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(self.db())
            .await
            .unwrap()
    }

    /// (reservations, refunds) in the ledger for an image.
    pub async fn ledger(&self, image_id: uuid::Uuid) -> (i64, i64) {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE kind = 'reserve'), count(*) FILTER (WHERE kind = 'refund') \
             FROM usage_ledger WHERE image_id = $1",
        )
        .bind(image_id)
        .fetch_one(self.db())
        .await
        .unwrap()
    }

    /// Requests Replicate's fake received, as (method, path).
    pub async fn replicate_calls(&self) -> Vec<(String, String)> {
        self.replicate
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| (r.method.to_string(), r.url.path().to_string()))
            .collect()
    }

    pub async fn creates(&self) -> usize {
        self.replicate_calls()
            .await
            .iter()
            .filter(|(m, p)| m == "POST" && p.starts_with("/v1/models/"))
            .count()
    }

    pub fn file_url(&self, name: &str) -> String {
        format!("{}/files/{name}", self.replicate.uri())
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct ImageRow {
    pub status: String,
    pub error: Option<String>,
    pub staged_key: Option<String>,
    pub staged_content_type: Option<String>,
    pub model_used: Option<String>,
    pub replicate_prediction_id: Option<String>,
    pub cost_usd: Option<String>,
    pub processing_time_ms: Option<i32>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct JobRow {
    pub status: String,
    pub attempts: i32,
    pub prediction_id: Option<String>,
    pub model_id: Option<String>,
    pub error: Option<String>,
    pub leased: bool,
}

/// Receives up to `max` messages as a Lambda SQS event.
pub async fn receive_event(
    queue: &shared::staging::queue::JobQueue,
    max: usize,
) -> shared::aws_lambda_events::event::sqs::SqsEvent {
    use shared::aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    let mut event = SqsEvent::default();
    for m in queue.receive(max.clamp(1, 10) as i32, 1).await.unwrap() {
        let mut record = SqsMessage::default();
        record.message_id = Some(m.message_id);
        record.receipt_handle = Some(m.receipt_handle);
        record.body = Some(m.body);
        record.md5_of_body = m.md5_of_body;
        record.attributes = m.attributes.into_iter().collect();
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:jobs".into());
        record.aws_region = Some("us-east-1".into());
        event.records.push(record);
    }
    event
}

/// A prediction object as Replicate documents it.
pub fn prediction(id: &str, model: &str, status: &str, output: Value) -> Value {
    let done = matches!(status, "succeeded" | "failed" | "canceled" | "aborted");
    serde_json::json!({
        "id": id,
        "model": model,
        "version": "hidden",
        "input": {"prompt": "…"},
        "logs": "",
        "output": output,
        "error": if status == "failed" { Value::String("CUDA out of memory".into()) } else { Value::Null },
        "status": status,
        "source": "api",
        "data_removed": false,
        "created_at": "2026-11-25T10:00:00.000Z",
        "started_at": if status == "starting" { Value::Null } else { Value::String("2026-11-25T10:00:01.000Z".into()) },
        "completed_at": if done { Value::String("2026-11-25T10:00:09.000Z".into()) } else { Value::Null },
        "urls": {
            "get": format!("https://api.replicate.com/v1/predictions/{id}"),
            "cancel": format!("https://api.replicate.com/v1/predictions/{id}/cancel"),
            "web": format!("https://replicate.com/p/{id}")
        },
        "metrics": if status == "succeeded" { serde_json::json!({"predict_time": 8.25, "total_time": 9.1}) } else { serde_json::json!({}) }
    })
}

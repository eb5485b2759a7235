//! Storage and queue: real S3- and SQS-compatible servers started by scripts/test (s3s-fs, which
//! verifies SigV4 signatures, and moto). Each test gets its own bucket and queue; `StagingApp`
//! serves the routes that need them.

use shared::platform::state::ApiState;
use sqlx::PgPool;

#[allow(unused_imports)]
use super::*;

pub const S3_ACCESS_KEY: &str = "test";
pub const S3_SECRET_KEY: &str = "test-secret";

fn endpoint_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test, which starts the local S3 and SQS servers")
    })
}

pub fn storage_config(bucket: &str) -> shared::clients::storage::StorageConfig {
    shared::clients::storage::StorageConfig {
        endpoint: Some(endpoint_var("TEST_S3_ENDPOINT").parse().unwrap()),
        region: "us-east-1".into(),
        bucket: bucket.into(),
        credentials: Some((
            S3_ACCESS_KEY.into(),
            shared::platform::config::Secret::new(S3_SECRET_KEY),
        )),
        path_style: true,
    }
}

/// A fresh bucket on the local S3 server.
pub async fn test_storage() -> shared::clients::storage::Storage {
    let bucket = format!("test-{}", uuid::Uuid::new_v4().simple());
    let storage = shared::clients::storage::Storage::new(&storage_config(&bucket));
    storage
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create the test bucket");
    storage
}

pub fn queue_config(queue_url: &str) -> shared::staging::queue::QueueConfig {
    let endpoint = endpoint_var("TEST_SQS_ENDPOINT");
    shared::staging::queue::QueueConfig {
        queue_url: queue_url.parse().unwrap(),
        endpoint: Some(endpoint.parse().unwrap()),
        region: "us-east-1".into(),
        credentials: Some(("test".into(), shared::platform::config::Secret::new("test"))),
    }
}

/// A fresh queue on the local SQS server.
pub async fn test_queue() -> shared::staging::queue::JobQueue {
    let endpoint = endpoint_var("TEST_SQS_ENDPOINT");
    let name = format!("jobs-{}", uuid::Uuid::new_v4().simple());
    // The queue URL is not known before the queue exists: create it through a client that
    // points at the endpoint, then build the real one with the URL SQS answered.
    let bootstrap =
        shared::staging::queue::JobQueue::new(&queue_config(&format!("{endpoint}/000000000000/bootstrap"))).await;
    let url = bootstrap
        .client()
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("create the test queue");
    shared::staging::queue::JobQueue::new(&queue_config(url.queue_url().unwrap())).await
}

/// Receives up to `max` job messages currently on the queue.
pub async fn receive_jobs(
    queue: &shared::staging::queue::JobQueue,
    max: usize,
) -> Vec<shared::staging::queue::JobMessage> {
    let mut out = Vec::new();
    while out.len() < max {
        let batch = queue.receive(10, 1).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            out.push(shared::staging::queue::JobMessage::parse(&m.body).unwrap());
        }
    }
    out
}

/// Uploads bytes through a presigned PUT exactly as a browser would (a real HTTP request). Like
/// a browser, the client computes Content-Length from the body itself (scripts cannot set it), so
/// a body of another size than the signed one is sent with its true length.
pub async fn put_presigned(url: &str, headers: &[(String, String)], body: Vec<u8>) -> u16 {
    let client = shared::reqwest::Client::new();
    let mut request = client.put(url).body(body);
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-length") {
            request = request.header(name, value);
        }
    }
    request.send().await.unwrap().status().as_u16()
}

/// A test app with storage (its own bucket on s3s-fs) and a queue (its own queue on moto), for
/// the routes that need them. `app` is the plain one (profile, projects, ...).
pub struct StagingApp {
    pub app: TestApp,
    pub storage: shared::platform::state::StorageState,
    pub staging: shared::platform::state::StagingState,
    /// The share routes, with share pages on [`SHARE_BASE`].
    pub sharing: shared::platform::state::SharingState,
    /// The public share page.
    pub share_page: shared::platform::state::SharePageState,
}

/// Where the test apps' share pages live.
pub const SHARE_BASE: &str = "https://listings.example.test";

pub async fn spawn_staging_app(db: PgPool) -> StagingApp {
    let app = spawn_app(db).await;
    let storage = test_storage().await;
    let queue = test_queue().await;
    let api = || ApiState::new(web_config(), app.db.clone(), app.auth.clone()).unwrap();
    StagingApp {
        storage: shared::platform::state::StorageState {
            api: api(),
            storage: storage.clone(),
        },
        sharing: shared::platform::state::SharingState {
            api: api(),
            storage: storage.clone(),
            share_base: Some(SHARE_BASE.parse().unwrap()),
        },
        share_page: shared::platform::state::SharePageState {
            web: web_config(),
            db: app.db.clone(),
            storage: storage.clone(),
        },
        staging: shared::platform::state::StagingState {
            api: api(),
            storage,
            queue,
        },
        app,
    }
}

impl StagingApp {
    /// Uploads a small valid file for `sub` through the real presign + PUT path and returns its key.
    pub async fn upload(&self, sub: &str, format: shared::clients::storage::ImageFormat, size: usize) -> String {
        let user = shared::db::users::ensure_by_sub(&self.app.db, sub).await.unwrap();
        let key = shared::clients::storage::UploadKey::generate(user.id, format).to_string();
        let presigned = self
            .storage
            .storage
            .presign_upload(&key, format, size as u64)
            .await
            .unwrap();
        assert_eq!(
            put_presigned(&presigned.url, &presigned.headers, vec![0xAB; size]).await,
            200
        );
        key
    }

    /// Creates a project for `sub` directly in the database and returns its id.
    pub async fn project(&self, sub: &str, name: &str) -> uuid::Uuid {
        let user = shared::db::users::ensure_by_sub(&self.app.db, sub).await.unwrap();
        let name = shared::projects::ProjectName::parse(name).unwrap();
        shared::db::projects::create(&self.app.db, user.id, &name)
            .await
            .unwrap()
            .id
    }
}

/// The fields of an image as the API shows it (shared::staging::views::ImageView), sorted.
pub const IMAGE_FIELDS: [&str; 19] = [
    "cost_usd",
    "created_at",
    "error",
    "file_key",
    "id",
    "model_used",
    "operation",
    "original_preview_url",
    "original_url",
    "processing_time_ms",
    "project_id",
    "prompt",
    "room_type",
    "seed",
    "staged_preview_url",
    "staged_url",
    "status",
    "style",
    "updated_at",
];

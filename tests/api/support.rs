//! The test harness: a `TestApp` per test (its own Postgres database from `#[sqlx::test]`, a fake
//! Auth0 JWKS served by wiremock), requests built as real API Gateway v2 (payload 2.0) events and
//! run through the same `respond` wrapper the Lambda runtime uses.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use shared::ApiError;
use shared::http_types::HeaderMap;
use shared::lambda_http::{Body, Request, Response};
use shared::platform::auth::Authenticator;
use shared::platform::config::{AppEnv, AuthConfig, WebConfig};
use shared::platform::state::{ApiState, PublicState, outbound_http_client};
use sqlx::PgPool;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const AUDIENCE: &str = "https://api.test.realstaging";
pub const FRONTEND: &str = "https://app.realstaging.test";
pub const DEV_KID: &str = "dev-key-1";

pub fn dev_private_key() -> &'static [u8] {
    include_bytes!("../../dev/issuer/dev-signing-key.pem")
}
pub fn dev_public_key() -> &'static [u8] {
    include_bytes!("../../dev/issuer/dev-signing-key.pub.pem")
}
pub fn dev_jwks() -> Value {
    serde_json::from_str(include_str!("../../dev/issuer/.well-known/jwks.json")).unwrap()
}
pub fn attacker_private_key() -> &'static [u8] {
    include_bytes!("../fixtures/keys/attacker-key.pem")
}
pub fn attacker_jwk() -> Value {
    serde_json::from_str(include_str!("../fixtures/keys/attacker-jwk.json")).unwrap()
}

pub fn web_config() -> WebConfig {
    WebConfig {
        app_env: AppEnv::Test,
        frontend_origin: FRONTEND.to_string(),
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub struct TestApp {
    pub auth: AuthConfig,
    pub db: PgPool,
    pub api: ApiState,
    pub public: PublicState,
    pub jwks: MockServer,
    pub issuer: String,
}

/// A fresh app over the test's own database. The JWKS mock serves the dev key.
pub async fn spawn_app(db: PgPool) -> TestApp {
    spawn_app_with(db, Duration::from_secs(60), true).await
}

pub async fn spawn_app_with(db: PgPool, refresh_interval: Duration, mount_jwks: bool) -> TestApp {
    let jwks = MockServer::start().await;
    if mount_jwks {
        Mock::given(method("GET"))
            .and(path("/.well-known/jwks.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(dev_jwks()))
            .mount(&jwks)
            .await;
    }
    let issuer = format!("{}/", jwks.uri());
    let auth = AuthConfig {
        issuer: issuer.clone(),
        audience: AUDIENCE.to_string(),
        jwks_url: format!("{issuer}.well-known/jwks.json").parse().unwrap(),
    };
    let mut api = ApiState::new(web_config(), db.clone(), auth.clone()).unwrap();
    api.auth = Authenticator::new(auth, outbound_http_client().unwrap()).with_refresh_interval(refresh_interval);
    // Owned by the test (not leaked): the sqlx harness's per-test pool must be dropped when the
    // test ends or its connection permits never return to the shared parent pool.
    let public = PublicState {
        web: web_config(),
        db: db.clone(),
    };
    TestApp {
        auth: api.auth.config().clone(),
        db,
        api,
        public,
        jwks,
        issuer,
    }
}

impl TestApp {
    /// Claims of a valid token for `sub`.
    pub fn claims(&self, sub: &str) -> Value {
        json!({ "iss": self.issuer, "aud": AUDIENCE, "sub": sub, "iat": now(), "exp": now() + 600 })
    }

    /// A valid access token for `sub`, signed by the dev key.
    pub fn token(&self, sub: &str) -> String {
        sign(&self.claims(sub), Some(DEV_KID), dev_private_key())
    }

    pub async fn user_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.db)
            .await
            .unwrap()
    }
}

/// RS256-signs `claims` with `key` (PKCS#8 PEM), with the given `kid`.
pub fn sign(claims: &Value, kid: Option<&str>, key: &[u8]) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    encode(&header, claims, &EncodingKey::from_rsa_pem(key).unwrap()).unwrap()
}

/// An unsigned token with an arbitrary header (for `alg: none` and friends).
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// An API Gateway HTTP API (payload 2.0) event, as API Gateway and `cargo lambda watch` send it.
pub struct Call {
    method: &'static str,
    route: &'static str,
    path_params: BTreeMap<String, String>,
    query: Vec<(String, String)>,
    headers: BTreeMap<String, String>,
    body: Option<String>,
}

pub fn call(method: &'static str, route: &'static str) -> Call {
    Call {
        method,
        route,
        path_params: BTreeMap::new(),
        query: Vec::new(),
        headers: BTreeMap::new(),
        body: None,
    }
}

impl Call {
    pub fn path_param(mut self, name: &str, value: impl ToString) -> Self {
        self.path_params.insert(name.to_string(), value.to_string());
        self
    }
    pub fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.query.push((name.to_string(), value.to_string()));
        self
    }
    pub fn header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.to_string());
        self
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
    pub fn json(self, body: Value) -> Self {
        self.raw_body("application/json", &body.to_string())
    }
    pub fn raw_body(mut self, content_type: &str, body: &str) -> Self {
        self.headers.insert("content-type".into(), content_type.into());
        self.body = Some(body.to_string());
        self
    }

    /// The request exactly as the Lambda runtime would hand it to the function.
    pub fn event(&self) -> Value {
        let mut path = self.route.to_string();
        for (name, value) in &self.path_params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        let raw_query = self
            .query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        // Payload 2.0 joins repeated query parameters with commas.
        let mut query_map: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &self.query {
            query_map
                .entry(k.clone())
                .and_modify(|e| *e = format!("{e},{v}"))
                .or_insert(v.clone());
        }
        let mut headers = self.headers.clone();
        headers.entry("host".into()).or_insert("api.realstaging.test".into());
        headers.entry("user-agent".into()).or_insert("integration-tests".into());
        json!({
            "version": "2.0",
            "routeKey": format!("{} {}", self.method, self.route),
            "rawPath": path,
            "rawQueryString": raw_query,
            "headers": headers,
            "queryStringParameters": if query_map.is_empty() { Value::Null } else { json!(query_map) },
            "pathParameters": if self.path_params.is_empty() { Value::Null } else { json!(self.path_params) },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "testapi",
                "domainName": "api.realstaging.test",
                "domainPrefix": "api",
                "http": {
                    "method": self.method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.7",
                    "userAgent": "integration-tests"
                },
                "requestId": format!("test-{}", uuid::Uuid::new_v4()),
                "routeKey": format!("{} {}", self.method, self.route),
                "stage": "$default",
                "time": "25/Nov/2026:13:00:00 +0000",
                "timeEpoch": 1_795_000_000_000_i64
            },
            "body": self.body,
            "isBase64Encoded": false
        })
    }

    pub fn request(&self) -> Request {
        shared::lambda_http::request::from_str(&self.event().to_string()).expect("a valid API Gateway v2 event")
    }

    /// Runs `handler` on this event through [`shared::platform::http::respond`], as in production.
    pub async fn send<'a, S, F, Fut>(&self, state: &'a S, web: &WebConfig, handler: F) -> TestResponse
    where
        F: FnOnce(&'a S, Request) -> Fut,
        Fut: Future<Output = Result<Response<Body>, ApiError>>,
    {
        let response = shared::platform::http::respond(state, web, self.request(), handler).await;
        TestResponse::from(response)
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl From<Response<Body>> for TestResponse {
    fn from(response: Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        TestResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.to_vec(),
        }
    }
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Fields named in a 422's `validation_errors`.
    pub fn invalid_fields(&self) -> Vec<String> {
        assert_eq!(
            self.status,
            422,
            "expected 422, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        assert_eq!(body["error"], "validation_failed");
        body["validation_errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect()
    }
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.json()["error"], code);
    }
}

// ---------------------------------------------------------------------------------------------
// Storage and queue: real S3- and SQS-compatible servers started by scripts/test (s3s-fs, which
// verifies SigV4 signatures, and moto). Each test gets its own bucket and queue.

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
}

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
pub const IMAGE_FIELDS: [&str; 16] = [
    "cost_usd",
    "created_at",
    "error",
    "file_key",
    "id",
    "model_used",
    "original_url",
    "processing_time_ms",
    "project_id",
    "prompt",
    "room_type",
    "seed",
    "staged_url",
    "status",
    "style",
    "updated_at",
];

// ---------------------------------------------------------------------------------------------
// The staging worker: the real worker over the test database, bucket and queue, with Replicate
// faked over HTTP by wiremock (its documented prediction shapes).

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

/// Links a Stripe customer to a user, as checkout (or its webhook) does.
pub async fn link_stripe_customer(db: &PgPool, user: uuid::Uuid, customer: &str) {
    sqlx::query("UPDATE users SET stripe_customer_id = $2 WHERE id = $1")
        .bind(user)
        .bind(customer)
        .execute(db)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Log capture: every tracing event, at every level, of the thread that asked for it (the
// `#[sqlx::test]` runtime is single-threaded, so that is everything the code under test logs).
// One global subscriber whose filter asks, per event, whether the current thread is capturing:
// a scoped `set_default` would miss events whose callsites another test thread registered first.

#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<CapturedLogs>> = const { std::cell::RefCell::new(None) };
}

struct ThreadCapture;

impl std::io::Write for ThreadCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(logs) = capture.borrow().as_ref() {
                logs.0.lock().unwrap().extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stops the capture when dropped.
pub struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

pub fn capture_logs() -> (CapturedLogs, CaptureGuard) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| ThreadCapture)
            // Decided per event, never cached per callsite: whether this thread is capturing.
            .with_filter(
                tracing_subscriber::filter::dynamic_filter_fn(|_, _| {
                    CAPTURE.with(|capture| capture.borrow().is_some())
                })
                .with_callsite_filter(|_| shared::tracing::subscriber::Interest::sometimes()),
            );
        shared::tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other global subscriber in the test binary");
    });
    let logs = CapturedLogs::default();
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(logs.clone()));
    (logs, CaptureGuard)
}

//! Deleting an image while its job runs: the prediction is canceled at Replicate, the job fails
//! without a refund on every path, and the reconciler's purge of a shared original cannot race a
//! create that uses the same upload.

use std::time::Duration;

use serde_json::{Value, json};
use shared::staging::imaging::samples;
use shared::staging::reconcile::ReconcileReport;
use sqlx::PgPool;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::*;

const ALICE: &str = "auth0|alice";
const QWEN_CREATE: &str = "/v1/models/qwen/qwen-image-edit/predictions";
const QWEN: &str = "qwen/qwen-image-edit";

fn room() -> Vec<u8> {
    samples::room_jpeg(640, 427)
}

async fn delete_image(w: &WorkerApp, id: uuid::Uuid) {
    let response = call("DELETE", "/api/v1/images/{id}")
        .path_param("id", id)
        .bearer(&w.staging.app.token(ALICE))
        .send(&w.staging.staging.api, &w.staging.staging.api.web, delete_image::handle)
        .await;
    assert_eq!(response.status, 204, "{}", String::from_utf8_lossy(&response.body));
}

/// Runs the stage-worker function on `event` in a task of its own (as a concurrent Lambda
/// invocation), returning its reported failures.
fn spawn_worker_run(
    w: &WorkerApp,
    event: shared::aws_lambda_events::event::sqs::SqsEvent,
) -> tokio::task::JoinHandle<Vec<String>> {
    let worker = std::sync::Arc::clone(&w.worker);
    tokio::spawn(run_stage_worker(worker, event, Duration::from_secs(30)))
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn cancels(w: &WorkerApp, id: &str) -> usize {
    let cancel = format!("/v1/predictions/{id}/cancel");
    w.replicate_calls()
        .await
        .iter()
        .filter(|(m, p)| m == "POST" && *p == cancel)
        .count()
}

async fn mount_cancel(w: &WorkerApp, id: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/v1/predictions/{id}/cancel")))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction(id, QWEN, "canceled", Value::Null)))
        .mount(&w.replicate)
        .await;
}

#[sqlx::test]
async fn deleting_an_image_while_its_prediction_runs_cancels_it_and_refunds_nothing(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction("pdeleted", QWEN, "starting", Value::Null)))
        .mount(&w.replicate)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/predictions/pdeleted"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction("pdeleted", QWEN, "processing", Value::Null)))
        .mount(&w.replicate)
        .await;
    mount_cancel(&w, "pdeleted").await;

    let run = spawn_worker_run(&w, w.receive_event(1).await);
    until("the worker polls the prediction", async || {
        w.job_row(queued.job_id).await.prediction_id.is_some()
    })
    .await;
    delete_image(&w, queued.image_id).await;
    let failures = run.await.unwrap();

    assert!(failures.is_empty(), "settled, not retried: {failures:?}");
    assert_eq!(cancels(&w, "pdeleted").await, 1, "the running prediction was canceled");
    let job = w.job_row(queued.job_id).await;
    assert_eq!((job.status.as_str(), job.leased), ("failed", false), "{job:?}");
    assert_eq!(w.ledger(queued.image_id).await, (1, 0), "deleting never refunds");
    assert!(w.image_row(queued.image_id).await.staged_key.is_none());
    assert_eq!(w.creates().await, 1);
}

#[sqlx::test]
async fn an_image_deleted_mid_job_whose_prediction_then_fails_is_not_refunded(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "kitchen", "modern").await;
    // Replicate takes its time answering the create, then reports the prediction failed: the
    // delete lands while the create is in flight, and the failure path that follows would refund.
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(prediction("pfailsdeleted", QWEN, "failed", Value::Null))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&w.replicate)
        .await;

    let run = spawn_worker_run(&w, w.receive_event(1).await);
    until("the create is in flight", async || w.creates().await == 1).await;
    delete_image(&w, queued.image_id).await;
    assert!(run.await.unwrap().is_empty());

    let job = w.job_row(queued.job_id).await;
    assert_eq!(job.status, "failed", "{job:?}");
    assert!(
        job.error.as_deref().unwrap_or_default().contains("could not stage"),
        "it failed through the prediction-failure path: {job:?}"
    );
    assert_eq!(
        w.ledger(queued.image_id).await,
        (1, 0),
        "no refund row for a deleted image"
    );
}

#[sqlx::test]
async fn the_reconciler_cancels_the_prediction_of_a_deleted_image_no_worker_holds(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "bedroom", "modern").await;
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction("punheld", QWEN, "starting", Value::Null)))
        .mount(&w.replicate)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/predictions/punheld"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction("punheld", QWEN, "processing", Value::Null)))
        .mount(&w.replicate)
        .await;
    mount_cancel(&w, "punheld").await;
    // The invocation ends with the prediction still running: the job is released, unheld.
    let event = w.receive_event(1).await;
    assert_eq!(w.run_worker(event, Duration::from_millis(900)).await.len(), 1);
    assert!(!w.job_row(queued.job_id).await.leased);
    delete_image(&w, queued.image_id).await;
    while !w.receive_event(10).await.records.is_empty() {}

    let report = reconcile(&w).await;

    assert_eq!(report.deleted_settled, 1, "{report:?}");
    assert_eq!(cancels(&w, "punheld").await, 1);
    assert_eq!(w.job_row(queued.job_id).await.status, "failed");
    assert_eq!(w.ledger(queued.image_id).await, (1, 0));
    assert_eq!(
        report.purged_images, 1,
        "and its objects are purged in the same run: {report:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The purge of a shared original against a create of the same upload. A test transaction holds
// the original's lock (`db::images::lock_original`, what both sides take) while the purge and
// the create queue up behind it in a chosen order; Postgres grants the lock in queue order.

async fn reconcile(w: &WorkerApp) -> ReconcileReport {
    let mut context = shared::lambda_runtime::Context::default();
    context.deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    reconcile::handle(
        std::sync::Arc::clone(&w.worker),
        shared::lambda_runtime::LambdaEvent::new(json!({"source": "aws.events", "detail": {}}), context),
    )
    .await
    .unwrap()
}

/// Sessions of this test's database waiting for an advisory lock.
async fn lock_waiters(db: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

async fn until_waiters(db: &PgPool, n: i64) {
    until(&format!("{n} sessions wait for the original's lock"), async || {
        lock_waiters(db).await >= n
    })
    .await;
}

/// An upload with one image made of it, deleted (its job settled): its original is purgeable.
async fn deleted_variant(w: &WorkerApp) -> (uuid::Uuid, String, QueuedImage) {
    let project = w.staging.project(ALICE, "9 Purge Street").await;
    let key = w
        .upload_bytes(
            ALICE,
            shared::clients::storage::ImageFormat::Jpeg,
            samples::room_jpeg(320, 200),
        )
        .await;
    let first = w.queue_image_of(ALICE, project, &key, "living_room", "modern").await;
    while !w.receive_event(10).await.records.is_empty() {}
    delete_image(w, first.image_id).await;
    (project, key, first)
}

async fn create_of(w: &WorkerApp, project: uuid::Uuid, key: &str) -> TestResponse {
    call("POST", "/api/v1/images")
        .bearer(&w.staging.app.token(ALICE))
        .json(json!({"project_id": project, "file_key": key, "room_type": "bedroom", "style": "scandinavian"}))
        .send(&w.staging.staging, &w.staging.staging.api.web, create_image::handle)
        .await
}

async fn purged(w: &WorkerApp, image: uuid::Uuid) -> bool {
    sqlx::query_scalar("SELECT purged_at IS NOT NULL FROM images WHERE id = $1")
        .bind(image)
        .fetch_one(w.db())
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_create_after_the_purge_took_the_original_fails_cleanly_saying_the_upload_is_gone(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let storage = &w.staging.storage.storage;
    let (project, key, first) = deleted_variant(&w).await;
    let used_before = w.ledger(first.image_id).await;

    let mut holder = w.db().begin().await.unwrap();
    shared::db::images::lock_original(&mut holder, &key).await.unwrap();
    let db = w.db().clone();
    let (report, response, ()) = tokio::join!(
        reconcile(&w),
        async {
            until_waiters(&db, 1).await; // the purge is queued first
            create_of(&w, project, &key).await
        },
        async {
            until_waiters(&db, 2).await; // then the create
            holder.commit().await.unwrap();
        }
    );

    assert_eq!(report.purged_images, 1, "{report:?}");
    assert!(
        storage.head(&key).await.unwrap().is_none(),
        "the purge deleted the original"
    );
    assert_eq!(response.status, 422, "{}", String::from_utf8_lossy(&response.body));
    let body = String::from_utf8_lossy(&response.body).into_owned();
    assert!(body.contains("file_key") && body.contains("deleted"), "{body}");
    // Nothing was created or reserved for it.
    let images: i64 = sqlx::query_scalar("SELECT count(*) FROM images WHERE original_key = $1")
        .bind(&key)
        .fetch_one(w.db())
        .await
        .unwrap();
    assert_eq!(images, 1);
    let reservations: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_ledger WHERE kind = 'reserve'")
        .fetch_one(w.db())
        .await
        .unwrap();
    assert_eq!(reservations, 1);
    assert_eq!(w.ledger(first.image_id).await, used_before);
}

#[sqlx::test]
async fn a_create_that_took_the_original_first_keeps_it_from_the_purge(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let storage = &w.staging.storage.storage;
    let (project, key, first) = deleted_variant(&w).await;

    let mut holder = w.db().begin().await.unwrap();
    shared::db::images::lock_original(&mut holder, &key).await.unwrap();
    let db = w.db().clone();
    let (response, report, ()) = tokio::join!(
        create_of(&w, project, &key), // the create is queued first
        async {
            until_waiters(&db, 1).await;
            reconcile(&w).await // then the purge
        },
        async {
            until_waiters(&db, 2).await;
            holder.commit().await.unwrap();
        }
    );

    assert_eq!(response.status, 201, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(report.purged_images, 1, "the deleted variant is purged: {report:?}");
    assert!(purged(&w, first.image_id).await);
    assert!(
        storage.head(&key).await.unwrap().is_some(),
        "the original stays: the new image uses it"
    );
    // And the new image really stages from it.
    let created: uuid::Uuid = response.json()["id"].as_str().unwrap().parse().unwrap();
    assert!(w.deliver().await.is_empty());
    assert_eq!(w.image_row(created).await.status, "ready");
}

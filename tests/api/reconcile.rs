//! The reconcile function: lost messages re-sent, expired jobs settled (asking Replicate first),
//! deleted images' objects purged — idempotent, and safe with two runs at once.

use std::time::Duration;

use serde_json::{Value, json};
use shared::staging::imaging::samples;
use shared::staging::reconcile::ReconcileReport;
use sqlx::PgPool;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::*;

const ALICE: &str = "auth0|alice";
const QWEN: &str = "qwen/qwen-image-edit";

pub(crate) async fn reconcile(w: &WorkerApp) -> ReconcileReport {
    let mut context = shared::lambda_runtime::Context::default();
    context.deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // The scheduled event EventBridge sends.
    let event = json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-25T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/reconcile"], "detail": {}
    });
    reconcile::handle(
        std::sync::Arc::clone(&w.worker),
        shared::lambda_runtime::LambdaEvent::new(event, context),
    )
    .await
    .unwrap()
}

/// Drains the queue and returns the job ids of the messages on it.
async fn drain(w: &WorkerApp) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    loop {
        let event = w.receive_event(10).await;
        if event.records.is_empty() {
            return ids;
        }
        for record in &event.records {
            let message = shared::staging::queue::JobMessage::parse(record.body.as_deref().unwrap()).unwrap();
            ids.push(message.job_id);
            w.staging
                .staging
                .queue
                .delete(record.receipt_handle.as_deref().unwrap())
                .await
                .unwrap();
        }
    }
}

/// Makes a job look as if its SQS send failed `age` ago.
async fn make_unsent(w: &WorkerApp, job: uuid::Uuid, age_secs: i64) {
    sqlx::query("UPDATE jobs SET enqueued_at = NULL, created_at = now() - make_interval(secs => $2) WHERE id = $1")
        .bind(job)
        .bind(age_secs as f64)
        .execute(w.db())
        .await
        .unwrap();
}

async fn enqueued(w: &WorkerApp, job: uuid::Uuid) -> bool {
    sqlx::query_scalar("SELECT enqueued_at IS NOT NULL FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(w.db())
        .await
        .unwrap()
}

#[sqlx::test]
async fn an_unsent_job_is_sent_again_once(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let old = w
        .queue_image(ALICE, samples::room_jpeg(320, 200), "living_room", "modern")
        .await;
    let fresh = w
        .queue_image("auth0|bob", samples::room_jpeg(320, 200), "living_room", "modern")
        .await;
    drain(&w).await;
    make_unsent(&w, old.job_id, 120).await;
    // Just created: the API may still be sending it; left alone.
    make_unsent(&w, fresh.job_id, 5).await;

    let report = reconcile(&w).await;
    assert_eq!((report.resent, report.resend_refused), (1, 0), "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(drain(&w).await, vec![old.job_id]);
    assert!(enqueued(&w, old.job_id).await);
    assert!(!enqueued(&w, fresh.job_id).await);

    // Idempotent: a second run right after sends nothing.
    assert_eq!(reconcile(&w).await.resent, 0);
    assert!(drain(&w).await.is_empty());

    // The re-sent message is a normal job message: the worker stages it.
    shared::staging::queue::JobQueue::send(
        &w.staging.staging.queue,
        &[shared::staging::queue::JobMessage::new(old.job_id, old.image_id)],
    )
    .await;
    assert!(w.deliver().await.is_empty());
    assert_eq!(w.image_row(old.image_id).await.status, "ready");
}

#[sqlx::test]
async fn a_job_whose_message_went_missing_is_sent_again(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let lost = w
        .queue_image(ALICE, samples::room_jpeg(320, 200), "living_room", "modern")
        .await;
    drain(&w).await;
    // Sent 20 minutes ago and never finished (nobody holds it).
    sqlx::query("UPDATE jobs SET enqueued_at = now() - interval '20 minutes' WHERE id = $1")
        .bind(lost.job_id)
        .execute(w.db())
        .await
        .unwrap();
    assert_eq!(reconcile(&w).await.resent, 1);
    assert_eq!(drain(&w).await, vec![lost.job_id]);
}

#[sqlx::test]
async fn two_reconcilers_at_once_send_each_message_once(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let mut jobs = Vec::new();
    for i in 0..12 {
        let queued = w
            .queue_image(
                &format!("auth0|user-{i}"),
                samples::room_jpeg(64, 48),
                "living_room",
                "modern",
            )
            .await;
        jobs.push(queued.job_id);
    }
    drain(&w).await;
    for job in &jobs {
        make_unsent(&w, *job, 300).await;
    }
    let (a, b) = tokio::join!(reconcile(&w), reconcile(&w));
    assert_eq!(a.resent + b.resent, 12, "{a:?} {b:?}");
    let mut sent = drain(&w).await;
    sent.sort();
    jobs.sort();
    assert_eq!(sent, jobs, "every job once, none twice");
}

#[sqlx::test]
async fn an_expired_job_is_failed_after_asking_replicate_and_refunded_once(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w
        .queue_image(ALICE, samples::room_jpeg(320, 200), "living_room", "modern")
        .await;
    drain(&w).await;
    // A worker created the prediction, then died; the deadline has passed since.
    sqlx::query(
        "UPDATE jobs SET status = 'processing', attempts = 1, prediction_id = 'p20stuck', model_id = $2, \
         deadline_at = now() - interval '1 minute', lease_until = now() - interval '2 minutes' WHERE id = $1",
    )
    .bind(queued.job_id)
    .bind(QWEN)
    .execute(w.db())
    .await
    .unwrap();
    Mock::given(method("GET"))
        .and(path("/v1/predictions/p20stuck"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction("p20stuck", QWEN, "processing", Value::Null)))
        .expect(1..)
        .mount(&w.replicate)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/predictions/p20stuck/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction("p20stuck", QWEN, "canceled", Value::Null)))
        .expect(1)
        .mount(&w.replicate)
        .await;

    let (a, b) = tokio::join!(reconcile(&w), reconcile(&w));
    assert_eq!(a.expired_failed + b.expired_failed, 1, "{a:?} {b:?}");
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "error");
    assert!(image.error.unwrap().contains("took too long"));
    assert_eq!(w.ledger(queued.image_id).await, (1, 1));
    assert_eq!(w.job_row(queued.job_id).await.status, "failed");
    assert_eq!(w.creates().await, 0, "an expired job never creates a prediction");

    // Later runs leave the failed job alone.
    let again = reconcile(&w).await;
    assert_eq!((again.expired_failed, again.expired_staged, again.resent), (0, 0, 0));
    assert_eq!(w.ledger(queued.image_id).await, (1, 1));
}

#[sqlx::test]
async fn an_expired_job_whose_prediction_succeeded_is_finished_not_failed(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w
        .queue_image(ALICE, samples::room_jpeg(320, 200), "bedroom", "modern")
        .await;
    drain(&w).await;
    sqlx::query(
        "UPDATE jobs SET status = 'processing', attempts = 1, prediction_id = 'p21done', model_id = $2, \
         deadline_at = now() - interval '1 minute' WHERE id = $1",
    )
    .bind(queued.job_id)
    .bind(QWEN)
    .execute(w.db())
    .await
    .unwrap();
    let output = w.file_url("out.jpg");
    Mock::given(method("GET"))
        .and(path("/v1/predictions/p21done"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction(
            "p21done",
            QWEN,
            "succeeded",
            json!([output]),
        )))
        .mount(&w.replicate)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/out.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(samples::room_jpeg(320, 200), "image/jpeg"))
        .mount(&w.replicate)
        .await;

    let report = reconcile(&w).await;
    assert_eq!(report.expired_staged, 1, "{report:?}");
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "ready");
    assert_eq!(
        w.ledger(queued.image_id).await,
        (1, 0),
        "a delivered image is not refunded"
    );
}

#[sqlx::test]
async fn a_job_never_picked_up_expires_an_hour_after_creation(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w
        .queue_image(ALICE, samples::room_jpeg(320, 200), "living_room", "modern")
        .await;
    drain(&w).await;
    sqlx::query("UPDATE jobs SET created_at = now() - interval '2 hours' WHERE id = $1")
        .bind(queued.job_id)
        .execute(w.db())
        .await
        .unwrap();
    let report = reconcile(&w).await;
    assert_eq!((report.expired_failed, report.resent), (1, 0), "{report:?}");
    assert_eq!(w.image_row(queued.image_id).await.status, "error");
    assert_eq!(w.ledger(queued.image_id).await, (1, 1));
    // No model call: the only requests are the orphan sweep's reads of the prediction list.
    let calls = w.replicate_calls().await;
    assert!(
        calls.iter().all(|(m, p)| m == "GET" && p == "/v1/predictions"),
        "{calls:?}"
    );
}

#[sqlx::test]
async fn deleted_images_are_purged_from_storage_keeping_originals_still_in_use(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let storage = &w.staging.storage.storage;
    // Two variants of one upload, and a third image of its own upload; all staged.
    let project = w.staging.project(ALICE, "3 Birch Lane").await;
    let shared_key = w
        .upload_bytes(
            ALICE,
            shared::clients::storage::ImageFormat::Jpeg,
            samples::room_jpeg(320, 200),
        )
        .await;
    let own_key = w
        .upload_bytes(
            ALICE,
            shared::clients::storage::ImageFormat::Jpeg,
            samples::room_jpeg(320, 200),
        )
        .await;
    let modern = w
        .queue_image_of(ALICE, project, &shared_key, "living_room", "modern")
        .await;
    let rustic = w
        .queue_image_of(ALICE, project, &shared_key, "living_room", "traditional")
        .await;
    let alone = w.queue_image_of(ALICE, project, &own_key, "bedroom", "modern").await;
    while !w.receive_event(10).await.records.is_empty() {}
    for image in [modern, rustic, alone] {
        shared::staging::queue::JobQueue::send(
            &w.staging.staging.queue,
            &[shared::staging::queue::JobMessage::new(image.job_id, image.image_id)],
        )
        .await;
        assert!(w.deliver().await.is_empty());
    }
    let wr = &w;
    let staged = move |id| async move { wr.image_row(id).await.staged_key.unwrap() };
    let (modern_staged, alone_staged) = (staged(modern.image_id).await, staged(alone.image_id).await);

    for id in [modern.image_id, alone.image_id] {
        let response = call("DELETE", "/api/v1/images/{id}")
            .path_param("id", id)
            .bearer(&w.staging.app.token(ALICE))
            .send(&w.staging.staging.api, &w.staging.staging.api.web, delete_image::handle)
            .await;
        assert_eq!(response.status, 204);
    }
    let report = reconcile(&w).await;
    assert_eq!(report.purged_images, 2, "{report:?}");
    // Two results, the unshared original, and each image's four renditions.
    assert_eq!(
        report.deleted_objects,
        3 + 2 * 4,
        "two results, the unshared original, eight renditions"
    );
    assert!(storage.head(&modern_staged).await.unwrap().is_none());
    assert!(storage.head(&alone_staged).await.unwrap().is_none());
    assert!(storage.head(&own_key).await.unwrap().is_none());
    assert!(
        storage.head(&shared_key).await.unwrap().is_some(),
        "the live variant still needs the original"
    );
    let purged: i64 = sqlx::query_scalar("SELECT count(*) FROM images WHERE purged_at IS NOT NULL")
        .fetch_one(w.db())
        .await
        .unwrap();
    assert_eq!(purged, 2);
    // The live variant is untouched and still viewable.
    assert!(storage.head(&staged(rustic.image_id).await).await.unwrap().is_some());
    assert_eq!(reconcile(&w).await.purged_images, 0, "nothing twice");

    // Once the last variant is deleted, the original goes too.
    let response = call("DELETE", "/api/v1/images/{id}")
        .path_param("id", rustic.image_id)
        .bearer(&w.staging.app.token(ALICE))
        .send(&w.staging.staging.api, &w.staging.staging.api.web, delete_image::handle)
        .await;
    assert_eq!(response.status, 204);
    let report = reconcile(&w).await;
    // Its result, the original, and its four renditions.
    assert_eq!((report.purged_images, report.deleted_objects), (1, 2 + 4), "{report:?}");
    assert!(storage.head(&shared_key).await.unwrap().is_none());
}

#[sqlx::test]
async fn an_image_whose_job_is_running_is_not_purged_until_the_worker_lets_go(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let queued = w
        .queue_image(ALICE, samples::room_jpeg(320, 200), "living_room", "modern")
        .await;
    sqlx::query("UPDATE jobs SET status = 'processing', lease_until = now() + interval '5 minutes' WHERE id = $1")
        .bind(queued.job_id)
        .execute(w.db())
        .await
        .unwrap();
    sqlx::query("UPDATE images SET deleted_at = now() WHERE id = $1")
        .bind(queued.image_id)
        .execute(w.db())
        .await
        .unwrap();
    assert_eq!(reconcile(&w).await.purged_images, 0);
    sqlx::query("UPDATE jobs SET lease_until = NULL WHERE id = $1")
        .bind(queued.job_id)
        .execute(w.db())
        .await
        .unwrap();
    assert_eq!(reconcile(&w).await.purged_images, 1);
}

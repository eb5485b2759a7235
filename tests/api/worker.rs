//! The stage-worker function: real SQS messages (moto) delivered as Lambda events, the original and
//! the result in real storage (s3s-fs), jobs and the ledger in Postgres, and Replicate faked over
//! HTTP with its documented prediction shapes.

use std::time::Duration;

use serde_json::{Value, json};
use shared::staging::imaging::samples;
use sqlx::PgPool;
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::support::*;

const ALICE: &str = "auth0|alice";
const QWEN_CREATE: &str = "/v1/models/qwen/qwen-image-edit/predictions";
const QWEN: &str = "qwen/qwen-image-edit";

fn room() -> Vec<u8> {
    samples::room_jpeg(640, 427)
}

/// Replicate answers create with `first`, then GET with each of `then` in turn (the last one
/// repeats), and serves the output file.
async fn fake_replicate(w: &WorkerApp, id: &str, first: &str, then: &[Value]) {
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(id, QWEN, first, Value::Null)))
        .mount(&w.replicate)
        .await;
    let get = format!("/v1/predictions/{id}");
    for (i, body) in then.iter().enumerate() {
        let mock = Mock::given(method("GET"))
            .and(path(get.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body.clone()));
        // wiremock picks the first mounted mock that still matches: all but the last answer once.
        if i + 1 < then.len() {
            mock.up_to_n_times(1).mount(&w.replicate).await;
        } else {
            mock.mount(&w.replicate).await;
        }
    }
}

async fn serve_file(w: &WorkerApp, name: &str, bytes: Vec<u8>, content_type: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/files/{name}")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(bytes, content_type))
        .mount(&w.replicate)
        .await;
}

async fn stored(w: &WorkerApp, key: &str) -> Vec<u8> {
    w.staging
        .storage
        .storage
        .get_bounded(key, 50 << 20)
        .await
        .unwrap()
        .expect("object exists")
}

async fn images_used(w: &WorkerApp, sub: &str) -> i64 {
    let response = call("GET", "/api/v1/billing/usage")
        .bearer(&w.staging.app.token(sub))
        .send(
            &w.staging.staging.api,
            &w.staging.staging.api.web,
            billing_usage::handle,
        )
        .await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()["images_used"].as_i64().unwrap()
}

#[sqlx::test]
async fn a_succeeded_prediction_becomes_a_ready_jpeg_with_model_cost_and_time(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "bedroom", "scandinavian").await;
    let output = w.file_url("out-0.webp");
    fake_replicate(
        &w,
        "p1succeeds",
        "starting",
        &[
            prediction("p1succeeds", QWEN, "processing", Value::Null),
            prediction("p1succeeds", QWEN, "succeeded", json!([output])),
        ],
    )
    .await;
    serve_file(&w, "out-0.webp", samples::room_webp(640, 427), "image/webp").await;

    assert!(w.deliver().await.is_empty(), "no failures reported");

    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "ready", "{image:?}");
    assert_eq!(image.model_used.as_deref(), Some(QWEN));
    assert_eq!(image.replicate_prediction_id.as_deref(), Some("p1succeeds"));
    assert_eq!(image.cost_usd.as_deref(), Some("0.0300"));
    assert_eq!(image.processing_time_ms, Some(8250));
    assert_eq!(image.staged_content_type.as_deref(), Some("image/jpeg"));
    let key = image.staged_key.unwrap();
    assert_eq!(key, format!("staged/{}/{}.jpg", queued.user_id, queued.image_id));
    // Model output in WebP is stored as a valid JPEG.
    let jpeg = stored(&w, &key).await;
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF]);
    let checked =
        shared::staging::imaging::inspect_original(&jpeg, &shared::staging::imaging::ImageLimits::ORIGINAL).unwrap();
    assert_eq!((checked.width, checked.height), (640, 427));

    let job = w.job_row(queued.job_id).await;
    assert_eq!((job.status.as_str(), job.attempts, job.leased), ("completed", 1, false));
    assert_eq!(job.model_id.as_deref(), Some(QWEN));
    assert_eq!(w.ledger(queued.image_id).await, (1, 0));
    assert_eq!(images_used(&w, ALICE).await, 1);

    // What Replicate was asked: the documented create call with a presigned GET of the original
    // (never an inline data URL), the bedroom prompt, and the wait and deadline headers.
    let requests = w.replicate.received_requests().await.unwrap();
    let create = requests.iter().find(|r| r.url.path() == QWEN_CREATE).unwrap();
    assert_eq!(
        create.headers.get("authorization").unwrap(),
        &format!("Bearer {REPLICATE_TOKEN}")
    );
    assert_eq!(create.headers.get("prefer").unwrap(), "wait=1");
    assert_eq!(create.headers.get("cancel-after").unwrap(), "10m");
    let body: Value = serde_json::from_slice(&create.body).unwrap();
    let input = &body["input"];
    let image_url = input["image"].as_str().unwrap();
    assert!(
        image_url.starts_with(&std::env::var("TEST_S3_ENDPOINT").unwrap()),
        "{image_url}"
    );
    assert!(image_url.contains("X-Amz-Signature="), "{image_url}");
    assert!(input["prompt"].as_str().unwrap().to_lowercase().contains("bed"));
    assert_eq!(input["output_format"], "jpg");
    assert_eq!(input["aspect_ratio"], "match_input_image");
    // The model was given the job's own checked copy of the original (its key names the job);
    // once the job is over the copy is deleted (what the model read is in prediction_adoption.rs).
    let input_key = format!("inputs/{}/{}.jpg", queued.user_id, queued.job_id);
    assert!(image_url.contains(&input_key), "{image_url}");
    let fetched = shared::reqwest::get(image_url).await.unwrap();
    assert_eq!(fetched.status(), 404, "the input copy is gone after the job");
    // The output host is not sent the API token.
    let download = requests.iter().find(|r| r.url.path() == "/files/out-0.webp").unwrap();
    assert!(download.headers.get("authorization").is_none());
}

#[sqlx::test]
async fn png_output_is_stored_as_jpeg_and_a_string_output_is_accepted(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    let output = w.file_url("out.png");
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction("p2png", QWEN, "succeeded", json!(output))))
        .expect(1)
        .mount(&w.replicate)
        .await;
    serve_file(&w, "out.png", samples::room_png(320, 200), "image/png").await;

    assert!(w.deliver().await.is_empty());
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "ready");
    let jpeg = stored(&w, image.staged_key.as_deref().unwrap()).await;
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF]);
    // Finished inside `Prefer: wait`: no poll was needed.
    assert!(
        !w.replicate_calls()
            .await
            .iter()
            .any(|(m, p)| m == "GET" && p.starts_with("/v1/predictions/"))
    );
}

#[sqlx::test]
async fn a_failed_prediction_marks_the_image_error_and_refunds_once(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "kitchen", "industrial").await;
    fake_replicate(
        &w,
        "p3fails",
        "starting",
        &[prediction("p3fails", QWEN, "failed", Value::Null)],
    )
    .await;
    assert_eq!(images_used(&w, ALICE).await, 1);

    assert!(w.deliver().await.is_empty(), "a permanent failure is not retried");
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "error");
    let message = image.error.unwrap();
    assert!(
        message.contains("CUDA out of memory") && message.contains("refunded"),
        "{message}"
    );
    assert_eq!(w.ledger(queued.image_id).await, (1, 1));
    assert_eq!(images_used(&w, ALICE).await, 0);

    // The same message again (SQS at-least-once): nothing changes, no second refund.
    shared::staging::queue::JobQueue::send(
        &w.staging.staging.queue,
        &[shared::staging::queue::JobMessage::new(queued.job_id, queued.image_id)],
    )
    .await;
    assert!(w.deliver().await.is_empty());
    assert_eq!(w.ledger(queued.image_id).await, (1, 1));
    assert_eq!(images_used(&w, ALICE).await, 0);
    assert_eq!(w.creates().await, 1);
    // And a direct second failure of the finished job changes nothing either.
    let again = shared::db::jobs::fail(w.db(), queued.job_id, "x", shared::db::jobs::Refund::GiveBack)
        .await
        .unwrap();
    assert!(!again);
    assert_eq!(w.ledger(queued.image_id).await, (1, 1));
}

#[sqlx::test]
async fn canceled_and_aborted_predictions_fail_with_a_clear_message(db: PgPool) {
    for status in ["canceled", "aborted"] {
        let w = spawn_worker(db.clone()).await;
        let sub = format!("auth0|{status}");
        let queued = w.queue_image(&sub, room(), "office", "traditional").await;
        let id = format!("p4{status}");
        fake_replicate(&w, &id, "starting", &[prediction(&id, QWEN, status, Value::Null)]).await;
        assert!(w.deliver().await.is_empty());
        let image = w.image_row(queued.image_id).await;
        assert_eq!(image.status, "error", "{status}");
        assert!(image.error.unwrap().contains("took too long"), "{status}");
        assert_eq!(w.ledger(queued.image_id).await, (1, 1), "{status}");
    }
}

#[sqlx::test]
async fn a_throttled_create_is_retried_after_retry_after_and_creates_one_prediction(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "dining_room", "contemporary").await;
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"detail": "Request was throttled. Your rate limit resets in ~1s."})),
        )
        .up_to_n_times(1)
        .mount(&w.replicate)
        .await;
    let output = w.file_url("out.jpg");
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(
            "p5throttled",
            QWEN,
            "succeeded",
            json!([output]),
        )))
        .mount(&w.replicate)
        .await;
    serve_file(&w, "out.jpg", samples::room_jpeg(300, 200), "image/jpeg").await;

    let started = std::time::Instant::now();
    assert!(w.deliver().await.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900), "Retry-After honoured");
    assert_eq!(w.image_row(queued.image_id).await.status, "ready");
    assert_eq!(w.creates().await, 2, "one refused by the throttle, one created");
    assert_eq!(
        w.job_row(queued.job_id).await.prediction_id.as_deref(),
        Some("p5throttled")
    );
}

#[sqlx::test]
async fn server_errors_while_polling_are_retried(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "entryway", "modern").await;
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction("p6poll", QWEN, "starting", Value::Null)))
        .mount(&w.replicate)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/predictions/p6poll"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream hiccup"))
        .up_to_n_times(3)
        .mount(&w.replicate)
        .await;
    let output = w.file_url("out.jpg");
    Mock::given(method("GET"))
        .and(path("/v1/predictions/p6poll"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction(
            "p6poll",
            QWEN,
            "succeeded",
            json!([output]),
        )))
        .mount(&w.replicate)
        .await;
    serve_file(&w, "out.jpg", samples::room_jpeg(300, 200), "image/jpeg").await;

    assert!(w.deliver().await.is_empty());
    assert_eq!(w.image_row(queued.image_id).await.status, "ready");
    assert_eq!(w.creates().await, 1);
}

#[sqlx::test]
async fn past_its_deadline_a_running_prediction_is_canceled_and_the_image_fails(db: PgPool) {
    let config = shared::staging::worker::WorkerConfig {
        job_deadline: Duration::from_secs(1),
        ..fast_worker_config()
    };
    let w = spawn_worker_with(db, config, false).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "industrial").await;
    fake_replicate(
        &w,
        "p7slow",
        "starting",
        &[prediction("p7slow", QWEN, "processing", Value::Null)],
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/predictions/p7slow/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction("p7slow", QWEN, "canceled", Value::Null)))
        .expect(1)
        .mount(&w.replicate)
        .await;

    assert!(w.deliver().await.is_empty());
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "error");
    assert!(image.error.unwrap().contains("took too long"));
    assert_eq!(w.ledger(queued.image_id).await, (1, 1));
    let job = w.job_row(queued.job_id).await;
    assert_eq!(job.status, "failed");
    // Replicate was given the same deadline (Cancel-After) when the prediction was created.
    let requests = w.replicate.received_requests().await.unwrap();
    let create = requests.iter().find(|r| r.url.path() == QWEN_CREATE).unwrap();
    assert_eq!(create.headers.get("cancel-after").unwrap(), "1s");
}

#[sqlx::test]
async fn the_same_message_delivered_twice_at_once_creates_one_prediction(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "bathroom", "scandinavian").await;
    let output = w.file_url("out.jpg");
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(prediction("p8twice", QWEN, "succeeded", json!([output])))
                .set_delay(Duration::from_millis(300)),
        )
        .mount(&w.replicate)
        .await;
    serve_file(&w, "out.jpg", samples::room_jpeg(300, 200), "image/jpeg").await;

    let event = w.receive_event(1).await;
    assert_eq!(event.records.len(), 1);
    let (a, b) = tokio::join!(
        w.run_worker(event.clone(), Duration::from_secs(30)),
        w.run_worker(event.clone(), Duration::from_secs(30))
    );
    assert!(
        a.is_empty() && b.is_empty(),
        "the duplicate is not an error: {a:?} {b:?}"
    );
    assert_eq!(w.creates().await, 1, "exactly one paid prediction");
    assert_eq!(w.image_row(queued.image_id).await.status, "ready");
    // A late third delivery finds the job finished.
    assert!(w.run_worker(event, Duration::from_secs(30)).await.is_empty());
    assert_eq!(w.creates().await, 1);
    assert_eq!(w.job_row(queued.job_id).await.attempts, 1);
}

#[sqlx::test]
async fn a_worker_killed_after_create_is_resumed_on_the_same_prediction(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "traditional").await;
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction("p9resume", QWEN, "starting", Value::Null)))
        .mount(&w.replicate)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/predictions/p9resume"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction("p9resume", QWEN, "processing", Value::Null)))
        .mount(&w.replicate)
        .await;

    // The first worker runs until the prediction id is stored, then dies (its task is dropped
    // mid-poll, as when Lambda kills an instance).
    let event = w.receive_event(1).await;
    let first = tokio::spawn({
        let w_worker = std::sync::Arc::clone(&w.worker);
        let event = event.clone();
        async move {
            let mut context = shared::lambda_runtime::Context::default();
            context.deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            stage_worker::handle(w_worker, shared::lambda_runtime::LambdaEvent::new(event, context)).await
        }
    });
    for _ in 0..200 {
        if w.job_row(queued.job_id).await.prediction_id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.abort();
    let _ = first.await;
    let job = w.job_row(queued.job_id).await;
    assert_eq!(job.prediction_id.as_deref(), Some("p9resume"));
    assert!(job.leased, "the dead worker's lease is still running");

    // While the lease runs, a redelivery leaves the job alone.
    assert!(w.run_worker(event.clone(), Duration::from_secs(5)).await.is_empty());
    assert_eq!(w.creates().await, 1);

    // The lease runs out; the next delivery resumes the stored prediction, which has finished.
    sqlx::query("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1")
        .bind(queued.job_id)
        .execute(w.db())
        .await
        .unwrap();
    w.replicate.reset().await;
    let output = w.file_url("out.jpg");
    Mock::given(method("GET"))
        .and(path("/v1/predictions/p9resume"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction(
            "p9resume",
            QWEN,
            "succeeded",
            json!([output]),
        )))
        .expect(1..)
        .mount(&w.replicate)
        .await;
    serve_file(&w, "out.jpg", samples::room_jpeg(300, 200), "image/jpeg").await;
    assert!(w.run_worker(event, Duration::from_secs(30)).await.is_empty());
    assert_eq!(w.creates().await, 0, "no second prediction");
    let image = w.image_row(queued.image_id).await;
    assert_eq!(
        (image.status.as_str(), image.replicate_prediction_id.as_deref()),
        ("ready", Some("p9resume"))
    );
    assert_eq!(w.job_row(queued.job_id).await.attempts, 2);
}

#[sqlx::test]
async fn a_prediction_still_running_at_the_end_of_the_invocation_comes_back_later(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "office", "modern").await;
    fake_replicate(
        &w,
        "p10long",
        "starting",
        &[prediction("p10long", QWEN, "processing", Value::Null)],
    )
    .await;

    let event = w.receive_event(1).await;
    let message_id = event.records[0].message_id.clone().unwrap();
    let failures = w.run_worker(event, Duration::from_millis(900)).await;
    assert_eq!(failures, vec![message_id], "reported for redelivery");
    let job = w.job_row(queued.job_id).await;
    assert_eq!(
        (job.status.as_str(), job.leased),
        ("processing", false),
        "released for the next delivery"
    );
    assert_eq!(job.prediction_id.as_deref(), Some("p10long"));
    assert_eq!(w.image_row(queued.image_id).await.status, "processing");
    // Its visibility was shortened: the message is back on the queue at once.
    let again = w.receive_event(1).await;
    assert_eq!(again.records.len(), 1);
    assert_eq!(w.creates().await, 1);
}

#[sqlx::test]
async fn a_batch_with_a_poison_message_reports_only_that_message(db: PgPool) {
    let w = spawn_worker(db).await;
    let first = w.queue_image(ALICE, room(), "living_room", "modern").await;
    let second = w.queue_image("auth0|bob", room(), "bedroom", "modern").await;
    let output = w.file_url("out.jpg");
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(
            "p11batch",
            QWEN,
            "succeeded",
            json!([output]),
        )))
        .up_to_n_times(1)
        .mount(&w.replicate)
        .await;
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(
            "p11batch2",
            QWEN,
            "succeeded",
            json!([output]),
        )))
        .mount(&w.replicate)
        .await;
    serve_file(&w, "out.jpg", samples::room_jpeg(300, 200), "image/jpeg").await;

    let mut event = w.receive_event(10).await;
    assert_eq!(event.records.len(), 2);
    let mut poison = event.records[0].clone();
    poison.message_id = Some("poison-1".into());
    poison.body = Some("<html>not a job</html>".into());
    let mut unknown = event.records[0].clone();
    unknown.message_id = Some("unknown-job".into());
    unknown.body = Some(
        serde_json::to_string(&shared::staging::queue::JobMessage::new(
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
        ))
        .unwrap(),
    );
    let mut wrong_version = event.records[0].clone();
    wrong_version.message_id = Some("version-9".into());
    wrong_version.body = Some(json!({"version": 9, "job_id": first.job_id, "image_id": first.image_id}).to_string());
    event.records.insert(1, poison);
    event.records.push(unknown);
    event.records.push(wrong_version);

    let mut failures = w.run_worker(event, Duration::from_secs(30)).await;
    failures.sort();
    // A well-formed message naming no job is acknowledged (its job is gone); only the
    // malformed ones come back, to end in the dead-letter queue.
    assert_eq!(failures, vec!["poison-1", "version-9"]);
    assert_eq!(w.image_row(first.image_id).await.status, "ready");
    assert_eq!(w.image_row(second.image_id).await.status, "ready");
}

#[sqlx::test]
async fn originals_that_are_not_safe_images_fail_without_a_model_call(db: PgPool) {
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("pixel flood", samples::pixel_flood_png(), "pixel"),
        ("truncated jpeg", samples::truncated_jpeg(), "truncated"),
        ("html as jpeg", samples::html_named_jpeg(), "not a JPEG, PNG or WebP"),
    ];
    let w = spawn_worker(db).await;
    Mock::given(method("POST"))
        .and(path_regex("^/v1/models/"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&w.replicate)
        .await;
    for (i, (name, bytes, expected)) in cases.into_iter().enumerate() {
        let sub = format!("auth0|uploader-{i}");
        let queued = w.queue_image(&sub, bytes, "living_room", "modern").await;
        assert!(w.deliver().await.is_empty(), "{name}");
        let image = w.image_row(queued.image_id).await;
        assert_eq!(image.status, "error", "{name}");
        let message = image.error.unwrap();
        assert!(
            message.to_lowercase().contains(&expected.to_lowercase()),
            "{name}: {message}"
        );
        assert!(
            message.contains("Upload a JPEG, PNG or WebP photo"),
            "{name}: {message}"
        );
        assert_eq!(w.ledger(queued.image_id).await, (1, 1), "{name}: allowance given back");
        assert_eq!(images_used(&w, &sub).await, 0, "{name}");
    }
    assert!(w.replicate_calls().await.is_empty(), "no model call was made");
}

#[sqlx::test]
async fn a_model_rejecting_the_input_is_permanent_and_a_server_error_on_create_is_retried(db: PgPool) {
    let w = spawn_worker(db).await;
    // 422 from Replicate: the input will never be accepted.
    let rejected = w.queue_image(ALICE, room(), "living_room", "modern").await;
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"detail": "input.image: could not fetch"})))
        .up_to_n_times(1)
        .mount(&w.replicate)
        .await;
    assert!(w.deliver().await.is_empty());
    let image = w.image_row(rejected.image_id).await;
    assert_eq!(image.status, "error");
    assert!(image.error.unwrap().contains("could not fetch"));
    assert_eq!(w.ledger(rejected.image_id).await, (1, 1));

    // 500 on create: create is not retried in place (it may have gone through), the job is
    // released and its message comes back.
    let retried = w.queue_image("auth0|carol", room(), "living_room", "modern").await;
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(503).set_body_string("unavailable"))
        .up_to_n_times(1)
        .mount(&w.replicate)
        .await;
    let event = w.receive_event(1).await;
    let id = event.records[0].message_id.clone().unwrap();
    assert_eq!(w.run_worker(event, Duration::from_secs(30)).await, vec![id]);
    let job = w.job_row(retried.job_id).await;
    assert_eq!(
        (job.status.as_str(), job.leased, job.attempts),
        ("processing", false, 1)
    );
    assert!(job.error.unwrap().contains("503"));
    assert_eq!(
        w.ledger(retried.image_id).await,
        (1, 0),
        "no refund for a retryable fault"
    );

    // The redelivery first asks Replicate's list whether that create made a prediction after all
    // (none here), and only then creates.
    Mock::given(method("GET"))
        .and(path("/v1/predictions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"next": null, "previous": null, "results": []})))
        .mount(&w.replicate)
        .await;
    let output = w.file_url("out.jpg");
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(
            "p12second",
            QWEN,
            "succeeded",
            json!([output]),
        )))
        .mount(&w.replicate)
        .await;
    serve_file(&w, "out.jpg", samples::room_jpeg(300, 200), "image/jpeg").await;
    assert!(w.deliver().await.is_empty());
    assert_eq!(w.image_row(retried.image_id).await.status, "ready");
    assert_eq!(w.job_row(retried.job_id).await.attempts, 2);
}

#[sqlx::test]
async fn retryable_faults_stop_after_max_attempts_with_a_refund(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(502))
        .mount(&w.replicate)
        .await;
    // Each retry looks for a prediction the lost create may have made first: none.
    Mock::given(method("GET"))
        .and(path("/v1/predictions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"next": null, "previous": null, "results": []})))
        .mount(&w.replicate)
        .await;
    for attempt in 1..=5 {
        let failures = w.deliver().await;
        let job = w.job_row(queued.job_id).await;
        assert_eq!(job.attempts, attempt);
        if attempt < 5 {
            assert_eq!(failures.len(), 1, "attempt {attempt} comes back");
            assert_eq!(job.status, "processing");
        } else {
            assert!(failures.is_empty(), "the last attempt settles the job");
            assert_eq!(job.status, "failed");
        }
    }
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "error");
    assert!(image.error.unwrap().contains("failed repeatedly"));
    assert_eq!(w.ledger(queued.image_id).await, (1, 1));
}

#[sqlx::test]
async fn the_active_model_setting_is_read_per_job(db: PgPool) {
    let w = spawn_worker(db).await;
    sqlx::query("UPDATE settings SET value = 'black-forest-labs/flux-kontext-pro' WHERE key = 'active_model'")
        .execute(w.db())
        .await
        .unwrap();
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    let output = w.file_url("out.jpg");
    Mock::given(method("POST"))
        .and(path("/v1/models/black-forest-labs/flux-kontext-pro/predictions"))
        .and(header("authorization", format!("Bearer {REPLICATE_TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(
            "p13flux",
            "black-forest-labs/flux-kontext-pro",
            "succeeded",
            json!(output),
        )))
        .expect(1)
        .mount(&w.replicate)
        .await;
    serve_file(&w, "out.jpg", samples::room_jpeg(300, 200), "image/jpeg").await;
    assert!(w.deliver().await.is_empty());
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "ready");
    assert_eq!(image.model_used.as_deref(), Some("black-forest-labs/flux-kontext-pro"));
    assert_eq!(image.cost_usd.as_deref(), Some("0.0400"));
    let requests = w.replicate.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert!(
        body["input"]["input_image"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Signature=")
    );
}

#[sqlx::test]
async fn a_model_missing_its_required_secret_never_calls_replicate(db: PgPool) {
    let w = spawn_worker(db).await;
    sqlx::query("UPDATE settings SET value = 'openai/gpt-image-1' WHERE key = 'active_model'")
        .execute(w.db())
        .await
        .unwrap();
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    let failures = w.deliver().await;
    assert_eq!(
        failures.len(),
        1,
        "an operator problem is retried, not blamed on the photo"
    );
    let job = w.job_row(queued.job_id).await;
    assert!(job.error.unwrap().contains("openai_api_key"));
    assert!(w.replicate_calls().await.is_empty());
    assert_eq!(w.image_row(queued.image_id).await.status, "processing");
}

#[sqlx::test]
async fn without_a_token_the_offline_simulator_stages_a_labelled_result(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    assert!(w.deliver().await.is_empty());
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "ready", "{image:?}");
    assert_eq!(
        image.model_used.as_deref(),
        Some(shared::staging::worker::SIMULATOR_MODEL_ID)
    );
    assert_eq!(image.cost_usd.as_deref(), Some("0.0000"));
    let staged = stored(&w, image.staged_key.as_deref().unwrap()).await;
    assert_eq!(&staged[..3], &[0xFF, 0xD8, 0xFF]);
    assert_ne!(staged, room());
    assert!(w.replicate_calls().await.is_empty());
}

#[sqlx::test]
async fn an_image_deleted_before_its_job_runs_is_not_staged_and_not_refunded(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    let response = call("DELETE", "/api/v1/images/{id}")
        .path_param("id", queued.image_id)
        .bearer(&w.staging.app.token(ALICE))
        .send(&w.staging.staging.api, &w.staging.staging.api.web, delete_image::handle)
        .await;
    assert_eq!(response.status, 204, "{}", String::from_utf8_lossy(&response.body));
    assert!(w.deliver().await.is_empty());
    assert_eq!(w.job_row(queued.job_id).await.status, "failed");
    assert_eq!(
        w.ledger(queued.image_id).await,
        (1, 0),
        "deleting never gives allowance back"
    );
    assert!(w.replicate_calls().await.is_empty());
}

#[sqlx::test]
async fn the_owner_sees_the_staged_photo_through_the_api(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let queued = w.queue_image(ALICE, room(), "bedroom", "modern").await;
    assert!(w.deliver().await.is_empty());
    let response = call("GET", "/api/v1/images/{id}")
        .path_param("id", queued.image_id)
        .bearer(&w.staging.app.token(ALICE))
        .send(&w.staging.storage, &w.staging.storage.api.web, get_image::handle)
        .await;
    assert_eq!(response.status, 200);
    let image = response.json();
    assert_eq!(image["status"], "ready");
    assert_eq!(image["model_used"], shared::staging::worker::SIMULATOR_MODEL_ID);
    assert!(image["processing_time_ms"].as_i64().unwrap() >= 0);
    let staged = shared::reqwest::get(image["staged_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(staged.status(), 200);
    assert_eq!(staged.headers()["content-type"], "image/jpeg");
    let bytes = staged.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);
    // Someone else cannot see it.
    let response = call("GET", "/api/v1/images/{id}")
        .path_param("id", queued.image_id)
        .bearer(&w.staging.app.token("auth0|mallory"))
        .send(&w.staging.storage, &w.staging.storage.api.web, get_image::handle)
        .await;
    assert_eq!(response.status, 404);
}

//! The worker downloads model output only from the allowed delivery hosts (SSRF guard), follows
//! no redirect elsewhere, and never past the invocation's remaining time. Driven through the
//! stage-worker function with Replicate (and any "other" hosts) faked over HTTP.

use std::time::{Duration, Instant};

use serde_json::json;
use shared::staging::imaging::samples;
use sqlx::PgPool;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

const ALICE: &str = "auth0|alice";
const QWEN_CREATE: &str = "/v1/models/qwen/qwen-image-edit/predictions";
const QWEN: &str = "qwen/qwen-image-edit";

fn room() -> Vec<u8> {
    samples::room_jpeg(640, 427)
}

/// Replicate answers the create at once with a succeeded prediction whose output is `output`.
async fn succeeds_with(w: &WorkerApp, id: &str, output: &str) {
    Mock::given(method("POST"))
        .and(path(QWEN_CREATE))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(id, QWEN, "succeeded", json!([output]))))
        .mount(&w.replicate)
        .await;
}

/// A host the worker must never be steered to; it would serve a perfectly good image.
async fn other_host() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(samples::room_png(320, 200), "image/png"))
        .mount(&server)
        .await;
    server
}

/// The image failed with the generic refusal, refunded, and the user message carries no vendor
/// or URL text; the refusal was logged at ERROR with its stable code.
async fn assert_refused(w: &WorkerApp, queued: QueuedImage, logs: &CapturedLogs, hidden: &[&str]) {
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "error", "{image:?}");
    let message = image.error.unwrap();
    assert!(
        message.contains("does not download from") && message.contains("refunded"),
        "{message}"
    );
    for text in hidden {
        assert!(!message.contains(text), "the user message leaks {text:?}: {message}");
    }
    assert!(image.staged_key.is_none());
    assert_eq!(w.job_row(queued.job_id).await.status, "failed");
    assert_eq!(w.ledger(queued.image_id).await, (1, 1), "refunded once");
    let logs = logs.text();
    assert!(
        logs.lines()
            .any(|line| line.contains("ERROR") && line.contains("output_url_refused")),
        "{logs}"
    );
}

#[sqlx::test]
async fn an_output_url_on_a_host_outside_the_allowlist_is_refused_without_a_request(db: PgPool) {
    let (logs, _guard) = capture_logs();
    let w = spawn_worker(db).await;
    let elsewhere = other_host().await;
    let queued = w.queue_image(ALICE, room(), "bedroom", "modern").await;
    let output = format!("{}/files/out.png", elsewhere.uri());
    succeeds_with(&w, "pelsewhere", &output).await;

    assert!(w.deliver().await.is_empty(), "a refusal is final, not retried");

    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "no request reached the other host"
    );
    let port = elsewhere.address().port().to_string();
    assert_refused(&w, queued, &logs, &["127.0.0.1", &port, "/files/out.png"]).await;
    assert_eq!(w.creates().await, 1);
}

#[sqlx::test]
async fn private_address_output_urls_are_refused(db: PgPool) {
    let (logs, _guard) = capture_logs();
    let w = spawn_worker(db).await;
    // The instance metadata service, the loopback interface, a private network: as IP literals
    // they are refused before any connection (they are not delivery hosts, and not public).
    for (i, output) in [
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://[::1]/out.png",
        "https://10.0.0.5/out.png",
    ]
    .into_iter()
    .enumerate()
    {
        w.replicate.reset().await;
        let queued = w
            .queue_image(&format!("auth0|private-{i}"), room(), "kitchen", "modern")
            .await;
        succeeds_with(&w, &format!("pprivate{i}"), output).await;
        assert!(w.deliver().await.is_empty(), "{output}");
        assert_refused(&w, queued, &logs, &["169.254", "::1", "10.0.0.5", "meta-data"]).await;
    }
}

#[sqlx::test]
async fn an_output_redirecting_to_another_host_is_refused(db: PgPool) {
    let (logs, _guard) = capture_logs();
    let w = spawn_worker(db).await;
    let elsewhere = other_host().await;
    let queued = w.queue_image(ALICE, room(), "office", "modern").await;
    succeeds_with(&w, "predirect", &w.file_url("out.png")).await;
    Mock::given(method("GET"))
        .and(path("/files/out.png"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/latest/meta-data/", elsewhere.uri())),
        )
        .mount(&w.replicate)
        .await;

    assert!(w.deliver().await.is_empty());

    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the redirect was not followed"
    );
    assert_refused(&w, queued, &logs, &["meta-data", "redirect"]).await;
}

#[sqlx::test]
async fn a_redirect_within_the_allowed_host_is_followed(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w.queue_image(ALICE, room(), "office", "modern").await;
    succeeds_with(&w, "pmoved", &w.file_url("moved.png")).await;
    Mock::given(method("GET"))
        .and(path("/files/moved.png"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", w.file_url("out.png")))
        .mount(&w.replicate)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/out.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(samples::room_png(320, 200), "image/png"))
        .mount(&w.replicate)
        .await;

    assert!(w.deliver().await.is_empty());
    assert_eq!(w.image_row(queued.image_id).await.status, "ready");
}

#[sqlx::test]
async fn an_allowed_name_resolving_to_a_private_address_is_refused(db: PgPool) {
    let (logs, _guard) = capture_logs();
    // The fake's origin is allowed by name (`localhost`), but private addresses are not: the
    // resolver sees 127.0.0.1 and refuses before connecting.
    let mut w = spawn_worker(db).await;
    let local_name = w.replicate.uri().replace("127.0.0.1", "localhost");
    let shared::staging::worker::Provider::Replicate(replicate) = &w.worker.provider else {
        unreachable!("spawn_worker fakes Replicate")
    };
    let strict = replicate.clone().with_output_policy(
        shared::clients::replicate::OutputPolicy::local_origin(&local_name.parse().unwrap())
            .allowing_private_addresses(false),
    );
    let mut worker = (*w.worker).clone();
    worker.provider = shared::staging::worker::Provider::Replicate(strict);
    w.worker = std::sync::Arc::new(worker);

    let queued = w.queue_image(ALICE, room(), "bedroom", "modern").await;
    succeeds_with(&w, "pdns", &format!("{local_name}/files/out.png")).await;
    Mock::given(method("GET"))
        .and(path("/files/out.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(samples::room_png(320, 200), "image/png"))
        .mount(&w.replicate)
        .await;

    assert!(w.deliver().await.is_empty());

    let downloads = w
        .replicate_calls()
        .await
        .into_iter()
        .filter(|(_, p)| p.starts_with("/files/"))
        .count();
    assert_eq!(downloads, 0, "no connection was made to the private address");
    assert_refused(&w, queued, &logs, &["localhost", "127.0.0.1"]).await;
}

#[sqlx::test]
async fn the_download_stops_with_the_invocation_not_after_a_fixed_minute(db: PgPool) {
    // The fixed download timeout is generous (a minute); the invocation has three seconds.
    let config = shared::staging::worker::WorkerConfig {
        download_timeout: Duration::from_secs(60),
        ..fast_worker_config()
    };
    let w = spawn_worker_with(db, config, false).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    succeeds_with(&w, "pslowcdn", &w.file_url("slow.png")).await;
    Mock::given(method("GET"))
        .and(path("/files/slow.png"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(samples::room_png(320, 200), "image/png")
                .set_delay(Duration::from_secs(20)),
        )
        .mount(&w.replicate)
        .await;

    let event = w.receive_event(1).await;
    let message_id = event.records[0].message_id.clone().unwrap();
    let started = Instant::now();
    let failures = w.run_worker(event, Duration::from_secs(3)).await;
    let elapsed = started.elapsed();

    assert!(
        elapsed < Duration::from_secs(4),
        "answered within the invocation: {elapsed:?}"
    );
    assert_eq!(failures, vec![message_id], "the message comes back for another try");
    let job = w.job_row(queued.job_id).await;
    assert_eq!((job.status.as_str(), job.leased), ("processing", false), "{job:?}");
    assert!(job.error.unwrap_or_default().contains("downloading the output"));
    assert_eq!(
        w.ledger(queued.image_id).await,
        (1, 0),
        "nothing refunded: it is not over"
    );

    // The next delivery resumes the stored prediction (no second create) and, with a CDN that
    // answers, finishes the image.
    w.replicate.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/predictions/pslowcdn"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction(
            "pslowcdn",
            QWEN,
            "succeeded",
            json!([w.file_url("fast.png")]),
        )))
        .mount(&w.replicate)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/fast.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(samples::room_png(320, 200), "image/png"))
        .mount(&w.replicate)
        .await;
    assert!(w.deliver().await.is_empty());
    assert_eq!(w.image_row(queued.image_id).await.status, "ready");
    assert_eq!(w.creates().await, 0);
}

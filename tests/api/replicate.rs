//! The Replicate client against a wiremock Replicate speaking the documented shapes: paths,
//! headers, retry rules (create only on 429; reads on 429/5xx), statuses, output downloads.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::{Value, json};
use shared::clients::replicate::{
    OutputPolicy, Prediction, PredictionId, PredictionStatus, Replicate, ReplicateConfig, ReplicateError, RetryPolicy,
};
use shared::platform::config::Secret;
use shared::platform::state::outbound_http_client;
use shared::reqwest::Url;
use tokio::time::Instant;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "r8_TestTokenDoNotLeak0123456789abcdef";
const MODEL: &str = "qwen/qwen-image-edit";
const ID: &str = "gm3qorzdhgbfurvjtvhg6dckhu";

/// Millisecond delays so retries are quick; enough attempts that the tests decide when to stop.
const FAST: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: Duration::from_millis(5),
    max_delay: Duration::from_millis(50),
};

fn client_at(base_url: &str) -> Replicate {
    let config = ReplicateConfig {
        base_url: base_url.parse().unwrap(),
        token: Secret::new(TOKEN),
    };
    Replicate::new(config, outbound_http_client().unwrap()).with_retry_policy(FAST)
}

/// A client that may download from `url`'s origin (a local fake delivery host): the default
/// allowlist is https from replicate.delivery only.
fn downloader(url: &Url) -> Replicate {
    client_at("http://127.0.0.1:1/v1").with_output_policy(OutputPolicy::local_origin(url))
}

/// The server stands in for `https://api.replicate.com/v1`.
fn client(server: &MockServer) -> Replicate {
    client_at(&format!("{}/v1", server.uri()))
}

fn id() -> PredictionId {
    PredictionId::parse(ID).unwrap()
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn input() -> Value {
    json!({
        "image": "https://bucket.s3.example/uploads/u/a.jpg?X-Amz-Signature=abc",
        "prompt": "Stage this living room in a modern style",
        "output_format": "jpg",
        "seed": 42
    })
}

/// A prediction object as Replicate documents it (prediction.go / the HTTP API reference).
fn prediction_json(status: &str, output: Value) -> Value {
    let (error, completed) = match status {
        "failed" => (json!("CUDA out of memory"), json!("2025-06-01T12:00:09.456789Z")),
        "succeeded" | "canceled" | "aborted" => (Value::Null, json!("2025-06-01T12:00:09.456789Z")),
        _ => (Value::Null, Value::Null),
    };
    json!({
        "id": ID,
        "model": MODEL,
        "version": "hidden",
        "input": input(),
        "logs": "Using seed: 42\n100%|██████████| 28/28 [00:08<00:00,  3.21it/s]\n",
        "output": output,
        "data_removed": false,
        "error": error,
        "source": "api",
        "status": status,
        "created_at": "2025-06-01T12:00:00.123456Z",
        "started_at": "2025-06-01T12:00:00.500000Z",
        "completed_at": completed,
        "urls": {
            "get": format!("https://api.replicate.com/v1/predictions/{ID}"),
            "cancel": format!("https://api.replicate.com/v1/predictions/{ID}/cancel"),
            "web": format!("https://replicate.com/p/{ID}"),
            "stream": "https://stream.replicate.com/v1/files/abcd"
        },
        "metrics": { "predict_time": 8.912345, "total_time": 9.333 }
    })
}

fn output_url() -> Value {
    json!("https://replicate.delivery/xezq/abc123/out-0.jpg")
}

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap()
}

fn assert_no_token(text: &str) {
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    assert!(!text.contains("DoNotLeak"), "token leaked: {text}");
}

#[tokio::test]
async fn create_posts_the_input_to_the_official_model_endpoint_with_the_documented_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/models/qwen/qwen-image-edit/predictions"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("prefer", "wait=5"))
        .and(header("cancel-after", "15m"))
        .and(body_json(json!({ "input": input() })))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction_json("succeeded", json!([output_url()]))))
        .mount(&server)
        .await;

    let prediction = client(&server)
        .create_prediction(
            MODEL,
            &input(),
            Some(Duration::from_secs(5)),
            Some(Duration::from_secs(900)),
            far_future(),
        )
        .await
        .unwrap();

    assert_eq!(prediction.id.as_str(), ID);
    assert_eq!(prediction.status, PredictionStatus::Succeeded);
    assert_eq!(prediction.output, Some(json!([output_url()])));
    assert_eq!(prediction.error, None);
    assert_eq!(prediction.metrics.unwrap().predict_time, Some(8.912345));

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.headers.get("content-type").unwrap(), "application/json");
    let user_agent = request.headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(user_agent.starts_with("realstaging-worker/"), "{user_agent}");
    // Only the input: no webhook, no version.
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["input"]);
}

#[tokio::test]
async fn create_without_wait_or_deadline_sends_neither_header_and_a_base_with_a_trailing_slash_works() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/models/qwen/qwen-image-edit/predictions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction_json("starting", Value::Null)))
        .mount(&server)
        .await;

    let prediction = client_at(&format!("{}/v1/", server.uri()))
        .create_prediction(MODEL, &input(), None, None, far_future())
        .await
        .unwrap();

    assert_eq!(prediction.status, PredictionStatus::Starting);
    assert!(!prediction.status.is_terminal());
    assert_eq!(prediction.output, None);
    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    assert!(received[0].headers.get("prefer").is_none());
    assert!(received[0].headers.get("cancel-after").is_none());
}

#[tokio::test]
async fn create_clamps_prefer_wait_to_sixty_seconds_and_formats_odd_deadlines() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("prefer", "wait=60"))
        .and(header("cancel-after", "1m30s"))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction_json("processing", Value::Null)))
        .mount(&server)
        .await;

    let prediction = client(&server)
        .create_prediction(
            MODEL,
            &input(),
            Some(Duration::from_secs(300)),
            Some(Duration::from_secs(90)),
            far_future(),
        )
        .await
        .unwrap();
    assert_eq!(prediction.status, PredictionStatus::Processing);
}

#[tokio::test]
async fn create_retries_a_429_after_retry_after_and_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(
                    json!({"detail": "Request was throttled. Your rate limit resets in ~1s.", "status": 429}),
                ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction_json("starting", Value::Null)))
        .mount(&server)
        .await;

    let started = Instant::now();
    let prediction = client(&server)
        .create_prediction(MODEL, &input(), Some(Duration::from_secs(5)), None, far_future())
        .await
        .unwrap();

    assert_eq!(prediction.status, PredictionStatus::Starting);
    assert_eq!(requests(&server).await.len(), 2);
    // Retry-After (1 s) was honoured rather than the millisecond backoff.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn create_throttled_forever_gives_up_at_the_deadline_with_a_bounded_number_of_calls() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"detail": "Request was throttled."})))
        .mount(&server)
        .await;
    let patient = RetryPolicy {
        max_attempts: 1_000,
        ..FAST
    };

    let started = Instant::now();
    let error = client(&server)
        .with_retry_policy(patient)
        .create_prediction(MODEL, &input(), None, None, Instant::now() + Duration::from_millis(400))
        .await
        .unwrap_err();

    assert!(matches!(error, ReplicateError::Throttled { .. }), "{error:?}");
    assert!(error.is_retryable());
    let calls = requests(&server).await.len();
    assert!((2..=100).contains(&calls), "{calls} calls");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn create_does_not_sleep_past_give_up_at_when_retry_after_is_long() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .mount(&server)
        .await;

    let started = Instant::now();
    let error = client(&server)
        .create_prediction(MODEL, &input(), None, None, Instant::now() + Duration::from_secs(2))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ReplicateError::Throttled { retry_after: Some(d) } if d == Duration::from_secs(30)),
        "{error:?}"
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(requests(&server).await.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn create_accepts_retry_after_as_an_http_date() {
    let server = MockServer::start().await;
    let in_a_moment = chrono::Utc::now() + chrono::Duration::seconds(1);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header(
            "retry-after",
            in_a_moment.format("%a, %d %b %Y %H:%M:%S GMT").to_string().as_str(),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction_json("starting", Value::Null)))
        .mount(&server)
        .await;

    let prediction = client(&server)
        .create_prediction(MODEL, &input(), None, None, far_future())
        .await
        .unwrap();
    assert_eq!(prediction.status, PredictionStatus::Starting);
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn create_is_not_retried_on_a_server_error_because_it_may_have_created_the_prediction() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("Internal Server Error"))
        .mount(&server)
        .await;

    let error = client(&server)
        .create_prediction(MODEL, &input(), None, None, far_future())
        .await
        .unwrap_err();

    assert!(matches!(error, ReplicateError::Server { status: 500 }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn create_rejected_with_422_carries_replicates_detail_and_is_not_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "detail": "- input.seed: Invalid type. Expected: integer, given: string\n",
            "status": 422,
            "title": "Input validation failed",
            "invalid_fields": [{"type": "invalid_type", "field": "input.seed", "description": "Invalid type."}]
        })))
        .mount(&server)
        .await;

    let error = client(&server)
        .create_prediction(MODEL, &input(), None, None, far_future())
        .await
        .unwrap_err();

    match &error {
        ReplicateError::Rejected { status, detail } => {
            assert_eq!(*status, 422);
            assert_eq!(detail, "- input.seed: Invalid type. Expected: integer, given: string");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!error.is_retryable());
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn rejection_details_are_trimmed_and_never_echo_the_token() {
    let server = MockServer::start().await;
    let long = "x".repeat(5_000);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "title": "Unauthenticated",
            "detail": format!("You did not pass a valid authentication token: Bearer {TOKEN} {long}"),
            "status": 401
        })))
        .mount(&server)
        .await;
    let replicate = client(&server);

    let error = replicate
        .create_prediction(MODEL, &input(), None, None, far_future())
        .await
        .unwrap_err();

    let ReplicateError::Rejected { status: 401, detail } = &error else {
        panic!("expected Rejected, got {error:?}");
    };
    assert!(
        detail.starts_with("You did not pass a valid authentication token"),
        "{detail}"
    );
    assert!(detail.chars().count() <= 300, "{} chars", detail.chars().count());
    assert!(!error.is_retryable());
    assert_no_token(&format!("{error:?}"));
    assert_no_token(&error.to_string());
    assert_no_token(&format!("{replicate:?}"));
}

#[tokio::test]
async fn create_for_an_unknown_model_is_rejected_with_the_404_detail() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "Not found.", "status": 404})))
        .mount(&server)
        .await;

    let error = client(&server)
        .create_prediction("nobody/nothing", &input(), None, None, far_future())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ReplicateError::Rejected { status: 404, detail } if detail == "Not found."),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_model_ids_are_refused_without_a_request() {
    let server = MockServer::start().await;
    let replicate = client(&server);
    for bad in [
        "",
        "qwen-image-edit",
        "qwen/",
        "/qwen-image-edit",
        "qwen/qwen-image-edit/predictions",
        "../admin",
        "qwen/..",
        "qwen/qwen image",
        "qwen/edit?x=1",
        "qwen/edit%2F..",
    ] {
        let error = replicate
            .create_prediction(bad, &input(), None, None, far_future())
            .await
            .unwrap_err();
        assert!(matches!(error, ReplicateError::InvalidModelId(_)), "{bad}: {error:?}");
        assert!(!error.is_retryable());
    }
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn invalid_prediction_ids_cannot_be_built_so_no_request_is_made() {
    for bad in ["", "ABC", "abc/../x", "abc def", "abc?x=1", "abc%2f", &"a".repeat(65)] {
        assert!(PredictionId::parse(bad).is_err(), "{bad}");
        assert!(bad.parse::<PredictionId>().is_err(), "{bad}");
    }
    let id = PredictionId::parse(ID).unwrap();
    assert_eq!(id.to_string(), ID);

    // A response naming a bad id is not a prediction.
    let mut bad = prediction_json("starting", Value::Null);
    bad["id"] = json!("../../etc");
    assert!(serde_json::from_value::<Prediction>(bad).is_err());
}

#[tokio::test]
async fn get_retries_server_errors_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/predictions/{ID}")))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/predictions/{ID}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction_json("succeeded", output_url())))
        .mount(&server)
        .await;

    let prediction = client(&server).get_prediction(&id()).await.unwrap();

    assert_eq!(prediction.status, PredictionStatus::Succeeded);
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn get_retries_server_errors_until_max_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;

    let error = client(&server).get_prediction(&id()).await.unwrap_err();

    assert!(matches!(error, ReplicateError::Server { status: 503 }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(requests(&server).await.len(), FAST.max_attempts as usize);
}

#[tokio::test]
async fn get_retries_a_429_with_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"detail": "Request was throttled."})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction_json("processing", Value::Null)))
        .mount(&server)
        .await;

    let prediction = client(&server).get_prediction(&id()).await.unwrap();

    assert_eq!(prediction.status, PredictionStatus::Processing);
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn get_hands_a_long_retry_after_back_to_the_caller() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "20"))
        .mount(&server)
        .await;

    let error = client(&server).get_prediction(&id()).await.unwrap_err();

    assert_eq!(error.retry_after(), Some(Duration::from_secs(20)));
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn get_of_an_unknown_prediction_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/predictions/{ID}")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "Not found.", "status": 404})))
        .mount(&server)
        .await;

    let error = client(&server).get_prediction(&id()).await.unwrap_err();

    assert!(matches!(error, ReplicateError::NotFound), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn get_of_an_unreachable_host_is_a_retryable_transport_error() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let replicate = client_at(&format!("http://127.0.0.1:{port}/v1"));

    let error = replicate.get_prediction(&id()).await.unwrap_err();

    assert!(matches!(error, ReplicateError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
    assert_no_token(&format!("{error:?}"));
}

#[tokio::test]
async fn every_documented_status_parses_and_new_ones_read_as_unknown() {
    let cases = [
        ("starting", PredictionStatus::Starting, false),
        ("processing", PredictionStatus::Processing, false),
        ("succeeded", PredictionStatus::Succeeded, true),
        ("failed", PredictionStatus::Failed, true),
        ("canceled", PredictionStatus::Canceled, true),
        ("aborted", PredictionStatus::Aborted, true),
        ("queued_for_mars", PredictionStatus::Unknown, false),
    ];
    for (raw, expected, terminal) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(prediction_json(raw, Value::Null)))
            .mount(&server)
            .await;
        let prediction = client(&server).get_prediction(&id()).await.unwrap();
        assert_eq!(prediction.status, expected, "{raw}");
        assert_eq!(prediction.status.is_terminal(), terminal, "{raw}");
    }
}

#[tokio::test]
async fn failed_predictions_carry_their_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction_json("failed", Value::Null)))
        .mount(&server)
        .await;

    let prediction = client(&server).get_prediction(&id()).await.unwrap();

    assert_eq!(prediction.status, PredictionStatus::Failed);
    assert_eq!(prediction.error, Some(json!("CUDA out of memory")));
    assert_eq!(prediction.error_message().as_deref(), Some("CUDA out of memory"));
}

#[tokio::test]
async fn output_may_be_a_string_or_an_array_and_sparse_objects_parse() {
    let string = serde_json::from_value::<Prediction>(prediction_json("succeeded", output_url())).unwrap();
    assert_eq!(string.output, Some(output_url()));

    let array = serde_json::from_value::<Prediction>(prediction_json(
        "succeeded",
        json!([output_url(), "https://replicate.delivery/xezq/abc123/out-1.jpg"]),
    ))
    .unwrap();
    assert_eq!(array.output.unwrap().as_array().unwrap().len(), 2);

    // The least Replicate may send: no metrics, an error object, unknown fields.
    let sparse: Prediction = serde_json::from_value(json!({
        "id": ID,
        "status": "failed",
        "error": {"detail": "NSFW content detected"},
        "something_new": [1, 2, 3]
    }))
    .unwrap();
    assert_eq!(sparse.metrics, None);
    assert_eq!(sparse.output, None);
    assert_eq!(sparse.error_message().as_deref(), Some("NSFW content detected"));
}

#[tokio::test]
async fn a_success_answer_that_is_not_a_prediction_is_an_invalid_response() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .mount(&server)
        .await;

    let error = client(&server).get_prediction(&id()).await.unwrap_err();
    assert!(matches!(error, ReplicateError::InvalidResponse(_)), "{error:?}");
}

#[tokio::test]
async fn cancel_posts_to_the_cancel_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/predictions/{ID}/cancel")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction_json("canceled", Value::Null)))
        .mount(&server)
        .await;

    let prediction = client(&server).cancel_prediction(&id()).await.unwrap();

    assert_eq!(prediction.status, PredictionStatus::Canceled);
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn cancel_is_not_retried_on_a_server_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;

    let error = client(&server).cancel_prediction(&id()).await.unwrap_err();
    assert!(matches!(error, ReplicateError::Server { status: 502 }), "{error:?}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn download_fetches_the_bytes_without_credentials() {
    let server = MockServer::start().await;
    let bytes = vec![0xFFu8, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];
    Mock::given(method("GET"))
        .and(path("/xezq/abc123/out-0.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(bytes.clone(), "image/jpeg"))
        .mount(&server)
        .await;
    let url: Url = format!("{}/xezq/abc123/out-0.jpg", server.uri()).parse().unwrap();

    let downloaded = downloader(&url)
        .download(&url, 1024, Duration::from_secs(5))
        .await
        .unwrap();

    assert_eq!(downloaded, bytes);
    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    assert!(received[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn download_refuses_a_declared_length_over_the_cap() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(vec![7u8; 200 * 1024], "image/png"))
        .mount(&server)
        .await;
    let url: Url = format!("{}/out.png", server.uri()).parse().unwrap();

    let error = downloader(&url)
        .download(&url, 100 * 1024, Duration::from_secs(5))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ReplicateError::TooLarge { limit: 102_400 }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn download_refuses_a_too_long_content_length_before_reading_the_body() {
    // Declares 50 MB but sends ten bytes and then stalls: only the up-front check can answer
    // TooLarge (reading would end in a timeout instead).
    let url = raw_server(|mut stream| {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 50000000\r\n\r\n0123456789");
        let _ = stream.flush();
        drain_until_closed(stream);
    });

    let error = downloader(&url)
        .download(&url, 1024 * 1024, Duration::from_secs(10))
        .await
        .unwrap_err();

    assert!(matches!(error, ReplicateError::TooLarge { .. }), "{error:?}");
}

#[tokio::test]
async fn download_abandons_a_chunked_body_once_past_the_cap() {
    let url = raw_server(|mut stream| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/webp\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = vec![b'w'; 16 * 1024];
        for _ in 0..256 {
            // 4 MiB in all, unless the client hangs up first (it should, after 64 KiB).
            let head = format!("{:x}\r\n", chunk.len());
            if stream.write_all(head.as_bytes()).is_err()
                || stream.write_all(&chunk).is_err()
                || stream.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        drain_until_closed(stream);
    });

    let error = downloader(&url)
        .download(&url, 64 * 1024, Duration::from_secs(10))
        .await
        .unwrap_err();

    assert!(matches!(error, ReplicateError::TooLarge { limit: 65_536 }), "{error:?}");
}

#[tokio::test]
async fn download_of_a_chunked_body_within_the_cap_succeeds() {
    let url = raw_server(|mut stream| {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        drain_until_closed(stream);
    });

    let bytes = downloader(&url)
        .download(&url, 11, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(bytes, b"hello world");
}

#[tokio::test]
async fn download_gives_up_after_its_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(vec![1u8; 10], "image/jpeg")
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let url: Url = format!("{}/slow.jpg", server.uri()).parse().unwrap();

    let started = Instant::now();
    let error = downloader(&url)
        .download(&url, 1024, Duration::from_millis(300))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ReplicateError::TimedOut { .. } | ReplicateError::Transport(_)),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn download_errors_for_expired_or_failing_outputs() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/gone.jpg"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/broken.jpg"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let replicate = client(&server).with_output_policy(OutputPolicy::local_origin(&server.uri().parse().unwrap()));

    let gone: Url = format!("{}/gone.jpg", server.uri()).parse().unwrap();
    let error = replicate
        .download(&gone, 1024, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(error, ReplicateError::NotFound), "{error:?}");

    let broken: Url = format!("{}/broken.jpg", server.uri()).parse().unwrap();
    let error = replicate
        .download(&broken, 1024, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(error, ReplicateError::Server { status: 502 }), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn download_by_default_only_fetches_https_from_replicate_delivery() {
    // The production allowlist: a fake on 127.0.0.1 is neither https, nor a delivery host, nor
    // public, so nothing is requested from it; neither from the metadata service.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(vec![1u8; 10], "image/png"))
        .mount(&server)
        .await;
    let replicate = client(&server);
    assert_eq!(replicate.output_policy(), &OutputPolicy::default());
    for url in [
        format!("{}/files/out.png", server.uri()),
        "https://169.254.169.254/latest/meta-data/".to_string(),
        "http://replicate.delivery/out.png".to_string(),
    ] {
        let url: Url = url.parse().unwrap();
        let error = replicate
            .download(&url, 1024, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(error, ReplicateError::OutputRefused(_)), "{url}: {error:?}");
        assert!(!error.is_retryable());
    }
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn download_only_speaks_http() {
    let server = MockServer::start().await;
    let replicate = client(&server);
    for url in [
        "file:///etc/passwd",
        "ftp://replicate.delivery/out.jpg",
        "data:image/png;base64,AAAA",
    ] {
        let url: Url = url.parse().unwrap();
        let error = replicate
            .download(&url, 1024, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ReplicateError::UnsupportedUrl { .. }),
            "{url}: {error:?}"
        );
    }
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn debug_output_of_the_client_and_config_hides_the_token() {
    let server = MockServer::start().await;
    let replicate = client(&server);
    assert_no_token(&format!("{replicate:?}"));
    assert_no_token(&format!("{replicate:#?}"));
    let config = ReplicateConfig {
        base_url: "https://api.replicate.com/v1".parse().unwrap(),
        token: Secret::new(TOKEN),
    };
    assert_no_token(&format!("{config:?}"));
}

/// A one-connection HTTP/1.1 server on a std thread, for bodies wiremock cannot produce
/// (chunked without a length, a length that is never sent). Returns the URL to fetch.
fn raw_server(respond: impl FnOnce(std::net::TcpStream) + Send + 'static) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        respond(stream);
    });
    format!("http://127.0.0.1:{port}/xezq/out.bin").parse().unwrap()
}

/// Keeps the connection open until the client hangs up (or a read timeout passes).
fn drain_until_closed(mut stream: std::net::TcpStream) {
    let mut buffer = [0u8; 1024];
    while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {}
}

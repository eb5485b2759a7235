//! The uptime check function: a scheduled event in, `GET /health` on the public URL, a report out
//! (and the `HealthCheckOk` datapoint the API-down alarm reads).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shared::lambda_runtime::{Context, LambdaEvent};
use shared::platform::uptime::UptimeCheck;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn check_against(response: ResponseTemplate) -> shared::platform::uptime::UptimeReport {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(response)
        .mount(&api)
        .await;
    let check = UptimeCheck::new(format!("{}/health", api.uri()).parse().unwrap()).unwrap();
    // EventBridge's scheduled event, as Lambda delivers it.
    let event = json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-12-03T12:00:00Z",
        "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/uptime"], "detail": {}
    });
    uptime_check::handle(Arc::new(check), LambdaEvent::new(event, Context::default()))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_200_from_health_is_up() {
    let report = check_against(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"}))).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.status, Some(200));
    assert_eq!(report.problem, None);
}

#[tokio::test]
async fn an_error_a_redirect_or_a_slow_answer_is_down() {
    let report = check_against(ResponseTemplate::new(503)).await;
    assert!(!report.ok);
    assert_eq!(report.status, Some(503));
    // A redirect (a misrouted domain, a login page) is not the API answering.
    let report = check_against(ResponseTemplate::new(302).insert_header("location", "https://example.com/")).await;
    assert!(!report.ok);
    assert_eq!(report.status, Some(302));
    let report = check_against(ResponseTemplate::new(200).set_delay(Duration::from_secs(6))).await;
    assert!(!report.ok);
    assert_eq!(report.status, None);
    assert!(report.problem.unwrap().contains("no answer within"));
}

#[tokio::test]
async fn nothing_listening_is_down() {
    let check = UptimeCheck::new("http://127.0.0.1:1/health".parse().unwrap()).unwrap();
    let report = check.run().await;
    assert!(!report.ok);
    assert!(report.problem.unwrap().starts_with("request failed"));
}

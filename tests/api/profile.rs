//! GET and PATCH /api/v1/user/profile.

use serde_json::json;
use sqlx::PgPool;

use crate::support::*;

const ROUTE: &str = "/api/v1/user/profile";

async fn get(app: &TestApp, sub: &str) -> TestResponse {
    call("GET", ROUTE)
        .bearer(&app.token(sub))
        .send(&app.api, &app.api.web, get_profile::handle)
        .await
}

async fn patch(app: &TestApp, sub: &str, body: serde_json::Value) -> TestResponse {
    call("PATCH", ROUTE)
        .bearer(&app.token(sub))
        .json(body)
        .send(&app.api, &app.api.web, update_profile::handle)
        .await
}

#[sqlx::test]
async fn the_first_call_creates_the_user(db: PgPool) {
    let app = spawn_app(db).await;
    let response = get(&app, "auth0|alice").await;
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(body["role"], "user");
    assert_eq!(body["email"], serde_json::Value::Null);
    assert_eq!(body["preferences"], json!({}));
    assert!(body.get("stripe_customer_id").is_none(), "internal ids are not exposed");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'), "RFC 3339 UTC");
    let sub: String = sqlx::query_scalar("SELECT auth0_sub FROM users WHERE id = $1::uuid")
        .bind(body["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(sub, "auth0|alice");
    // The second call finds the same user.
    assert_eq!(get(&app, "auth0|alice").await.json()["id"], body["id"]);
    assert_eq!(app.user_count().await, 1);
}

#[sqlx::test]
async fn twenty_concurrent_first_calls_make_exactly_one_user(db: PgPool) {
    let app = spawn_app(db).await;
    let token = app.token("auth0|newcomer");
    let calls = (0..20).map(|_| {
        let request = call("GET", ROUTE).bearer(&token).request();
        let state = &app.api;
        async move {
            shared::platform::http::respond(state, &state.web, request, get_profile::handle)
                .await
                .status()
                .as_u16()
        }
    });
    let statuses: Vec<u16> = futures::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.user_count().await, 1);
}

#[sqlx::test]
async fn patch_changes_only_the_fields_sent(db: PgPool) {
    let app = spawn_app(db).await;
    let first = patch(
        &app,
        "auth0|alice",
        json!({
            "full_name": "  Alice Agent ",
            "phone": "+1 (555) 010-0100",
            "email": "alice@example.com",
            "billing_address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
            "preferences": {"default_room_type": "bedroom", "email_notifications": true}
        }),
    )
    .await;
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    assert_eq!(first.json()["full_name"], "Alice Agent");

    let second = patch(
        &app,
        "auth0|alice",
        json!({"company_name": "Acme Realty", "preferences": {"default_style": "modern"}}),
    )
    .await;
    let body = second.json();
    assert_eq!(body["company_name"], "Acme Realty");
    assert_eq!(body["full_name"], "Alice Agent", "absent fields are untouched");
    assert_eq!(body["phone"], "+1 (555) 010-0100");
    assert_eq!(body["billing_address"]["city"], "Springfield");
    assert_eq!(
        body["preferences"],
        json!({"default_room_type": "bedroom", "email_notifications": true, "default_style": "modern"})
    );

    let third = patch(
        &app,
        "auth0|alice",
        json!({"full_name": null, "phone": "", "preferences": {"email_notifications": null}}),
    )
    .await;
    let body = third.json();
    assert_eq!(body["full_name"], serde_json::Value::Null, "null clears");
    assert_eq!(body["phone"], serde_json::Value::Null, "blank clears");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(
        body["preferences"],
        json!({"default_room_type": "bedroom", "default_style": "modern"})
    );

    // An empty patch changes nothing and returns the profile.
    let unchanged = patch(&app, "auth0|alice", json!({})).await;
    assert_eq!(unchanged.json()["company_name"], "Acme Realty");
}

#[sqlx::test]
async fn invalid_values_are_422_and_change_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    patch(&app, "auth0|alice", json!({"full_name": "Alice"})).await;
    let response = patch(
        &app,
        "auth0|alice",
        json!({
            "full_name": "Bob",
            "email": "not an email",
            "phone": "call me maybe",
            "company_name": "x".repeat(101),
            "profile_photo_url": "javascript:alert(1)",
            "preferences": {"default_style": "baroque"}
        }),
    )
    .await;
    // serde stops at the first type error (the enum), so that one is reported alone.
    assert_eq!(response.invalid_fields(), vec!["preferences.default_style"]);
    let response = patch(
        &app,
        "auth0|alice",
        json!({
            "full_name": "Bob",
            "email": "not an email",
            "phone": "call me maybe",
            "company_name": "x".repeat(101),
            "profile_photo_url": "javascript:alert(1)"
        }),
    )
    .await;
    assert_eq!(
        response.invalid_fields(),
        vec!["email", "company_name", "phone", "profile_photo_url"]
    );
    assert_eq!(
        get(&app, "auth0|alice").await.json()["full_name"],
        "Alice",
        "nothing was written"
    );
}

#[sqlx::test]
async fn malformed_bodies_and_unknown_fields_are_rejected(db: PgPool) {
    let app = spawn_app(db).await;
    let token = app.token("auth0|alice");
    // (content type, body, expected status, expected error code)
    let cases: &[(Option<&str>, &str, u16, &str)] = &[
        (Some("application/json"), "{\"full_name\": ", 400, "bad_request"),
        (Some("application/json"), "[]", 400, "bad_request"),
        (None, "", 400, "bad_request"),
        (Some("text/plain"), "{}", 415, "unsupported_media_type"),
        (
            Some("application/json"),
            "{\"full_name\": 42}",
            422,
            "validation_failed",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let mut request = call("PATCH", ROUTE).bearer(&token);
        if let Some(content_type) = content_type {
            request = request.raw_body(content_type, body);
        }
        request
            .send(&app.api, &app.api.web, update_profile::handle)
            .await
            .assert_error(*status, code);
    }
    // Mass assignment: the role cannot be set through the profile.
    let response = patch(&app, "auth0|alice", json!({"role": "admin"})).await;
    assert_eq!(response.invalid_fields(), vec!["role"]);
    assert_eq!(get(&app, "auth0|alice").await.json()["role"], "user");
    let huge = json!({"full_name": "a".repeat(70 * 1024)});
    patch(&app, "auth0|alice", huge)
        .await
        .assert_error(413, "payload_too_large");
}

#[sqlx::test]
async fn patch_requires_a_token(db: PgPool) {
    let app = spawn_app(db).await;
    let response = call("PATCH", ROUTE)
        .json(json!({"full_name": "x"}))
        .send(&app.api, &app.api.web, update_profile::handle)
        .await;
    response.assert_error(401, "unauthorized");
    assert_eq!(app.user_count().await, 0);
}

#[sqlx::test]
async fn one_users_patch_never_touches_another(db: PgPool) {
    let app = spawn_app(db).await;
    patch(&app, "auth0|alice", json!({"full_name": "Alice"})).await;
    patch(&app, "auth0|bob", json!({"full_name": "Bob"})).await;
    assert_eq!(get(&app, "auth0|alice").await.json()["full_name"], "Alice");
    assert_eq!(get(&app, "auth0|bob").await.json()["full_name"], "Bob");
}

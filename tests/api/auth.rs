//! Auth0 token verification, driven through a real route (GET /api/v1/user/profile).
//! Every forged or misdirected token must be a 401 with `WWW-Authenticate: Bearer`.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::*;

const ROUTE: &str = "/api/v1/user/profile";

async fn profile_with(app: &TestApp, token: &str) -> TestResponse {
    call("GET", ROUTE)
        .bearer(token)
        .send(&app.api, &app.api.web, get_profile::handle)
        .await
}

#[track_caller]
fn assert_unauthorized(response: &TestResponse) {
    assert_eq!(
        response.status,
        401,
        "body: {}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    assert_eq!(response.json()["error"], "unauthorized");
}

#[sqlx::test]
async fn a_valid_token_is_accepted(db: PgPool) {
    let app = spawn_app(db).await;
    let response = profile_with(&app, &app.token("auth0|alice")).await;
    assert_eq!(response.status, 200);
}

#[sqlx::test]
async fn a_missing_or_non_bearer_header_is_rejected(db: PgPool) {
    let app = spawn_app(db).await;
    assert_unauthorized(
        &call("GET", ROUTE)
            .send(&app.api, &app.api.web, get_profile::handle)
            .await,
    );
    let basic = call("GET", ROUTE).header("authorization", "Basic YWxpY2U6c2VjcmV0");
    assert_unauthorized(&basic.send(&app.api, &app.api.web, get_profile::handle).await);
    let garbage = call("GET", ROUTE).header("authorization", "Bearer not-a-jwt");
    assert_unauthorized(&garbage.send(&app.api, &app.api.web, get_profile::handle).await);
    assert_eq!(app.user_count().await, 0, "a rejected request must not create a user");
}

#[sqlx::test]
async fn alg_none_is_rejected(db: PgPool) {
    let app = spawn_app(db).await;
    let token = unsigned(
        &json!({"alg": "none", "typ": "JWT", "kid": DEV_KID}),
        &app.claims("auth0|mallory"),
    );
    assert_unauthorized(&profile_with(&app, &token).await);
}

#[sqlx::test]
async fn hs256_signed_with_the_public_key_is_rejected(db: PgPool) {
    let app = spawn_app(db).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(DEV_KID.into());
    let token = encode(
        &header,
        &app.claims("auth0|mallory"),
        &EncodingKey::from_secret(dev_public_key()),
    )
    .unwrap();
    assert_unauthorized(&profile_with(&app, &token).await);
}

#[sqlx::test]
async fn wrong_issuer_and_wrong_audience_are_rejected(db: PgPool) {
    let app = spawn_app(db).await;
    let mut claims = app.claims("auth0|mallory");
    claims["iss"] = json!("https://evil.example.com/");
    assert_unauthorized(&profile_with(&app, &sign(&claims, Some(DEV_KID), dev_private_key())).await);
    // The issuer without its trailing slash is a different issuer.
    let mut claims = app.claims("auth0|mallory");
    claims["iss"] = json!(app.issuer.trim_end_matches('/'));
    assert_unauthorized(&profile_with(&app, &sign(&claims, Some(DEV_KID), dev_private_key())).await);
    let mut claims = app.claims("auth0|mallory");
    claims["aud"] = json!("https://another-api.example.com");
    assert_unauthorized(&profile_with(&app, &sign(&claims, Some(DEV_KID), dev_private_key())).await);
    // An audience array that contains ours is fine (Auth0 adds /userinfo).
    let mut claims = app.claims("auth0|alice");
    claims["aud"] = json!([AUDIENCE, "https://tenant.auth0.com/userinfo"]);
    assert_eq!(
        profile_with(&app, &sign(&claims, Some(DEV_KID), dev_private_key()))
            .await
            .status,
        200
    );
}

#[sqlx::test]
async fn expired_and_not_yet_valid_tokens_are_rejected(db: PgPool) {
    let app = spawn_app(db).await;
    let mut claims = app.claims("auth0|alice");
    claims["exp"] = json!(now() - 120);
    let response = profile_with(&app, &sign(&claims, Some(DEV_KID), dev_private_key())).await;
    assert_unauthorized(&response);
    assert!(response.json()["message"].as_str().unwrap().contains("expired"));

    let mut claims = app.claims("auth0|alice");
    claims["nbf"] = json!(now() + 300);
    assert_unauthorized(&profile_with(&app, &sign(&claims, Some(DEV_KID), dev_private_key())).await);

    // Within the leeway a few seconds of clock skew are tolerated.
    let mut claims = app.claims("auth0|alice");
    claims["exp"] = json!(now() - 5);
    assert_eq!(
        profile_with(&app, &sign(&claims, Some(DEV_KID), dev_private_key()))
            .await
            .status,
        200
    );
}

#[sqlx::test]
async fn missing_required_claims_are_rejected(db: PgPool) {
    let app = spawn_app(db).await;
    for claim in ["exp", "sub", "aud", "iss"] {
        let mut claims = app.claims("auth0|alice");
        claims.as_object_mut().unwrap().remove(claim);
        assert_unauthorized(&profile_with(&app, &sign(&claims, Some(DEV_KID), dev_private_key())).await);
    }
    let mut claims = app.claims("");
    claims["sub"] = json!("");
    assert_unauthorized(&profile_with(&app, &sign(&claims, Some(DEV_KID), dev_private_key())).await);
}

#[sqlx::test]
async fn unknown_and_missing_kids_are_rejected(db: PgPool) {
    let app = spawn_app(db).await;
    let claims = app.claims("auth0|mallory");
    assert_unauthorized(&profile_with(&app, &sign(&claims, Some("no-such-key"), dev_private_key())).await);
    assert_unauthorized(&profile_with(&app, &sign(&claims, None, dev_private_key())).await);
    assert_unauthorized(&profile_with(&app, &sign(&claims, Some(""), dev_private_key())).await);
}

#[sqlx::test]
async fn a_bad_signature_is_rejected(db: PgPool) {
    let app = spawn_app(db).await;
    // Signed by another key but claiming the real key's id.
    let forged = sign(&app.claims("auth0|mallory"), Some(DEV_KID), attacker_private_key());
    assert_unauthorized(&profile_with(&app, &forged).await);
    // A genuine token whose payload was swapped after signing.
    let genuine = app.token("auth0|alice");
    let other = app.token("auth0|mallory");
    let parts: Vec<&str> = genuine.split('.').collect();
    let other_parts: Vec<&str> = other.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
    assert_unauthorized(&profile_with(&app, &spliced).await);
}

#[sqlx::test]
async fn a_token_in_the_query_string_is_rejected(db: PgPool) {
    let app = spawn_app(db).await;
    let token = app.token("auth0|alice");
    let only_query = call("GET", ROUTE).query("access_token", &token);
    assert_unauthorized(&only_query.send(&app.api, &app.api.web, get_profile::handle).await);
    // Even next to a valid header: the token has already leaked into logs, refuse the request.
    let both = call("GET", ROUTE).query("access_token", &token).bearer(&token);
    assert_unauthorized(&both.send(&app.api, &app.api.web, get_profile::handle).await);
}

#[sqlx::test]
async fn jwks_is_fetched_once_and_unknown_kids_cannot_force_refetches(db: PgPool) {
    let app = spawn_app_with(db, Duration::from_secs(60), false).await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(dev_jwks()))
        .expect(1)
        .mount(&app.jwks)
        .await;
    for i in 0..5 {
        assert_eq!(profile_with(&app, &app.token("auth0|alice")).await.status, 200);
        let made_up = sign(
            &app.claims("auth0|mallory"),
            Some(&format!("made-up-{i}")),
            dev_private_key(),
        );
        assert_unauthorized(&profile_with(&app, &made_up).await);
    }
    // `expect(1)` is verified when the mock server drops.
}

#[sqlx::test]
async fn a_rotated_key_is_picked_up_on_an_unknown_kid(db: PgPool) {
    let app = spawn_app_with(db, Duration::ZERO, false).await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(dev_jwks()))
        .up_to_n_times(1)
        .mount(&app.jwks)
        .await;
    assert_eq!(profile_with(&app, &app.token("auth0|alice")).await.status, 200);

    // Auth0 publishes the next key; tokens signed with it start arriving.
    let mut rotated = dev_jwks();
    let mut next_key: Value = attacker_jwk();
    next_key["kid"] = json!("next-key");
    rotated["keys"].as_array_mut().unwrap().push(next_key);
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(rotated))
        .mount(&app.jwks)
        .await;
    let token = sign(&app.claims("auth0|alice"), Some("next-key"), attacker_private_key());
    assert_eq!(profile_with(&app, &token).await.status, 200);
    // The old key is still in the set and still works.
    assert_eq!(profile_with(&app, &app.token("auth0|alice")).await.status, 200);
}

#[track_caller]
fn assert_provider_unavailable(response: &TestResponse) {
    response.assert_error(503, "service_unavailable");
    assert_eq!(response.header("www-authenticate"), None, "not a credentials problem");
    let message = response.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("try again"), "{message}");
    for internal in ["jwks", "JWKS", "500", "502", "127.0.0.1", "connect"] {
        assert!(!message.contains(internal), "the cause stays in the logs: {message}");
    }
}

/// A fresh instance (no key ever fetched) whose identity provider answers 5xx: every request with
/// a well-formed token is a 503, the first and those during the back-off alike; a token that is
/// invalid on its face is still a 401; once the provider recovers, the same token is accepted.
#[sqlx::test]
async fn an_identity_provider_answering_5xx_is_a_503_not_a_401_until_it_recovers(db: PgPool) {
    let app = spawn_app_with(db, Duration::from_secs(2), false).await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream error"))
        .mount(&app.jwks)
        .await;
    let token = app.token("auth0|alice");
    // The first request fetches and fails; the next ones fall in the back-off window.
    for _ in 0..3 {
        assert_provider_unavailable(&profile_with(&app, &token).await);
    }
    assert_eq!(
        app.jwks.received_requests().await.unwrap().len(),
        1,
        "the back-off keeps an outage from becoming a request to Auth0 per API call"
    );
    // Invalid whatever the keys say: still 401.
    assert_unauthorized(&profile_with(&app, "not-a-jwt").await);
    let no_kid = sign(&app.claims("auth0|alice"), None, dev_private_key());
    assert_unauthorized(&profile_with(&app, &no_kid).await);
    let alg_none = unsigned(
        &json!({"alg": "none", "typ": "JWT", "kid": DEV_KID}),
        &app.claims("auth0|alice"),
    );
    assert_unauthorized(&profile_with(&app, &alg_none).await);
    assert_eq!(app.user_count().await, 0, "nobody was let in");

    // Auth0 is back: after the back-off the keys are fetched and the token works.
    app.jwks.reset().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(dev_jwks()))
        .mount(&app.jwks)
        .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(profile_with(&app, &token).await.status, 200);
    // With keys cached, a forged token is a 401 again even if the provider goes down.
    app.jwks.reset().await;
    let forged = sign(&app.claims("auth0|mallory"), Some(DEV_KID), attacker_private_key());
    assert_unauthorized(&profile_with(&app, &forged).await);
}

/// The identity provider cannot even be connected to (DNS, network, Auth0 down): 503 too.
#[sqlx::test]
async fn an_unreachable_identity_provider_is_a_503_not_a_401(db: PgPool) {
    let mut app = spawn_app_with(db, Duration::from_secs(60), false).await;
    // A port nobody listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = app.auth.clone();
    config.jwks_url = format!("http://127.0.0.1:{port}/.well-known/jwks.json")
        .parse()
        .unwrap();
    app.api.auth =
        shared::platform::auth::Authenticator::new(config, shared::platform::state::outbound_http_client().unwrap());
    let token = app.token("auth0|alice");
    for _ in 0..2 {
        assert_provider_unavailable(&profile_with(&app, &token).await);
    }
    assert_unauthorized(&profile_with(&app, "not-a-jwt").await);
    assert_eq!(app.user_count().await, 0);
}

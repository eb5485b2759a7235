//! The test app: a `TestApp` per test (its own Postgres database from `#[sqlx::test]`, a fake
//! Auth0 JWKS served by wiremock), tokens signed with the development key (or an attacker's), and
//! requests built as real API Gateway v2 (payload 2.0) events run through the same `respond`
//! wrapper the Lambda runtime uses.

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

#[allow(unused_imports)]
use super::*;

pub const AUDIENCE: &str = "https://api.test.realstaging";
pub const FRONTEND: &str = "https://app.realstaging.test";
pub const DEV_KID: &str = "dev-key-1";

pub fn dev_private_key() -> &'static [u8] {
    include_bytes!("../../../dev/issuer/dev-signing-key.pem")
}
pub fn dev_public_key() -> &'static [u8] {
    include_bytes!("../../../dev/issuer/dev-signing-key.pub.pem")
}
pub fn dev_jwks() -> Value {
    serde_json::from_str(include_str!("../../../dev/issuer/.well-known/jwks.json")).unwrap()
}
pub fn attacker_private_key() -> &'static [u8] {
    include_bytes!("../../fixtures/keys/attacker-key.pem")
}
pub fn attacker_jwk() -> Value {
    serde_json::from_str(include_str!("../../fixtures/keys/attacker-jwk.json")).unwrap()
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

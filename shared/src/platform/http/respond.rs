use std::future::Future;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use super::request::request_id;
use crate::platform::config::WebConfig;
use crate::platform::error::ApiError;

const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOWED_HEADERS: &str = "authorization, content-type";
/// Readable by the web app's JavaScript: `retry-after` says when a 429 may be retried.
const EXPOSED_HEADERS: &str = "location, x-request-id, retry-after";

/// Runs one handler for one request: the single place where errors become responses and where
/// CORS, security headers, the request id and the access-log line are added.
///
/// API Gateway answers CORS preflights itself when the HttpApi has a CORS configuration (as the
/// SAM template does); an `OPTIONS` that does reach a function is answered here the same way.
pub async fn respond<'a, S, F, Fut>(state: &'a S, web: &WebConfig, req: Request, handler: F) -> Response<Body>
where
    S: ?Sized,
    F: FnOnce(&'a S, Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let request_id = request_id(&req);
    // `user_id` is filled in once the caller is authenticated (ApiState::current_user).
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.uri().path(),
        user_id = tracing::field::Empty,
    );
    async move {
        let started = Instant::now();
        let method = req.method().clone();
        let origin = req.headers().get(header::ORIGIN).cloned();
        let mut response = if method == Method::OPTIONS {
            preflight(web, req.headers())
        } else {
            handler(state, req).await.unwrap_or_else(ApiError::into_response)
        };
        let headers = response.headers_mut();
        add_security_headers(headers);
        add_cors_headers(headers, web, origin.as_ref());
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert("x-request-id", value);
        }
        let status = response.status().as_u16();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(status, latency_ms, "request completed");
        response
    }
    .instrument(span)
    .await
}

fn preflight(web: &WebConfig, headers: &HeaderMap) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    let allowed = origin_allowed(web, headers.get(header::ORIGIN));
    if allowed {
        let out = response.headers_mut();
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        out.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    response
}

fn origin_allowed(web: &WebConfig, origin: Option<&HeaderValue>) -> bool {
    origin
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| o == web.frontend_origin)
}

fn add_cors_headers(headers: &mut HeaderMap, web: &WebConfig, origin: Option<&HeaderValue>) {
    // The answer depends on the Origin header, so caches must key on it.
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if origin_allowed(web, origin)
        && let Some(origin) = origin
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
}

fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The one HTML page (the public share page) sets its own, as strict as its images allow.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Responses are per-user JSON unless a handler explicitly says otherwise (public plans).
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

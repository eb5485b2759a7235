//! A small client for Replicate's HTTP API: create a prediction for an official model, poll it,
//! cancel it, and download its output file.
//!
//! Retries follow the official Go client (`client.go`, `backoff.go`): a create is retried only on
//! 429, because it is not idempotent (a 5xx or a dropped connection may already have created the
//! prediction, so that is left to the job level, which can look for it); reads are retried on 429,
//! 5xx and transport errors. Waits use exponential backoff with jitter unless Replicate sent
//! `Retry-After` (delta seconds or an HTTP date).
//!
//! The API token goes into the `Authorization` header and nowhere else: not into URLs, logs,
//! errors or `Debug` output, and never to output hosts (`replicate.delivery`).

use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::platform::config::{ConfigError, Env, Secret};
use crate::platform::error::one_line;

mod error;
mod output;
mod prediction;
mod retry;
pub use error::ReplicateError;
pub use output::{DEFAULT_OUTPUT_DOMAINS, OutputHost, OutputPolicy, OutputRefused, is_public};
pub use prediction::{InvalidPredictionId, Metrics, Prediction, PredictionId, PredictionStatus};
pub use retry::RetryPolicy;
use retry::retry_after_of;

pub const DEFAULT_BASE_URL: &str = "https://api.replicate.com/v1";

const CLIENT_USER_AGENT: &str = concat!("realstaging-worker/", env!("CARGO_PKG_VERSION"));
/// Sync mode holds a create open for at most 60 s on Replicate's side.
const MAX_PREFER_WAIT_SECS: u64 = 60;
/// Headroom over the sync-mode wait for Replicate to answer a create.
const CREATE_TIMEOUT_MARGIN: Duration = Duration::from_secs(15);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A `Retry-After` longer than this is treated as this: a Lambda invocation cannot sleep for long.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// A prediction object echoes its input and logs; anything near this size is not a prediction.
const MAX_API_BODY_BYTES: usize = 8 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
pub(crate) const MAX_DETAIL_CHARS: usize = 300;

/// Where Replicate is and how to authenticate.
#[derive(Debug, Clone)]
pub struct ReplicateConfig {
    /// Default [`DEFAULT_BASE_URL`]; a trailing slash is optional.
    pub base_url: Url,
    pub token: Secret,
}

impl ReplicateConfig {
    /// `REPLICATE_API_TOKEN` (None when unset: the caller decides whether that is allowed) and
    /// `REPLICATE_API_BASE` (optional, an http(s) URL; default [`DEFAULT_BASE_URL`]).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(token) = env.optional("REPLICATE_API_TOKEN") else {
            return Ok(None);
        };
        let base_url = match env.optional("REPLICATE_API_BASE") {
            None => {
                Url::parse(DEFAULT_BASE_URL).map_err(|e| ConfigError::invalid("REPLICATE_API_BASE", e.to_string()))?
            }
            Some(_) => env.url("REPLICATE_API_BASE")?,
        };
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(ConfigError::invalid("REPLICATE_API_BASE", "must be an http(s) URL"));
        }
        Ok(Some(ReplicateConfig {
            base_url,
            token: Secret::new(token),
        }))
    }
}

/// What [`Replicate::list_predictions_since`] read.
#[derive(Debug, Clone, Default)]
pub struct PredictionListing {
    pub predictions: Vec<Prediction>,
    /// The whole time window was read (no page cap cut it short).
    pub complete: bool,
}

/// One page of `GET /v1/predictions`: `{"next": url|null, "previous": …, "results": [prediction…]}`.
#[derive(Deserialize)]
struct PredictionPage {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    results: Vec<Value>,
}

/// The Replicate API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Replicate {
    config: ReplicateConfig,
    http: reqwest::Client,
    retry: RetryPolicy,
    /// Headroom over the sync-mode wait before a create counts as lost.
    create_timeout_margin: Duration,
    /// Where output may be downloaded from ([`OutputPolicy`]), and the client that enforces it
    /// (its own redirect policy and resolver), built on the first download.
    output: std::sync::Arc<OutputPolicy>,
    downloads: std::sync::Arc<tokio::sync::OnceCell<reqwest::Client>>,
}

/// Which failures one kind of request retries in-process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RetryOn {
    /// Non-idempotent writes: only a 429 proves nothing happened.
    ThrottleOnly,
    /// Reads: 429, 5xx and transport errors.
    Transient,
}

/// One API request, replayable for retries.
struct ApiRequest {
    method: Method,
    url: Url,
    body: Option<Vec<u8>>,
    headers: HeaderMap,
    timeout: Duration,
    /// A create's 404 means "no such model": keep Replicate's explanation.
    not_found_is_rejection: bool,
}

/// A failed attempt and the wait the server asked for (429 and 503 may carry `Retry-After`).
struct Failure {
    error: ReplicateError,
    retry_after: Option<Duration>,
}

impl From<ReplicateError> for Failure {
    fn from(error: ReplicateError) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

impl Replicate {
    pub fn new(config: ReplicateConfig, http: reqwest::Client) -> Self {
        Replicate {
            config,
            http,
            retry: RetryPolicy::default(),
            create_timeout_margin: CREATE_TIMEOUT_MARGIN,
            output: std::sync::Arc::new(OutputPolicy::default()),
            downloads: std::sync::Arc::default(),
        }
    }

    /// How long past the sync-mode wait a create may take before its answer counts as lost (the
    /// prediction may exist all the same; the worker then looks for it).
    pub fn with_create_timeout_margin(self, margin: Duration) -> Self {
        Replicate {
            create_timeout_margin: margin,
            ..self
        }
    }

    /// Replaces the download allowlist (default: https from `replicate.delivery`, public
    /// addresses only).
    pub fn with_output_policy(self, policy: OutputPolicy) -> Self {
        Replicate {
            output: std::sync::Arc::new(policy),
            downloads: std::sync::Arc::default(),
            ..self
        }
    }

    pub fn output_policy(&self) -> &OutputPolicy {
        &self.output
    }

    pub fn with_retry_policy(self, policy: RetryPolicy) -> Self {
        Replicate { retry: policy, ..self }
    }

    pub fn base_url(&self) -> &Url {
        &self.config.base_url
    }

    /// `POST {base}/models/{owner}/{name}/predictions` with `{"input": …}`.
    ///
    /// `wait` sets `Prefer: wait=N` (N clamped to 1..=60 s); the answer may still be unfinished.
    /// `cancel_after` sets `Cancel-After` (whole seconds, e.g. `15m`), Replicate's own deadline.
    /// Retried only on 429, honouring `Retry-After`, for at most `max_attempts` attempts and never
    /// sleeping past `give_up_at` (the first attempt is always made). Anything else (5xx, network errors) is returned at once:
    /// the prediction may exist even though the answer was lost.
    pub async fn create_prediction(
        &self,
        model_id: &str,
        input: &Value,
        wait: Option<Duration>,
        cancel_after: Option<Duration>,
        give_up_at: tokio::time::Instant,
    ) -> Result<Prediction, ReplicateError> {
        let (owner, name) = split_model_id(model_id)?;
        let url = self.api_url(&["models", owner, name, "predictions"])?;
        let body =
            serde_json::to_vec(&serde_json::json!({ "input": input })).map_err(ReplicateError::InvalidResponse)?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut timeout = self.create_timeout_margin;
        if let Some(wait) = wait {
            let seconds = prefer_wait_seconds(wait);
            timeout += Duration::from_secs(seconds);
            insert_header(&mut headers, "prefer", &format!("wait={seconds}"));
        }
        if let Some(deadline) = cancel_after {
            insert_header(&mut headers, "cancel-after", &format_cancel_after(deadline));
        }
        let request = ApiRequest {
            method: Method::POST,
            url,
            body: Some(body),
            headers,
            timeout,
            not_found_is_rejection: true,
        };
        self.send_with_retries(&request, RetryOn::ThrottleOnly, Some(give_up_at))
            .await
    }

    /// `GET {base}/predictions/{id}`; retried on 429, 5xx and transport errors.
    pub async fn get_prediction(&self, id: &PredictionId) -> Result<Prediction, ReplicateError> {
        let request = ApiRequest {
            method: Method::GET,
            url: self.api_url(&["predictions", id.as_str()])?,
            body: None,
            headers: HeaderMap::new(),
            timeout: REQUEST_TIMEOUT,
            not_found_is_rejection: false,
        };
        self.send_with_retries(&request, RetryOn::Transient, None).await
    }

    /// `POST {base}/predictions/{id}/cancel`; retried on 429 only. Canceling a finished
    /// prediction is harmless: Replicate answers with it unchanged.
    pub async fn cancel_prediction(&self, id: &PredictionId) -> Result<Prediction, ReplicateError> {
        let request = ApiRequest {
            method: Method::POST,
            url: self.api_url(&["predictions", id.as_str(), "cancel"])?,
            body: None,
            headers: HeaderMap::new(),
            timeout: REQUEST_TIMEOUT,
            not_found_is_rejection: false,
        };
        self.send_with_retries(&request, RetryOn::ThrottleOnly, None).await
    }

    /// The predictions created since `created_after` (`GET {base}/predictions?created_after=…`,
    /// newest first, 100 a page), following `next` for at most `max_pages` pages. `complete` says
    /// whether the whole window was read: false when the page cap cut it short, so a caller looking
    /// for a prediction cannot conclude that it does not exist. A `next` link that leaves the API's
    /// origin or path is refused (the token is never sent elsewhere). Reads are retried like GETs.
    pub async fn list_predictions_since(
        &self,
        created_after: chrono::DateTime<chrono::Utc>,
        max_pages: usize,
    ) -> Result<PredictionListing, ReplicateError> {
        let first = {
            let mut url = self.api_url(&["predictions"])?;
            url.query_pairs_mut().append_pair(
                "created_after",
                &created_after.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            );
            url
        };
        let mut listing = PredictionListing::default();
        let mut next = Some(first);
        for _ in 0..max_pages.max(1) {
            let Some(url) = next.take() else { break };
            let request = ApiRequest {
                method: Method::GET,
                url,
                body: None,
                headers: HeaderMap::new(),
                timeout: REQUEST_TIMEOUT,
                not_found_is_rejection: true,
            };
            let page: PredictionPage = self.send_with_retries(&request, RetryOn::Transient, None).await?;
            let mut reached_older = false;
            for raw in page.results {
                match serde_json::from_value::<Prediction>(raw) {
                    // A server that ignores `created_after` still ends the walk at the window's edge.
                    Ok(p) if p.created_at.is_some_and(|at| at < created_after) => reached_older = true,
                    Ok(p) => listing.predictions.push(p),
                    Err(err) => tracing::debug!(error = %err, "skipping an unreadable listed prediction"),
                }
            }
            next = match page.next.filter(|n| !n.is_empty()) {
                None => None,
                Some(_) if reached_older => None,
                Some(link) => Some(self.same_api_page(&link, &request.url)?),
            };
            if next.is_none() {
                listing.complete = true;
                break;
            }
        }
        Ok(listing)
    }

    /// A `next` link is followed only when it stays on the API's origin and the list's path.
    fn same_api_page(&self, link: &str, current: &Url) -> Result<Url, ReplicateError> {
        let url = Url::parse(link).map_err(|_| ReplicateError::InvalidNextPage)?;
        if url.origin() == current.origin() && url.path() == current.path() {
            Ok(url)
        } else {
            Err(ReplicateError::InvalidNextPage)
        }
    }

    /// Downloads an output file (a `replicate.delivery` URL, which needs no credentials, so none
    /// are sent) through the [`OutputPolicy`]: a URL outside it, a redirect leaving it or a host
    /// resolving to a private address is [`ReplicateError::OutputRefused`] (a non-http scheme
    /// [`ReplicateError::UnsupportedUrl`]), with no request made to it. A declared
    /// `Content-Length` over `max_bytes` is refused before reading, and a body without one is read
    /// in chunks and abandoned once past the cap. The whole download, body included, must finish
    /// within `timeout`.
    pub async fn download(&self, url: &Url, max_bytes: usize, timeout: Duration) -> Result<Vec<u8>, ReplicateError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ReplicateError::UnsupportedUrl {
                scheme: url.scheme().to_string(),
            });
        }
        self.output.check(url).map_err(ReplicateError::OutputRefused)?;
        match tokio::time::timeout(timeout, self.download_within(url, max_bytes, timeout)).await {
            Ok(result) => result,
            Err(_) => Err(ReplicateError::TimedOut { after: timeout }),
        }
    }

    async fn download_within(&self, url: &Url, max_bytes: usize, timeout: Duration) -> Result<Vec<u8>, ReplicateError> {
        let http = self
            .downloads
            .get_or_try_init(|| async { self.output.client(CLIENT_USER_AGENT) })
            .await
            .map_err(ReplicateError::Transport)?;
        let started = tokio::time::Instant::now();
        let result = http.get(url.clone()).timeout(timeout).send().await;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                if let Some(refused) = output::refusal_in(&error) {
                    return Err(ReplicateError::OutputRefused(refused));
                }
                tracing::debug!(method = "GET", host = url.host_str(), path = url.path(), error = %error, "output download failed");
                return Err(ReplicateError::Transport(error));
            }
        };
        let status = response.status();
        tracing::debug!(
            method = "GET",
            host = url.host_str(),
            path = url.path(),
            final_host = response.url().host_str(),
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "output download"
        );
        if !status.is_success() {
            return Err(match status.as_u16() {
                404 | 410 => ReplicateError::NotFound,
                429 => ReplicateError::Throttled {
                    retry_after: retry_after_of(response.headers(), SystemTime::now()),
                },
                code @ 500..=599 => ReplicateError::Server { status: code },
                code => ReplicateError::Rejected {
                    status: code,
                    detail: "the output host refused the download".to_string(),
                },
            });
        }
        if response
            .content_length()
            .is_some_and(|length| length > max_bytes as u64)
        {
            return Err(ReplicateError::TooLarge { limit: max_bytes });
        }
        read_capped(response, max_bytes).await
    }

    fn api_url(&self, segments: &[&str]) -> Result<Url, ReplicateError> {
        let mut url = self.config.base_url.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| ReplicateError::InvalidBaseUrl)?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn send_with_retries<T: serde::de::DeserializeOwned>(
        &self,
        request: &ApiRequest,
        retry_on: RetryOn,
        give_up_at: Option<tokio::time::Instant>,
    ) -> Result<T, ReplicateError> {
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let failure = match self.attempt(request).await {
                Ok(prediction) => return Ok(prediction),
                Err(failure) => failure,
            };
            let retryable = match &failure.error {
                ReplicateError::Throttled { .. } => true,
                ReplicateError::Server { .. } | ReplicateError::Transport(_) => retry_on == RetryOn::Transient,
                _ => false,
            };
            if !retryable || attempt >= max_attempts {
                return Err(failure.error);
            }
            let delay = match failure.retry_after {
                Some(asked) => asked,
                None => self.retry.backoff(attempt),
            };
            match give_up_at {
                // A throttled create waits as long as Replicate asks, up to the caller's deadline.
                Some(give_up_at) if tokio::time::Instant::now() + delay >= give_up_at => return Err(failure.error),
                Some(_) => {}
                // A read asked to wait longer than a backoff would ever be gives the caller control.
                None if delay > self.retry.max_delay => return Err(failure.error),
                None => {}
            }
            tracing::debug!(
                method = %request.method,
                path = request.url.path(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %failure.error,
                "retrying Replicate request"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt<T: serde::de::DeserializeOwned>(&self, request: &ApiRequest) -> Result<T, Failure> {
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone())
            .header(USER_AGENT, CLIENT_USER_AGENT)
            .header(AUTHORIZATION, self.authorization()?)
            .timeout(request.timeout);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let started = tokio::time::Instant::now();
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(method = %request.method, path = request.url.path(), error = %error, "Replicate request failed");
                return Err(ReplicateError::Transport(error).into());
            }
        };
        let status = response.status();
        tracing::debug!(
            method = %request.method,
            path = request.url.path(),
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Replicate request"
        );
        if status.is_success() {
            let body = read_capped(response, MAX_API_BODY_BYTES).await?;
            return serde_json::from_slice(&body).map_err(|e| ReplicateError::InvalidResponse(e).into());
        }
        let retry_after = retry_after_of(response.headers(), SystemTime::now());
        let error = match status {
            StatusCode::TOO_MANY_REQUESTS => ReplicateError::Throttled { retry_after },
            StatusCode::NOT_FOUND if !request.not_found_is_rejection => ReplicateError::NotFound,
            _ if status.is_server_error() => ReplicateError::Server {
                status: status.as_u16(),
            },
            _ => ReplicateError::Rejected {
                status: status.as_u16(),
                detail: self.error_detail(response).await,
            },
        };
        Err(Failure { error, retry_after })
    }

    fn authorization(&self) -> Result<HeaderValue, ReplicateError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.config.token.expose()))
            .map_err(|_| ReplicateError::InvalidToken)?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Replicate's `detail` (or `title`) from an error body, one line, short, token-free.
    async fn error_detail(&self, response: Response) -> String {
        let status = response.status();
        let body = read_capped(response, MAX_ERROR_BODY_BYTES).await.unwrap_or_default();
        let text = match serde_json::from_slice::<Value>(&body) {
            Ok(json) => ["detail", "title", "message", "error"]
                .iter()
                .find_map(|key| json.get(key).and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| json.to_string()),
            Err(_) => String::from_utf8_lossy(&body).into_owned(),
        };
        let token = self.config.token.expose();
        let text = if token.is_empty() {
            text
        } else {
            text.replace(token, "[redacted]")
        };
        let detail = one_line(&text, MAX_DETAIL_CHARS);
        if detail.is_empty() {
            status.canonical_reason().unwrap_or("no detail given").to_string()
        } else {
            detail
        }
    }
}

fn insert_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    // Values built here are ASCII digits and letters, always valid.
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// "owner/name", each part `[A-Za-z0-9._-]+` and not just dots (no `..` path segments).
fn split_model_id(model_id: &str) -> Result<(&str, &str), ReplicateError> {
    let invalid = || ReplicateError::InvalidModelId(one_line(model_id, 100));
    let (owner, name) = model_id.split_once('/').ok_or_else(invalid)?;
    let valid_part = |part: &str| {
        !part.is_empty()
            && !part.bytes().all(|b| b == b'.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if valid_part(owner) && valid_part(name) {
        Ok((owner, name))
    } else {
        Err(invalid())
    }
}

/// The `Prefer: wait=N` seconds: whole seconds, 1..=60.
fn prefer_wait_seconds(wait: Duration) -> u64 {
    wait.as_secs().clamp(1, MAX_PREFER_WAIT_SECS)
}

/// A duration in Replicate's `Cancel-After` syntax: whole seconds (rounded up, at least one) as
/// hours, minutes and seconds, zero parts left out: 900 s → `15m`, 90 s → `1m30s`, 3600 s → `1h`.
pub fn format_cancel_after(duration: Duration) -> String {
    let mut seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds = seconds.max(1);
    let (hours, minutes, seconds) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut formatted = String::new();
    if hours > 0 {
        formatted.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        formatted.push_str(&format!("{minutes}m"));
    }
    if seconds > 0 {
        formatted.push_str(&format!("{seconds}s"));
    }
    formatted
}

/// Reads a body in chunks, abandoning it once past `limit` bytes.
async fn read_capped(mut response: Response, limit: usize) -> Result<Vec<u8>, ReplicateError> {
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(ReplicateError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReplicateError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(ReplicateError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests;

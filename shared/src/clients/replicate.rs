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

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::platform::config::{ConfigError, Env, Secret};

mod output;
pub use output::{DEFAULT_OUTPUT_DOMAINS, OutputHost, OutputPolicy, OutputRefused, is_public};

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
const MAX_DETAIL_CHARS: usize = 300;

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

/// How reads (and throttled creates) are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// The first backoff; doubles with every retry.
    pub base_delay: Duration,
    /// No backoff is longer. A read whose `Retry-After` asks for more gives up at once instead of
    /// sleeping (the caller's poll loop comes back later).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// The Go client's numbers: 5 attempts, 0.5 s doubling.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 = the first retry): exponential, capped, with
    /// "equal jitter" (half fixed, half random) so throttled workers spread out.
    fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(20);
        let full = self.base_delay.saturating_mul(1u32 << exponent).min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(random_fraction())
    }
}

/// A uniformly random number in [0, 1) without a `rand` dependency (v4 UUIDs are random).
fn random_fraction() -> f64 {
    let bits = (uuid::Uuid::new_v4().as_u128() >> 75) as u64; // 53 random bits
    bits as f64 / (1u64 << 53) as f64
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

/// A Replicate prediction id: 1 to 64 lowercase ASCII letters and digits. The only way an id gets
/// into a request path, so a path can never be steered elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PredictionId(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a Replicate prediction id (expected 1 to 64 lowercase letters and digits)")]
pub struct InvalidPredictionId;

impl PredictionId {
    pub fn parse(raw: &str) -> Result<Self, InvalidPredictionId> {
        let valid = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(PredictionId(raw.to_string()))
        } else {
            Err(InvalidPredictionId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PredictionId {
    type Err = InvalidPredictionId;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        PredictionId::parse(raw)
    }
}

impl TryFrom<String> for PredictionId {
    type Error = InvalidPredictionId;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        PredictionId::parse(&raw)
    }
}

impl From<PredictionId> for String {
    fn from(id: PredictionId) -> String {
        id.0
    }
}

impl fmt::Display for PredictionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parts of Replicate's prediction object the worker uses. Parsing is lenient: unknown fields
/// are ignored, `output`/`error` may be any JSON (null reads as absent), `metrics` may be missing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawPrediction")]
pub struct Prediction {
    pub id: PredictionId,
    pub status: PredictionStatus,
    pub output: Option<Value>,
    /// Usually a string; kept as JSON because some models report an object.
    pub error: Option<Value>,
    pub metrics: Option<Metrics>,
    /// The input as Replicate echoes it (the worker finds its job's input URL in it).
    pub input: Option<Value>,
    /// When Replicate created it (absent or unreadable reads as `None`).
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Prediction {
    /// Every string inside the echoed input, depth first (URLs may sit in arrays or objects).
    pub fn input_strings(&self) -> Vec<&str> {
        fn walk<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::String(s) => out.push(s),
                Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                Value::Object(map) => map.values().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        if let Some(input) = &self.input {
            walk(input, &mut out);
        }
        out
    }

    /// `error` as one line of text for a job's failure reason, at most 300 characters.
    pub fn error_message(&self) -> Option<String> {
        let text = match self.error.as_ref()? {
            Value::String(s) => s.clone(),
            Value::Object(map) => match map.get("detail").or_else(|| map.get("message")) {
                Some(Value::String(s)) => s.clone(),
                _ => Value::Object(map.clone()).to_string(),
            },
            other => other.to_string(),
        };
        let text = one_line(&text, MAX_DETAIL_CHARS);
        (!text.is_empty()).then_some(text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// Seconds of model run time (what Replicate bills for).
    pub predict_time: Option<f64>,
}

#[derive(Deserialize)]
struct RawPrediction {
    id: String,
    #[serde(default)]
    status: Value,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    metrics: Option<Value>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    created_at: Option<Value>,
}

impl TryFrom<RawPrediction> for Prediction {
    type Error = InvalidPredictionId;
    fn try_from(raw: RawPrediction) -> Result<Self, Self::Error> {
        let metrics = raw.metrics.and_then(|metrics| match metrics {
            Value::Object(map) => Some(Metrics {
                predict_time: map.get("predict_time").and_then(Value::as_f64),
            }),
            _ => None,
        });
        Ok(Prediction {
            id: PredictionId::parse(&raw.id)?,
            status: raw
                .status
                .as_str()
                .map_or(PredictionStatus::Unknown, PredictionStatus::from_api),
            output: raw.output,
            error: raw.error,
            metrics,
            input: raw.input.filter(|v| !v.is_null()),
            created_at: raw
                .created_at
                .as_ref()
                .and_then(Value::as_str)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
        })
    }
}

/// Replicate's prediction statuses; anything new reads as `Unknown` (not terminal: keep polling
/// until the job's own deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PredictionStatus {
    Starting,
    Processing,
    Succeeded,
    Failed,
    Canceled,
    /// The `Cancel-After` deadline passed before the prediction started (not billed).
    Aborted,
    #[serde(other)]
    Unknown,
}

impl PredictionStatus {
    pub fn from_api(raw: &str) -> Self {
        match raw {
            "starting" => PredictionStatus::Starting,
            "processing" => PredictionStatus::Processing,
            "succeeded" => PredictionStatus::Succeeded,
            "failed" => PredictionStatus::Failed,
            "canceled" => PredictionStatus::Canceled,
            "aborted" => PredictionStatus::Aborted,
            _ => PredictionStatus::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PredictionStatus::Starting => "starting",
            PredictionStatus::Processing => "processing",
            PredictionStatus::Succeeded => "succeeded",
            PredictionStatus::Failed => "failed",
            PredictionStatus::Canceled => "canceled",
            PredictionStatus::Aborted => "aborted",
            PredictionStatus::Unknown => "unknown",
        }
    }

    /// The prediction will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PredictionStatus::Succeeded
                | PredictionStatus::Failed
                | PredictionStatus::Canceled
                | PredictionStatus::Aborted
        )
    }
}

impl fmt::Display for PredictionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong talking to Replicate. None of these carry the token.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error("Replicate is throttling requests (429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("Replicate answered with server error {status}")]
    Server { status: u16 },
    #[error("request to Replicate failed: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("request to Replicate timed out after {after:?}")]
    TimedOut { after: Duration },
    #[error("Replicate refused the request ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    #[error("not found on Replicate")]
    NotFound,
    #[error("Replicate answered with something that is not a prediction: {0}")]
    InvalidResponse(#[source] serde_json::Error),
    #[error("the response is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("`{0}` is not a model id of the form owner/name")]
    InvalidModelId(String),
    #[error("only http and https URLs can be downloaded, not `{scheme}`")]
    UnsupportedUrl { scheme: String },
    #[error("the Replicate base URL cannot have paths appended")]
    InvalidBaseUrl,
    #[error("the Replicate API token contains characters that cannot be sent in a header")]
    InvalidToken,
    #[error("Replicate's list pointed to a next page elsewhere than its API")]
    InvalidNextPage,
    /// The output URL (or a redirect from it, or its DNS answer) is outside the download
    /// allowlist ([`OutputPolicy`]): nothing was, or will be, fetched from it.
    #[error("output download refused: {0}")]
    OutputRefused(#[source] OutputRefused),
}

impl ReplicateError {
    /// Worth trying again later (at the job level): throttling, server errors, network trouble.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ReplicateError::Throttled { .. }
                | ReplicateError::Server { .. }
                | ReplicateError::Transport(_)
                | ReplicateError::TimedOut { .. }
        )
    }

    /// A fault of the operator's account, not of the photo: the token is wrong or rotated (401),
    /// the account is out of credit (402), access to the model was lost (403), or the model does
    /// not exist (a create's 404). Retrying will not help until the operator acts; failing the
    /// user's job for it would be wrong.
    pub fn is_account_fault(&self) -> bool {
        matches!(self, ReplicateError::Rejected { status: 401..=404, .. })
    }

    /// Replicate may have acted on the request although the answer was lost or unusable: a server
    /// error, a dropped connection, a timeout, or a 2xx body that is not a prediction.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            ReplicateError::Server { .. }
                | ReplicateError::Transport(_)
                | ReplicateError::TimedOut { .. }
                | ReplicateError::InvalidResponse(_)
                | ReplicateError::TooLarge { .. }
        )
    }

    /// The wait Replicate asked for, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ReplicateError::Throttled { retry_after } => *retry_after,
            _ => None,
        }
    }
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

/// `Retry-After` as delta seconds or an HTTP date, capped at a minute; a date in the past means
/// "now".
fn retry_after_of(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(raw.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
        let at = SystemTime::from(at.with_timezone(&chrono::Utc));
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(RETRY_AFTER_CAP))
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

/// Whitespace and control characters collapsed to single spaces, cut to `max_chars` with "…".
fn one_line(text: &str, max_chars: usize) -> String {
    let collapsed = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if collapsed.chars().count() <= max_chars {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_the_token_and_an_optional_base() {
        use std::collections::HashMap;
        let read = |vars: &[(&'static str, &'static str)]| {
            let vars: HashMap<&str, &str> = vars.iter().copied().collect();
            ReplicateConfig::from_env(&Env(&vars))
        };
        assert!(read(&[]).unwrap().is_none());
        assert!(read(&[("REPLICATE_API_TOKEN", "  ")]).unwrap().is_none());
        let config = read(&[("REPLICATE_API_TOKEN", "r8_abc")]).unwrap().unwrap();
        assert_eq!(config.base_url.as_str(), DEFAULT_BASE_URL);
        assert_eq!(config.token.expose(), "r8_abc");
        let local = read(&[
            ("REPLICATE_API_TOKEN", "r8_abc"),
            ("REPLICATE_API_BASE", "http://127.0.0.1:9/v1/"),
        ]);
        assert_eq!(local.unwrap().unwrap().base_url.as_str(), "http://127.0.0.1:9/v1/");
        for bad in ["not a url", "ftp://x/v1", "mailto:a@b.c"] {
            let vars = [("REPLICATE_API_TOKEN", "r8_abc"), ("REPLICATE_API_BASE", bad)];
            assert!(read(&vars).is_err(), "{bad}");
        }
    }

    #[test]
    fn cancel_after_uses_replicate_duration_syntax() {
        let cases = [
            (Duration::from_secs(900), "15m"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(60), "1m"),
            (Duration::from_secs(45), "45s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(5400), "1h30m"),
            (Duration::from_secs(3661), "1h1m1s"),
            (Duration::ZERO, "1s"),
            (Duration::from_millis(1500), "2s"),
        ];
        for (duration, expected) in cases {
            assert_eq!(format_cancel_after(duration), expected, "{duration:?}");
        }
    }

    #[test]
    fn prefer_wait_is_clamped_to_what_replicate_allows() {
        assert_eq!(prefer_wait_seconds(Duration::ZERO), 1);
        assert_eq!(prefer_wait_seconds(Duration::from_secs(5)), 5);
        assert_eq!(prefer_wait_seconds(Duration::from_secs(600)), 60);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_747); // Sun, 06 Nov 1994 08:49:07 GMT
        let header = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            retry_after_of(&headers, now)
        };
        assert_eq!(header("7"), Some(Duration::from_secs(7)));
        assert_eq!(header(" 0 "), Some(Duration::ZERO));
        assert_eq!(header("99999999999999999999999"), Some(RETRY_AFTER_CAP));
        assert_eq!(header("3600"), Some(RETRY_AFTER_CAP));
        assert_eq!(header("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::from_secs(30)));
        assert_eq!(header("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(header("soon"), None);
        assert_eq!(header("-5"), None);
        assert_eq!(retry_after_of(&HeaderMap::new(), now), None);
    }

    #[test]
    fn model_ids_are_owner_slash_name() {
        assert_eq!(
            split_model_id("qwen/qwen-image-edit").unwrap(),
            ("qwen", "qwen-image-edit")
        );
        assert_eq!(
            split_model_id("black-forest-labs/flux-1.1_pro").unwrap(),
            ("black-forest-labs", "flux-1.1_pro")
        );
        for bad in [
            "", "qwen", "/x", "x/", "a/b/c", "../x", "a/..", "a/.", "a b/c", "a/b?c", "a/b#c", "a/%2e", "ä/b",
        ] {
            assert!(split_model_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prediction_ids_are_lowercase_alphanumerics() {
        assert!(PredictionId::parse("gm3qorzdhgbfurvjtvhg6dckhu").is_ok());
        let too_long = "a".repeat(65);
        for bad in ["", "ABC", "abc-def", "abc/def", "../x", "abc def", too_long.as_str()] {
            assert!(PredictionId::parse(bad).is_err(), "{bad}");
        }
        let id: PredictionId = serde_json::from_str("\"abc123\"").unwrap();
        assert_eq!(id.to_string(), "abc123");
        assert!(serde_json::from_str::<PredictionId>("\"ABC\"").is_err());
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for retry in 1..12 {
            let full = Duration::from_millis(100 * (1u64 << (retry - 1).min(10))).min(Duration::from_millis(1000));
            let delay = policy.backoff(retry);
            assert!(
                delay >= full / 2 && delay <= full,
                "retry {retry}: {delay:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn account_faults_and_ambiguous_outcomes_are_told_apart() {
        let rejected = |status| ReplicateError::Rejected {
            status,
            detail: "x".into(),
        };
        for status in [401, 402, 403, 404] {
            assert!(rejected(status).is_account_fault(), "{status}");
            assert!(!rejected(status).is_ambiguous(), "{status}");
        }
        for status in [400, 409, 422] {
            assert!(!rejected(status).is_account_fault(), "{status}");
        }
        let unreadable = ReplicateError::InvalidResponse(serde_json::from_str::<Value>("<html>").unwrap_err());
        for ambiguous in [
            ReplicateError::Server { status: 502 },
            ReplicateError::TimedOut {
                after: Duration::from_secs(45),
            },
            unreadable,
            ReplicateError::TooLarge { limit: 1 },
        ] {
            assert!(ambiguous.is_ambiguous(), "{ambiguous}");
            assert!(!ambiguous.is_account_fault(), "{ambiguous}");
        }
        // A 429 proves nothing was created: not ambiguous.
        assert!(!ReplicateError::Throttled { retry_after: None }.is_ambiguous());
    }

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("  a\n\tb  c ", 10), "a b c");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("ééééé", 5), "ééééé");
    }

    #[test]
    fn error_message_reads_strings_and_objects() {
        let prediction = |error: Value| Prediction {
            id: PredictionId::parse("abc").unwrap(),
            status: PredictionStatus::Failed,
            output: None,
            error: Some(error),
            metrics: None,
            input: None,
            created_at: None,
        };
        assert_eq!(
            prediction(Value::from("CUDA out of memory")).error_message().unwrap(),
            "CUDA out of memory"
        );
        let object = serde_json::json!({"detail": "NSFW content detected"});
        assert_eq!(prediction(object).error_message().unwrap(), "NSFW content detected");
        assert_eq!(prediction(Value::from("")).error_message(), None);
    }
}

//! Invoking a function through `cargo lambda watch`'s emulation of the Lambda Invoke API.
//!
//! cargo-lambda answers 200 with the function's JSON result, 500 with the runtime's error document
//! (`{"errorType","errorMessage"}`) when the handler failed, 404 for an unknown function, and —
//! for an init error — 200 with the error document; the real Invoke API marks errors with the
//! `X-Amz-Function-Error` header. All of those count as a failed invocation here.

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use shared::reqwest::{self, StatusCode, Url};
use shared::serde_json::Value;

use crate::events::{preview, truncate};
use crate::log;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
/// How often "still waiting" is repeated while cargo lambda watch is not listening.
const WAITING_NOTICE_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Invoker {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
}

/// What the Invoke endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The `X-Amz-Function-Error` header (`Unhandled`), when present.
    pub function_error: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub enum InvokeError {
    /// No answer within the invoke timeout (a first invocation also compiles the function).
    Timeout(Duration),
    Transport(reqwest::Error),
}

impl fmt::Display for InvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvokeError::Timeout(limit) => write!(f, "no answer within {} s", limit.as_secs()),
            InvokeError::Transport(err) => write!(f, "{}", error_chain(err)),
        }
    }
}

impl std::error::Error for InvokeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InvokeError::Timeout(_) => None,
            InvokeError::Transport(err) => Some(err),
        }
    }
}

impl Answer {
    /// `None` when the function returned normally, else why the invocation failed.
    pub fn failure(&self) -> Option<String> {
        let json: Option<Value> = shared::serde_json::from_slice(&self.body).ok();
        let error_document = json.as_ref().and_then(|v| v.get("errorType")).is_some();
        let status_ok = StatusCode::from_u16(self.status).is_ok_and(|s| s.is_success());
        if status_ok && self.function_error.is_none() && !error_document {
            return None;
        }
        let detail = match &json {
            Some(v) if error_document => format!(
                "{}: {}",
                v["errorType"].as_str().unwrap_or("error"),
                truncate(v["errorMessage"].as_str().unwrap_or(""), 300)
            ),
            Some(v) if v.get("title").is_some() => format!(
                "{}: {}",
                v["title"].as_str().unwrap_or(""),
                truncate(v["detail"].as_str().unwrap_or(""), 300)
            ),
            Some(v) => preview(v),
            None => truncate(String::from_utf8_lossy(&self.body).trim(), 300),
        };
        Some(format!("HTTP {}: {detail}", self.status))
    }
}

impl Invoker {
    pub fn new(base: Url, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT)
            // 127.0.0.1 must never go through a developer's HTTP proxy.
            .no_proxy()
            .build()?;
        Ok(Invoker { http, base, timeout })
    }

    pub fn invoke_url(&self, function: &str) -> String {
        format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.base.as_str().trim_end_matches('/')
        )
    }

    /// Returns once something accepts TCP connections at the invoke address, so no message is
    /// taken off the queue while there is nobody to give it to.
    pub async fn wait_until_listening(&self) {
        let mut since: Option<Instant> = None;
        let mut last_notice: Option<Instant> = None;
        let mut delay = FIRST_RETRY;
        loop {
            let base = self.base.clone();
            let listening = shared::tokio::task::spawn_blocking(move || is_listening(&base))
                .await
                .unwrap_or(false);
            if listening {
                if let Some(since) = since {
                    log(format!(
                        "{} is listening (waited {} s)",
                        self.base,
                        since.elapsed().as_secs()
                    ));
                }
                return;
            }
            since.get_or_insert_with(Instant::now);
            if last_notice.is_none_or(|t| t.elapsed() >= WAITING_NOTICE_EVERY) {
                log(format!("waiting for cargo lambda watch to listen on {}", self.base));
                last_notice = Some(Instant::now());
            }
            shared::tokio::time::sleep(delay).await;
            delay = (delay * 2).min(LONGEST_RETRY);
        }
    }

    /// POSTs `payload` to the function. A refused connection (cargo lambda watch not up yet, or
    /// restarting) is retried with backoff; anything else is the caller's to judge.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Answer, InvokeError> {
        let url = self.invoke_url(function);
        let mut delay = FIRST_RETRY;
        let mut last_notice: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let mut sending = Box::pin(self.http.post(&url).json(payload).send());
            // cargo-lambda holds the request while it compiles the function, and forever when
            // the function exits during init: say so instead of going quiet.
            let sent = loop {
                match shared::tokio::time::timeout(WAITING_NOTICE_EVERY, &mut sending).await {
                    Ok(sent) => break sent,
                    Err(_) => log(format!(
                        "still waiting for {function} after {} s (a first invocation compiles it; a compile or \
                         init error shows in the scripts/dev terminal)",
                        started.elapsed().as_secs()
                    )),
                }
            };
            match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let function_error = response
                        .headers()
                        .get("x-amz-function-error")
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                    let body = response.bytes().await.map_err(|e| self.classify(e))?;
                    return Ok(Answer {
                        status,
                        function_error,
                        body: body.to_vec(),
                    });
                }
                Err(err) if err.is_connect() => {
                    if last_notice.is_none_or(|t| t.elapsed() >= WAITING_NOTICE_EVERY) {
                        log(format!("cannot reach {url} ({}); retrying", error_chain(&err)));
                        last_notice = Some(Instant::now());
                    }
                    shared::tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(LONGEST_RETRY);
                }
                Err(err) => return Err(self.classify(err)),
            }
        }
    }

    fn classify(&self, err: reqwest::Error) -> InvokeError {
        if err.is_timeout() {
            InvokeError::Timeout(self.timeout)
        } else {
            InvokeError::Transport(err)
        }
    }
}

fn is_listening(base: &Url) -> bool {
    let addrs: Vec<SocketAddr> = base.socket_addrs(|| None).unwrap_or_default();
    addrs
        .iter()
        .any(|addr| TcpStream::connect_timeout(addr, Duration::from_secs(1)).is_ok())
}

/// An error and its causes on one line (reqwest's own Display stops at the outermost layer).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, function_error: Option<&str>, body: &str) -> Answer {
        Answer {
            status,
            function_error: function_error.map(str::to_string),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_invoke_path_is_the_lambda_api_path() {
        let invoker = Invoker::new(Url::parse("http://127.0.0.1:9000/").unwrap(), Duration::from_secs(1)).unwrap();
        assert_eq!(
            invoker.invoke_url("stage-worker"),
            "http://127.0.0.1:9000/2015-03-31/functions/stage-worker/invocations"
        );
    }

    #[test]
    fn a_normal_answer_is_no_failure() {
        assert_eq!(answer(200, None, r#"{"batchItemFailures":[]}"#).failure(), None);
        assert_eq!(answer(200, None, "").failure(), None);
        assert_eq!(answer(200, None, r#"{"resent":1}"#).failure(), None);
    }

    #[test]
    fn errors_are_failures_with_a_readable_reason() {
        assert_eq!(
            answer(
                500,
                None,
                r#"{"errorType":"&alloc::string::String","errorMessage":"boom"}"#
            )
            .failure(),
            Some("HTTP 500: &alloc::string::String: boom".to_string())
        );
        // cargo-lambda reports an init error with 200 and the error document.
        assert_eq!(
            answer(
                200,
                None,
                r#"{"errorType":"Runtime.InitError","errorMessage":"DATABASE_URL"}"#
            )
            .failure(),
            Some("HTTP 200: Runtime.InitError: DATABASE_URL".to_string())
        );
        assert_eq!(
            answer(
                404,
                None,
                r#"{"title":"Missing function","detail":"that function doesn't exist"}"#
            )
            .failure(),
            Some("HTTP 404: Missing function: that function doesn't exist".to_string())
        );
        assert_eq!(
            answer(200, Some("Unhandled"), r#"{"x":1}"#).failure(),
            Some(r#"HTTP 200: {"x":1}"#.to_string())
        );
        assert_eq!(
            answer(502, None, "bad gateway\n").failure(),
            Some("HTTP 502: bad gateway".to_string())
        );
    }
}

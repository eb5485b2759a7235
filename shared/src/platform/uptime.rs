//! The synthetic uptime check: `GET /health` through the public URL, as a browser would reach it
//! (DNS, TLS, API Gateway, the health function and its database check), once a minute from a
//! scheduled function. Each run publishes `HealthCheckOk` = 1 or 0 (see
//! [`crate::platform::metrics::Counter::HealthCheckOk`]); `ApiDownAlarm` fires when it is below 1,
//! or missing, for three minutes, so an API that gets no traffic is still known to be up.

use std::time::{Duration, Instant};

use serde::Serialize;
use url::Url;

use crate::platform::config::{ConfigError, Env};
use crate::platform::metrics::{self, Counter};

/// A check slower than this counts as down: the API's own p99 target is far below it.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub struct UptimeCheck {
    url: Url,
    http: reqwest::Client,
}

/// What one run saw (the function's result, for `aws lambda invoke` and the logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UptimeReport {
    pub ok: bool,
    pub url: String,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed, when it did (a transport error or an unexpected status).
    pub problem: Option<String>,
}

impl UptimeCheck {
    /// `HEALTH_CHECK_URL`: the public `/health` URL (the template passes the HTTP API's).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let url = env.url("HEALTH_CHECK_URL")?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ConfigError::invalid("HEALTH_CHECK_URL", "must be an http(s) URL"));
        }
        UptimeCheck::new(url)
    }

    pub fn new(url: Url) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(CHECK_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            // A redirect is not the API answering: report what the URL itself answers.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("realstaging-uptime-check/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::invalid("(http client)", e.to_string()))?;
        Ok(UptimeCheck { url, http })
    }

    /// One check: up only on a 200. Publishes the metric and logs a failure at WARN (the alarm,
    /// not this line, is what pages: one failed minute is not an outage).
    pub async fn run(&self) -> UptimeReport {
        let started = Instant::now();
        let answer = self.http.get(self.url.clone()).send().await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let (status, problem) = match answer {
            Ok(response) if response.status() == reqwest::StatusCode::OK => (Some(200), None),
            Ok(response) => (
                Some(response.status().as_u16()),
                Some(format!("answered {}", response.status())),
            ),
            Err(err) if err.is_timeout() => (None, Some(format!("no answer within {CHECK_TIMEOUT:?}"))),
            Err(err) => (
                None,
                Some(format!(
                    "request failed: {}",
                    crate::platform::error::one_line(&format!("{err:#}"), 300)
                )),
            ),
        };
        let ok = problem.is_none();
        metrics::count(Counter::HealthCheckOk, u64::from(ok));
        if let Some(problem) = &problem {
            tracing::warn!(url = %self.url, latency_ms, problem, "uptime check failed");
        }
        UptimeReport {
            ok,
            url: self.url.to_string(),
            status,
            latency_ms,
            problem,
        }
    }
}

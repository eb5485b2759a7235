//! Running a function on the Lambda runtime: logging set-up, state built once per cold start and
//! borrowed by every invocation.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lambda_http::{Request, service_fn};

use crate::platform::config::{ConfigError, Env, ProcessEnv};
use crate::platform::http::{ApiResult, respond};
use crate::platform::state::HttpState;

pub use lambda_http::Error;

/// JSON logs when `AWS_LAMBDA_LOG_FORMAT=JSON` (the SAM template sets it), level from
/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO. Each invocation runs inside the runtime's
/// span carrying the Lambda `requestId`, and [`respond`] adds the API Gateway request id.
pub fn init_logging() {
    lambda_http::tracing::init_default_subscriber();
}

/// The whole `main` of an HTTP function: build `S` from the environment once, then serve
/// `handler` for every invocation.
pub fn run_http<S, F, Fut>(handler: F) -> Result<(), Error>
where
    S: HttpState,
    F: Fn(&'static S, Request) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = ApiResult> + Send + 'static,
{
    init_logging();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let state = S::from_env(&Env(&ProcessEnv)).await.inspect_err(|err| {
            tracing::error!(error = %err, "function init failed");
        })?;
        state.warm_up().await;
        // Lives as long as the Lambda instance; handlers borrow it.
        let state: &'static S = Box::leak(Box::new(state));
        lambda_http::run(service_fn(move |req: Request| async move {
            Ok::<_, Infallible>(respond(state, state.web(), req, handler).await)
        }))
        .await
    })
}

/// The whole `main` of an event-driven function (the SQS worker, the scheduled reconciler and
/// uptime check): build the state once with `build`, then run `handler` for every event. Events
/// and results are JSON.
pub fn run_events<S, E, R, B, BFut, F, Fut>(build: B, handler: F) -> Result<(), Error>
where
    S: Send + Sync + 'static,
    E: serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + Send + 'static,
    B: FnOnce(Env<'static>) -> BFut,
    BFut: Future<Output = Result<S, ConfigError>>,
    F: Fn(Arc<S>, lambda_runtime::LambdaEvent<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Error>> + Send + 'static,
{
    // Outside Lambda there is nothing to run: say so instead of the runtime's missing-variable error.
    run_events_or_program(build, handler, |_, _| async {
        Err(Error::from(
            "this function runs inside Lambda only (locally: scripts/dev, through cargo lambda watch)",
        ))
    })
}

/// [`run_events`] for a function operators also run as a plain program (`migrate` from the local
/// scripts, `set-user-role`): outside Lambda (no `AWS_LAMBDA_RUNTIME_API`), `program` runs once
/// with the command-line arguments instead of the event loop.
pub fn run_events_or_program<S, E, R, B, BFut, F, Fut, P, PFut>(build: B, handler: F, program: P) -> Result<(), Error>
where
    S: Send + Sync + 'static,
    E: serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + Send + 'static,
    B: FnOnce(Env<'static>) -> BFut,
    BFut: Future<Output = Result<S, ConfigError>>,
    F: Fn(Arc<S>, lambda_runtime::LambdaEvent<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Error>> + Send + 'static,
    P: FnOnce(Arc<S>, Vec<String>) -> PFut,
    PFut: Future<Output = Result<(), Error>>,
{
    init_logging();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let state = Arc::new(build(Env(&ProcessEnv)).await.inspect_err(|err| {
            tracing::error!(error = %err, "function init failed");
        })?);
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
            return program(state, std::env::args().skip(1).collect()).await;
        }
        let handler = Arc::new(handler);
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<E>| {
                let (state, handler) = (Arc::clone(&state), Arc::clone(&handler));
                async move { handler(state, event).await }
            },
        ))
        .await
    })
}

/// When work must stop to answer Lambda in time: the invocation's deadline minus `margin`. A
/// deadline that is missing or already past gives `fallback` from now: cargo-lambda's local
/// runtime sends a fixed `Lambda-Runtime-Deadline-Ms` of 600000 (a moment in 1970).
pub fn stop_at(context: &lambda_runtime::Context, margin: Duration, fallback: Duration) -> Instant {
    let remaining = context
        .deadline()
        .duration_since(SystemTime::now())
        .ok()
        .filter(|remaining| !remaining.is_zero());
    match remaining {
        Some(remaining) => Instant::now() + remaining.saturating_sub(margin),
        None => Instant::now() + fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context_with_deadline(deadline_ms: u64) -> lambda_runtime::Context {
        let mut context = lambda_runtime::Context::default();
        context.deadline = deadline_ms;
        context
    }

    #[test]
    fn a_missing_or_past_deadline_gives_the_fallback_budget() {
        let (margin, fallback) = (Duration::from_secs(15), Duration::from_secs(240));
        // 0 (no header) and cargo-lambda's fixed 600000 ms (1970) both mean "unknown".
        for deadline in [0, 600_000] {
            let budget = stop_at(&context_with_deadline(deadline), margin, fallback) - Instant::now();
            assert!(budget > Duration::from_secs(230), "{deadline}: {budget:?}");
        }
    }

    #[test]
    fn a_real_deadline_leaves_the_margin() {
        let deadline = SystemTime::now() + Duration::from_secs(300);
        let millis = deadline.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
        let budget = stop_at(
            &context_with_deadline(millis),
            Duration::from_secs(15),
            Duration::from_secs(1),
        ) - Instant::now();
        assert!(
            budget > Duration::from_secs(280) && budget <= Duration::from_secs(285),
            "{budget:?}"
        );
    }
}

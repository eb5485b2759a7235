//! The test harness: a `TestApp` per test (its own Postgres database from `#[sqlx::test]`, a fake
//! Auth0 JWKS served by wiremock), requests built as real API Gateway v2 (payload 2.0) events and
//! run through the same `respond` wrapper the Lambda runtime uses.
//!
//! Split by concern: `app` (the app, tokens, API Gateway events and responses), `staging` (bucket,
//! queue, the staging app), `worker` (the worker and a wiremock Replicate), `billing` (fixtures),
//! `logs` (log capture). Everything is re-exported here, so tests use `crate::support::…`.

mod app;
mod billing;
mod logs;
mod staging;
mod worker;

pub use app::*;
pub use billing::*;
pub use logs::*;
pub use staging::*;
pub use worker::*;

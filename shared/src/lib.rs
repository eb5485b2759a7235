//! The domain crate of Real Staging AI. Every Lambda function is a thin crate over this one.
//!
//! Layout (modules mirror the domain):
//! - [`config`]: typed configuration from environment variables, validated at cold start
//! - [`error`]: the API error enum and its single mapping to HTTP responses
//! - [`http`]: request parsing, JSON responses, CORS and security headers ([`http::respond`])
//! - [`auth`]: Auth0 access-token verification with a cached JWKS
//! - [`db`]: Postgres access, one module per aggregate, and the embedded migrations
//! - [`state`]: the per-cold-start states functions are built from
//! - [`lambda`]: running a handler on the Lambda runtime
//! - [`metrics`]: custom CloudWatch metrics (Embedded Metric Format lines) that alarms watch
//! - [`admin`]: operators' controls (admin role, active model, model settings, audit trail);
//!   [`secrets`]: sealing secret settings at rest
//! - [`profile`], [`projects`], [`billing`], [`staging`], [`pagination`]: domain types and rules

pub mod admin;
pub mod auth;
pub mod billing;
pub mod billing_routes;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod http;
pub mod images;
pub mod imaging;
pub mod lambda;
pub mod metrics;
pub mod models;
pub mod pagination;
pub mod profile;
pub mod projects;
pub mod prompts;
pub mod queue;
pub mod reconcile;
pub mod replicate;
pub mod secrets;
pub mod staging;
pub mod state;
pub mod storage;
pub mod stripe;
pub mod usage;
pub mod worker;

pub use error::ApiError;

// Re-exported so function crates depend on `shared` alone and every function is built with the
// same dependency features (one `target/` cache for the workspace, `cargo lambda` and `sam build`).
pub use ::http as http_types;
pub use aws_lambda_events;
pub use aws_sdk_s3;
pub use aws_sdk_sqs;
pub use chrono;
pub use jsonwebtoken;
pub use lambda_http;
pub use lambda_runtime;
pub use reqwest;
pub use serde;
pub use serde_json;
pub use sqlx;
pub use tokio;
pub use tracing;
pub use uuid;

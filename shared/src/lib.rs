//! The domain crate of Real Staging AI. Every Lambda function is a thin crate over this one.
//!
//! The folders are the domain (docs/architecture.md has the map and a diagram):
//! - [`platform`]: what every function stands on: configuration, the API error and its HTTP
//!   mapping, request/response helpers, Auth0 token verification, the Lambda runner, per-cold-start
//!   states, keyset pagination, custom CloudWatch metrics
//! - [`db`]: all SQL, one module per table or aggregate, and the embedded migrations
//! - [`staging`]: the product: the room/style vocabulary, staging requests and image views, the job
//!   queue, live events, the prompt library, image checks and re-encoding, the worker, the reconciler
//! - [`models`]: the model registry (Replicate models, their settings schema and inputs)
//! - [`billing`]: plans, usage and allowance, the billing routes' rules, Stripe (client, webhook)
//! - [`admin`]: operators' controls (admin role, active model, model settings, audit trail) and
//!   sealing secret settings at rest
//! - [`clients`]: outside services spoken to over HTTP: Replicate and the S3 storage (B2)
//! - [`profile`], [`projects`]: the user's profile and projects

pub mod admin;
pub mod billing;
pub mod clients;
pub mod db;
pub mod models;
pub mod platform;
pub mod profile;
pub mod projects;
pub mod sharing;
pub mod staging;

pub use platform::error::ApiError;

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

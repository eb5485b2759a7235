//! What every function stands on, whatever its domain: configuration read once at cold start, the
//! one API error enum and its mapping to HTTP, request parsing and responses, Auth0 token
//! verification, running a handler on Lambda, the per-cold-start states, keyset pagination and the
//! app's own CloudWatch metrics.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod pagination;
pub mod state;
pub mod uptime;

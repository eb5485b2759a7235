//! Outside services the app speaks to over HTTP: Replicate (the staging models) and the
//! S3-compatible object storage (Backblaze B2). Stripe's client lives with billing.

pub mod replicate;
pub mod storage;

//! The one integration-test binary. Each `#[sqlx::test]` gets its own Postgres database (from
//! `DATABASE_URL`, see scripts/test) with the migrations applied; outside APIs are wiremock fakes.

mod admin;
mod auth;
mod billing;
mod billing_money;
mod deleted_images;
mod events;
mod fake_replicate;
mod images_create;
mod images_read;
mod listing_ready;
mod migrate;
mod operations;
mod pagination;
mod prediction_adoption;
mod profile;
mod projects;
mod public;
mod reconcile;
mod renditions;
mod replicate;
mod roles;
mod route_tables;
mod schema;
mod sharing;
mod storage;
mod stripe_webhook;
mod support;
mod uploads;
mod uptime;
mod usage;
mod worker;
mod worker_output;

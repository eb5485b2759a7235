//! Postgres access, one module per aggregate. Every query that touches a user's data takes the
//! owner's id and filters by it in SQL, so "not yours" and "does not exist" are the same answer.

pub mod audit;
pub mod event_streams;
pub mod images;
pub mod invoices;
pub mod jobs;
pub mod migrate;
pub mod plans;
pub mod processed_events;
pub mod projects;
pub mod settings;
pub mod share_links;
pub mod subscriptions;
pub mod usage;
pub mod users;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::platform::config::DatabaseConfig;

/// The migrations in `migrations/`, embedded in every binary that runs them.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A lazily-connecting pool: init never blocks on (or fails because of) the database, so a
/// database outage shows up as a 503 from `/health` rather than a crash loop.
pub fn pool(config: &DatabaseConfig) -> Result<PgPool, crate::platform::config::ConfigError> {
    let options = connect_options(config)?;
    // A request must never hang a Lambda until its timeout. Behind a transaction-mode pooler these
    // session settings cannot be sent at connect; they are set on the role (docs/deployment.md).
    let options = if config.behind_pooler {
        options
    } else {
        options.options([
            ("statement_timeout", "10s"),
            ("idle_in_transaction_session_timeout", "30s"),
        ])
    };
    Ok(pool_with(config, options))
}

/// Connection options from `DATABASE_URL`, without the request-path timeouts (migrations may
/// legitimately run longer than a request).
pub fn connect_options(config: &DatabaseConfig) -> Result<PgConnectOptions, crate::platform::config::ConfigError> {
    let options: PgConnectOptions = config.url.expose().parse().map_err(|_| {
        crate::platform::config::ConfigError::invalid("DATABASE_URL", "is not a valid Postgres connection URL")
    })?;
    // A transaction-mode pooler hands each transaction to any server connection, where a named
    // statement prepared on another one does not exist: unnamed statements only.
    Ok(if config.behind_pooler {
        options.statement_cache_capacity(0)
    } else {
        options
    })
}

pub fn pool_with(config: &DatabaseConfig, options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        // Below the role's idle_session_timeout, so the client closes first. A frozen Lambda
        // cannot; the server closes its connection and the pool's check before use replaces it.
        .idle_timeout(config.idle_timeout)
        .connect_lazy_with(options)
}

/// Opens one connection during init (when Lambda gives the full CPU) so the first request does
/// not pay for the TLS handshake. Failure is only logged: the request path reports it properly.
pub async fn warm_up(pool: &PgPool) {
    match tokio::time::timeout(Duration::from_secs(2), pool.acquire()).await {
        Ok(Ok(connection)) => {
            // sqlx hands a dropped connection back to the pool asynchronously; if the first
            // request asked before that finished it would open (and pay for) a second one.
            drop(connection);
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            while pool.num_idle() == 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tracing::debug!(idle = pool.num_idle(), "database connection warmed up");
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "could not open a database connection during init")
        }
        Err(_) => tracing::warn!("opening a database connection during init timed out"),
    }
}

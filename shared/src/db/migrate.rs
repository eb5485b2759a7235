//! The deploy-time database step: apply the embedded migrations, then sync the plans table from
//! configuration. Run by the `migrate` function (on every deploy, as a CloudFormation custom
//! resource) and by the local scripts; never by hand.

use serde::Serialize;
use sqlx::PgPool;

use crate::billing::plans::PlansConfig;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run (empty when the schema was already current).
    pub applied: Vec<i64>,
    /// The newest version now in the database.
    pub current_version: Option<i64>,
    /// Plan codes now active, in display order.
    pub plans: Vec<String>,
}

/// Applies pending migrations under sqlx's advisory lock (two deploys racing each other wait for
/// one another instead of applying twice) and syncs the plans. Safe to run any number of times.
pub async fn migrate_and_sync(db: &PgPool, plans: &PlansConfig) -> anyhow::Result<MigrationReport> {
    use anyhow::Context;
    let before = applied_versions(db).await?;
    // During a CloudFormation rollback the previous (older) code runs this step against a
    // database that already has the newer migrations: that must succeed, not fail the rollback.
    let mut migrator = sqlx::migrate!("../migrations");
    migrator.set_ignore_missing(true);
    migrator.run(db).await.context("applying migrations")?;
    let after = applied_versions(db).await?;
    let applied: Vec<i64> = after.iter().copied().filter(|v| !before.contains(v)).collect();
    super::plans::sync(db, &plans.plans)
        .await
        .context("syncing the plans table from configuration")?;
    let report = MigrationReport {
        applied,
        current_version: after.last().copied(),
        plans: plans.plans.iter().map(|p| p.code.to_string()).collect(),
    };
    tracing::info!(applied = ?report.applied, current_version = ?report.current_version, plans = ?report.plans, "database migrated and plans synced");
    Ok(report)
}

async fn applied_versions(db: &PgPool) -> anyhow::Result<Vec<i64>> {
    // Before the first run the bookkeeping table does not exist yet.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(db)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(db)
            .await?,
    )
}

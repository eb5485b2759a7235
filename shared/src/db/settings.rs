//! Operator settings: the active model, each model's configuration, sealed model secrets and the
//! allowlisted switches (docs/admin.md). The worker reads them for every job; the admin routes
//! change them, each change in a transaction that also writes the audit trail.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The `settings` key holding the active model id.
pub const ACTIVE_MODEL_KEY: &str = "active_model";

/// The `settings` key holding a model's configuration (in `model_settings`).
pub fn model_config_key(slug: &str) -> String {
    format!("model_config.{slug}")
}

/// The `settings` key of one secret value of a model (`model_secret.<slug>.<field>`, rows with
/// `is_secret`). Kept out of `model_settings` so no code path that shows a configuration can
/// carry a secret along; the value is sealed ([`crate::admin::secrets`]) with this key as associated data.
pub fn model_secret_key(slug: &str, field: &str) -> String {
    format!("model_secret.{slug}.{field}")
}

/// The active model id as stored (not yet checked against the registry), if set.
/// A setting's stored text, if it has a row.
pub async fn value(db: &PgPool, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(db)
        .await
}

pub async fn active_model(db: &PgPool) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(ACTIVE_MODEL_KEY)
        .fetch_optional(db)
        .await
}

/// A model's stored configuration object, if a row exists.
pub async fn model_config(db: &PgPool, slug: &str) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT model_settings FROM settings WHERE key = $1")
        .bind(model_config_key(slug))
        .fetch_optional(db)
        .await
}

/// A model's sealed secret values as (field name, settings key, sealed value). Only the worker
/// reads these, and only to open them for the job's Replicate input.
pub async fn sealed_model_secrets(db: &PgPool, slug: &str) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    let prefix = model_secret_key(slug, "");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM settings WHERE is_secret AND starts_with(key, $1) ORDER BY key")
            .bind(&prefix)
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, value)| Some((key.strip_prefix(&prefix)?.to_string(), key, value)))
        .collect())
}

/// One settings row as the admin routes see it. The value of a secret row is never selected.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SettingRow {
    pub key: String,
    /// Empty for secret rows.
    pub value: String,
    pub model_settings: Value,
    pub is_secret: bool,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<Uuid>,
}

macro_rules! row_columns {
    () => {
        "key, CASE WHEN is_secret THEN '' ELSE value END AS value, model_settings, is_secret, updated_at, updated_by"
    };
}

/// Every settings row (there are a handful), secret values left out: what the admin reads need.
pub async fn all_rows(conn: &mut PgConnection) -> Result<Vec<SettingRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", row_columns!(), " FROM settings ORDER BY key"))
        .fetch_all(conn)
        .await
}

/// One row, secret value left out.
pub async fn row(conn: &mut PgConnection, key: &str) -> Result<Option<SettingRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", row_columns!(), " FROM settings WHERE key = $1"))
        .bind(key)
        .fetch_optional(conn)
        .await
}

/// Locks one row for the rest of the transaction (creating it with `default` first when it is
/// missing, so there is always something to lock) and returns it. Every change of the active
/// model and every removal of a model secret locks `active_model` first: the two serialize, so a
/// model is never activated while its required secret is being removed.
pub async fn lock_row(
    conn: &mut PgConnection,
    key: &str,
    default: &str,
    description: &str,
) -> Result<SettingRow, sqlx::Error> {
    sqlx::query("INSERT INTO settings (key, value, description) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(default)
        .bind(description)
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(concat!(
        "SELECT ",
        row_columns!(),
        " FROM settings WHERE key = $1 FOR UPDATE"
    ))
    .bind(key)
    .fetch_one(conn)
    .await
}

/// Sets a plain (non-secret) value, recording who.
pub async fn set_value(conn: &mut PgConnection, key: &str, value: &str, actor: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE settings SET value = $2, updated_by = $3 WHERE key = $1 AND NOT is_secret")
        .bind(key)
        .bind(value)
        .bind(actor)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a model's configuration object, recording who.
pub async fn set_model_settings(
    conn: &mut PgConnection,
    key: &str,
    settings: &Map<String, Value>,
    actor: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE settings SET model_settings = $2, updated_by = $3 WHERE key = $1 AND NOT is_secret")
        .bind(key)
        .bind(sqlx::types::Json(settings))
        .bind(actor)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores a sealed secret under `key` (created or replaced), recording who.
pub async fn put_sealed_secret(
    conn: &mut PgConnection,
    key: &str,
    sealed: &str,
    description: &str,
    actor: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (key, value, is_secret, description, updated_by) VALUES ($1, $2, true, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by \
         WHERE settings.is_secret",
    )
    .bind(key)
    .bind(sealed)
    .bind(description)
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a secret; true when there was one.
pub async fn delete_secret(conn: &mut PgConnection, key: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM settings WHERE key = $1 AND is_secret")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The sealed value of one secret row (only to compare a new value with it).
pub async fn sealed_secret(conn: &mut PgConnection, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1 AND is_secret")
        .bind(key)
        .fetch_optional(conn)
        .await
}

//! Operator settings the worker reads for every job: the active model and each model's
//! configuration (rows seeded by migrations; the admin routes that change them come later).

use sqlx::PgPool;

/// The `settings` key holding the active model id.
pub const ACTIVE_MODEL_KEY: &str = "active_model";

/// The `settings` key holding a model's configuration (in `model_settings`).
pub fn model_config_key(slug: &str) -> String {
    format!("model_config.{slug}")
}

/// The active model id as stored (not yet checked against the registry), if set.
pub async fn active_model(db: &PgPool) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(ACTIVE_MODEL_KEY)
        .fetch_optional(db)
        .await
}

/// A model's stored configuration object, if a row exists.
pub async fn model_config(db: &PgPool, slug: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT model_settings FROM settings WHERE key = $1")
        .bind(model_config_key(slug))
        .fetch_optional(db)
        .await
}

/// The `settings` key prefix of a model's secret values (`model_secret.<slug>.<field>`, rows with
/// `is_secret`). Kept out of `model_settings` so no code path that shows a configuration can
/// carry a secret along.
pub fn model_secret_key(slug: &str, field: &str) -> String {
    format!("model_secret.{slug}.{field}")
}

/// A model's secret values by field name (only the worker reads these).
pub async fn model_secrets(db: &PgPool, slug: &str) -> Result<serde_json::Map<String, serde_json::Value>, sqlx::Error> {
    let prefix = model_secret_key(slug, "");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM settings WHERE is_secret AND starts_with(key, $1)")
            .bind(&prefix)
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, value)| Some((key.strip_prefix(&prefix)?.to_string(), serde_json::Value::String(value))))
        .collect())
}

//! The allowlisted operator settings of `/api/v1/admin/settings` (docs/admin.md). Only these keys
//! are reachable; model configurations and secrets have their own routes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::Admin;
use crate::db::audit::{self, AuditAction, AuditRecord};
use crate::db::settings::{self as db_settings, ACTIVE_MODEL_KEY, SettingRow};
use crate::models::DEFAULT_MODEL_ID;
use crate::platform::error::{ApiError, FieldError};

/// The `settings` key of the switch that pauses new staging requests.
pub const STAGING_ENABLED_KEY: &str = "staging_enabled";

/// The type of an allowlisted setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// A registry model id; written through the same checks as `PUT /admin/models/active`.
    ModelId,
    Bool,
}

impl SettingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SettingKind::ModelId => "model_id",
            SettingKind::Bool => "bool",
        }
    }
}

/// One allowlisted setting.
#[derive(Debug)]
pub struct SettingSpec {
    pub key: &'static str,
    pub kind: SettingKind,
    /// As stored (text) when the row is missing.
    pub default: &'static str,
    pub description: &'static str,
}

pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        key: ACTIVE_MODEL_KEY,
        kind: SettingKind::ModelId,
        default: DEFAULT_MODEL_ID,
        description: super::model_settings::ACTIVE_MODEL_DESCRIPTION,
    },
    SettingSpec {
        key: STAGING_ENABLED_KEY,
        kind: SettingKind::Bool,
        default: "true",
        description: "Whether new staging requests are accepted (false pauses POST /images and /images/batch).",
    },
];

/// The allowlisted setting `key`, or 404.
pub fn find(key: &str) -> Result<&'static SettingSpec, ApiError> {
    SETTINGS
        .iter()
        .find(|spec| spec.key == key)
        .ok_or(ApiError::NotFound("setting"))
}

/// `true`/`false` as stored; anything else is not a boolean.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[derive(Debug, Serialize)]
pub struct SettingView {
    pub key: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Typed: a JSON boolean for `bool`, the id text for `model_id`.
    pub value: Value,
    pub description: &'static str,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<Uuid>,
}

impl SettingView {
    fn of(spec: &'static SettingSpec, row: Option<&SettingRow>) -> Self {
        let text = row.map_or(spec.default, |row| row.value.as_str());
        let value = match spec.kind {
            SettingKind::ModelId => Value::from(text),
            SettingKind::Bool => Value::Bool(parse_bool(text).or(parse_bool(spec.default)).unwrap_or(true)),
        };
        SettingView {
            key: spec.key,
            kind: spec.kind.as_str(),
            value,
            description: spec.description,
            updated_at: row.map(|row| row.updated_at),
            updated_by: row.and_then(|row| row.updated_by),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SettingList {
    pub settings: Vec<SettingView>,
}

pub async fn list(db: &PgPool) -> Result<SettingList, ApiError> {
    let rows = db_settings::all_rows(&mut *db.acquire().await?).await?;
    let settings = SETTINGS
        .iter()
        .map(|spec| SettingView::of(spec, rows.iter().find(|row| row.key == spec.key)))
        .collect();
    Ok(SettingList { settings })
}

pub async fn get(db: &PgPool, spec: &'static SettingSpec) -> Result<SettingView, ApiError> {
    let row = db_settings::row(&mut *db.acquire().await?, spec.key).await?;
    Ok(SettingView::of(spec, row.as_ref()))
}

/// Sets an allowlisted setting from the body's `value`, typed; unchanged values record nothing.
pub async fn update(
    db: &PgPool,
    admin: &Admin,
    spec: &'static SettingSpec,
    value: &Value,
) -> Result<SettingView, ApiError> {
    match spec.kind {
        SettingKind::ModelId => {
            let Some(model_id) = value.as_str() else {
                return Err(ApiError::validation("value", "must be a model id (text)"));
            };
            super::model_settings::activate(db, admin, model_id, "value").await?;
        }
        SettingKind::Bool => {
            let parsed = match value {
                Value::Bool(flag) => Some(*flag),
                Value::String(text) => parse_bool(text),
                _ => None,
            };
            let Some(flag) = parsed else {
                return Err(ApiError::Validation(vec![FieldError::new(
                    "value",
                    "must be true or false",
                )]));
            };
            let mut tx = db.begin().await?;
            let current = db_settings::lock_row(&mut tx, spec.key, spec.default, spec.description).await?;
            let before = SettingView::of(spec, Some(&current)).value;
            let text = if flag { "true" } else { "false" };
            if current.value != text {
                db_settings::set_value(&mut tx, spec.key, text, admin.user.id).await?;
                audit::record(
                    &mut tx,
                    AuditRecord {
                        action: AuditAction::SettingUpdate,
                        target: spec.key,
                        actor: &admin.actor(),
                        before: json!({ "value": before }),
                        after: json!({ "value": flag }),
                    },
                )
                .await?;
            }
            tx.commit().await?;
            tracing::info!(key = spec.key, value = flag, "setting saved");
        }
    }
    get(db, spec).await
}

/// Whether new staging requests are accepted now (read on every request: a switch applies at
/// once, everywhere). A missing or unreadable row means enabled.
pub async fn staging_enabled(db: &PgPool) -> Result<bool, sqlx::Error> {
    let value = crate::db::settings::value(db, STAGING_ENABLED_KEY).await?;
    Ok(value.as_deref().and_then(parse_bool).unwrap_or(true))
}

//! The model routes: the registry as an admin sees it, switching the active model, and reading
//! and replacing a model's settings (secrets write-only, sealed at rest).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Admin;
use crate::admin::secrets::SettingsCipher;
use crate::db::audit::{self, AuditAction, AuditRecord};
use crate::db::settings::{self, ACTIVE_MODEL_KEY, SettingRow, model_config_key, model_secret_key};
use crate::models::{self, ConfigField, DEFAULT_MODEL_ID, ModelConfig, ModelSpec, UsdPrice};
use crate::platform::error::{ApiError, FieldError};
use crate::staging::vocabulary::Operation;

pub const ACTIVE_MODEL_DESCRIPTION: &str = "The model new staging jobs use (a registry model id).";

/// The settings rows that say what each model can do, read in one query (secret values left out).
pub struct SettingsSnapshot {
    rows: HashMap<String, SettingRow>,
}

impl SettingsSnapshot {
    pub async fn load(conn: &mut PgConnection) -> Result<Self, sqlx::Error> {
        let rows = settings::all_rows(conn).await?;
        Ok(SettingsSnapshot {
            rows: rows.into_iter().map(|row| (row.key.clone(), row)).collect(),
        })
    }

    pub fn row(&self, key: &str) -> Option<&SettingRow> {
        self.rows.get(key)
    }

    /// The active model id as stored (the default when the row is missing).
    pub fn active_model_id(&self) -> &str {
        self.row(ACTIVE_MODEL_KEY)
            .map_or(DEFAULT_MODEL_ID, |row| row.value.as_str())
    }

    /// The model's stored (non-secret) settings object; an empty one when no row exists.
    pub fn stored_settings(&self, spec: &ModelSpec) -> Map<String, Value> {
        let mut object = match self.row(&model_config_key(spec.slug)).map(|row| &row.model_settings) {
            Some(Value::Object(object)) => object.clone(),
            _ => Map::new(),
        };
        // Secrets never live here; should one ever have been written, it is neither used as one
        // nor shown.
        for field in spec.fields.iter().filter(|field| field.secret) {
            object.remove(field.name);
        }
        object
    }

    /// The stored settings checked against the schema (defaults filled in), without secrets.
    pub fn stored_config(&self, spec: &ModelSpec) -> Result<ModelConfig, Vec<FieldError>> {
        spec.validate_config(&Value::Object(self.stored_settings(spec)))
    }

    /// The secret row of `field`, when one is stored.
    pub fn secret(&self, spec: &ModelSpec, field: &str) -> Option<&SettingRow> {
        self.row(&model_secret_key(spec.slug, field))
            .filter(|row| row.is_secret)
    }

    /// Why the model could not run with what is stored now: every required setting that is not
    /// set and every stored value the schema refuses. Empty when it can run.
    pub fn readiness_problems(&self, spec: &ModelSpec) -> Vec<FieldError> {
        let mut problems = Vec::new();
        let config = match self.stored_config(spec) {
            Ok(config) => Some(config),
            Err(errors) => {
                problems.extend(errors.into_iter().map(|error| {
                    FieldError::new(
                        error.field,
                        format!(
                            "the stored value is invalid ({}); save the model's settings again",
                            error.message
                        ),
                    )
                }));
                None
            }
        };
        for field in spec.fields.iter().filter(|field| field.required) {
            let set = if field.secret {
                self.secret(spec, field.name).is_some()
            } else {
                config.as_ref().is_none_or(|config| config.get(field.name).is_some())
            };
            if !set {
                problems.push(FieldError::new(
                    field.name,
                    format!(
                        "{} needs {}; set it with PUT /api/v1/admin/models/{}/config first",
                        spec.id, field.name, spec.slug
                    ),
                ));
            }
        }
        problems
    }
}

/// One entry of `GET /api/v1/admin/models`.
#[derive(Debug, Serialize)]
pub struct ModelSummary {
    pub id: &'static str,
    pub slug: &'static str,
    pub display_name: &'static str,
    /// The price of a staging (`stage`), as before operations existed.
    pub price_per_image_usd: UsdPrice,
    /// What the model can do and what one image of each costs, e.g. `{"stage": "0.0300"}`.
    #[serde(serialize_with = "models::operation_prices")]
    pub operations: &'static [(Operation, UsdPrice)],
    pub is_active: bool,
    /// Whether `PUT /api/v1/admin/models/active` would accept it now.
    pub can_activate: bool,
    /// The settings to set (or fix) before it can be activated.
    pub missing_settings: Vec<String>,
    pub fields: &'static [ConfigField],
}

#[derive(Debug, Serialize)]
pub struct ModelList {
    pub models: Vec<ModelSummary>,
}

fn problem_fields(problems: &[FieldError]) -> Vec<String> {
    let mut fields: Vec<String> = problems.iter().map(|p| p.field.clone()).collect();
    fields.dedup();
    fields
}

pub async fn list(db: &PgPool) -> Result<ModelList, ApiError> {
    let snapshot = SettingsSnapshot::load(&mut *db.acquire().await?).await?;
    let active = snapshot.active_model_id().to_string();
    let models = models::registry()
        .iter()
        .map(|spec| {
            let problems = snapshot.readiness_problems(spec);
            ModelSummary {
                id: spec.id,
                slug: spec.slug,
                display_name: spec.display_name,
                price_per_image_usd: spec.price(Operation::Stage).unwrap_or_default(),
                operations: spec.operations,
                is_active: spec.id == active,
                can_activate: problems.is_empty(),
                missing_settings: problem_fields(&problems),
                fields: spec.fields,
            }
        })
        .collect();
    Ok(ModelList { models })
}

/// `GET|PUT /api/v1/admin/models/active`.
#[derive(Debug, Serialize)]
pub struct ActiveModelView {
    pub model_id: String,
    /// Null only when the stored id is no longer in the registry (jobs then wait, retrying,
    /// until an admin activates a registered model).
    pub slug: Option<&'static str>,
    pub display_name: Option<&'static str>,
    pub price_per_image_usd: Option<UsdPrice>,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<Uuid>,
}

impl ActiveModelView {
    fn of(row: Option<&SettingRow>) -> Self {
        let model_id = row.map_or(DEFAULT_MODEL_ID, |row| row.value.as_str());
        let spec = models::find(model_id);
        ActiveModelView {
            model_id: model_id.to_string(),
            slug: spec.map(|spec| spec.slug),
            display_name: spec.map(|spec| spec.display_name),
            price_per_image_usd: spec.and_then(|spec| spec.price(Operation::Stage)),
            updated_at: row.map(|row| row.updated_at),
            updated_by: row.and_then(|row| row.updated_by),
        }
    }
}

pub async fn active(db: &PgPool) -> Result<ActiveModelView, ApiError> {
    let row = settings::row(&mut *db.acquire().await?, ACTIVE_MODEL_KEY).await?;
    Ok(ActiveModelView::of(row.as_ref()))
}

/// Makes `model_id` the model of new jobs, if it is registered and everything it needs is set
/// (422 naming `field` or each missing setting otherwise). Activating the active model again
/// changes nothing and records nothing.
pub async fn activate(db: &PgPool, admin: &Admin, model_id: &str, field: &str) -> Result<ActiveModelView, ApiError> {
    let Some(spec) = models::find(model_id.trim()) else {
        let ids: Vec<&str> = models::registry().iter().map(|spec| spec.id).collect();
        return Err(ApiError::Validation(vec![FieldError::new(
            field,
            format!("is not a registered model; use one of: {}", ids.join(", ")),
        )]));
    };
    let mut tx = db.begin().await?;
    let current = settings::lock_row(&mut tx, ACTIVE_MODEL_KEY, DEFAULT_MODEL_ID, ACTIVE_MODEL_DESCRIPTION).await?;
    let snapshot = SettingsSnapshot::load(&mut tx).await?;
    let problems = snapshot.readiness_problems(spec);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    if current.value != spec.id {
        settings::set_value(&mut tx, ACTIVE_MODEL_KEY, spec.id, admin.user.id).await?;
        audit::record(
            &mut tx,
            AuditRecord {
                action: AuditAction::ModelActivate,
                target: ACTIVE_MODEL_KEY,
                actor: &admin.actor(),
                before: json!({ "model_id": current.value }),
                after: json!({ "model_id": spec.id }),
            },
        )
        .await?;
    }
    let row = settings::row(&mut tx, ACTIVE_MODEL_KEY).await?;
    tx.commit().await?;
    tracing::info!(model = spec.id, "active model is set");
    Ok(ActiveModelView::of(row.as_ref()))
}

/// A secret field as `GET .../config` shows it: whether it is set, never its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretState {
    pub set: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

/// `GET|PUT /api/v1/admin/models/{slug}/config`.
#[derive(Debug, Serialize)]
pub struct ModelConfigView {
    pub model_id: &'static str,
    pub slug: &'static str,
    /// Every non-secret field (null where unset without a default). When the stored settings no
    /// longer validate (a later release tightened the schema), what is stored, as it is.
    pub config: Value,
    pub secrets: BTreeMap<&'static str, SecretState>,
    /// What must be set or fixed before the model can run (as in the model list).
    pub missing_settings: Vec<String>,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<Uuid>,
}

/// The model a path's `{slug}` names, or 404.
pub fn by_slug(slug: &str) -> Result<&'static ModelSpec, ApiError> {
    models::find_by_slug(slug).ok_or(ApiError::NotFound("model"))
}

fn config_view(spec: &'static ModelSpec, snapshot: &SettingsSnapshot) -> ModelConfigView {
    let config = match snapshot.stored_config(spec) {
        Ok(config) => config.as_json_without_secrets(),
        Err(_) => Value::Object(snapshot.stored_settings(spec)),
    };
    let secrets = spec
        .fields
        .iter()
        .filter(|field| field.secret)
        .map(|field| {
            let row = snapshot.secret(spec, field.name);
            (
                field.name,
                SecretState {
                    set: row.is_some(),
                    updated_at: row.map(|row| row.updated_at),
                },
            )
        })
        .collect();
    let row = snapshot.row(&model_config_key(spec.slug));
    ModelConfigView {
        model_id: spec.id,
        slug: spec.slug,
        config,
        secrets,
        missing_settings: problem_fields(&snapshot.readiness_problems(spec)),
        updated_at: row.map(|row| row.updated_at),
        updated_by: row.and_then(|row| row.updated_by),
    }
}

pub async fn config(db: &PgPool, spec: &'static ModelSpec) -> Result<ModelConfigView, ApiError> {
    let snapshot = SettingsSnapshot::load(&mut *db.acquire().await?).await?;
    Ok(config_view(spec, &snapshot))
}

/// What a PUT asks for one secret field.
enum SecretChange {
    /// Left out, or blank: the client cannot read the value back, so it is kept.
    Keep,
    Set(String),
    /// `null`.
    Remove,
}

/// Replaces a model's settings with `body` (docs/admin.md): non-secret fields left out go back
/// to their defaults; secret fields are kept unless given a value (set) or `null` (removed).
/// Every problem is reported at once and nothing is stored unless all of it is valid.
pub async fn update_config(
    db: &PgPool,
    cipher: &SettingsCipher,
    admin: &Admin,
    spec: &'static ModelSpec,
    body: &Value,
) -> Result<ModelConfigView, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::validation("body", "must be a JSON object of settings"));
    };
    let mut errors = Vec::new();
    let mut secret_changes: Vec<(&'static ConfigField, SecretChange)> = Vec::new();
    let mut to_validate = Map::new();
    for (name, value) in object {
        match spec.field(name) {
            Some(field) if field.secret => {
                let change = match value {
                    Value::Null => SecretChange::Remove,
                    Value::String(text) if text.trim().is_empty() => SecretChange::Keep,
                    Value::String(text) => {
                        to_validate.insert(name.clone(), value.clone());
                        SecretChange::Set(text.trim().to_string())
                    }
                    // The message never repeats the value: it may be the secret.
                    _ => {
                        errors.push(FieldError::new(name.as_str(), "must be text, or null to remove it"));
                        continue;
                    }
                };
                secret_changes.push((field, change));
            }
            _ => {
                to_validate.insert(name.clone(), value.clone());
            }
        }
    }
    let validated = spec.validate_config(&Value::Object(to_validate));
    let config = match validated {
        Ok(config) if errors.is_empty() => config,
        Ok(_) => return Err(ApiError::Validation(errors)),
        Err(more) => {
            errors.extend(more);
            return Err(ApiError::Validation(errors));
        }
    };
    let Value::Object(new_settings) = config.as_json_without_secrets() else {
        unreachable!("a validated config is an object")
    };

    let mut tx = db.begin().await?;
    // Lock order everywhere: active_model, then the model's own row.
    let active = settings::lock_row(&mut tx, ACTIVE_MODEL_KEY, DEFAULT_MODEL_ID, ACTIVE_MODEL_DESCRIPTION).await?;
    let config_key = model_config_key(spec.slug);
    settings::lock_row(
        &mut tx,
        &config_key,
        spec.id,
        &format!("{} configuration.", spec.display_name),
    )
    .await?;
    let before = SettingsSnapshot::load(&mut tx).await?;
    let is_active = active.value == spec.id;
    for (field, change) in &secret_changes {
        if matches!(change, SecretChange::Remove) && field.required && is_active {
            errors.push(FieldError::new(
                field.name,
                format!(
                    "{} is the active model and needs {}; activate another model before removing it",
                    spec.id, field.name
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }

    let old_settings = before.stored_settings(spec);
    let mut changed = false;
    if Value::Object(old_settings.clone()) != Value::Object(new_settings.clone()) {
        settings::set_model_settings(&mut tx, &config_key, &new_settings, admin.user.id).await?;
        changed = true;
    }
    let secret_audit = |set_of: &dyn Fn(&ConfigField) -> Value| -> Value {
        Value::Object(
            spec.fields
                .iter()
                .filter(|field| field.secret)
                .map(|field| (field.name.to_string(), set_of(field)))
                .collect(),
        )
    };
    let secrets_before = secret_audit(&|field| json!({ "set": before.secret(spec, field.name).is_some() }));
    let mut written: Vec<&str> = Vec::new();
    let mut removed: Vec<&str> = Vec::new();
    for (field, change) in secret_changes {
        let key = model_secret_key(spec.slug, field.name);
        match change {
            SecretChange::Keep => {}
            SecretChange::Set(value) => {
                let unchanged = match before.secret(spec, field.name) {
                    Some(_) => stored_secret_equals(&mut tx, cipher, &key, &value).await?,
                    None => false,
                };
                if !unchanged {
                    let description = format!("{} {} (sealed).", spec.display_name, field.name);
                    settings::put_sealed_secret(&mut tx, &key, &cipher.seal(&key, &value), &description, admin.user.id)
                        .await?;
                    written.push(field.name);
                }
            }
            SecretChange::Remove => {
                if settings::delete_secret(&mut tx, &key).await? {
                    removed.push(field.name);
                }
            }
        }
    }
    if !written.is_empty() || !removed.is_empty() {
        changed = true;
        // The row's own timestamp says when the configuration last changed.
        settings::set_model_settings(&mut tx, &config_key, &new_settings, admin.user.id).await?;
    }
    if changed {
        let secrets_after = secret_audit(&|field| {
            if written.contains(&field.name) {
                json!({ "set": true, "replaced": true })
            } else if removed.contains(&field.name) {
                json!({ "set": false })
            } else {
                json!({ "set": before.secret(spec, field.name).is_some() })
            }
        });
        audit::record(
            &mut tx,
            AuditRecord {
                action: AuditAction::ModelConfigUpdate,
                target: &config_key,
                actor: &admin.actor(),
                before: json!({ "config": old_settings, "secrets": secrets_before }),
                after: json!({ "config": new_settings, "secrets": secrets_after }),
            },
        )
        .await?;
    }
    let after = SettingsSnapshot::load(&mut tx).await?;
    tx.commit().await?;
    tracing::info!(model = spec.id, changed, "model settings saved");
    Ok(config_view(spec, &after))
}

/// Whether the stored secret under `key` opens to `value` (a value that does not open, e.g.
/// sealed under a retired key, counts as different and is replaced).
async fn stored_secret_equals(
    conn: &mut PgConnection,
    cipher: &SettingsCipher,
    key: &str,
    value: &str,
) -> Result<bool, sqlx::Error> {
    Ok(settings::sealed_secret(conn, key)
        .await?
        .and_then(|sealed| cipher.open(key, &sealed).ok())
        .is_some_and(|stored| stored.expose() == value))
}

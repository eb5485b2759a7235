//! The admin audit trail (`admin_audit_log`, append-only): who changed which operator setting or
//! role, when, from what to what; and what the system did on its own with money (the Stripe
//! webhook cancelling a duplicate subscription). Secret values never reach it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::platform::pagination::{Cursor, Page};

/// What was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    ModelActivate,
    ModelConfigUpdate,
    SettingUpdate,
    UserRoleUpdate,
    /// The Stripe webhook cancelled (and refunded) a user's second current subscription.
    SubscriptionCancelDuplicate,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ModelActivate => "model.activate",
            AuditAction::ModelConfigUpdate => "model.config.update",
            AuditAction::SettingUpdate => "setting.update",
            AuditAction::UserRoleUpdate => "user.role.update",
            AuditAction::SubscriptionCancelDuplicate => "billing.subscription.cancel_duplicate",
        }
    }
}

/// Who made a change.
#[derive(Debug, Clone)]
pub struct AuditActor {
    /// The admin's user id; `None` for operator tools and the system.
    pub user_id: Option<Uuid>,
    /// The admin's Auth0 sub, `operator:<tool>`, or `system:<function>` (e.g. the Stripe webhook).
    pub label: String,
    /// The API Gateway (or Lambda) request id of the change.
    pub request_id: Option<String>,
}

/// One change to record. `before` and `after` must already be redacted.
pub struct AuditRecord<'a> {
    pub action: AuditAction,
    pub target: &'a str,
    pub actor: &'a AuditActor,
    pub before: Value,
    pub after: Value,
}

/// Appends one entry, inside the caller's transaction.
pub async fn record(conn: &mut PgConnection, entry: AuditRecord<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO admin_audit_log (action, target, actor_user_id, actor, before, after, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(entry.action.as_str())
    .bind(entry.target)
    .bind(entry.actor.user_id)
    .bind(&entry.actor.label)
    .bind(sqlx::types::Json(&entry.before))
    .bind(sqlx::types::Json(&entry.after))
    .bind(entry.actor.request_id.as_deref())
    .execute(conn)
    .await?;
    tracing::info!(
        action = entry.action.as_str(),
        target = entry.target,
        actor = %entry.actor.label,
        "admin change recorded"
    );
    Ok(())
}

/// An entry as `GET /api/v1/admin/audit-log` shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: Uuid,
    pub action: String,
    pub target: String,
    pub actor_user_id: Option<Uuid>,
    pub actor: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Newest first, keyset-paginated on (created_at, id).
pub async fn list(db: &PgPool, limit: u32, after: Option<&Cursor>) -> Result<Page<AuditEntry>, sqlx::Error> {
    let rows: Vec<AuditEntry> = sqlx::query_as(
        "SELECT id, action, target, actor_user_id, actor, before, after, request_id, created_at \
         FROM admin_audit_log \
         WHERE $1::timestamptz IS NULL OR (created_at, id) < ($1, $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(after.map(|c| c.created_at))
    .bind(after.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(db)
    .await?;
    Ok(Page::from_rows_plus_one(rows, limit, |row| Cursor {
        created_at: row.created_at,
        id: row.id,
    }))
}

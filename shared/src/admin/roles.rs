//! Granting and revoking the admin role: the `set-user-role` function, which operators invoke
//! (`aws lambda invoke`, or `scripts/set-user-role` locally). It has no HTTP route: whoever may
//! invoke Lambda functions in the account already controls the stack.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::audit::{self, AuditAction, AuditActor, AuditRecord};
use crate::db::users;

/// The actor label of changes made with this tool.
pub const ACTOR: &str = "operator:set-user-role";

/// The roles a user can have (the `users.role` CHECK constraint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who gets which role: `{"auth0_sub": "...", "role": "admin"}` or `{"email": "...", "role": ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    #[serde(default)]
    pub auth0_sub: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub role: Role,
}

/// What the function answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleChangeReport {
    pub user_id: Uuid,
    pub auth0_sub: String,
    pub email: Option<String>,
    pub role: Role,
    pub previous_role: String,
    /// False when the user already had the role (nothing was written).
    pub changed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RoleChangeError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("no user has the e-mail address {0}; they must sign in once first, or name them by auth0_sub")]
    NoUserWithEmail(String),
    #[error("{count} users have the e-mail address {email}; name the user by auth0_sub instead")]
    AmbiguousEmail { email: String, count: usize },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

enum Target {
    Sub(String),
    Email(String),
}

impl RoleChange {
    fn target(&self) -> Result<Target, RoleChangeError> {
        let sub = self.auth0_sub.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let email = self.email.as_deref().map(str::trim).filter(|s| !s.is_empty());
        match (sub, email) {
            (Some(sub), None) => {
                if sub.chars().count() > 255 || sub.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(RoleChangeError::Invalid(
                        "auth0_sub must be an Auth0 user id such as auth0|6523f0c2a1b2 (no spaces, at most 255 characters)"
                            .into(),
                    ));
                }
                Ok(Target::Sub(sub.to_string()))
            }
            (None, Some(email)) => {
                if email.chars().count() > 254 || !email.contains('@') {
                    return Err(RoleChangeError::Invalid("email must be an e-mail address".into()));
                }
                Ok(Target::Email(email.to_string()))
            }
            _ => Err(RoleChangeError::Invalid(
                "name the user with exactly one of auth0_sub or email".into(),
            )),
        }
    }
}

/// Gives the user `change.role`, with an audit entry, in one transaction.
pub async fn set_user_role(
    db: &PgPool,
    change: &RoleChange,
    request_id: Option<String>,
) -> Result<RoleChangeReport, RoleChangeError> {
    let target = change.target()?;
    let mut tx = db.begin().await?;
    let user = match &target {
        Target::Sub(sub) => users::lock_or_create_by_sub(&mut tx, sub).await?,
        Target::Email(email) => {
            let mut found = users::lock_by_email(&mut tx, email).await?;
            match found.len() {
                0 => return Err(RoleChangeError::NoUserWithEmail(email.clone())),
                1 => found.remove(0),
                count => {
                    return Err(RoleChangeError::AmbiguousEmail {
                        email: email.clone(),
                        count,
                    });
                }
            }
        }
    };
    let changed = user.role != change.role.as_str();
    if changed {
        users::set_role(&mut tx, user.id, change.role.as_str()).await?;
        audit::record(
            &mut tx,
            AuditRecord {
                action: AuditAction::UserRoleUpdate,
                target: &user.id.to_string(),
                actor: &AuditActor {
                    user_id: None,
                    label: ACTOR.to_string(),
                    request_id,
                },
                before: json!({ "auth0_sub": user.auth0_sub, "role": user.role }),
                after: json!({ "auth0_sub": user.auth0_sub, "role": change.role.as_str() }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(user_id = %user.id, role = change.role.as_str(), changed, "user role set");
    Ok(RoleChangeReport {
        user_id: user.id,
        auth0_sub: user.auth0_sub,
        email: user.email,
        role: change.role,
        previous_role: user.role,
        changed,
    })
}

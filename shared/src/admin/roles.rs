//! Granting and revoking the admin role: the `set-user-role` function, which operators invoke
//! (`aws lambda invoke`, or `scripts/set-user-role` locally). It has no HTTP route: whoever may
//! invoke Lambda functions in the account already controls the stack.
//!
//! Two rules keep a role from landing on the wrong account (docs/admin.md):
//! - the account is chosen by its Auth0 subject, or by an e-mail address the identity provider
//!   verified (`users.verified_email`, written only from verified token claims), never by the
//!   profile's `email`, which any user can set to the operator's address;
//! - every call is a dry run that shows the matched account, unless it carries `confirm` with that
//!   account's `auth0_sub`; a confirm that no longer matches refuses and changes nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::audit::{self, AuditAction, AuditActor, AuditRecord};
use crate::db::users;

/// The actor label of changes made with this tool.
pub const ACTOR: &str = "operator:set-user-role";

pub use crate::db::users::Role;

/// Who gets which role: `{"auth0_sub": "...", "role": "admin"}` or `{"email": "...", "role": ...}`,
/// plus `"confirm": "<auth0_sub>"` to apply. Without `confirm` nothing is written: the answer shows
/// the account the request matches (a dry run). With it, the change is applied only if the
/// request still matches exactly that account, so what was checked is what is changed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    #[serde(default)]
    pub auth0_sub: Option<String>,
    /// Matched against verified e-mail addresses only (`users.verified_email`, written from the
    /// identity provider's `email_verified` claim), never the profile's `email`.
    #[serde(default)]
    pub email: Option<String>,
    pub role: Role,
    /// The `auth0_sub` of the account the dry run showed; its presence applies the change.
    #[serde(default)]
    pub confirm: Option<String>,
}

/// What the function answers, for the dry run and the applied change alike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleChangeReport {
    /// False for a dry run: nothing was written.
    pub applied: bool,
    /// The matched account; `null` when the named `auth0_sub` has never signed in (applying
    /// creates the user with the role, so an operator can provision the first admin).
    pub user_id: Option<Uuid>,
    pub auth0_sub: String,
    /// The address the identity provider verified for this account, if any.
    pub verified_email: Option<String>,
    /// When the account was first seen (`null` if it does not exist yet).
    pub created_at: Option<DateTime<Utc>>,
    /// How the account was found: `auth0_sub` or `verified_email`.
    pub matched_by: &'static str,
    pub role: Role,
    pub previous_role: Role,
    /// Whether the role differs: on a dry run, whether applying would change anything.
    pub changed: bool,
    /// On a dry run, the value to send as `confirm` to apply this change to this account.
    pub confirm: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RoleChangeError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error(
        "no user has the verified e-mail address {0} (the profile's e-mail is never used: anyone can type any address there); \
         the user must sign in with a token whose email_verified claim is true, or name them by auth0_sub"
    )]
    NoUserWithVerifiedEmail(String),
    #[error("{count} users have the verified e-mail address {email} ({subs}); name the user by auth0_sub instead")]
    AmbiguousEmail { email: String, count: usize, subs: String },
    #[error(
        "confirm names {confirm}, but the request now matches {matched}; nothing was changed. Run it again without confirm to see the account"
    )]
    ConfirmMismatch { confirm: String, matched: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

enum Target {
    Sub(String),
    VerifiedEmail(String),
}

fn valid_sub(sub: &str) -> bool {
    sub.chars().count() <= 255 && !sub.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl RoleChange {
    fn target(&self) -> Result<Target, RoleChangeError> {
        let sub = self.auth0_sub.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let email = self.email.as_deref().map(str::trim).filter(|s| !s.is_empty());
        match (sub, email) {
            (Some(sub), None) => {
                if !valid_sub(sub) {
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
                Ok(Target::VerifiedEmail(email.to_string()))
            }
            _ => Err(RoleChangeError::Invalid(
                "name the user with exactly one of auth0_sub or email".into(),
            )),
        }
    }

    fn confirmation(&self) -> Result<Option<String>, RoleChangeError> {
        match self.confirm.as_deref().map(str::trim) {
            None => Ok(None),
            Some(sub) if !sub.is_empty() && valid_sub(sub) => Ok(Some(sub.to_string())),
            Some(_) => Err(RoleChangeError::Invalid(
                "confirm must be the auth0_sub of the account the dry run showed".into(),
            )),
        }
    }
}

/// Shows (dry run) or gives (with `confirm`) the user `change.role`, with an audit entry, in one
/// transaction. Only an Auth0 subject or a verified e-mail can select the account: no field a user
/// can edit decides who gets a role.
pub async fn set_user_role(
    db: &PgPool,
    change: &RoleChange,
    request_id: Option<String>,
) -> Result<RoleChangeReport, RoleChangeError> {
    let target = change.target()?;
    let confirm = change.confirmation()?;
    let mut tx = db.begin().await?;
    let (matched_by, found) = match &target {
        Target::Sub(sub) => {
            let user = users::find_by_sub(&mut tx, sub).await?;
            ("auth0_sub", user.map(Ok).unwrap_or_else(|| Err(sub.clone())))
        }
        Target::VerifiedEmail(email) => {
            let mut found = users::lock_by_verified_email(&mut tx, email).await?;
            match found.len() {
                0 => return Err(RoleChangeError::NoUserWithVerifiedEmail(email.clone())),
                1 => ("verified_email", Ok(found.remove(0))),
                count => {
                    let subs = found
                        .iter()
                        .map(|u| u.auth0_sub.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(RoleChangeError::AmbiguousEmail {
                        email: email.clone(),
                        count,
                        subs,
                    });
                }
            }
        }
    };
    let matched_sub = match &found {
        Ok(user) => user.auth0_sub.clone(),
        Err(sub) => sub.clone(),
    };
    let previous_role = match &found {
        Ok(user) => user.role,
        Err(_) => Role::User,
    };
    let changed = previous_role != change.role;

    let Some(confirm) = confirm else {
        // The dry run: what would happen, to whom. Nothing is written.
        tx.rollback().await?;
        let user = found.as_ref().ok();
        return Ok(RoleChangeReport {
            applied: false,
            user_id: user.map(|u| u.id),
            auth0_sub: matched_sub.clone(),
            verified_email: user.and_then(|u| u.verified_email.clone()),
            created_at: user.map(|u| u.created_at),
            matched_by,
            role: change.role,
            previous_role,
            changed,
            confirm: Some(matched_sub),
        });
    };
    if confirm != matched_sub {
        return Err(RoleChangeError::ConfirmMismatch {
            confirm,
            matched: matched_sub,
        });
    }
    // Lock the row (creating it for a subject that never signed in) and decide on what is locked.
    let user = users::lock_or_create_by_sub(&mut tx, &matched_sub).await?;
    let previous_role = user.role;
    let changed = previous_role != change.role;
    if changed {
        users::set_role(&mut tx, user.id, change.role).await?;
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
                after: json!({
                    "auth0_sub": user.auth0_sub,
                    "role": change.role.as_str(),
                    "matched_by": matched_by,
                    "verified_email": user.verified_email,
                }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(user_id = %user.id, role = change.role.as_str(), changed, matched_by, "user role set");
    Ok(RoleChangeReport {
        applied: true,
        user_id: Some(user.id),
        auth0_sub: user.auth0_sub,
        verified_email: user.verified_email,
        created_at: Some(user.created_at),
        matched_by,
        role: change.role,
        previous_role,
        changed,
        confirm: None,
    })
}

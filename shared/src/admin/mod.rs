//! Operators' controls (docs/admin.md): who is an admin, the active model and each model's
//! settings, the allowlisted switches, the role grant, the audit trail every change writes, and
//! sealing secret settings at rest ([`secrets`]).
//!
//! Every change runs in one transaction that locks what it checks, writes the change and its
//! audit entry, then commits: a check and the change it allows cannot be separated by a
//! concurrent request, and no change exists without its audit entry.

pub mod model_settings;
pub mod roles;
pub mod secrets;
pub mod settings;

use crate::db::audit::AuditActor;
use crate::db::users::User;

/// The caller of an admin route, after the role check ([`crate::platform::state::ApiState::current_admin`]).
#[derive(Debug, Clone)]
pub struct Admin {
    pub user: User,
    /// API Gateway's request id, recorded in the audit trail.
    pub request_id: String,
}

impl Admin {
    pub fn actor(&self) -> AuditActor {
        AuditActor {
            user_id: Some(self.user.id),
            label: self.user.auth0_sub.clone(),
            request_id: Some(self.request_id.clone()),
        }
    }
}

//! The `set-user-role` function: grants or revokes the admin role (docs/admin.md). It has no HTTP
//! route. Operators run it two ways, both through [`shared::admin::roles::set_user_role`]:
//! - deployed: `aws lambda invoke` with `{"auth0_sub": "...", "role": "admin"}` (or `"email"`);
//! - locally: as a plain program, `scripts/set-user-role 'auth0|…' admin`.
//!
//! Every change is written to the admin audit trail as `operator:set-user-role`.

use shared::admin::roles::{Role, RoleChange, RoleChangeReport, set_user_role};
use shared::config::{AppEnv, ConfigError, DatabaseConfig, Env};
use shared::lambda_runtime::{Error, LambdaEvent};
use shared::serde_json::{self, Value};
use shared::sqlx::PgPool;

pub struct RoleState {
    pub db: PgPool,
}

impl RoleState {
    /// `APP_ENV`, `DATABASE_URL`, `DB_MAX_CONNECTIONS`.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        AppEnv::from_env(env)?;
        let db = shared::db::pool(&DatabaseConfig::from_env(env)?)?;
        Ok(RoleState { db })
    }
}

const USAGE: &str = "expected {\"auth0_sub\": \"auth0|...\", \"role\": \"admin\"} (or \"email\" instead of \"auth0_sub\"; role \"admin\" or \"user\")";

/// One invocation: the event is the role change; the answer is the report. A bad request is an
/// error result (what `aws lambda invoke` shows as `FunctionError`), and changes nothing.
pub async fn handle(state: &RoleState, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let change: RoleChange =
        serde_json::from_value(event.payload).map_err(|err| format!("invalid request ({err}); {USAGE}"))?;
    let report = set_user_role(&state.db, &change, Some(event.context.request_id)).await?;
    Ok(serde_json::to_value(report)?)
}

/// The program's arguments: `<auth0 sub> <role>` or `--email <address> <role>`.
pub fn parse_args(args: &[String]) -> Result<RoleChange, String> {
    let usage = "usage: set-user-role <auth0 sub> admin|user\n       set-user-role --email <address> admin|user";
    let (auth0_sub, email, role) = match args {
        [flag, email, role] if flag == "--email" => (None, Some(email.clone()), role),
        [sub, role] if !sub.starts_with('-') => (Some(sub.clone()), None, role),
        _ => return Err(usage.to_string()),
    };
    let role = Role::parse(role).ok_or_else(|| format!("the role must be admin or user\n{usage}"))?;
    Ok(RoleChange { auth0_sub, email, role })
}

/// Runs the change from the command line and returns the report.
pub async fn run_cli(state: &RoleState, args: &[String]) -> Result<RoleChangeReport, Error> {
    let change = parse_args(args)?;
    Ok(set_user_role(&state.db, &change, Some(format!("cli-{}", uuid_v4()))).await?)
}

fn uuid_v4() -> String {
    shared::uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_name_one_user_and_a_known_role() {
        let change = parse_args(&args(&["auth0|abc", "admin"])).unwrap();
        assert_eq!(change.auth0_sub.as_deref(), Some("auth0|abc"));
        assert_eq!(change.role, Role::Admin);
        let change = parse_args(&args(&["--email", "a@example.com", "user"])).unwrap();
        assert_eq!(change.email.as_deref(), Some("a@example.com"));
        assert_eq!(change.role, Role::User);
        for bad in [
            &[][..],
            &["auth0|abc"],
            &["auth0|abc", "root"],
            &["--email", "admin"],
            &["-x", "admin"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }
}

//! The `set-user-role` function: grants or revokes the admin role (docs/admin.md). It has no HTTP
//! route. Operators run it two ways, both through [`shared::admin::roles::set_user_role`]:
//! - deployed: `aws lambda invoke` with `{"auth0_sub": "...", "role": "admin"}` (or `"email"`, a
//!   verified address); the answer shows the matched account and changes nothing; the same payload
//!   plus `"confirm": "<that account's auth0_sub>"` applies it;
//! - locally: as a plain program, `scripts/set-user-role 'auth0|…' admin [--confirm 'auth0|…']`.
//!
//! Every change is written to the admin audit trail as `operator:set-user-role`.

use shared::admin::roles::{Role, RoleChange, RoleChangeReport, set_user_role};
use shared::lambda_runtime::{Error, LambdaEvent};
use shared::platform::config::{AppEnv, ConfigError, DatabaseConfig, Env};
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

const USAGE: &str = "expected {\"auth0_sub\": \"auth0|...\", \"role\": \"admin\"} (or \"email\", a verified address, instead of \"auth0_sub\"; role \"admin\" or \"user\"), then the same with \"confirm\": \"<auth0_sub shown>\" to apply";

/// One invocation: the event is the role change; the answer is the report. A bad request is an
/// error result (what `aws lambda invoke` shows as `FunctionError`), and changes nothing.
pub async fn handle(state: &RoleState, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let change: RoleChange =
        serde_json::from_value(event.payload).map_err(|err| format!("invalid request ({err}); {USAGE}"))?;
    let report = set_user_role(&state.db, &change, Some(event.context.request_id)).await?;
    Ok(serde_json::to_value(report)?)
}

/// Run as a program (`scripts/set-user-role`): one change (or its dry run), the report on
/// stdout, the hint on stderr; a bad request prints the problem and exits with status 1.
pub async fn run_program(state: &RoleState, args: &[String]) -> Result<(), Error> {
    match run_cli(state, args).await {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report)?);
            if let Some(hint) = dry_run_hint(args, &report) {
                eprintln!("{hint}");
            }
            Ok(())
        }
        Err(err) => {
            eprintln!("set-user-role: {err}");
            std::process::exit(1);
        }
    }
}

/// The program's arguments: `<auth0 sub> <role>` or `--email <address> <role>`, optionally
/// followed by `--confirm <auth0 sub of the account shown by the dry run>`.
pub fn parse_args(args: &[String]) -> Result<RoleChange, String> {
    let usage = "usage: set-user-role <auth0 sub> admin|user [--confirm <auth0 sub>]\n       \
                 set-user-role --email <verified address> admin|user [--confirm <auth0 sub>]\n\
                 Without --confirm nothing changes: the matched account is shown.";
    let (args, confirm) = match args {
        [head @ .., flag, sub] if flag == "--confirm" => (head, Some(sub.clone())),
        _ => (args, None),
    };
    let (auth0_sub, email, role) = match args {
        [flag, email, role] if flag == "--email" => (None, Some(email.clone()), role),
        [sub, role] if !sub.starts_with('-') => (Some(sub.clone()), None, role),
        _ => return Err(usage.to_string()),
    };
    let role = Role::parse(role).ok_or_else(|| format!("the role must be admin or user\n{usage}"))?;
    Ok(RoleChange {
        auth0_sub,
        email,
        role,
        confirm,
    })
}

/// Runs the change from the command line and returns the report.
pub async fn run_cli(state: &RoleState, args: &[String]) -> Result<RoleChangeReport, Error> {
    let change = parse_args(args)?;
    Ok(set_user_role(&state.db, &change, Some(format!("cli-{}", uuid_v4()))).await?)
}

/// What the program tells the operator after a dry run: the account, and the command that applies.
pub fn dry_run_hint(args: &[String], report: &RoleChangeReport) -> Option<String> {
    let confirm = report.confirm.as_deref()?;
    let account = match (report.user_id, report.created_at) {
        (Some(id), Some(created)) => format!(
            "user {id}, {}, verified e-mail {}, first seen {created}, role now {}",
            report.auth0_sub,
            report.verified_email.as_deref().unwrap_or("none"),
            report.previous_role.as_str()
        ),
        _ => format!("{} has never signed in; applying creates the user", report.auth0_sub),
    };
    let quoted: Vec<String> = args.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect();
    Some(format!(
        "Dry run, nothing changed. Matched: {account}.\nIf this is the right account, apply with:\n  \
         scripts/set-user-role {} --confirm '{}'",
        quoted.join(" "),
        confirm.replace('\'', r"'\''")
    ))
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
    fn the_dry_run_hint_shows_the_account_and_the_command_that_applies() {
        let report = RoleChangeReport {
            applied: false,
            user_id: Some(shared::uuid::Uuid::nil()),
            auth0_sub: "auth0|o'brien".into(),
            verified_email: Some("ob@example.com".into()),
            created_at: Some(shared::chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap()),
            matched_by: "verified_email",
            role: Role::Admin,
            previous_role: Role::User,
            changed: true,
            confirm: Some("auth0|o'brien".into()),
        };
        let hint = dry_run_hint(&args(&["--email", "ob@example.com", "admin"]), &report).unwrap();
        assert!(hint.starts_with("Dry run, nothing changed."), "{hint}");
        assert!(hint.contains("verified e-mail ob@example.com"), "{hint}");
        assert!(
            hint.ends_with(r"scripts/set-user-role '--email' 'ob@example.com' 'admin' --confirm 'auth0|o'\''brien'"),
            "{hint}"
        );
        let applied = RoleChangeReport {
            applied: true,
            confirm: None,
            ..report
        };
        assert_eq!(dry_run_hint(&args(&["auth0|x", "admin"]), &applied), None);
    }

    #[test]
    fn arguments_name_one_user_and_a_known_role() {
        let change = parse_args(&args(&["auth0|abc", "admin"])).unwrap();
        assert_eq!(change.auth0_sub.as_deref(), Some("auth0|abc"));
        assert_eq!(change.role, Role::Admin);
        assert_eq!(change.confirm, None);
        let change = parse_args(&args(&["--email", "a@example.com", "user"])).unwrap();
        assert_eq!(change.email.as_deref(), Some("a@example.com"));
        assert_eq!(change.role, Role::User);
        let change = parse_args(&args(&["--email", "a@example.com", "admin", "--confirm", "auth0|abc"])).unwrap();
        assert_eq!(change.confirm.as_deref(), Some("auth0|abc"));
        assert_eq!(change.email.as_deref(), Some("a@example.com"));
        for bad in [
            &[][..],
            &["auth0|abc"],
            &["auth0|abc", "root"],
            &["--email", "admin"],
            &["-x", "admin"],
            &["auth0|abc", "admin", "--confirm"],
            &["--confirm", "auth0|abc"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }
}

//! Configuration from environment variables, parsed and validated once per cold start.
//!
//! Each concern has its own typed section (`DatabaseConfig`, `AuthConfig`, ...) so a function reads
//! only the variables it needs; a function's state struct is built from the sections it uses. A
//! missing or malformed variable fails init with a [`ConfigError`] that names the variable.
//! Secrets are wrapped in [`Secret`], whose `Debug` and `Display` never show the value.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use url::Url;

/// Where variables come from: the process environment in production, a map in tests
/// (setting process env vars is `unsafe` and racy in a multi-threaded test binary).
pub trait EnvSource: Sync {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl EnvSource for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration error: environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("configuration error: environment variable {var} is invalid: {problem}")]
    Invalid { var: &'static str, problem: String },
}

impl ConfigError {
    pub fn invalid(var: &'static str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            var,
            problem: problem.into(),
        }
    }

    /// The variable the error is about.
    pub fn variable(&self) -> &'static str {
        match self {
            ConfigError::Missing(v) => v,
            ConfigError::Invalid { var, .. } => var,
        }
    }
}

/// A value that must never reach a log line or a response.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The only way to read the value: call sites are easy to audit with grep.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Typed reads over an [`EnvSource`]. An empty (or all-blank) value counts as unset, so a SAM
/// parameter left at its empty default behaves like an absent variable.
pub struct Env<'a>(pub &'a dyn EnvSource);

impl Env<'_> {
    pub fn optional(&self, name: &'static str) -> Option<String> {
        self.0.var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e: T::Err| ConfigError::invalid(name, e.to_string())),
        }
    }

    pub fn url(&self, name: &'static str) -> Result<Url, ConfigError> {
        let raw = self.required(name)?;
        Url::parse(&raw).map_err(|e| ConfigError::invalid(name, format!("not a URL ({e})")))
    }
}

/// `APP_ENV`: decides how strict the rest of the configuration must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Production,
    Staging,
    Development,
    Test,
}

impl AppEnv {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        match env.required("APP_ENV")?.to_ascii_lowercase().as_str() {
            "production" => Ok(AppEnv::Production),
            "staging" => Ok(AppEnv::Staging),
            "development" => Ok(AppEnv::Development),
            "test" => Ok(AppEnv::Test),
            other => Err(ConfigError::invalid(
                "APP_ENV",
                format!("`{other}` is not one of production, staging, development, test"),
            )),
        }
    }

    /// Deployed environments: real customers or real money may be involved.
    pub fn is_deployed(self) -> bool {
        matches!(self, AppEnv::Production | AppEnv::Staging)
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: Secret,
    /// Connections per Lambda instance. One instance serves one request at a time, so 1–2 is
    /// plenty and keeps a burst of cold starts from exhausting Postgres.
    pub max_connections: u32,
    /// A pooled connection idle this long is closed; `None` = never.
    pub idle_timeout: Option<std::time::Duration>,
    /// `DATABASE_URL` is a transaction-mode pooler: no named prepared statements, no session
    /// settings sent at connect.
    pub behind_pooler: bool,
}

impl DatabaseConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let url = env.required("DATABASE_URL")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::invalid(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        // Parse now so a typo fails at init, not on the first query. The parse error of sqlx
        // may echo the URL (password included), so it is not passed on.
        if url.parse::<sqlx::postgres::PgConnectOptions>().is_err() {
            return Err(ConfigError::invalid(
                "DATABASE_URL",
                "is not a valid Postgres connection URL",
            ));
        }
        let max_connections: u32 = env.parsed("DB_MAX_CONNECTIONS", 2)?;
        if !(1..=50).contains(&max_connections) {
            return Err(ConfigError::invalid("DB_MAX_CONNECTIONS", "must be between 1 and 50"));
        }
        let idle_seconds: u64 = env.parsed("DB_IDLE_TIMEOUT_SECONDS", 240)?;
        if idle_seconds > 3600 {
            return Err(ConfigError::invalid(
                "DB_IDLE_TIMEOUT_SECONDS",
                "must be between 0 and 3600",
            ));
        }
        let behind_pooler = match env.optional("DB_POOLER").as_deref() {
            None | Some("") | Some("none") => false,
            Some("transaction") => true,
            Some(_) => return Err(ConfigError::invalid("DB_POOLER", "must be none or transaction")),
        };
        Ok(DatabaseConfig {
            url: Secret::new(url),
            max_connections,
            idle_timeout: (idle_seconds > 0).then(|| std::time::Duration::from_secs(idle_seconds)),
            behind_pooler,
        })
    }
}

/// What every HTTP function needs besides its own sections: the environment and the one origin
/// allowed by CORS.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub app_env: AppEnv,
    /// `FRONTEND_URL` reduced to its origin (`scheme://host[:port]`), as browsers send it.
    pub frontend_origin: String,
}

impl WebConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let app_env = AppEnv::from_env(env)?;
        let url = env.url("FRONTEND_URL")?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ConfigError::invalid(
                "FRONTEND_URL",
                "must be an http(s) URL with a host",
            ));
        }
        if app_env.is_deployed() && url.scheme() != "https" {
            return Err(ConfigError::invalid(
                "FRONTEND_URL",
                "must use https outside development",
            ));
        }
        let frontend_origin = url.origin().ascii_serialization();
        Ok(WebConfig {
            app_env,
            frontend_origin,
        })
    }
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Exact `iss` a token must carry: `https://<AUTH0_DOMAIN>/`, or `AUTH0_ISSUER` verbatim.
    pub issuer: String,
    pub audience: String,
    /// Where the signing keys are published: `<issuer>.well-known/jwks.json`.
    pub jwks_url: Url,
}

impl AuthConfig {
    pub fn from_env(env: &Env, app_env: AppEnv) -> Result<Self, ConfigError> {
        let audience = env.required("AUTH0_AUDIENCE")?;
        let issuer = match env.optional("AUTH0_ISSUER") {
            Some(issuer) => {
                let url = Url::parse(&issuer)
                    .map_err(|e| ConfigError::invalid("AUTH0_ISSUER", format!("not a URL ({e})")))?;
                if app_env.is_deployed() && url.scheme() != "https" {
                    // A local dev issuer must never be trusted by a deployed stack.
                    return Err(ConfigError::invalid(
                        "AUTH0_ISSUER",
                        "must use https outside development",
                    ));
                }
                if !issuer.ends_with('/') {
                    return Err(ConfigError::invalid(
                        "AUTH0_ISSUER",
                        "must end with `/` (Auth0 issuers do)",
                    ));
                }
                issuer
            }
            None => {
                let domain = env.required("AUTH0_DOMAIN")?;
                let valid = !domain.is_empty()
                    && domain
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                    && domain.contains('.');
                if !valid {
                    return Err(ConfigError::invalid(
                        "AUTH0_DOMAIN",
                        "must be a bare host name such as tenant.us.auth0.com (no scheme, no slash)",
                    ));
                }
                format!("https://{domain}/")
            }
        };
        let jwks_url = Url::parse(&format!("{issuer}.well-known/jwks.json"))
            .map_err(|e| ConfigError::invalid("AUTH0_ISSUER", format!("cannot derive the JWKS URL ({e})")))?;
        Ok(AuthConfig {
            issuer,
            audience,
            jwks_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn missing_variable_is_named() {
        let vars = env(&[("APP_ENV", "test")]);
        let err = WebConfig::from_env(&Env(&vars)).unwrap_err();
        assert_eq!(err, ConfigError::Missing("FRONTEND_URL"));
        assert!(err.to_string().contains("FRONTEND_URL"));
    }

    #[test]
    fn malformed_variables_are_named() {
        let vars = env(&[("APP_ENV", "prod")]);
        assert_eq!(AppEnv::from_env(&Env(&vars)).unwrap_err().variable(), "APP_ENV");
        let vars = env(&[("DATABASE_URL", "mysql://x"), ("APP_ENV", "test")]);
        assert_eq!(
            DatabaseConfig::from_env(&Env(&vars)).unwrap_err().variable(),
            "DATABASE_URL"
        );
        let vars = env(&[("DATABASE_URL", "postgres://u@h/db"), ("DB_MAX_CONNECTIONS", "lots")]);
        assert_eq!(
            DatabaseConfig::from_env(&Env(&vars)).unwrap_err().variable(),
            "DB_MAX_CONNECTIONS"
        );
        // The connection budget: idle connections closed after 240 s unless told otherwise, no
        // pooler unless told; a value outside the ranges is refused by name.
        let vars = env(&[("DATABASE_URL", "postgres://u@h/db")]);
        let config = DatabaseConfig::from_env(&Env(&vars)).unwrap();
        assert_eq!(config.idle_timeout, Some(std::time::Duration::from_secs(240)));
        assert!(!config.behind_pooler);
        let vars = env(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("DB_IDLE_TIMEOUT_SECONDS", "0"),
            ("DB_POOLER", "transaction"),
        ]);
        let config = DatabaseConfig::from_env(&Env(&vars)).unwrap();
        assert_eq!(config.idle_timeout, None);
        assert!(config.behind_pooler);
        for (name, value) in [("DB_IDLE_TIMEOUT_SECONDS", "3601"), ("DB_POOLER", "session")] {
            let vars = env(&[("DATABASE_URL", "postgres://u@h/db"), (name, value)]);
            assert_eq!(DatabaseConfig::from_env(&Env(&vars)).unwrap_err().variable(), name);
        }
        let vars = env(&[("AUTH0_AUDIENCE", "a"), ("AUTH0_DOMAIN", "https://tenant.auth0.com/")]);
        assert_eq!(
            AuthConfig::from_env(&Env(&vars), AppEnv::Test).unwrap_err().variable(),
            "AUTH0_DOMAIN"
        );
    }

    #[test]
    fn blank_counts_as_unset() {
        let vars = env(&[("APP_ENV", "test"), ("FRONTEND_URL", "   ")]);
        assert_eq!(
            WebConfig::from_env(&Env(&vars)).unwrap_err(),
            ConfigError::Missing("FRONTEND_URL")
        );
    }

    #[test]
    fn issuer_comes_from_the_domain_with_trailing_slash() {
        let vars = env(&[
            ("AUTH0_AUDIENCE", "https://api.example.com"),
            ("AUTH0_DOMAIN", "tenant.us.auth0.com"),
        ]);
        let auth = AuthConfig::from_env(&Env(&vars), AppEnv::Production).unwrap();
        assert_eq!(auth.issuer, "https://tenant.us.auth0.com/");
        assert_eq!(
            auth.jwks_url.as_str(),
            "https://tenant.us.auth0.com/.well-known/jwks.json"
        );
    }

    #[test]
    fn a_plain_http_issuer_is_refused_when_deployed() {
        let vars = env(&[("AUTH0_AUDIENCE", "a"), ("AUTH0_ISSUER", "http://127.0.0.1:9001/")]);
        assert!(AuthConfig::from_env(&Env(&vars), AppEnv::Development).is_ok());
        let err = AuthConfig::from_env(&Env(&vars), AppEnv::Production).unwrap_err();
        assert_eq!(err.variable(), "AUTH0_ISSUER");
    }

    #[test]
    fn frontend_url_becomes_an_origin() {
        let vars = env(&[
            ("APP_ENV", "production"),
            ("FRONTEND_URL", "https://app.example.com/dashboard"),
        ]);
        assert_eq!(
            WebConfig::from_env(&Env(&vars)).unwrap().frontend_origin,
            "https://app.example.com"
        );
        let vars = env(&[("APP_ENV", "production"), ("FRONTEND_URL", "http://app.example.com")]);
        assert!(WebConfig::from_env(&Env(&vars)).is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        let vars = env(&[("DATABASE_URL", "postgres://user:hunter2@db/app")]);
        let db = DatabaseConfig::from_env(&Env(&vars)).unwrap();
        let shown = format!("{db:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(db.url.expose(), "postgres://user:hunter2@db/app");
    }
}

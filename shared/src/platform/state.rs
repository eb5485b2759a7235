//! Per-cold-start state. Each function picks the smallest state that covers what it uses, so it
//! reads only the environment variables it needs: public routes never need Auth0 settings.

use std::future::Future;
use std::time::Duration;

use lambda_http::Request;
use sqlx::PgPool;

use crate::clients::storage::{Storage, StorageConfig};
use crate::db::{self, users::User};
use crate::platform::auth::{Authenticator, Identity};
use crate::platform::config::{AuthConfig, ConfigError, DatabaseConfig, Env, WebConfig};
use crate::platform::error::ApiError;
use crate::staging::queue::{JobQueue, QueueConfig};

/// What [`crate::platform::lambda::run_http`] needs from a state type.
pub trait HttpState: Sized + Send + Sync + 'static {
    /// Builds the state from the environment; fails (naming the variable) on bad configuration.
    fn from_env(env: &Env<'_>) -> impl Future<Output = Result<Self, ConfigError>> + Send;
    fn web(&self) -> &WebConfig;
    /// Best-effort work done during init, when Lambda gives the function a full CPU.
    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Public routes: database only.
pub struct PublicState {
    pub web: WebConfig,
    pub db: PgPool,
}

impl HttpState for PublicState {
    async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let web = WebConfig::from_env(env)?;
        let db = db::pool(&DatabaseConfig::from_env(env)?)?;
        Ok(PublicState { web, db })
    }
    fn web(&self) -> &WebConfig {
        &self.web
    }
    async fn warm_up(&self) {
        db::warm_up(&self.db).await;
    }
}

/// Authenticated routes: database and token verification.
pub struct ApiState {
    pub web: WebConfig,
    pub db: PgPool,
    pub auth: Authenticator,
}

impl ApiState {
    pub fn new(web: WebConfig, db: PgPool, auth: AuthConfig) -> Result<Self, ConfigError> {
        Ok(ApiState {
            web,
            db,
            auth: Authenticator::new(auth, outbound_http_client()?),
        })
    }

    /// Verifies the caller's token and returns their user row, creating it on first sight.
    pub async fn current_user(&self, req: &Request) -> Result<User, ApiError> {
        let identity = self.auth.authenticate(req).await?;
        self.user_for(identity).await
    }

    /// [`ApiState::current_user`], for admin routes: anyone whose row does not say `role =
    /// 'admin'` gets 403, before anything else about the request is looked at.
    pub async fn current_admin(&self, req: &Request) -> Result<crate::admin::Admin, ApiError> {
        let user = self.current_user(req).await?;
        if !user.is_admin() {
            return Err(ApiError::Forbidden("This route is for administrators".into()));
        }
        Ok(crate::admin::Admin {
            request_id: crate::platform::http::request_id(req),
            user,
        })
    }

    /// [`ApiState::current_user`] for the events route, which also accepts `?access_token=`.
    pub async fn current_user_of_event_stream(&self, req: &Request) -> Result<User, ApiError> {
        let identity = self.auth.authenticate_event_stream(req).await?;
        self.user_for(identity).await
    }

    async fn user_for(&self, Identity { sub, email }: Identity) -> Result<User, ApiError> {
        use crate::platform::auth::EmailClaim;
        let mut user = db::users::ensure_by_sub(&self.db, &sub).await?;
        // The verified address comes from the signed token only (never the profile), so a role
        // granted by e-mail (docs/admin.md) can only reach whoever proved they own it.
        user = match email {
            EmailClaim::Absent => user,
            EmailClaim::Unverified => db::users::sync_verified_email(&self.db, user, None)
                .await?
                .ok_or(ApiError::NotFound("user"))?,
            EmailClaim::Verified(address) => db::users::sync_verified_email(&self.db, user, Some(&address))
                .await?
                .ok_or(ApiError::NotFound("user"))?,
        };
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        Ok(user)
    }
}

impl HttpState for ApiState {
    async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let web = WebConfig::from_env(env)?;
        let db = db::pool(&DatabaseConfig::from_env(env)?)?;
        let auth = AuthConfig::from_env(env, web.app_env)?;
        ApiState::new(web, db, auth)
    }
    fn web(&self) -> &WebConfig {
        &self.web
    }
    async fn warm_up(&self) {
        tokio::join!(db::warm_up(&self.db), self.auth.warm_up());
    }
}

/// Authenticated routes that also mint storage URLs (uploads, image reads).
pub struct StorageState {
    pub api: ApiState,
    pub storage: Storage,
}

impl HttpState for StorageState {
    async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let api = ApiState::from_env(env).await?;
        let storage = Storage::from_config(&StorageConfig::from_env(env)?).await;
        Ok(StorageState { api, storage })
    }
    fn web(&self) -> &WebConfig {
        &self.api.web
    }
    async fn warm_up(&self) {
        self.api.warm_up().await;
    }
}

/// Authenticated routes that create staging work: storage to check uploads, the queue to send jobs.
pub struct StagingState {
    pub api: ApiState,
    pub storage: Storage,
    pub queue: JobQueue,
}

impl HttpState for StagingState {
    async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let api = ApiState::from_env(env).await?;
        let storage = Storage::from_config(&StorageConfig::from_env(env)?).await;
        let queue = JobQueue::new(&QueueConfig::from_env(env)?).await;
        Ok(StagingState { api, storage, queue })
    }
    fn web(&self) -> &WebConfig {
        &self.api.web
    }
    async fn warm_up(&self) {
        self.api.warm_up().await;
    }
}

/// Authenticated sharing routes: storage (the disclosed photo) and where share pages live.
pub struct SharingState {
    pub api: ApiState,
    pub storage: Storage,
    /// `SHARE_BASE_URL`: the origin share links are built on (a custom domain); unset, the
    /// request's own host (API Gateway's domain) is used.
    pub share_base: Option<url::Url>,
}

impl HttpState for SharingState {
    async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let api = ApiState::from_env(env).await?;
        let storage = Storage::from_config(&StorageConfig::from_env(env)?).await;
        let share_base = match env.optional("SHARE_BASE_URL") {
            None => None,
            Some(_) => {
                let url = env.url("SHARE_BASE_URL")?;
                if !matches!(url.scheme(), "http" | "https")
                    || url.host_str().is_none()
                    || url.query().is_some()
                    || url.fragment().is_some()
                {
                    return Err(ConfigError::invalid(
                        "SHARE_BASE_URL",
                        "must be an http(s) URL with a host and no query",
                    ));
                }
                Some(url)
            }
        };
        Ok(SharingState {
            api,
            storage,
            share_base,
        })
    }
    fn web(&self) -> &WebConfig {
        &self.api.web
    }
    async fn warm_up(&self) {
        self.api.warm_up().await;
    }
}

/// The public share page: the database and storage links, no token verification.
pub struct SharePageState {
    pub web: WebConfig,
    pub db: PgPool,
    pub storage: Storage,
}

impl HttpState for SharePageState {
    async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let web = WebConfig::from_env(env)?;
        let db = db::pool(&DatabaseConfig::from_env(env)?)?;
        let storage = Storage::from_config(&StorageConfig::from_env(env)?).await;
        Ok(SharePageState { web, db, storage })
    }
    fn web(&self) -> &WebConfig {
        &self.web
    }
    async fn warm_up(&self) {
        db::warm_up(&self.db).await;
    }
}

/// Authenticated billing routes: the database and, when configured, the Stripe client (without
/// `STRIPE_SECRET_KEY` outside production and staging, routes that call Stripe answer 503).
pub struct BillingState {
    pub api: ApiState,
    pub stripe: Option<crate::billing::stripe::Stripe>,
}

impl HttpState for BillingState {
    async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let api = ApiState::from_env(env).await?;
        let stripe = crate::billing::stripe::StripeConfig::from_env(env, api.web.app_env)?
            .map(|config| outbound_http_client().map(|http| crate::billing::stripe::Stripe::new(config, http)))
            .transpose()?;
        Ok(BillingState { api, stripe })
    }
    fn web(&self) -> &WebConfig {
        &self.api.web
    }
    async fn warm_up(&self) {
        self.api.warm_up().await;
    }
}

/// The admin route that writes model settings: it seals secrets, so it holds the settings key
/// (`SETTINGS_ENCRYPTION_KEY`). The other admin routes use [`ApiState`] and never see the key.
pub struct AdminSecretsState {
    pub api: ApiState,
    pub cipher: crate::admin::secrets::SettingsCipher,
}

impl HttpState for AdminSecretsState {
    async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let api = ApiState::from_env(env).await?;
        let cipher = crate::admin::secrets::SettingsCipher::from_env(env)?;
        Ok(AdminSecretsState { api, cipher })
    }
    fn web(&self) -> &WebConfig {
        &self.api.web
    }
    async fn warm_up(&self) {
        self.api.warm_up().await;
    }
}

/// The Stripe webhook: no user token; the request is authenticated by its signature.
pub struct WebhookState {
    pub web: WebConfig,
    pub db: PgPool,
    /// `None` only in development and test (then every delivery is refused with 503).
    pub webhook_secret: Option<crate::platform::config::Secret>,
    /// To cancel (and refund) a user's second subscription. Required when deployed
    /// (`STRIPE_SECRET_KEY`); without it, development logs the duplicate and leaves it.
    pub stripe: Option<crate::billing::stripe::Stripe>,
}

impl HttpState for WebhookState {
    async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let web = WebConfig::from_env(env)?;
        let db = db::pool(&DatabaseConfig::from_env(env)?)?;
        let webhook_secret = crate::billing::stripe::webhook_secret_from_env(env, web.app_env)?;
        let stripe = crate::billing::stripe::StripeConfig::from_env(env, web.app_env)?
            .map(|config| outbound_http_client().map(|http| crate::billing::stripe::Stripe::new(config, http)))
            .transpose()?;
        Ok(WebhookState {
            web,
            db,
            webhook_secret,
            stripe,
        })
    }
    fn web(&self) -> &WebConfig {
        &self.web
    }
    async fn warm_up(&self) {
        db::warm_up(&self.db).await;
    }
}

/// The HTTP client for calls to third parties (Auth0 today; Replicate and Stripe later).
pub fn outbound_http_client() -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("realstaging-backend/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::invalid("(http client)", e.to_string()))
}

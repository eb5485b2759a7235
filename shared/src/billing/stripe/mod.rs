//! Stripe: the API client the billing routes use (`client`) and the verified, idempotent webhook
//! (`webhook`). Stripe is spoken over plain HTTPS with reqwest: form-encoded bodies, a pinned
//! `Stripe-Version`, an `Idempotency-Key` on every POST (docs/billing.md).

pub mod client;
pub mod webhook;

use url::Url;

use crate::platform::config::{AppEnv, ConfigError, Env, Secret};

pub use client::Stripe;

/// The API version every request and the webhook endpoint are pinned to. Newer versions moved the
/// subscription period onto its items; the webhook reads both places.
pub const STRIPE_VERSION: &str = "2025-08-27.basil";
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com/v1";

/// `STRIPE_SECRET_KEY` (`sk_…`/`rk_…`; required when deployed, else optional: without it the
/// billing routes that call Stripe answer 503), `STRIPE_API_BASE` (tests point it at a fake).
#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub secret_key: Secret,
    pub api_base: Url,
}

impl StripeConfig {
    pub fn from_env(env: &Env, app_env: AppEnv) -> Result<Option<Self>, ConfigError> {
        let secret_key = match env.optional("STRIPE_SECRET_KEY") {
            Some(key) => key,
            None if app_env.is_deployed() => return Err(ConfigError::Missing("STRIPE_SECRET_KEY")),
            None => return Ok(None),
        };
        if !(secret_key.starts_with("sk_") || secret_key.starts_with("rk_")) {
            return Err(ConfigError::invalid(
                "STRIPE_SECRET_KEY",
                "must be a Stripe secret key (sk_… or rk_…)",
            ));
        }
        let api_base = match env.optional("STRIPE_API_BASE") {
            Some(_) => env.url("STRIPE_API_BASE")?,
            None => Url::parse(DEFAULT_API_BASE).map_err(|e| ConfigError::invalid("STRIPE_API_BASE", e.to_string()))?,
        };
        Ok(Some(StripeConfig {
            secret_key: Secret::new(secret_key),
            api_base,
        }))
    }
}

/// `STRIPE_WEBHOOK_SECRET` (`whsec_…`): required outside development and test, where a missing
/// secret is a startup error, never a silent skip of verification.
pub fn webhook_secret_from_env(env: &Env, app_env: AppEnv) -> Result<Option<Secret>, ConfigError> {
    match env.optional("STRIPE_WEBHOOK_SECRET") {
        Some(secret) if secret.starts_with("whsec_") => Ok(Some(Secret::new(secret))),
        Some(_) => Err(ConfigError::invalid(
            "STRIPE_WEBHOOK_SECRET",
            "must be a webhook signing secret (whsec_…)",
        )),
        None if matches!(app_env, AppEnv::Development | AppEnv::Test) => Ok(None),
        None => Err(ConfigError::Missing("STRIPE_WEBHOOK_SECRET")),
    }
}

//! Auth0 access-token verification.
//!
//! Strict by construction: the algorithm is pinned to RS256 by the server (never taken from the
//! token), a `kid` is required, issuer and audience must match exactly, `exp` and `nbf` are
//! checked with a small leeway. Signing keys come from the issuer's JWKS, fetched lazily, cached
//! for the life of the Lambda instance, and refetched when a token names an unknown `kid` — at
//! most once per [`REFRESH_INTERVAL`], so a flood of made-up `kid`s cannot turn into a flood of
//! requests to Auth0.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use http::header;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use lambda_http::Request;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::platform::config::AuthConfig;
use crate::platform::error::ApiError;

/// Minimum time between two JWKS fetches caused by unknown `kid`s.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed fetch, how long before another attempt is allowed (requests in between get the
/// cached keys, or a 503 at once when there are none: an outage never turns into a queue of
/// requests each waiting on Auth0).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;
const MAX_TOKEN_BYTES: usize = 8 * 1024;
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Who the verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The Auth0 `sub`, e.g. `auth0|64f...`; the key of the `users` table.
    pub sub: String,
    /// What the token says about the user's e-mail address.
    pub email: EmailClaim,
}

/// The e-mail claims of a verified token. Auth0 access tokens carry them only when a post-login
/// Action adds them (docs/admin.md): `email` and `email_verified`, either as such or namespaced
/// under the API identifier (`<audience>/email`, `<audience>/email_verified`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailClaim {
    /// No usable `email` claim: says nothing, changes nothing.
    Absent,
    /// An address the identity provider has not verified (`email_verified` is not `true`).
    Unverified,
    /// An address the identity provider verified: the only kind a role may ever be granted by.
    Verified(String),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    email: Option<serde_json::Value>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    /// Every other claim, for the namespaced e-mail claims.
    #[serde(flatten)]
    other: HashMap<String, serde_json::Value>,
}

impl Claims {
    fn email_claim(&self, audience: &str) -> EmailClaim {
        let namespace = audience.trim_end_matches('/');
        let (email, verified) = if self.email.is_some() {
            (self.email.as_ref(), self.email_verified.as_ref())
        } else {
            (
                self.other.get(&format!("{namespace}/email")),
                self.other.get(&format!("{namespace}/email_verified")),
            )
        };
        let Some(email) = email else {
            return EmailClaim::Absent;
        };
        let Some(email) = email.as_str().map(str::trim).filter(|e| plausible_email(e)) else {
            return EmailClaim::Absent;
        };
        // Only a JSON `true`: a string "true", a missing claim or anything else is not a promise.
        if verified == Some(&serde_json::Value::Bool(true)) {
            EmailClaim::Verified(email.to_string())
        } else {
            EmailClaim::Unverified
        }
    }
}

/// The shape check of an address the identity provider sent (it already validated it; this only
/// keeps junk out of the column): `local@domain`, at most 254 characters, no spaces or controls.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    (3..=254).contains(&email.chars().count())
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched: bool,
    next_fetch_allowed: Option<Instant>,
}

pub struct Authenticator {
    config: AuthConfig,
    http: reqwest::Client,
    validation: Validation,
    cache: RwLock<KeyCache>,
    refresh_interval: Duration,
    /// Single flight: concurrent misses wait for one fetch instead of each starting their own.
    fetch_lock: Mutex<()>,
}

impl Authenticator {
    pub fn new(config: AuthConfig, http: reqwest::Client) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        Authenticator {
            config,
            http,
            validation,
            cache: RwLock::new(KeyCache {
                keys: HashMap::new(),
                fetched: false,
                next_fetch_allowed: None,
            }),
            refresh_interval: REFRESH_INTERVAL,
            fetch_lock: Mutex::new(()),
        }
    }

    /// Overrides [`REFRESH_INTERVAL`] (tests exercise key rotation without waiting a minute); the
    /// back-off after a failed fetch is never longer than it.
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Fetches the signing keys ahead of the first request (best effort, during init).
    pub async fn warm_up(&self) {
        match tokio::time::timeout(Duration::from_secs(2), self.fetch_keys()).await {
            Ok(Ok(keys)) => {
                let mut cache = self.cache.write().await;
                cache.keys = keys;
                cache.fetched = true;
                cache.next_fetch_allowed = Some(Instant::now() + self.refresh_interval);
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %format!("{err:#}"), "could not prefetch the JWKS during init")
            }
            Err(_) => tracing::warn!("prefetching the JWKS during init timed out"),
        }
    }

    /// Verifies `Authorization: Bearer <token>` (the only accepted place for a token on this
    /// route) and returns the identity it carries. Every failure is a 401 except an identity
    /// provider that cannot be reached before any key is known (503).
    pub async fn authenticate(&self, req: &Request) -> Result<Identity, ApiError> {
        crate::platform::http::reject_query_token(req)?;
        let token = bearer_token(req)?;
        self.verify(token).await
    }

    /// The Server-Sent Events route only: EventSource cannot set headers, so the token may come
    /// as `?access_token=` instead of the Authorization header (never both).
    pub async fn authenticate_event_stream(&self, req: &Request) -> Result<Identity, ApiError> {
        use lambda_http::RequestExt;
        let query_token = req
            .query_string_parameters_ref()
            .and_then(|q| q.all("access_token"))
            .unwrap_or_default();
        let has_header = req.headers().contains_key(header::AUTHORIZATION);
        match (query_token.as_slice(), has_header) {
            ([], _) => self.authenticate(req).await,
            ([token], false) => self.verify(token).await,
            (_, true) => Err(ApiError::unauthorized(
                "Send the access token either in the header or in the query, not both",
            )),
            (_, false) => Err(ApiError::unauthorized("`access_token` was given more than once")),
        }
    }

    /// Verifies a raw token string.
    pub async fn verify(&self, token: &str) -> Result<Identity, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::unauthorized("The access token is too large"));
        }
        // `alg: none` and unknown algorithms fail to parse here.
        let header = decode_header(token).map_err(|_| ApiError::unauthorized("The access token is malformed"))?;
        if header.alg != Algorithm::RS256 {
            return Err(ApiError::unauthorized("The access token must be signed with RS256"));
        }
        let kid = header
            .kid
            .filter(|kid| !kid.is_empty())
            .ok_or_else(|| ApiError::unauthorized("The access token has no key id (kid)"))?;
        let key = self.key_for(&kid).await?;
        let data = decode::<Claims>(token, &key, &self.validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            let reason = match err.kind() {
                ErrorKind::ExpiredSignature => "The access token has expired",
                ErrorKind::ImmatureSignature => "The access token is not valid yet",
                ErrorKind::InvalidIssuer => "The access token was issued by an unexpected issuer",
                ErrorKind::InvalidAudience => "The access token is not meant for this API",
                ErrorKind::InvalidSignature => "The access token signature is invalid",
                ErrorKind::MissingRequiredClaim(_) => "The access token is missing a required claim",
                _ => "The access token is invalid",
            };
            ApiError::unauthorized(reason)
        })?;
        let email = data.claims.email_claim(&self.config.audience);
        let sub = data.claims.sub;
        if sub.is_empty() || sub.len() > 255 {
            return Err(ApiError::unauthorized("The access token has an invalid subject"));
        }
        Ok(Identity { sub, email })
    }

    async fn key_for(&self, kid: &str) -> Result<DecodingKey, ApiError> {
        if let Some(key) = self.cache.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        let _single_flight = self.fetch_lock.lock().await;
        // Another request may have refreshed the keys while this one waited.
        {
            let cache = self.cache.read().await;
            if let Some(key) = cache.keys.get(kid) {
                return Ok(key.clone());
            }
            if cache.next_fetch_allowed.is_some_and(|at| Instant::now() < at) {
                // Without any key the token cannot be judged: while the identity provider is
                // backing off after a failure, that is its outage (503), not the caller's bad token.
                return Err(if cache.fetched {
                    ApiError::unauthorized("The access token was signed by an unknown key")
                } else {
                    identity_provider_unavailable(None)
                });
            }
        }
        match self.fetch_keys().await {
            Ok(keys) => {
                let mut cache = self.cache.write().await;
                tracing::info!(keys = keys.len(), "fetched the identity provider's signing keys");
                cache.keys = keys;
                cache.fetched = true;
                cache.next_fetch_allowed = Some(Instant::now() + self.refresh_interval);
                cache
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or_else(|| ApiError::unauthorized("The access token was signed by an unknown key"))
            }
            Err(err) => {
                let mut cache = self.cache.write().await;
                cache.next_fetch_allowed = Some(Instant::now() + RETRY_AFTER_FAILURE.min(self.refresh_interval));
                if cache.fetched {
                    tracing::warn!(error = %format!("{err:#}"), "JWKS refresh failed; keeping the cached keys");
                    Err(ApiError::unauthorized("The access token was signed by an unknown key"))
                } else {
                    Err(identity_provider_unavailable(Some(err)))
                }
            }
        }
    }

    async fn fetch_keys(&self) -> anyhow::Result<HashMap<String, DecodingKey>> {
        use anyhow::Context;
        let response = self
            .http
            .get(self.config.jwks_url.clone())
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .context("requesting the JWKS")?
            .error_for_status()
            .context("the JWKS endpoint answered with an error")?;
        if response
            .content_length()
            .is_some_and(|len| len as usize > MAX_JWKS_BYTES)
        {
            anyhow::bail!("the JWKS document is larger than {MAX_JWKS_BYTES} bytes");
        }
        let bytes = response.bytes().await.context("reading the JWKS")?;
        if bytes.len() > MAX_JWKS_BYTES {
            anyhow::bail!("the JWKS document is larger than {MAX_JWKS_BYTES} bytes");
        }
        let set: JwkSet = serde_json::from_slice(&bytes).context("parsing the JWKS")?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let rsa = matches!(jwk.algorithm, AlgorithmParameters::RSA(_));
            let for_signing = matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature));
            let rs256 = matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256));
            if rsa && for_signing && rs256 {
                match DecodingKey::from_jwk(jwk) {
                    Ok(key) => {
                        keys.insert(kid, key);
                    }
                    Err(err) => tracing::warn!(%kid, error = %err, "skipping an unusable JWKS key"),
                }
            }
        }
        Ok(keys)
    }
}

/// No signing key has ever been fetched (a fresh instance) and the identity provider cannot be
/// reached or answers with an error: a retryable 503 with a generic message (what went wrong is
/// logged, never shown).
fn identity_provider_unavailable(cause: Option<anyhow::Error>) -> ApiError {
    ApiError::Unavailable {
        message: "Sign-in cannot be checked right now; please try again shortly".into(),
        source: Some(cause.unwrap_or_else(|| {
            anyhow::anyhow!("no JWKS fetched yet and the last attempt failed moments ago (backing off)")
        })),
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 7235).
fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let value = values
        .next()
        .ok_or_else(|| ApiError::unauthorized("Missing `Authorization: Bearer <token>` header"))?;
    if values.next().is_some() {
        return Err(ApiError::unauthorized("More than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("The Authorization header is not valid text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("The Authorization header must be `Bearer <token>`"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(ApiError::unauthorized(
            "The Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;

    fn with_auth(values: &[&str]) -> Request {
        let mut builder = http::Request::builder().uri("/x");
        for v in values {
            builder = builder.header(header::AUTHORIZATION, *v);
        }
        builder.body(Body::Empty).unwrap()
    }

    fn claims(json: serde_json::Value) -> Claims {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn only_a_verified_email_claim_is_verified() {
        use serde_json::json;
        const AUD: &str = "https://api.example.test";
        let claim = |j| claims(j).email_claim(AUD);
        assert_eq!(claim(json!({"sub": "s"})), EmailClaim::Absent);
        assert_eq!(
            claim(json!({"sub": "s", "email": "Op@Example.com", "email_verified": true})),
            EmailClaim::Verified("Op@Example.com".into())
        );
        for unverified in [json!(false), json!("true"), json!(1), serde_json::Value::Null] {
            assert_eq!(
                claim(json!({"sub": "s", "email": "op@example.com", "email_verified": unverified})),
                EmailClaim::Unverified
            );
        }
        assert_eq!(
            claim(json!({"sub": "s", "email": "op@example.com"})),
            EmailClaim::Unverified
        );
        assert_eq!(
            claim(json!({"sub": "s", "https://api.example.test/email": "op@example.com",
                         "https://api.example.test/email_verified": true})),
            EmailClaim::Verified("op@example.com".into())
        );
        // Another namespace is someone else's claim.
        assert_eq!(
            claim(json!({"sub": "s", "https://other.test/email": "op@example.com",
                         "https://other.test/email_verified": true})),
            EmailClaim::Absent
        );
        for junk in [json!("not an email"), json!("a b@c.d"), json!(42), json!("@x")] {
            assert_eq!(
                claim(json!({"sub": "s", "email": junk, "email_verified": true})),
                EmailClaim::Absent
            );
        }
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(
            bearer_token(&with_auth(&["Bearer abc.def.ghi"])).unwrap(),
            "abc.def.ghi"
        );
        assert_eq!(bearer_token(&with_auth(&["bearer abc"])).unwrap(), "abc");
        assert!(bearer_token(&with_auth(&[])).is_err());
        assert!(bearer_token(&with_auth(&["Basic dXNlcjpwYXNz"])).is_err());
        assert!(bearer_token(&with_auth(&["Bearer"])).is_err());
        assert!(bearer_token(&with_auth(&["Bearer "])).is_err());
        assert!(bearer_token(&with_auth(&["Bearer a b"])).is_err());
        assert!(bearer_token(&with_auth(&["Bearer a", "Bearer b"])).is_err());
    }
}

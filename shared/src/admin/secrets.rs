//! Secret operator settings at rest (docs/admin.md): AES-256-GCM from aws-lc-rs (already in the
//! build through rustls), keyed by `SETTINGS_ENCRYPTION_KEY`.
//!
//! A sealed value is `v1.<key id>.<nonce>.<ciphertext+tag>` (base64url, no padding). The nonce is
//! random per seal; the settings row's key is the associated data, so a value copied into another
//! row does not open. The key id (8 hex digits of the key's SHA-256) lets a value sealed under a
//! retired key be reported as such, and lets `SETTINGS_ENCRYPTION_KEY_PREVIOUS` open values during
//! a rotation.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::platform::config::{ConfigError, Env, Secret};

pub const KEY_VAR: &str = "SETTINGS_ENCRYPTION_KEY";
pub const PREVIOUS_KEY_VAR: &str = "SETTINGS_ENCRYPTION_KEY_PREVIOUS";

const FORMAT_VERSION: &str = "v1";
const KEY_LEN: usize = 32;

struct SealingKey {
    id: String,
    key: LessSafeKey,
}

impl SealingKey {
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        let id = digest.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
        Some(SealingKey {
            id,
            key: LessSafeKey::new(unbound),
        })
    }

    fn from_base64(var: &'static str, text: &str) -> Result<Self, ConfigError> {
        let problem = "must be 32 random bytes, base64-encoded (openssl rand -base64 32)";
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| ConfigError::invalid(var, problem))?;
        if bytes.len() != KEY_LEN {
            return Err(ConfigError::invalid(var, problem));
        }
        Self::from_bytes(&bytes).ok_or_else(|| ConfigError::invalid(var, problem))
    }
}

/// Seals and opens secret settings. Its `Debug` shows only the key ids.
pub struct SettingsCipher {
    current: SealingKey,
    previous: Option<SealingKey>,
}

impl fmt::Debug for SettingsCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingsCipher")
            .field("key_id", &self.current.id)
            .field("previous_key_id", &self.previous.as_ref().map(|k| k.id.as_str()))
            .finish()
    }
}

/// Why a sealed value did not open. None of these carry the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the stored value is not a sealed secret (format {FORMAT_VERSION})")]
    Malformed,
    #[error(
        "the stored value was sealed under key {0}, which is neither SETTINGS_ENCRYPTION_KEY nor SETTINGS_ENCRYPTION_KEY_PREVIOUS"
    )]
    UnknownKey(String),
    #[error("the stored value does not open (tampered, or copied from another setting)")]
    Rejected,
}

impl SettingsCipher {
    /// `SETTINGS_ENCRYPTION_KEY` (required) and `SETTINGS_ENCRYPTION_KEY_PREVIOUS` (optional).
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let current = SealingKey::from_base64(KEY_VAR, &env.required(KEY_VAR)?)?;
        let previous = env
            .optional(PREVIOUS_KEY_VAR)
            .map(|text| SealingKey::from_base64(PREVIOUS_KEY_VAR, &text))
            .transpose()?;
        if previous.as_ref().is_some_and(|p| p.id == current.id) {
            return Err(ConfigError::invalid(
                PREVIOUS_KEY_VAR,
                "is the same key as SETTINGS_ENCRYPTION_KEY",
            ));
        }
        Ok(SettingsCipher { current, previous })
    }

    /// From raw 32-byte keys (tests, benchmarks).
    pub fn from_keys(current: &[u8; KEY_LEN], previous: Option<&[u8; KEY_LEN]>) -> Self {
        SettingsCipher {
            current: SealingKey::from_bytes(current).expect("a 32-byte key"),
            previous: previous.map(|key| SealingKey::from_bytes(key).expect("a 32-byte key")),
        }
    }

    /// The id of the key new values are sealed under.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plaintext` for the settings row `row_key`.
    pub fn seal(&self, row_key: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system random source works");
        let mut in_out = plaintext.as_bytes().to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(row_key.as_bytes()),
                &mut in_out,
            )
            .expect("AES-GCM sealing of a short value cannot fail");
        format!(
            "{FORMAT_VERSION}.{}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(&in_out)
        )
    }

    /// Opens a value sealed for the settings row `row_key`.
    pub fn open(&self, row_key: &str, sealed: &str) -> Result<Secret, OpenError> {
        let mut parts = sealed.split('.');
        let (Some(FORMAT_VERSION), Some(key_id), Some(nonce), Some(body), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed);
        };
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|key| key.id == key_id)
            .ok_or_else(|| OpenError::UnknownKey(key_id.to_string()))?;
        let nonce: [u8; NONCE_LEN] = URL_SAFE_NO_PAD
            .decode(nonce)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(OpenError::Malformed)?;
        let mut in_out = URL_SAFE_NO_PAD.decode(body).map_err(|_| OpenError::Malformed)?;
        let plaintext = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(row_key.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| OpenError::Rejected)?;
        let text = std::str::from_utf8(plaintext).map_err(|_| OpenError::Rejected)?;
        Ok(Secret::new(text))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const KEY_A: [u8; 32] = [7; 32];
    const KEY_B: [u8; 32] = [9; 32];

    #[test]
    fn a_sealed_value_opens_for_its_row_only() {
        let cipher = SettingsCipher::from_keys(&KEY_A, None);
        let sealed = cipher.seal("model_secret.gpt-image-1.openai_api_key", "sk-proj-abc123");
        assert!(sealed.starts_with(&format!("v1.{}.", cipher.key_id())), "{sealed}");
        assert!(!sealed.contains("sk-proj-abc123"));
        let opened = cipher.open("model_secret.gpt-image-1.openai_api_key", &sealed).unwrap();
        assert_eq!(opened.expose(), "sk-proj-abc123");
        assert_eq!(
            cipher.open("model_secret.other.openai_api_key", &sealed).unwrap_err(),
            OpenError::Rejected
        );
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let cipher = SettingsCipher::from_keys(&KEY_A, None);
        assert_ne!(cipher.seal("k", "same"), cipher.seal("k", "same"));
    }

    #[test]
    fn tampered_or_malformed_values_do_not_open() {
        let cipher = SettingsCipher::from_keys(&KEY_A, None);
        let sealed = cipher.seal("k", "secret value");
        let mut parts: Vec<String> = sealed.split('.').map(str::to_string).collect();
        let mut body = URL_SAFE_NO_PAD.decode(&parts[3]).unwrap();
        body[0] ^= 1;
        parts[3] = URL_SAFE_NO_PAD.encode(body);
        assert_eq!(cipher.open("k", &parts.join(".")).unwrap_err(), OpenError::Rejected);
        for bad in [
            "",
            "plain text",
            "v1.x.y",
            "v2.a.b.c",
            &format!("{sealed}.extra"),
            "v1.%%.%%.%%",
        ] {
            assert!(cipher.open("k", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_previous_key_opens_old_values_during_a_rotation() {
        let old = SettingsCipher::from_keys(&KEY_A, None);
        let sealed = old.seal("k", "rotated");
        let rotated = SettingsCipher::from_keys(&KEY_B, Some(&KEY_A));
        assert_eq!(rotated.open("k", &sealed).unwrap().expose(), "rotated");
        let after = SettingsCipher::from_keys(&KEY_B, None);
        assert_eq!(
            after.open("k", &sealed).unwrap_err(),
            OpenError::UnknownKey(old.key_id().to_string())
        );
    }

    #[test]
    fn keys_are_read_from_the_environment_strictly() {
        let good = STANDARD.encode(KEY_A);
        let other = STANDARD.encode(KEY_B);
        let env = HashMap::from([(KEY_VAR, good.as_str())]);
        assert!(SettingsCipher::from_env(&Env(&env)).is_ok());
        let env: HashMap<&str, &str> = HashMap::new();
        assert_eq!(
            SettingsCipher::from_env(&Env(&env)).unwrap_err(),
            ConfigError::Missing(KEY_VAR)
        );
        let short = STANDARD.encode([1u8; 16]);
        for bad in ["not base64!", short.as_str()] {
            let env = HashMap::from([(KEY_VAR, bad)]);
            let err = SettingsCipher::from_env(&Env(&env)).unwrap_err();
            assert_eq!(err.variable(), KEY_VAR);
            assert!(!err.to_string().contains(bad), "{err}");
        }
        let env = HashMap::from([(KEY_VAR, good.as_str()), (PREVIOUS_KEY_VAR, good.as_str())]);
        assert_eq!(
            SettingsCipher::from_env(&Env(&env)).unwrap_err().variable(),
            PREVIOUS_KEY_VAR
        );
        let env = HashMap::from([(KEY_VAR, good.as_str()), (PREVIOUS_KEY_VAR, other.as_str())]);
        let cipher = SettingsCipher::from_env(&Env(&env)).unwrap();
        assert!(!format!("{cipher:?}").contains(&good));
    }
}

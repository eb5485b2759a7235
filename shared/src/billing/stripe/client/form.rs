//! What a Stripe POST carries: a form-encoded body (`line_items[0][price]=…`, as Stripe's own
//! libraries send it) and the idempotency key that decides what a repeat does.

use std::fmt::Write as _;

use uuid::Uuid;

use super::MAX_IDEMPOTENCY_KEY_LEN;

/// What makes a POST safe to repeat. Stripe stores the first answer to a key (even a 500) for at
/// least 24 h and replays it for a request with the same key, so the choice per call is:
///
/// * [`IdempotencyKey::derived`] for *create* calls, where a repeat must return the first
///   object rather than make a second one (customers, checkout sessions). The client appends a
///   hash of the form body, so one key never meets two different bodies (Stripe refuses that).
/// * [`IdempotencyKey::fresh`] for *set* calls (change a price, cancel at period end, open a
///   portal session): replaying an older answer after the state moved on (upgrade, downgrade,
///   upgrade again) would report a change that did not happen, while repeating the call is
///   harmless because it sets the same value again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(KeyKind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyKind {
    Derived(String),
    Fresh(String),
}

impl IdempotencyKey {
    /// `"<operation>:<part>:<part>…:<hash of the body>"`, e.g. `checkout:<user id>:pro:<minute>`.
    pub fn derived(operation: &str, parts: &[&str]) -> Self {
        let mut key = operation.to_string();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        IdempotencyKey(KeyKind::Derived(key))
    }

    /// `"<operation>:<random v4 UUID>"`.
    pub fn fresh(operation: &str) -> Self {
        IdempotencyKey(KeyKind::Fresh(format!("{operation}:{}", Uuid::new_v4())))
    }

    /// The header value for a request with this form body, at most 255 characters.
    pub(super) fn header_value(&self, body: &str) -> String {
        let key = match &self.0 {
            KeyKind::Derived(prefix) => format!("{prefix}:{:016x}", fnv1a64(body.as_bytes())),
            KeyKind::Fresh(key) => key.clone(),
        };
        if key.len() <= MAX_IDEMPOTENCY_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic()) {
            key
        } else {
            // Only reachable with oversized or odd parts; keep the key deterministic anyway.
            format!("hashed:{:016x}", fnv1a64(key.as_bytes()))
        }
    }
}

/// FNV-1a: a stable, dependency-free 64-bit hash. Not for security, only to tell bodies apart.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// An `application/x-www-form-urlencoded` body with Stripe's nested keys (`a[b][0][c]`), in the
/// order the fields were added. Keys and values are percent-encoded byte by byte (UTF-8), leaving
/// only RFC 3986's unreserved characters as they are, as stripe-go does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn new() -> Self {
        Form(Vec::new())
    }

    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.push((key.into(), value.into()));
        self
    }

    pub fn fields(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            percent_encode_into(&mut out, key);
            out.push('=');
            percent_encode_into(&mut out, value);
        }
        out
    }
}

fn percent_encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

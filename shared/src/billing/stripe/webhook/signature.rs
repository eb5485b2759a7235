//! `Stripe-Signature` verification, exactly as Stripe's SDKs do it (anchors.md §4b): the header
//! `t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`; the HMAC-SHA256 of `"{t}.{raw body}"` keyed with the
//! whole `whsec_…` string as bytes, hex-encoded; any `v1` may match (several appear while a
//! secret is being rotated); then the timestamp must lie within [`TOLERANCE_SECONDS`] of now.
//!
//! The HMAC is aws-lc-rs's (through jsonwebtoken's HS256 provider, already in the build), whose
//! verify compares in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// Stripe's SDK default. Deliveries older (or newer) than this are refused as possible replays.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a delivery was refused. The Display text is safe to answer: it names what was wrong with
/// the header, never the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    #[error("no v1 signature matches the payload")]
    Mismatch,
    #[error("the signature timestamp is {age_seconds} s old (tolerance {TOLERANCE_SECONDS} s)")]
    TooOld { age_seconds: i64 },
    #[error("the signature timestamp is {ahead_seconds} s in the future (tolerance {TOLERANCE_SECONDS} s)")]
    InFuture { ahead_seconds: i64 },
}

/// The parts of the header that matter: the timestamp exactly as sent (it is part of the signed
/// bytes) and every `v1` signature. Other schemes (`v0` is a test-mode legacy) are ignored.
#[derive(Debug, PartialEq, Eq)]
struct SignatureHeader<'a> {
    timestamp_text: &'a str,
    timestamp: i64,
    v1: Vec<&'a str>,
}

fn parse_header(header: &str) -> Result<SignatureHeader<'_>, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            return Err(SignatureError::Malformed("an element is not key=value"));
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("more than one timestamp"));
                }
                if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SignatureError::Malformed("the timestamp is not a unix time"));
                }
                let parsed = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("the timestamp is not a unix time"))?;
                timestamp = Some((value, parsed));
            }
            "v1" => v1.push(value),
            _ => {}
        }
    }
    let (timestamp_text, timestamp) = timestamp.ok_or(SignatureError::Malformed("no timestamp"))?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(SignatureHeader {
        timestamp_text,
        timestamp,
        v1,
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            Some((high * 16 + low) as u8)
        })
        .collect()
}

fn signed_bytes(timestamp_text: &str, payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp_text.len() + 1 + payload.len());
    message.extend_from_slice(timestamp_text.as_bytes());
    message.push(b'.');
    message.extend_from_slice(payload);
    message
}

/// Verifies a delivery. `header` is the `Stripe-Signature` value (None when absent), `payload`
/// the raw body exactly as received, `now` the current unix time. Returns the signed timestamp.
pub fn verify(secret: &str, header: Option<&str>, payload: &[u8], now: i64) -> Result<i64, SignatureError> {
    let header = parse_header(header.ok_or(SignatureError::MissingHeader)?)?;
    let message = signed_bytes(header.timestamp_text, payload);
    let key = DecodingKey::from_secret(secret.as_bytes());
    // Every candidate is checked (no early exit on the first well-formed one) so the time taken
    // does not depend on which entry matched.
    let mut matched = false;
    for candidate in &header.v1 {
        let Some(bytes) = decode_hex(candidate) else {
            continue;
        };
        let encoded = URL_SAFE_NO_PAD.encode(bytes);
        if jsonwebtoken::crypto::verify(&encoded, &message, &key, Algorithm::HS256).unwrap_or(false) {
            matched = true;
        }
    }
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let age = now.saturating_sub(header.timestamp);
    if age > TOLERANCE_SECONDS {
        return Err(SignatureError::TooOld { age_seconds: age });
    }
    if -age > TOLERANCE_SECONDS {
        return Err(SignatureError::InFuture { ahead_seconds: -age });
    }
    Ok(header.timestamp)
}

/// The hex HMAC-SHA256 Stripe would send as `v1` for this payload and timestamp.
pub fn compute_v1(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let message = signed_bytes(&timestamp.to_string(), payload);
    let encoded = jsonwebtoken::crypto::sign(&message, &EncodingKey::from_secret(secret.as_bytes()), Algorithm::HS256)
        .unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD.decode(encoded).unwrap_or_default();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `Stripe-Signature` header value as Stripe would send it (tests, docs and local tooling).
pub fn header_for(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    format!("t={timestamp},v1={}", compute_v1(secret, timestamp, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_795_000_000;

    #[test]
    fn matches_an_independently_computed_signature() {
        // python3: hmac.new(b"whsec_test_secret", b"1795000000.{\"id\":\"evt_1\"}", hashlib.sha256).hexdigest()
        let expected = "3511d18a343d1afb3e94774a798032a44b9e3ef6ae7b5210fedfdc6efe1773d0";
        assert_eq!(compute_v1(SECRET, NOW, br#"{"id":"evt_1"}"#), expected);
    }

    #[test]
    fn accepts_a_valid_signature() {
        let body = br#"{"id":"evt_1"}"#;
        let header = header_for(SECRET, NOW, body);
        assert_eq!(verify(SECRET, Some(&header), body, NOW + 10), Ok(NOW));
    }

    #[test]
    fn refuses_a_tampered_body_and_a_wrong_secret() {
        let header = header_for(SECRET, NOW, br#"{"id":"evt_1"}"#);
        assert_eq!(
            verify(SECRET, Some(&header), br#"{"id":"evt_2"}"#, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_other", Some(&header), br#"{"id":"evt_1"}"#, NOW),
            Err(SignatureError::Mismatch)
        );
        // The prefix is part of the key: stripping it (as Replicate's scheme does) must not match.
        assert_eq!(
            verify("test_secret", Some(&header), br#"{"id":"evt_1"}"#, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_v1_may_match_and_v0_is_ignored() {
        let body = b"{}";
        let good = compute_v1(SECRET, NOW, body);
        let wrong = compute_v1("whsec_old", NOW, body);
        let header = format!("t={NOW},v1={wrong},v1={good},v0={wrong}");
        assert_eq!(verify(SECRET, Some(&header), body, NOW), Ok(NOW));
        let header = format!("t={NOW},v0={good}");
        assert_eq!(
            verify(SECRET, Some(&header), body, NOW),
            Err(SignatureError::NoV1Signature)
        );
        let header = format!("t={NOW},v1=zz{},v1={good}", &good[2..]);
        assert_eq!(verify(SECRET, Some(&header), body, NOW), Ok(NOW));
    }

    #[test]
    fn enforces_the_tolerance_both_ways() {
        let body = b"{}";
        let old = header_for(SECRET, NOW - 301, body);
        assert_eq!(
            verify(SECRET, Some(&old), body, NOW),
            Err(SignatureError::TooOld { age_seconds: 301 })
        );
        let edge = header_for(SECRET, NOW - 300, body);
        assert!(verify(SECRET, Some(&edge), body, NOW).is_ok());
        let future = header_for(SECRET, NOW + 301, body);
        assert_eq!(
            verify(SECRET, Some(&future), body, NOW),
            Err(SignatureError::InFuture { ahead_seconds: 301 })
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        let body = b"{}";
        let sig = compute_v1(SECRET, NOW, body);
        assert_eq!(verify(SECRET, None, body, NOW), Err(SignatureError::MissingHeader));
        for header in [
            String::new(),
            format!("v1={sig}"),
            format!("t=abc,v1={sig}"),
            format!("t=-5,v1={sig}"),
            format!("t={NOW},t={NOW},v1={sig}"),
            format!("t={NOW};v1={sig}"),
        ] {
            assert!(
                matches!(
                    verify(SECRET, Some(&header), body, NOW),
                    Err(SignatureError::Malformed(_))
                ),
                "{header:?}"
            );
        }
        assert_eq!(
            verify(SECRET, Some(&format!("t={NOW}")), body, NOW),
            Err(SignatureError::NoV1Signature)
        );
    }

    #[test]
    fn parses_the_parts_it_needs() {
        let parsed = parse_header("t=12,v1=ab, v1=cd,v0=ef,x=y=z").unwrap();
        assert_eq!(
            parsed,
            SignatureHeader {
                timestamp_text: "12",
                timestamp: 12,
                v1: vec!["ab", "cd"],
            }
        );
    }
}

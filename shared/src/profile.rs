//! The user profile: the PATCH body (a true partial update) and the JSON the API answers with.
//!
//! PATCH semantics (JSON merge patch): an absent field is left alone; `null` clears it; for text
//! fields a blank string clears it too. `preferences` is merged key by key (a key set to `null`
//! is removed). Every invalid field is reported at once in one 422.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::db::users::User;
use crate::platform::error::{ApiError, FieldError};
use crate::staging::vocabulary::{RoomType, Style};

/// `Some(None)` for an explicit `null`, `None` for an absent field (with `#[serde(default)]`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub full_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub company_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub billing_address: Option<Option<BillingAddress>>,
    #[serde(default, deserialize_with = "present")]
    pub profile_photo_url: Option<Option<String>>,
    #[serde(default)]
    pub preferences: Option<PreferencesPatch>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BillingAddress {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesPatch {
    #[serde(default, deserialize_with = "present")]
    pub email_notifications: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    pub marketing_emails: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    pub default_room_type: Option<Option<RoomType>>,
    #[serde(default, deserialize_with = "present")]
    pub default_style: Option<Option<Style>>,
}

/// A validated patch: for each column, `None` = leave alone, `Some(None)` = clear, `Some(Some(v))` = set.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub email: Option<Option<String>>,
    pub full_name: Option<Option<String>>,
    pub company_name: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub billing_address: Option<Option<Value>>,
    pub profile_photo_url: Option<Option<String>>,
    pub preferences_set: Map<String, Value>,
    pub preferences_removed: Vec<String>,
}

impl ProfilePatch {
    pub fn validate(self) -> Result<ProfileChanges, ApiError> {
        let mut errors = Vec::new();
        let mut changes = ProfileChanges {
            email: text(&mut errors, "email", self.email, 254, validate_email),
            full_name: text(&mut errors, "full_name", self.full_name, 100, no_checks),
            company_name: text(&mut errors, "company_name", self.company_name, 100, no_checks),
            phone: text(&mut errors, "phone", self.phone, 20, validate_phone),
            profile_photo_url: text(
                &mut errors,
                "profile_photo_url",
                self.profile_photo_url,
                2048,
                validate_https_url,
            ),
            billing_address: self
                .billing_address
                .map(|address| address.and_then(|a| address_json(&mut errors, a))),
            ..ProfileChanges::default()
        };
        if let Some(prefs) = self.preferences {
            let mut apply = |key: &str, value: Option<Option<Value>>| match value {
                None => {}
                Some(None) => changes.preferences_removed.push(key.to_string()),
                Some(Some(v)) => {
                    changes.preferences_set.insert(key.to_string(), v);
                }
            };
            apply(
                "email_notifications",
                prefs.email_notifications.map(|v| v.map(Value::Bool)),
            );
            apply("marketing_emails", prefs.marketing_emails.map(|v| v.map(Value::Bool)));
            apply(
                "default_room_type",
                prefs.default_room_type.map(|v| v.map(|r| r.as_str().into())),
            );
            apply(
                "default_style",
                prefs.default_style.map(|v| v.map(|s| s.as_str().into())),
            );
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

fn no_checks(_: &str) -> Result<(), &'static str> {
    Ok(())
}

/// Trims, treats blank as "clear", enforces the length and forbids control characters.
fn text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<Option<String>>,
    max_chars: usize,
    check: fn(&str) -> Result<(), &'static str>,
) -> Option<Option<String>> {
    let value = value?;
    let Some(raw) = value else { return Some(None) };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Some(None);
    }
    if trimmed.chars().count() > max_chars {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    } else if trimmed.chars().any(char::is_control) {
        errors.push(FieldError::new(field, "must not contain control characters"));
    } else if let Err(message) = check(trimmed) {
        errors.push(FieldError::new(field, message));
    }
    Some(Some(trimmed.to_string()))
}

fn validate_email(email: &str) -> Result<(), &'static str> {
    const MESSAGE: &str = "must be a valid email address";
    let (local, domain) = email.split_once('@').ok_or(MESSAGE)?;
    let labels_ok = domain
        .split('.')
        .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    let valid = !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && labels_ok
        && !email.chars().any(char::is_whitespace);
    if valid { Ok(()) } else { Err(MESSAGE) }
}

fn validate_phone(phone: &str) -> Result<(), &'static str> {
    let allowed = phone.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if allowed && digits >= 5 {
        Ok(())
    } else {
        Err("must be a phone number: digits, spaces and + - ( ) . with at least 5 digits")
    }
}

fn validate_https_url(raw: &str) -> Result<(), &'static str> {
    match url::Url::parse(raw) {
        Ok(url) if url.scheme() == "https" && url.host_str().is_some() => Ok(()),
        _ => Err("must be an https URL"),
    }
}

fn address_json(errors: &mut Vec<FieldError>, address: BillingAddress) -> Option<Value> {
    let fields = [
        ("line1", address.line1, 200),
        ("line2", address.line2, 200),
        ("city", address.city, 200),
        ("state", address.state, 200),
        ("postal_code", address.postal_code, 200),
        ("country", address.country, 100),
    ];
    let mut object = Map::new();
    for (name, value, max) in fields {
        let field = format!("billing_address.{name}");
        if let Some(Some(v)) = text(errors, &field, Some(value), max, no_checks) {
            object.insert(name.to_string(), Value::String(v));
        }
    }
    // An address with nothing in it is no address.
    if object.is_empty() {
        None
    } else {
        Some(Value::Object(object))
    }
}

/// The profile as the API shows it. Internal ids (Stripe customer) stay internal.
#[derive(Debug, Serialize)]
pub struct ProfileView {
    pub id: Uuid,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub company_name: Option<String>,
    pub phone: Option<String>,
    pub billing_address: Option<Value>,
    pub profile_photo_url: Option<String>,
    pub preferences: Value,
    pub role: crate::db::users::Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for ProfileView {
    fn from(user: User) -> Self {
        ProfileView {
            id: user.id,
            email: user.email,
            full_name: user.full_name,
            company_name: user.company_name,
            phone: user.phone,
            billing_address: user.billing_address,
            profile_photo_url: user.profile_photo_url,
            preferences: user.preferences,
            role: user.role,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> Result<ProfileChanges, ApiError> {
        serde_json::from_str::<ProfilePatch>(json).unwrap().validate()
    }

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn absent_null_and_blank_are_different() {
        let changes = patch(r#"{"full_name": null, "company_name": "  ", "phone": "+1 555 0100"}"#).unwrap();
        assert_eq!(changes.email, None);
        assert_eq!(changes.full_name, Some(None));
        assert_eq!(changes.company_name, Some(None));
        assert_eq!(changes.phone, Some(Some("+1 555 0100".into())));
    }

    #[test]
    fn every_bad_field_is_reported() {
        let err = patch(
            r#"{"email":"not-an-email","phone":"call me","full_name":"x","profile_photo_url":"http://a.b/c.png",
                "billing_address":{"city":"ab\u0007c"},"company_name":"ACME"}"#,
        )
        .unwrap_err();
        assert_eq!(
            fields(err),
            vec!["email", "phone", "profile_photo_url", "billing_address.city"]
        );
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let name = "é".repeat(100);
        assert!(patch(&format!(r#"{{"full_name":"{name}"}}"#)).is_ok());
        let name = "é".repeat(101);
        assert_eq!(
            fields(patch(&format!(r#"{{"full_name":"{name}"}}"#)).unwrap_err()),
            vec!["full_name"]
        );
    }

    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@example.co.uk"] {
            assert!(validate_email(good).is_ok(), "{good}");
        }
        for bad in ["a@b", "@b.co", "a@@b.co", "a b@c.co", "a@.co", "a@b..co", "plain"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn preferences_merge_and_remove() {
        let changes = patch(r#"{"preferences":{"default_style":"modern","marketing_emails":null}}"#).unwrap();
        assert_eq!(
            changes.preferences_set.get("default_style"),
            Some(&Value::from("modern"))
        );
        assert_eq!(changes.preferences_removed, vec!["marketing_emails".to_string()]);
    }

    #[test]
    fn empty_address_clears() {
        let changes = patch(r#"{"billing_address":{"city":" "}}"#).unwrap();
        assert_eq!(changes.billing_address, Some(None));
    }
}

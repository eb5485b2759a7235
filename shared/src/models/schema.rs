//! The settings engine: what kinds of settings a model has, their defaults, and a config checked
//! against them (unknown fields refused, types and bounds checked, secrets kept out of `Debug`).

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

/// The type of a setting and what values it accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldKind {
    Bool,
    /// Inclusive bounds.
    Integer {
        min: i64,
        max: i64,
    },
    /// Inclusive bounds.
    Number {
        min: f64,
        max: f64,
    },
    /// One of these strings, exactly.
    Choice(&'static [&'static str]),
    /// Free text, trimmed; at most `max_len` characters. Blank counts as not set.
    Text {
        max_len: usize,
    },
}

impl FieldKind {
    /// The `"type"` of the field in the JSON schema.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Bool => "bool",
            FieldKind::Integer { .. } => "integer",
            FieldKind::Number { .. } => "number",
            FieldKind::Choice(_) => "choice",
            FieldKind::Text { .. } => "text",
        }
    }

    /// Writes `type`, `min`, `max`, `max_length` and `options`; keys that do not apply are null so
    /// every field has the same JSON shape.
    fn serialize_entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("type", self.type_name())?;
        match self {
            FieldKind::Integer { min, max } => {
                map.serialize_entry("min", min)?;
                map.serialize_entry("max", max)?;
            }
            FieldKind::Number { min, max } => {
                map.serialize_entry("min", min)?;
                map.serialize_entry("max", max)?;
            }
            FieldKind::Bool | FieldKind::Choice(_) | FieldKind::Text { .. } => {
                map.serialize_entry("min", &None::<i64>)?;
                map.serialize_entry("max", &None::<i64>)?;
            }
        }
        match self {
            FieldKind::Text { max_len } => map.serialize_entry("max_length", max_len)?,
            _ => map.serialize_entry("max_length", &None::<usize>)?,
        }
        match self {
            FieldKind::Choice(options) => map.serialize_entry("options", options),
            _ => map.serialize_entry("options", &None::<Vec<&str>>),
        }
    }
}

/// `{"type": "integer", "min": 0, "max": 100, "max_length": null, "options": null}`.
impl Serialize for FieldKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5))?;
        self.serialize_entries(&mut map)?;
        map.end()
    }
}

/// A setting's default value; serialized as the bare JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldDefault {
    Bool(bool),
    Integer(i64),
    Number(f64),
    /// Also the default of a `Choice`.
    Text(&'static str),
}

impl FieldDefault {
    pub fn to_json(self) -> Value {
        match self {
            FieldDefault::Bool(value) => Value::Bool(value),
            FieldDefault::Integer(value) => Value::from(value),
            FieldDefault::Number(value) => Value::from(value),
            FieldDefault::Text(value) => Value::from(value),
        }
    }
}

/// One setting an admin may change for a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigField {
    /// The key in the config object, and the Replicate input field it is sent as.
    pub name: &'static str,
    pub kind: FieldKind,
    /// `None`: not sent to the model unless set.
    pub default: Option<FieldDefault>,
    /// A job cannot run without it. Saving a config without it is allowed (settings can be filled in
    /// one at a time); [`ModelSpec::build_input`] refuses it with [`ModelError::MissingSetting`].
    pub required: bool,
    /// Never shown back (see [`ModelConfig::as_json_without_secrets`]) and never logged.
    pub secret: bool,
    pub description: &'static str,
}

/// `{"name", "type", "default", "min", "max", "max_length", "options", "required", "secret",
/// "description"}`; every key always present, null where it does not apply.
impl Serialize for ConfigField {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(10))?;
        map.serialize_entry("name", self.name)?;
        self.kind.serialize_entries(&mut map)?;
        map.serialize_entry("default", &self.default)?;
        map.serialize_entry("required", &self.required)?;
        map.serialize_entry("secret", &self.secret)?;
        map.serialize_entry("description", self.description)?;
        map.end()
    }
}

/// A validated config: every known field with a value (defaults filled in, null where a field has
/// no default and is not set), secrets included. Its `Debug` leaves the secrets out.
#[derive(Clone, PartialEq)]
pub struct ModelConfig {
    pub(super) model: &'static str,
    pub(super) values: Map<String, Value>,
}

impl ModelConfig {
    /// The model this config was validated for.
    pub fn model_id(&self) -> &'static str {
        self.model
    }

    /// A field's value; `None` for unknown fields and fields that are not set.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.values.get(field).filter(|value| !value.is_null())
    }

    /// Every field (unset ones as null) except secret fields, which are left out entirely: the shape
    /// to show an admin or write to a log.
    pub fn as_json_without_secrets(&self) -> Value {
        let secret_names = self.secret_field_names();
        Value::Object(
            self.values
                .iter()
                .filter(|(name, _)| !secret_names.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        )
    }

    /// Every field including secrets: the shape to store (it validates again to the same config).
    pub fn as_json_with_secrets(&self) -> Value {
        Value::Object(self.values.clone())
    }

    fn secret_field_names(&self) -> Vec<&'static str> {
        super::find(self.model)
            .map(|spec| {
                spec.fields
                    .iter()
                    .filter(|field| field.secret)
                    .map(|field| field.name)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl fmt::Debug for ModelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelConfig")
            .field("model", &self.model)
            .field("values", &self.as_json_without_secrets())
            .finish_non_exhaustive()
    }
}

/// The value to store for a given (non-null) value, `Ok(None)` for blank text, or the message.
pub(super) fn check_value(field: &ConfigField, value: &Value) -> Result<Option<Value>, String> {
    match field.kind {
        FieldKind::Bool => value
            .as_bool()
            .map(|b| Some(Value::Bool(b)))
            .ok_or_else(|| "must be true or false".into()),
        FieldKind::Integer { min, max } => value
            .as_i64()
            .filter(|number| (min..=max).contains(number))
            .map(|number| Some(Value::from(number)))
            .ok_or_else(|| format!("must be an integer from {min} to {max}")),
        FieldKind::Number { min, max } => value
            .as_f64()
            .filter(|number| (min..=max).contains(number))
            .map(|number| Some(Value::from(number)))
            .ok_or_else(|| format!("must be a number from {min} to {max}")),
        FieldKind::Choice(options) => value
            .as_str()
            .filter(|text| options.contains(text))
            .map(|text| Some(Value::from(text)))
            .ok_or_else(|| format!("must be one of: {}", options.join(", "))),
        FieldKind::Text { max_len } => {
            // The message never repeats the value: the field may be a secret.
            let too_long = || format!("must be text of at most {max_len} characters");
            let text = value.as_str().ok_or_else(too_long)?.trim();
            if text.is_empty() {
                Ok(None)
            } else if text.chars().count() > max_len {
                Err(too_long())
            } else {
                Ok(Some(Value::from(text)))
            }
        }
    }
}

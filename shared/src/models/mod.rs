//! The model registry: the Replicate models the worker can stage with, what each one costs, which
//! settings an admin may change (a typed schema, later served over HTTP) and how a job's Replicate
//! `input` object is built from those settings, the image URL, the prompt and the image's seed.
//!
//! Input schemas were checked against Replicate's published API pages for each model (the
//! `/versions/<id>/api` pages of flux-kontext-pro, seedream-4 and gpt-image-1, and of the sibling
//! `qwen/qwen-image-edit-plus`). Schemas drift between versions, so every place where a field could
//! not be confirmed for the exact model is marked `UNCONFIRMED` below.
//!
//! Where things are: this file holds a model's description ([`ModelSpec`]), validation of its
//! settings and the building of its Replicate input; `schema.rs` the settings engine (field types,
//! defaults, a validated [`ModelConfig`]); `registry.rs` the registered models themselves (data).
//!
//! Settings are validated strictly (unknown fields refused, types and bounds checked) so that a typo
//! in an admin's config fails when it is saved, not as a failed prediction on every later job.

use std::fmt;

use serde::Serialize;
use serde::ser::Serializer;
use serde_json::{Map, Value};
use url::Url;

use crate::platform::error::FieldError;
use crate::staging::vocabulary::Operation;

mod registry;
mod schema;
#[cfg(test)]
mod tests;

use registry::REGISTRY;
use schema::check_value;
pub use schema::{ConfigField, FieldDefault, FieldKind, ModelConfig};

pub const DEFAULT_MODEL_ID: &str = "qwen/qwen-image-edit";

/// Price in ten-thousandths of a US dollar (numeric(10,4) in the DB): `UsdPrice(300)` = $0.0300.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UsdPrice(pub u32);

impl fmt::Display for UsdPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:04}", self.0 / 10_000, self.0 % 10_000)
    }
}

/// As a decimal string (`"0.0300"`), so no float rounding reaches clients or the DB.
impl Serialize for UsdPrice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How a model's Replicate input differs from the others, beyond its config fields.
#[derive(Debug, Clone, Copy, PartialEq)]
struct InputShape {
    /// The input field that carries the original photo's URL.
    image_field: &'static str,
    /// The image goes in as a one-element array rather than a string.
    image_as_array: bool,
    /// The input field for the seed, when the model takes one (the image's own seed goes there).
    seed_field: Option<&'static str>,
    /// Inputs sent on every job that the admin may not change (e.g. one output image only).
    fixed: &'static [(&'static str, FieldDefault)],
}

/// A model the worker can stage with.
#[derive(Debug, Serialize)]
pub struct ModelSpec {
    /// Replicate's `owner/name`, as stored in `images.model_used`.
    pub id: &'static str,
    /// URL-safe name for routes, e.g. `qwen-image-edit`.
    pub slug: &'static str,
    pub display_name: &'static str,
    /// The operations the model can do, each with the estimated cost of one image made by it.
    #[serde(serialize_with = "operation_prices")]
    pub operations: &'static [(Operation, UsdPrice)],
    pub fields: &'static [ConfigField],
    #[serde(skip)]
    input: InputShape,
}

/// What one staging job sends to the model besides its settings.
#[derive(Debug, Clone, Copy)]
pub struct StagingInput<'a> {
    /// A short-lived presigned GET URL of the original photo.
    pub image_url: &'a str,
    pub prompt: &'a str,
    /// The image's own seed; wins over a configured seed.
    pub seed: Option<u32>,
}

/// Why a Replicate input could not be built. Every case is permanent for the job: retrying with the
/// same settings and image fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("the model {model} needs the setting `{field}`; an admin has to set it before images can be staged")]
    MissingSetting { model: &'static str, field: &'static str },
    #[error("the settings were validated for {config_model}, not for {model}")]
    ConfigForOtherModel {
        model: &'static str,
        config_model: &'static str,
    },
    // The URL itself is left out: a presigned URL carries a signature.
    #[error("the image URL is not an absolute http(s) URL")]
    InvalidImageUrl,
    #[error("the prompt is empty")]
    EmptyPrompt,
}

/// As an object, e.g. `{"stage": "0.0300", "declutter": "0.0300"}`.
pub fn operation_prices<S: Serializer>(
    prices: &&'static [(Operation, UsdPrice)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(prices.len()))?;
    for (operation, price) in prices.iter() {
        map.serialize_entry(operation.as_str(), price)?;
    }
    map.end()
}

impl ModelSpec {
    /// The estimated cost of one image made by `operation`, or `None` when the model cannot do it.
    pub fn price(&self, operation: Operation) -> Option<UsdPrice> {
        self.operations
            .iter()
            .find(|(op, _)| *op == operation)
            .map(|(_, price)| *price)
    }

    pub fn can(&self, operation: Operation) -> bool {
        self.price(operation).is_some()
    }

    /// Checks a stored/submitted config object: unknown fields refused, types and bounds checked,
    /// missing fields take their default. Returns every problem at once (field names as given).
    /// A null value, and blank text (e.g. an empty API key), count as not set.
    pub fn validate_config(&self, config: &Value) -> Result<ModelConfig, Vec<FieldError>> {
        let Some(object) = config.as_object() else {
            return Err(vec![FieldError::new("config", "must be a JSON object")]);
        };
        // Sorted, so the order does not depend on serde_json's map implementation.
        let mut unknown: Vec<&String> = object.keys().filter(|name| self.field(name).is_none()).collect();
        unknown.sort();
        let mut errors: Vec<FieldError> = unknown
            .into_iter()
            .map(|name| FieldError::new(name.as_str(), "unknown field"))
            .collect();
        let mut values = Map::new();
        for field in self.fields {
            let value = match object.get(field.name) {
                None | Some(Value::Null) => None,
                Some(given) => match check_value(field, given) {
                    Ok(value) => value,
                    Err(message) => {
                        errors.push(FieldError::new(field.name, message));
                        continue;
                    }
                },
            };
            let value = value
                .or_else(|| field.default.map(FieldDefault::to_json))
                .unwrap_or(Value::Null);
            values.insert(field.name.to_owned(), value);
        }
        if errors.is_empty() {
            Ok(ModelConfig { model: self.id, values })
        } else {
            Err(errors)
        }
    }

    /// Every field at its default (null where there is none).
    pub fn default_config(&self) -> ModelConfig {
        let values = self
            .fields
            .iter()
            .map(|field| {
                let value = field.default.map_or(Value::Null, FieldDefault::to_json);
                (field.name.to_owned(), value)
            })
            .collect();
        ModelConfig { model: self.id, values }
    }

    /// Replicate's `input` object for one job. Fails (permanently) when a required setting such as
    /// the OpenAI key is missing. The image's own seed wins over a configured seed.
    pub fn build_input(&self, config: &ModelConfig, input: &StagingInput) -> Result<Value, ModelError> {
        if config.model != self.id {
            return Err(ModelError::ConfigForOtherModel {
                model: self.id,
                config_model: config.model,
            });
        }
        let prompt = input.prompt.trim();
        if prompt.is_empty() {
            return Err(ModelError::EmptyPrompt);
        }
        if parse_http_url(input.image_url).is_none() {
            return Err(ModelError::InvalidImageUrl);
        }
        let mut body = Map::new();
        for field in self.fields {
            match config.get(field.name) {
                Some(value) => {
                    body.insert(field.name.to_owned(), value.clone());
                }
                None if field.required => {
                    return Err(ModelError::MissingSetting {
                        model: self.id,
                        field: field.name,
                    });
                }
                None => {}
            }
        }
        for (name, value) in self.input.fixed {
            body.insert((*name).to_owned(), value.to_json());
        }
        if let (Some(seed_field), Some(seed)) = (self.input.seed_field, input.seed) {
            body.insert(seed_field.to_owned(), Value::from(seed));
        }
        let image = Value::from(input.image_url);
        let image = if self.input.image_as_array {
            Value::Array(vec![image])
        } else {
            image
        };
        body.insert(self.input.image_field.to_owned(), image);
        body.insert("prompt".to_owned(), Value::from(prompt));
        Ok(Value::Object(body))
    }

    /// The setting named `name`, if the model has one.
    pub fn field(&self, name: &str) -> Option<&'static ConfigField> {
        self.fields.iter().find(|field| field.name == name)
    }
}

/// Replicate `output`: a URL string or an array of them → the first http(s) URL.
pub fn output_url(output: &Value) -> Option<Url> {
    match output {
        Value::String(text) => parse_http_url(text),
        Value::Array(items) => items.iter().filter_map(Value::as_str).find_map(parse_http_url),
        _ => None,
    }
}

fn parse_http_url(text: &str) -> Option<Url> {
    Url::parse(text.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

pub fn registry() -> &'static [ModelSpec] {
    &REGISTRY
}

pub fn find(id: &str) -> Option<&'static ModelSpec> {
    REGISTRY.iter().find(|spec| spec.id == id)
}

pub fn find_by_slug(slug: &str) -> Option<&'static ModelSpec> {
    REGISTRY.iter().find(|spec| spec.slug == slug)
}

/// The model used when no other is configured ([`DEFAULT_MODEL_ID`]; a test keeps the two in step).
pub fn default_model() -> &'static ModelSpec {
    &REGISTRY[0]
}

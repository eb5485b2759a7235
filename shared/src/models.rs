//! The model registry: the Replicate models the worker can stage with, what each one costs, which
//! settings an admin may change (a typed schema, later served over HTTP) and how a job's Replicate
//! `input` object is built from those settings, the image URL, the prompt and the image's seed.
//!
//! Input schemas were checked against Replicate's published API pages for each model (the
//! `/versions/<id>/api` pages of flux-kontext-pro, seedream-4 and gpt-image-1, and of the sibling
//! `qwen/qwen-image-edit-plus`). Schemas drift between versions, so every place where a field could
//! not be confirmed for the exact model is marked `UNCONFIRMED` below.
//!
//! Settings are validated strictly (unknown fields refused, types and bounds checked) so that a typo
//! in an admin's config fails when it is saved, not as a failed prediction on every later job.

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};
use url::Url;

use crate::platform::error::FieldError;

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
    /// Estimated cost of one staged image.
    pub price: UsdPrice,
    pub fields: &'static [ConfigField],
    #[serde(skip)]
    input: InputShape,
}

/// A validated config: every known field with a value (defaults filled in, null where a field has
/// no default and is not set), secrets included. Its `Debug` leaves the secrets out.
#[derive(Clone, PartialEq)]
pub struct ModelConfig {
    model: &'static str,
    values: Map<String, Value>,
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
        find(self.model)
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

impl ModelSpec {
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

/// The value to store for a given (non-null) value, `Ok(None)` for blank text, or the message.
fn check_value(field: &ConfigField, value: &Value) -> Result<Option<Value>, String> {
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

/// Any 32-bit seed; unset means a random one per prediction.
const SEED_FIELD: ConfigField = ConfigField {
    name: "seed",
    kind: FieldKind::Integer {
        min: 0,
        max: 4_294_967_295,
    },
    default: None,
    required: false,
    secret: false,
    description: "Fixed random seed for every job, for reproducible results. An image's own seed takes precedence. \
                  Leave unset for a random seed per job.",
};

const QUALITY_0_TO_100: FieldKind = FieldKind::Integer { min: 0, max: 100 };

// UNCONFIRMED for `qwen/qwen-image-edit` itself: fields and options follow the sibling official
// model `qwen/qwen-image-edit-plus` (which takes `image` as an array) and a catalog listing of this
// one with a single `image` string (anchors.md §4a). `disable_safety_checker` exists upstream but is
// deliberately not offered: listing photos have no reason to bypass it.
const QWEN_FIELDS: &[ConfigField] = &[
    ConfigField {
        name: "aspect_ratio",
        kind: FieldKind::Choice(&["match_input_image", "1:1", "16:9", "9:16", "4:3", "3:4"]),
        default: Some(FieldDefault::Text("match_input_image")),
        required: false,
        secret: false,
        description: "Aspect ratio of the staged image. match_input_image keeps the listing photo's framing.",
    },
    ConfigField {
        name: "output_format",
        kind: FieldKind::Choice(&["jpg", "png", "webp"]),
        default: Some(FieldDefault::Text("jpg")),
        required: false,
        secret: false,
        description: "File format the model returns (the stored result is always re-encoded as JPEG).",
    },
    ConfigField {
        name: "output_quality",
        kind: QUALITY_0_TO_100,
        default: Some(FieldDefault::Integer(90)),
        required: false,
        secret: false,
        description: "Quality of jpg/webp output, 0 (lowest) to 100 (best). Ignored for png.",
    },
    ConfigField {
        name: "go_fast",
        kind: FieldKind::Bool,
        default: Some(FieldDefault::Bool(true)),
        required: false,
        secret: false,
        description: "Run with extra speed optimisations.",
    },
    SEED_FIELD,
];

/// Replicate's flux-kontext aspect ratios (version 569705b3 api page and API catalogs).
const FLUX_ASPECT_RATIOS: &[&str] = &[
    "match_input_image",
    "1:1",
    "16:9",
    "9:16",
    "4:3",
    "3:4",
    "3:2",
    "2:3",
    "4:5",
    "5:4",
    "21:9",
    "9:21",
    "2:1",
    "1:2",
];

const FLUX_KONTEXT_FIELDS: &[ConfigField] = &[
    ConfigField {
        name: "aspect_ratio",
        kind: FieldKind::Choice(FLUX_ASPECT_RATIOS),
        default: Some(FieldDefault::Text("match_input_image")),
        required: false,
        secret: false,
        description: "Aspect ratio of the staged image. match_input_image keeps the listing photo's framing.",
    },
    ConfigField {
        name: "output_format",
        kind: FieldKind::Choice(&["jpg", "png"]),
        default: Some(FieldDefault::Text("jpg")),
        required: false,
        secret: false,
        description: "File format the model returns (the stored result is always re-encoded as JPEG).",
    },
    ConfigField {
        name: "safety_tolerance",
        // The model accepts 0–6, but Replicate caps it at 2 when an input image is given, and a
        // staging job always gives one: a higher value would only fail the prediction.
        kind: FieldKind::Integer { min: 0, max: 2 },
        default: Some(FieldDefault::Integer(2)),
        required: false,
        secret: false,
        description: "Content moderation, 0 (strictest) to 2 (the most Replicate allows with an input image).",
    },
    ConfigField {
        name: "prompt_upsampling",
        kind: FieldKind::Bool,
        // Off: the rewrite may drop the structural-preservation instructions.
        default: Some(FieldDefault::Bool(false)),
        required: false,
        secret: false,
        description: "Let the model rewrite the prompt. May weaken the instructions to keep the room unchanged.",
    },
    SEED_FIELD,
];

// bytedance/seedream-4 takes no seed input (checked on versions e6cff243 and 3ee3b70d), so an
// image's seed cannot be passed on. `size: custom` is not offered: it needs width/height, which
// would override the photo's own aspect ratio.
const SEEDREAM_FIELDS: &[ConfigField] = &[
    ConfigField {
        name: "size",
        kind: FieldKind::Choice(&["1K", "2K", "4K"]),
        default: Some(FieldDefault::Text("2K")),
        required: false,
        secret: false,
        description: "Output resolution: 1K (1024 px), 2K (2048 px) or 4K (4096 px) on the long side.",
    },
    ConfigField {
        name: "aspect_ratio",
        kind: FieldKind::Choice(&[
            "match_input_image",
            "1:1",
            "4:3",
            "3:4",
            "16:9",
            "9:16",
            "3:2",
            "2:3",
            "21:9",
        ]),
        default: Some(FieldDefault::Text("match_input_image")),
        required: false,
        secret: false,
        description: "Aspect ratio of the staged image. match_input_image keeps the listing photo's framing.",
    },
    // UNCONFIRMED on older versions: present on the current version's schema (default true there).
    ConfigField {
        name: "enhance_prompt",
        kind: FieldKind::Bool,
        default: Some(FieldDefault::Bool(false)),
        required: false,
        secret: false,
        description: "Let the model enhance the prompt (slower). May weaken the instructions to keep the room \
                      unchanged.",
    },
];

// openai/gpt-image-1 takes no seed and has no match_input_image aspect ratio. `user_id` is not
// offered (no end-user identifiers are sent to OpenAI) and `background: transparent` is left out
// (a room photo has no transparent background, and the result is flattened into a JPEG anyway).
const GPT_IMAGE_FIELDS: &[ConfigField] = &[
    ConfigField {
        name: "openai_api_key",
        kind: FieldKind::Text { max_len: 512 },
        default: None,
        required: true,
        secret: true,
        description: "The operator's OpenAI API key (from a verified organisation); OpenAI bills that account.",
    },
    ConfigField {
        name: "aspect_ratio",
        kind: FieldKind::Choice(&["1:1", "3:2", "2:3"]),
        // Most listing photos are landscape; the model cannot match the input's ratio.
        default: Some(FieldDefault::Text("3:2")),
        required: false,
        secret: false,
        description: "Aspect ratio of the staged image (this model cannot match the photo's own ratio).",
    },
    ConfigField {
        name: "quality",
        kind: FieldKind::Choice(&["auto", "low", "medium", "high"]),
        default: Some(FieldDefault::Text("auto")),
        required: false,
        secret: false,
        description: "Rendering quality; higher costs more on the OpenAI account.",
    },
    ConfigField {
        name: "input_fidelity",
        kind: FieldKind::Choice(&["low", "high"]),
        // High: staging must keep the photographed room's details.
        default: Some(FieldDefault::Text("high")),
        required: false,
        secret: false,
        description: "How closely the result follows the input photo's details.",
    },
    ConfigField {
        name: "background",
        kind: FieldKind::Choice(&["auto", "opaque"]),
        default: Some(FieldDefault::Text("opaque")),
        required: false,
        secret: false,
        description: "Background handling of the generated image.",
    },
    ConfigField {
        name: "output_format",
        kind: FieldKind::Choice(&["jpeg", "png", "webp"]),
        default: Some(FieldDefault::Text("jpeg")),
        required: false,
        secret: false,
        description: "File format the model returns (the stored result is always re-encoded as JPEG).",
    },
    ConfigField {
        name: "output_compression",
        kind: QUALITY_0_TO_100,
        default: Some(FieldDefault::Integer(90)),
        required: false,
        secret: false,
        description: "Compression level of jpeg/webp output, 0 to 100 percent.",
    },
    ConfigField {
        name: "moderation",
        kind: FieldKind::Choice(&["auto", "low"]),
        default: Some(FieldDefault::Text("auto")),
        required: false,
        secret: false,
        description: "OpenAI content moderation level.",
    },
];

// Prices are estimates per staged image, to verify on replicate.com (model pages, "Pricing"):
// qwen-image-edit $0.03, flux-kontext-pro $0.04, flux-kontext-max $0.08, seedream-4 $0.03.
// gpt-image-1: Replicate charges $0.001 per output image; OpenAI bills the rest to the operator's key.
static REGISTRY: [ModelSpec; 5] = [
    ModelSpec {
        id: DEFAULT_MODEL_ID,
        slug: "qwen-image-edit",
        display_name: "Qwen Image Edit",
        price: UsdPrice(300),
        fields: QWEN_FIELDS,
        input: InputShape {
            image_field: "image",
            image_as_array: false,
            seed_field: Some("seed"),
            fixed: &[],
        },
    },
    ModelSpec {
        id: "black-forest-labs/flux-kontext-pro",
        slug: "flux-kontext-pro",
        display_name: "FLUX.1 Kontext Pro",
        price: UsdPrice(400),
        fields: FLUX_KONTEXT_FIELDS,
        input: InputShape {
            image_field: "input_image",
            image_as_array: false,
            seed_field: Some("seed"),
            fixed: &[],
        },
    },
    ModelSpec {
        id: "black-forest-labs/flux-kontext-max",
        slug: "flux-kontext-max",
        display_name: "FLUX.1 Kontext Max",
        price: UsdPrice(800),
        fields: FLUX_KONTEXT_FIELDS,
        input: InputShape {
            image_field: "input_image",
            image_as_array: false,
            seed_field: Some("seed"),
            fixed: &[],
        },
    },
    ModelSpec {
        id: "bytedance/seedream-4",
        slug: "seedream-4",
        display_name: "Seedream 4",
        price: UsdPrice(300),
        fields: SEEDREAM_FIELDS,
        input: InputShape {
            image_field: "image_input",
            image_as_array: true,
            seed_field: None,
            fixed: &[
                ("max_images", FieldDefault::Integer(1)),
                ("sequential_image_generation", FieldDefault::Text("disabled")),
            ],
        },
    },
    ModelSpec {
        id: "openai/gpt-image-1",
        slug: "gpt-image-1",
        display_name: "GPT Image 1",
        price: UsdPrice(10),
        fields: GPT_IMAGE_FIELDS,
        input: InputShape {
            image_field: "input_images",
            image_as_array: true,
            seed_field: None,
            fixed: &[("number_of_images", FieldDefault::Integer(1))],
        },
    },
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::json;

    use super::*;

    const IMAGE_URL: &str = "https://bucket.example.com/uploads/u/room.jpg?X-Amz-Signature=abc";

    fn model(id: &str) -> &'static ModelSpec {
        find(id).unwrap()
    }

    fn job(seed: Option<u32>) -> StagingInput<'static> {
        StagingInput {
            image_url: IMAGE_URL,
            prompt: "Stage this room.",
            seed,
        }
    }

    fn errors_by_field(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect()
    }

    #[test]
    fn the_default_model_is_registered_first() {
        assert_eq!(default_model().id, DEFAULT_MODEL_ID);
        assert_eq!(find(DEFAULT_MODEL_ID).unwrap().slug, "qwen-image-edit");
    }

    #[test]
    fn ids_fit_the_database_check_and_slugs_are_unique_and_url_safe() {
        let is_id_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let mut ids = HashSet::new();
        let mut slugs = HashSet::new();
        for spec in registry() {
            // ^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$
            let (owner, name) = spec.id.split_once('/').unwrap();
            assert!(!owner.is_empty() && owner.chars().all(is_id_char), "{}", spec.id);
            assert!(!name.is_empty() && name.chars().all(is_id_char), "{}", spec.id);
            assert!(!spec.slug.is_empty(), "{}", spec.id);
            assert!(
                spec.slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                spec.slug
            );
            assert!(!spec.slug.starts_with('-') && !spec.slug.ends_with('-'));
            assert!(ids.insert(spec.id), "duplicate id {}", spec.id);
            assert!(slugs.insert(spec.slug), "duplicate slug {}", spec.slug);
            assert!(!spec.display_name.is_empty());
        }
        assert_eq!(registry().len(), 5);
    }

    #[test]
    fn find_and_find_by_slug() {
        for spec in registry() {
            assert!(std::ptr::eq(find(spec.id).unwrap(), spec));
            assert!(std::ptr::eq(find_by_slug(spec.slug).unwrap(), spec));
        }
        assert_eq!(
            find("black-forest-labs/flux-kontext-max").unwrap().slug,
            "flux-kontext-max"
        );
        assert_eq!(find_by_slug("gpt-image-1").unwrap().id, "openai/gpt-image-1");
        assert!(find("qwen/qwen-image-edit-plus").is_none());
        assert!(find("QWEN/QWEN-IMAGE-EDIT").is_none());
        assert!(find("").is_none());
        assert!(find_by_slug("qwen/qwen-image-edit").is_none());
    }

    #[test]
    fn schemas_are_well_formed() {
        for spec in registry() {
            let mut names = HashSet::new();
            for field in spec.fields {
                assert!(names.insert(field.name), "{}: duplicate field {}", spec.id, field.name);
                assert_ne!(field.name, "prompt", "{}: the prompt comes from the job", spec.id);
                assert_ne!(
                    field.name, spec.input.image_field,
                    "{}: the image comes from the job",
                    spec.id
                );
                assert!(!field.description.is_empty(), "{}.{}", spec.id, field.name);
                if field.secret {
                    assert!(
                        field.default.is_none(),
                        "{}.{}: a secret has no default",
                        spec.id,
                        field.name
                    );
                }
                // Every default passes its own field's validation.
                if let Some(default) = field.default {
                    assert_eq!(check_value(field, &default.to_json()), Ok(Some(default.to_json())));
                }
                if let FieldKind::Choice(options) = field.kind {
                    assert!(!options.is_empty());
                }
            }
            for (name, _) in spec.input.fixed {
                assert!(
                    !names.contains(name),
                    "{}: {name} is both fixed and configurable",
                    spec.id
                );
            }
            match spec.input.seed_field {
                Some(seed) => assert!(spec.field(seed).is_some(), "{}: seed field not configurable", spec.id),
                None => assert!(spec.field("seed").is_none(), "{}", spec.id),
            }
        }
    }

    #[test]
    fn prices_display_in_ten_thousandths() {
        assert_eq!(UsdPrice(300).to_string(), "0.0300");
        assert_eq!(UsdPrice(10).to_string(), "0.0010");
        assert_eq!(UsdPrice(0).to_string(), "0.0000");
        assert_eq!(UsdPrice(123_456).to_string(), "12.3456");
        assert_eq!(serde_json::to_value(UsdPrice(800)).unwrap(), json!("0.0800"));
        assert_eq!(model(DEFAULT_MODEL_ID).price, UsdPrice(300));
        assert_eq!(model("black-forest-labs/flux-kontext-pro").price, UsdPrice(400));
        assert_eq!(model("black-forest-labs/flux-kontext-max").price, UsdPrice(800));
        assert_eq!(model("bytedance/seedream-4").price, UsdPrice(300));
        assert_eq!(model("openai/gpt-image-1").price, UsdPrice(10));
    }

    #[test]
    fn qwen_input_with_defaults() {
        let spec = model(DEFAULT_MODEL_ID);
        let input = spec.build_input(&spec.default_config(), &job(None)).unwrap();
        assert_eq!(
            input,
            json!({
                "image": IMAGE_URL,
                "prompt": "Stage this room.",
                "aspect_ratio": "match_input_image",
                "output_format": "jpg",
                "output_quality": 90,
                "go_fast": true,
            })
        );
    }

    #[test]
    fn the_image_seed_wins_over_a_configured_seed() {
        let spec = model(DEFAULT_MODEL_ID);
        let config = spec.validate_config(&json!({"seed": 7, "go_fast": false})).unwrap();
        let with_configured_seed = spec.build_input(&config, &job(None)).unwrap();
        assert_eq!(with_configured_seed["seed"], json!(7));
        assert_eq!(with_configured_seed["go_fast"], json!(false));
        let with_image_seed = spec.build_input(&config, &job(Some(4_294_967_295))).unwrap();
        assert_eq!(with_image_seed["seed"], json!(4_294_967_295_u32));
        let unseeded = spec.build_input(&spec.default_config(), &job(Some(42))).unwrap();
        assert_eq!(unseeded["seed"], json!(42));
    }

    #[test]
    fn flux_kontext_inputs() {
        for id in [
            "black-forest-labs/flux-kontext-pro",
            "black-forest-labs/flux-kontext-max",
        ] {
            let spec = model(id);
            let input = spec.build_input(&spec.default_config(), &job(Some(5))).unwrap();
            assert_eq!(
                input,
                json!({
                    "input_image": IMAGE_URL,
                    "prompt": "Stage this room.",
                    "aspect_ratio": "match_input_image",
                    "output_format": "jpg",
                    "safety_tolerance": 2,
                    "prompt_upsampling": false,
                    "seed": 5,
                }),
                "{id}"
            );
        }
        let spec = model("black-forest-labs/flux-kontext-pro");
        assert_eq!(
            errors_by_field(&spec.validate_config(&json!({"safety_tolerance": 3})).unwrap_err()),
            [("safety_tolerance", "must be an integer from 0 to 2")]
        );
        let config = spec
            .validate_config(&json!({"aspect_ratio": "21:9", "output_format": "png"}))
            .unwrap();
        let input = spec.build_input(&config, &job(None)).unwrap();
        assert_eq!(input["aspect_ratio"], json!("21:9"));
        assert_eq!(input["output_format"], json!("png"));
        assert!(input.get("seed").is_none());
    }

    #[test]
    fn seedream_input_takes_an_image_array_and_no_seed() {
        let spec = model("bytedance/seedream-4");
        let input = spec.build_input(&spec.default_config(), &job(Some(9))).unwrap();
        assert_eq!(
            input,
            json!({
                "image_input": [IMAGE_URL],
                "prompt": "Stage this room.",
                "size": "2K",
                "aspect_ratio": "match_input_image",
                "enhance_prompt": false,
                "max_images": 1,
                "sequential_image_generation": "disabled",
            })
        );
        let refused = spec
            .validate_config(&json!({"max_images": 4, "seed": 1, "size": "custom"}))
            .unwrap_err();
        assert_eq!(
            errors_by_field(&refused),
            [
                ("max_images", "unknown field"),
                ("seed", "unknown field"),
                ("size", "must be one of: 1K, 2K, 4K"),
            ]
        );
    }

    #[test]
    fn gpt_image_input_carries_the_key_and_no_seed() {
        let spec = model("openai/gpt-image-1");
        let config = spec
            .validate_config(&json!({"openai_api_key": "  sk-test-123  ", "quality": "high"}))
            .unwrap();
        let input = spec.build_input(&config, &job(Some(3))).unwrap();
        assert_eq!(
            input,
            json!({
                "input_images": [IMAGE_URL],
                "prompt": "Stage this room.",
                "openai_api_key": "sk-test-123",
                "aspect_ratio": "3:2",
                "quality": "high",
                "input_fidelity": "high",
                "background": "opaque",
                "output_format": "jpeg",
                "output_compression": 90,
                "moderation": "auto",
                "number_of_images": 1,
            })
        );
    }

    #[test]
    fn a_missing_required_secret_fails_the_job_not_the_save() {
        let spec = model("openai/gpt-image-1");
        let missing = ModelError::MissingSetting {
            model: "openai/gpt-image-1",
            field: "openai_api_key",
        };
        assert_eq!(
            spec.build_input(&spec.default_config(), &job(None)),
            Err(missing.clone())
        );
        for blank in [
            json!({}),
            json!({"openai_api_key": ""}),
            json!({"openai_api_key": "   "}),
            json!({"openai_api_key": null}),
        ] {
            let config = spec.validate_config(&blank).unwrap();
            assert!(config.get("openai_api_key").is_none(), "{blank}");
            assert_eq!(spec.build_input(&config, &job(None)), Err(missing.clone()), "{blank}");
        }
        assert!(missing.to_string().contains("openai_api_key"));
    }

    #[test]
    fn secrets_are_left_out_of_the_public_json_and_debug() {
        let spec = model("openai/gpt-image-1");
        let config = spec
            .validate_config(&json!({"openai_api_key": "sk-very-secret"}))
            .unwrap();
        let public = config.as_json_without_secrets();
        assert!(public.get("openai_api_key").is_none());
        assert_eq!(public["quality"], json!("auto"));
        assert!(!public.to_string().contains("sk-very-secret"));
        assert!(!format!("{config:?}").contains("sk-very-secret"));
        assert_eq!(config.get("openai_api_key"), Some(&json!("sk-very-secret")));
        // The stored shape round-trips, secrets included.
        let stored = config.as_json_with_secrets();
        assert_eq!(stored["openai_api_key"], json!("sk-very-secret"));
        assert_eq!(spec.validate_config(&stored).unwrap(), config);
    }

    #[test]
    fn missing_fields_take_their_defaults() {
        for spec in registry() {
            let config = spec.validate_config(&json!({})).unwrap();
            assert_eq!(config, spec.default_config(), "{}", spec.id);
            assert_eq!(config.model_id(), spec.id);
            let public = config.as_json_without_secrets();
            for field in spec.fields.iter().filter(|field| !field.secret) {
                let expected = field.default.map_or(Value::Null, FieldDefault::to_json);
                assert_eq!(public[field.name], expected, "{}.{}", spec.id, field.name);
            }
        }
        let qwen = model(DEFAULT_MODEL_ID).default_config();
        assert_eq!(qwen.as_json_without_secrets()["seed"], Value::Null);
        assert!(qwen.get("seed").is_none());
        assert!(qwen.get("no_such_field").is_none());
    }

    #[test]
    fn validation_reports_every_bad_field() {
        let spec = model(DEFAULT_MODEL_ID);
        let config = json!({
            "aspect_ratio": "2:1",
            "output_format": "gif",
            "output_quality": 101,
            "go_fast": "yes",
            "seed": -1,
            "num_outputs": 2,
            "Seed": 1,
        });
        let errors = spec.validate_config(&config).unwrap_err();
        assert_eq!(
            errors_by_field(&errors),
            [
                ("Seed", "unknown field"),
                ("num_outputs", "unknown field"),
                (
                    "aspect_ratio",
                    "must be one of: match_input_image, 1:1, 16:9, 9:16, 4:3, 3:4"
                ),
                ("output_format", "must be one of: jpg, png, webp"),
                ("output_quality", "must be an integer from 0 to 100"),
                ("go_fast", "must be true or false"),
                ("seed", "must be an integer from 0 to 4294967295"),
            ]
        );
    }

    #[test]
    fn wrong_json_types_are_refused() {
        let spec = model(DEFAULT_MODEL_ID);
        for bad in [
            json!({"output_quality": 90.5}),
            json!({"output_quality": "90"}),
            json!({"output_quality": true}),
        ] {
            let errors = spec.validate_config(&bad).unwrap_err();
            assert_eq!(
                errors_by_field(&errors),
                [("output_quality", "must be an integer from 0 to 100")],
                "{bad}"
            );
        }
        for not_object in [json!(null), json!([]), json!("x"), json!(1)] {
            let errors = spec.validate_config(&not_object).unwrap_err();
            assert_eq!(errors_by_field(&errors), [("config", "must be a JSON object")]);
        }
        let gpt = model("openai/gpt-image-1");
        let errors = gpt.validate_config(&json!({"openai_api_key": 12345})).unwrap_err();
        assert_eq!(
            errors_by_field(&errors),
            [("openai_api_key", "must be text of at most 512 characters")]
        );
        let long_key = "k".repeat(513);
        let errors = gpt.validate_config(&json!({ "openai_api_key": long_key })).unwrap_err();
        assert!(!errors[0].message.contains("kkk"), "the value is never echoed");
    }

    #[test]
    fn seed_bounds() {
        let spec = model(DEFAULT_MODEL_ID);
        for ok in [json!(0), json!(1), json!(4_294_967_295_u64), Value::Null] {
            let config = spec.validate_config(&json!({ "seed": ok })).unwrap();
            assert_eq!(config.get("seed"), if ok.is_null() { None } else { Some(&ok) });
        }
        for bad in [
            json!(4_294_967_296_u64),
            json!(-1),
            json!(u64::MAX),
            json!(1.5),
            json!("1"),
        ] {
            assert!(spec.validate_config(&json!({ "seed": bad })).is_err(), "{bad}");
        }
    }

    #[test]
    fn number_fields_check_their_bounds() {
        let field = ConfigField {
            name: "guidance",
            kind: FieldKind::Number { min: 1.0, max: 20.0 },
            default: Some(FieldDefault::Number(7.5)),
            required: false,
            secret: false,
            description: "Guidance scale.",
        };
        assert_eq!(check_value(&field, &json!(2.5)), Ok(Some(json!(2.5))));
        assert_eq!(check_value(&field, &json!(20)), Ok(Some(json!(20.0))));
        assert_eq!(
            check_value(&field, &json!(0.5)),
            Err("must be a number from 1 to 20".to_owned())
        );
        assert!(check_value(&field, &json!("3")).is_err());
    }

    #[test]
    fn build_input_refuses_a_foreign_config_a_bad_url_and_an_empty_prompt() {
        let qwen = model(DEFAULT_MODEL_ID);
        let flux = model("black-forest-labs/flux-kontext-pro");
        assert_eq!(
            flux.build_input(&qwen.default_config(), &job(None)),
            Err(ModelError::ConfigForOtherModel {
                model: "black-forest-labs/flux-kontext-pro",
                config_model: DEFAULT_MODEL_ID,
            })
        );
        for url in [
            "",
            "file:///etc/passwd",
            "data:image/png;base64,AAAA",
            "/relative/path.jpg",
            "ftp://x/y",
        ] {
            let input = StagingInput {
                image_url: url,
                prompt: "Stage this room.",
                seed: None,
            };
            assert_eq!(
                qwen.build_input(&qwen.default_config(), &input),
                Err(ModelError::InvalidImageUrl)
            );
        }
        let input = StagingInput {
            image_url: IMAGE_URL,
            prompt: "  ",
            seed: None,
        };
        assert_eq!(
            qwen.build_input(&qwen.default_config(), &input),
            Err(ModelError::EmptyPrompt)
        );
        assert!(!ModelError::InvalidImageUrl.to_string().contains("Signature"));
    }

    #[test]
    fn the_prompt_is_sent_trimmed() {
        let spec = model(DEFAULT_MODEL_ID);
        let input = StagingInput {
            image_url: IMAGE_URL,
            prompt: "\n Add a sofa. ",
            seed: None,
        };
        assert_eq!(
            spec.build_input(&spec.default_config(), &input).unwrap()["prompt"],
            json!("Add a sofa.")
        );
    }

    #[test]
    fn output_url_takes_the_first_http_url() {
        let first = "https://replicate.delivery/xezq/abc/out-0.jpg";
        assert_eq!(output_url(&json!(first)).unwrap().as_str(), first);
        assert_eq!(
            output_url(&json!([first, "https://replicate.delivery/b.jpg"]))
                .unwrap()
                .as_str(),
            first
        );
        assert_eq!(output_url(&json!([null, "data:x", 3, first])).unwrap().as_str(), first);
        assert_eq!(
            output_url(&json!("http://localhost:9000/out.png")).unwrap().scheme(),
            "http"
        );
        for none in [
            json!(null),
            json!([]),
            json!(""),
            json!("not a url"),
            json!("file:///tmp/out.jpg"),
            json!("data:image/png;base64,AAAA"),
            json!({"url": first}),
            json!(42),
        ] {
            assert!(output_url(&none).is_none(), "{none}");
        }
    }

    #[test]
    fn schema_json_shape() {
        let spec = model(DEFAULT_MODEL_ID);
        let quality = serde_json::to_value(spec.field("output_quality").unwrap()).unwrap();
        assert_eq!(
            quality,
            json!({
                "name": "output_quality",
                "type": "integer",
                "default": 90,
                "min": 0,
                "max": 100,
                "max_length": null,
                "options": null,
                "required": false,
                "secret": false,
                "description": "Quality of jpg/webp output, 0 (lowest) to 100 (best). Ignored for png.",
            })
        );
        let format = serde_json::to_value(spec.field("output_format").unwrap()).unwrap();
        assert_eq!(format["type"], json!("choice"));
        assert_eq!(format["options"], json!(["jpg", "png", "webp"]));
        assert_eq!(format["default"], json!("jpg"));
        assert_eq!(format["min"], Value::Null);
        let seed = serde_json::to_value(spec.field("seed").unwrap()).unwrap();
        assert_eq!(seed["default"], Value::Null);
        assert_eq!(seed["max"], json!(4_294_967_295_u64));
        let go_fast = serde_json::to_value(spec.field("go_fast").unwrap()).unwrap();
        assert_eq!(
            (go_fast["type"].clone(), go_fast["default"].clone()),
            (json!("bool"), json!(true))
        );

        let key = serde_json::to_value(model("openai/gpt-image-1").field("openai_api_key").unwrap()).unwrap();
        assert_eq!(
            key,
            json!({
                "name": "openai_api_key",
                "type": "text",
                "default": null,
                "min": null,
                "max": null,
                "max_length": 512,
                "options": null,
                "required": true,
                "secret": true,
                "description": "The operator's OpenAI API key (from a verified organisation); OpenAI bills that account.",
            })
        );
        let number = serde_json::to_value(FieldKind::Number { min: 1.0, max: 2.5 }).unwrap();
        assert_eq!(
            number,
            json!({"type": "number", "min": 1.0, "max": 2.5, "max_length": null, "options": null})
        );
    }

    #[test]
    fn the_registry_serializes_without_its_input_builder() {
        let value = serde_json::to_value(model("bytedance/seedream-4")).unwrap();
        assert_eq!(value["id"], json!("bytedance/seedream-4"));
        assert_eq!(value["slug"], json!("seedream-4"));
        assert_eq!(value["display_name"], json!("Seedream 4"));
        assert_eq!(value["price"], json!("0.0300"));
        assert_eq!(value["fields"].as_array().unwrap().len(), SEEDREAM_FIELDS.len());
        assert_eq!(value.as_object().unwrap().len(), 5);
        assert!(value.get("input").is_none());
    }
}

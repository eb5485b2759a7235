//! Predictions as Replicate documents them, parsed strictly: ids that can only name a prediction,
//! statuses as an enum, metrics as numbers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MAX_DETAIL_CHARS;
use crate::platform::error::one_line;

/// A Replicate prediction id: 1 to 64 lowercase ASCII letters and digits. The only way an id gets
/// into a request path, so a path can never be steered elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PredictionId(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a Replicate prediction id (expected 1 to 64 lowercase letters and digits)")]
pub struct InvalidPredictionId;

impl PredictionId {
    pub fn parse(raw: &str) -> Result<Self, InvalidPredictionId> {
        let valid = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(PredictionId(raw.to_string()))
        } else {
            Err(InvalidPredictionId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PredictionId {
    type Err = InvalidPredictionId;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        PredictionId::parse(raw)
    }
}

impl TryFrom<String> for PredictionId {
    type Error = InvalidPredictionId;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        PredictionId::parse(&raw)
    }
}

impl From<PredictionId> for String {
    fn from(id: PredictionId) -> String {
        id.0
    }
}

impl fmt::Display for PredictionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parts of Replicate's prediction object the worker uses. Parsing is lenient: unknown fields
/// are ignored, `output`/`error` may be any JSON (null reads as absent), `metrics` may be missing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawPrediction")]
pub struct Prediction {
    pub id: PredictionId,
    pub status: PredictionStatus,
    pub output: Option<Value>,
    /// Usually a string; kept as JSON because some models report an object.
    pub error: Option<Value>,
    pub metrics: Option<Metrics>,
    /// The input as Replicate echoes it (the worker finds its job's input URL in it).
    pub input: Option<Value>,
    /// When Replicate created it (absent or unreadable reads as `None`).
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Prediction {
    /// Every string inside the echoed input, depth first (URLs may sit in arrays or objects).
    pub fn input_strings(&self) -> Vec<&str> {
        fn walk<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::String(s) => out.push(s),
                Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                Value::Object(map) => map.values().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        if let Some(input) = &self.input {
            walk(input, &mut out);
        }
        out
    }

    /// `error` as one line of text for a job's failure reason, at most 300 characters.
    pub fn error_message(&self) -> Option<String> {
        let text = match self.error.as_ref()? {
            Value::String(s) => s.clone(),
            Value::Object(map) => match map.get("detail").or_else(|| map.get("message")) {
                Some(Value::String(s)) => s.clone(),
                _ => Value::Object(map.clone()).to_string(),
            },
            other => other.to_string(),
        };
        let text = one_line(&text, MAX_DETAIL_CHARS);
        (!text.is_empty()).then_some(text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// Seconds of model run time (what Replicate bills for).
    pub predict_time: Option<f64>,
}

#[derive(Deserialize)]
struct RawPrediction {
    id: String,
    #[serde(default)]
    status: Value,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    metrics: Option<Value>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    created_at: Option<Value>,
}

impl TryFrom<RawPrediction> for Prediction {
    type Error = InvalidPredictionId;
    fn try_from(raw: RawPrediction) -> Result<Self, Self::Error> {
        let metrics = raw.metrics.and_then(|metrics| match metrics {
            Value::Object(map) => Some(Metrics {
                predict_time: map.get("predict_time").and_then(Value::as_f64),
            }),
            _ => None,
        });
        Ok(Prediction {
            id: PredictionId::parse(&raw.id)?,
            status: raw
                .status
                .as_str()
                .map_or(PredictionStatus::Unknown, PredictionStatus::from_api),
            output: raw.output,
            error: raw.error,
            metrics,
            input: raw.input.filter(|v| !v.is_null()),
            created_at: raw
                .created_at
                .as_ref()
                .and_then(Value::as_str)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
        })
    }
}

/// Replicate's prediction statuses; anything new reads as `Unknown` (not terminal: keep polling
/// until the job's own deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PredictionStatus {
    Starting,
    Processing,
    Succeeded,
    Failed,
    Canceled,
    /// The `Cancel-After` deadline passed before the prediction started (not billed).
    Aborted,
    #[serde(other)]
    Unknown,
}

impl PredictionStatus {
    pub fn from_api(raw: &str) -> Self {
        match raw {
            "starting" => PredictionStatus::Starting,
            "processing" => PredictionStatus::Processing,
            "succeeded" => PredictionStatus::Succeeded,
            "failed" => PredictionStatus::Failed,
            "canceled" => PredictionStatus::Canceled,
            "aborted" => PredictionStatus::Aborted,
            _ => PredictionStatus::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PredictionStatus::Starting => "starting",
            PredictionStatus::Processing => "processing",
            PredictionStatus::Succeeded => "succeeded",
            PredictionStatus::Failed => "failed",
            PredictionStatus::Canceled => "canceled",
            PredictionStatus::Aborted => "aborted",
            PredictionStatus::Unknown => "unknown",
        }
    }

    /// The prediction will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PredictionStatus::Succeeded
                | PredictionStatus::Failed
                | PredictionStatus::Canceled
                | PredictionStatus::Aborted
        )
    }
}

impl fmt::Display for PredictionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

//! Custom CloudWatch metrics through the Embedded Metric Format (EMF): one JSON object printed
//! to stdout, which Lambda hands to CloudWatch Logs, which extracts the metric from it. No API
//! call, no client, no IAM permission; alarms in template.yaml watch the metrics.
//!
//! The line must be a JSON object alone on its line (not wrapped by the tracing formatter), so it
//! is printed directly. A log line is written with every metric by the caller anyway (the metric
//! is what an alarm counts, the log is what an operator reads).

use serde_json::{Map, Value, json};

/// The namespace of every metric this service emits.
pub const NAMESPACE: &str = "RealStaging";

/// The EMF document counting one occurrence of `name` with the given dimensions (names and
/// values), at `timestamp_ms` (unix milliseconds).
pub fn count_document(namespace: &str, name: &str, dimensions: &[(&str, &str)], timestamp_ms: i64) -> Value {
    let mut root = Map::new();
    for (key, value) in dimensions {
        root.insert((*key).to_string(), Value::String((*value).to_string()));
    }
    root.insert(name.to_string(), json!(1));
    let dimension_names: Vec<&str> = dimensions.iter().map(|(key, _)| *key).collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimension_names],
                "Metrics": [{ "Name": name, "Unit": "Count" }]
            }]
        }),
    );
    Value::Object(root)
}

/// Counts one occurrence of `name`: prints its EMF document on stdout.
pub fn emit_count(namespace: &str, name: &str, dimensions: &[(&str, &str)]) {
    let document = count_document(namespace, name, dimensions, chrono::Utc::now().timestamp_millis());
    println!("{document}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_an_emf_document_with_its_dimensions_at_the_root() {
        let document = count_document(
            NAMESPACE,
            "StripeAuthFailures",
            &[("Service", "billing")],
            1_800_000_000_000,
        );
        assert_eq!(
            document,
            json!({
                "Service": "billing",
                "StripeAuthFailures": 1,
                "_aws": {
                    "Timestamp": 1_800_000_000_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "RealStaging",
                        "Dimensions": [["Service"]],
                        "Metrics": [{ "Name": "StripeAuthFailures", "Unit": "Count" }]
                    }]
                }
            })
        );
        // One line: CloudWatch Logs reads one event per line.
        assert!(!document.to_string().contains('\n'));
    }
}

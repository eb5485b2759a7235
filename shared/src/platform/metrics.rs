//! Custom CloudWatch metrics, written as CloudWatch Embedded Metric Format (EMF) lines on stdout.
//!
//! Lambda sends stdout to CloudWatch Logs, which turns each EMF line into a metric datapoint: no
//! SDK call, no extra latency, no IAM permission. Alarms in template.yaml watch these metrics
//! (namespace [`NAMESPACE`], dimension `Stack` = the `STACK_NAME` environment variable).
//! The line carries `"level"` so Lambda's JSON log-level filter never drops it.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

/// The namespace of every custom metric of the app.
pub const NAMESPACE: &str = "RealStaging";

/// A count the operator is alarmed on. Names are stable: alarms refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Replicate refused the account (401/402/403, or the model is gone): jobs wait for the
    /// operator instead of failing.
    ReplicateAccountFaults,
    /// A create's answer was lost or unreadable; the worker adopts or re-checks the prediction.
    ReplicateAmbiguousCreates,
    /// Predictions that belonged to no live job and were canceled.
    OrphanPredictionsCanceled,
    /// Stripe refused our API key (401/403) on a billing route or the webhook.
    StripeAuthFailures,
    /// Jobs that moved to `failed` (counted once, by the call that failed them; jobs of images
    /// their owner deleted are not failures of the service and are left out).
    JobsFailed,
    /// Jobs that moved to `completed` (counted once, by the call that completed them).
    JobsStaged,
    /// The synthetic check: 1 when `GET /health` answered 200 through the public URL, else 0.
    /// `ApiDownAlarm` treats a missing datapoint as down.
    HealthCheckOk,
}

impl Counter {
    pub fn name(self) -> &'static str {
        match self {
            Counter::ReplicateAccountFaults => "ReplicateAccountFaults",
            Counter::ReplicateAmbiguousCreates => "ReplicateAmbiguousCreates",
            Counter::OrphanPredictionsCanceled => "OrphanPredictionsCanceled",
            Counter::StripeAuthFailures => "StripeAuthFailures",
            Counter::JobsFailed => "JobsFailed",
            Counter::JobsStaged => "JobsStaged",
            Counter::HealthCheckOk => "HealthCheckOk",
        }
    }
}

/// An amount in US dollars (unit None), summed by alarms and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// What a staged image cost at the model provider (the registry price recorded as the image's
    /// `cost_usd`), emitted once per completed job; `ModelSpendAlarm` watches the monthly pace.
    ModelSpendUsd,
}

impl Amount {
    pub fn name(self) -> &'static str {
        match self {
            Amount::ModelSpendUsd => "ModelSpendUsd",
        }
    }
}

/// Adds `value` to `counter` (one EMF line on stdout).
pub fn count(counter: Counter, value: u64) {
    emit(counter.name(), "Count", json!(value));
}

/// Records an amount of money (one EMF line on stdout).
pub fn amount(amount: Amount, usd: f64) {
    emit(amount.name(), "None", json!(usd));
}

fn emit(name: &str, unit: &str, value: serde_json::Value) {
    let stack = std::env::var("STACK_NAME").unwrap_or_else(|_| "local".to_string());
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    println!("{}", emf_document(name, unit, value, &stack, now_ms));
}

/// The EMF line for one datapoint of a count.
pub fn emf_line(counter: Counter, value: u64, stack: &str, timestamp_ms: u64) -> String {
    emf_document(counter.name(), "Count", json!(value), stack, timestamp_ms)
}

fn emf_document(name: &str, unit: &str, value: serde_json::Value, stack: &str, timestamp_ms: u64) -> String {
    let mut doc = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Stack"]],
                "Metrics": [{"Name": name, "Unit": unit}]
            }]
        },
        "level": "WARN",
        "Stack": stack,
    });
    doc[name] = value;
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_names_its_metric_dimension_and_value() {
        let line = emf_line(
            Counter::ReplicateAccountFaults,
            3,
            "realstaging-prod",
            1_764_000_000_000,
        );
        let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(!line.contains('\n'));
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "RealStaging");
        assert_eq!(directive["Dimensions"], json!([["Stack"]]));
        assert_eq!(directive["Metrics"][0]["Name"], "ReplicateAccountFaults");
        assert_eq!(doc["_aws"]["Timestamp"], 1_764_000_000_000u64);
        assert_eq!(doc["Stack"], "realstaging-prod");
        assert_eq!(doc["ReplicateAccountFaults"], 3);
    }

    #[test]
    fn an_amount_is_a_decimal_without_a_count_unit() {
        let line = emf_document(Amount::ModelSpendUsd.name(), "None", json!(0.0125), "s", 1);
        let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0],
            json!({"Name": "ModelSpendUsd", "Unit": "None"})
        );
        assert_eq!(doc["ModelSpendUsd"], 0.0125);
    }
}

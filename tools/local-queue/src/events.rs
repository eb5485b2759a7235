//! The JSON that Lambda itself would send: an SQS batch for the worker and an EventBridge
//! "Scheduled Event" for the reconciler, and Lambda's reading of the worker's partial-batch answer.
//!
//! Shapes follow the AWS documentation (Lambda "Using Lambda with Amazon SQS", example event;
//! EventBridge "Scheduled Event"); the tests read them back with the `aws_lambda_events` types the
//! functions use, so a drift shows up here and not as a confusing local failure.

use std::collections::BTreeSet;

use shared::chrono::{DateTime, SecondsFormat, Utc};
use shared::reqwest::Url;
use shared::serde_json::{Map, Value, json};
use shared::uuid::Uuid;

/// Used when the queue URL does not carry a 12-digit account id (moto's URLs do).
pub const PLACEHOLDER_ACCOUNT: &str = "000000000000";

pub use shared::staging::queue::ReceivedMessage;

/// Where the messages come from, as the event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSource {
    pub region: String,
    pub account: String,
    pub queue_name: String,
}

impl QueueSource {
    /// Queue URLs look like `http(s)://<host>/<account id>/<queue name>` (AWS and moto alike).
    pub fn from_queue_url(url: &Url, region: &str) -> Option<Self> {
        let mut segments = url.path_segments()?.filter(|s| !s.is_empty());
        let first = segments.next()?;
        let (account, queue_name) = match segments.next() {
            Some(name) => (first, name),
            None => (PLACEHOLDER_ACCOUNT, first),
        };
        let account = if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
            account
        } else {
            PLACEHOLDER_ACCOUNT
        };
        Some(QueueSource {
            region: region.to_string(),
            account: account.to_string(),
            queue_name: queue_name.to_string(),
        })
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:sqs:{}:{}:{}", self.region, self.account, self.queue_name)
    }
}

/// The event the Lambda SQS event source mapping sends for a batch.
pub fn sqs_event(messages: &[ReceivedMessage], source: &QueueSource) -> Value {
    let arn = source.arn();
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let mut record = Map::new();
            record.insert("messageId".into(), json!(m.message_id));
            record.insert("receiptHandle".into(), json!(m.receipt_handle));
            record.insert("body".into(), json!(m.body));
            record.insert("attributes".into(), json!(m.attributes));
            record.insert("messageAttributes".into(), json!({}));
            if let Some(md5) = &m.md5_of_body {
                record.insert("md5OfBody".into(), json!(md5));
            }
            record.insert("eventSource".into(), json!("aws:sqs"));
            record.insert("eventSourceARN".into(), json!(arn));
            record.insert("awsRegion".into(), json!(source.region));
            Value::Object(record)
        })
        .collect();
    json!({ "Records": records })
}

/// The event an EventBridge schedule (`rate(...)`, SAM `Type: Schedule`) sends.
pub fn scheduled_event(source: &QueueSource, rule_name: &str, now: DateTime<Utc>) -> Value {
    json!({
        "version": "0",
        "id": Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": source.account,
        "time": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": source.region,
        "resources": [format!("arn:aws:events:{}:{}:rule/{rule_name}", source.region, source.account)],
        "detail": {}
    })
}

/// What Lambda makes of a worker's answer with `ReportBatchItemFailures` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every message succeeded: delete them all.
    AllSucceeded,
    /// These message ids failed (each one is in the batch): keep them, delete the rest.
    SomeFailed(BTreeSet<String>),
    /// The whole batch counts as failed: delete nothing. The text says why.
    AllFailed(String),
}

/// Lambda's documented rules: an empty/null answer or `batchItemFailures` list is full success;
/// invalid JSON, or an item whose `itemIdentifier` is missing, empty, null or not a message id of
/// this batch, fails the whole batch.
pub fn read_batch_response(body: &[u8], batch_ids: &BTreeSet<String>) -> BatchOutcome {
    if body.iter().all(u8::is_ascii_whitespace) {
        return BatchOutcome::AllSucceeded;
    }
    let value: Value = match shared::serde_json::from_slice(body) {
        Ok(value) => value,
        Err(err) => return BatchOutcome::AllFailed(format!("the answer is not JSON ({err})")),
    };
    let failures = match &value {
        Value::Null => return BatchOutcome::AllSucceeded,
        Value::Object(fields) => match fields.get("batchItemFailures") {
            None | Some(Value::Null) => return BatchOutcome::AllSucceeded,
            Some(Value::Array(items)) => items,
            Some(other) => return BatchOutcome::AllFailed(format!("batchItemFailures is not a list: {other}")),
        },
        other => return BatchOutcome::AllFailed(format!("the answer is not a JSON object: {}", preview(other))),
    };
    let mut failed = BTreeSet::new();
    for item in failures {
        match item.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if batch_ids.contains(id) => {
                failed.insert(id.to_string());
            }
            _ => {
                return BatchOutcome::AllFailed(format!(
                    "batchItemFailures holds {}, which is not a message id of this batch",
                    preview(item)
                ));
            }
        }
    }
    if failed.is_empty() {
        BatchOutcome::AllSucceeded
    } else {
        BatchOutcome::SomeFailed(failed)
    }
}

/// A value shortened for one log line.
pub fn preview(value: &Value) -> String {
    truncate(&value.to_string(), 300)
}

pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::aws_lambda_events::event::eventbridge::EventBridgeEvent;
    use shared::aws_lambda_events::event::sqs::SqsEvent;
    use shared::chrono::TimeZone;

    fn message(id: &str, body: &str) -> ReceivedMessage {
        ReceivedMessage {
            message_id: id.to_string(),
            receipt_handle: format!("handle-{id}"),
            body: body.to_string(),
            md5_of_body: Some("0123456789abcdef0123456789abcdef".to_string()),
            attributes: [
                ("ApproximateReceiveCount", "2"),
                ("SentTimestamp", "1764000000000"),
                ("SenderId", "AIDAIT2UOQQY3AUEKVGXU"),
                ("ApproximateFirstReceiveTimestamp", "1764000000123"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }

    fn moto_source() -> QueueSource {
        let url = Url::parse("http://127.0.0.1:5000/123456789012/realstaging-jobs").unwrap();
        QueueSource::from_queue_url(&url, "us-east-1").unwrap()
    }

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_source_comes_from_the_queue_url() {
        let source = moto_source();
        assert_eq!(source.arn(), "arn:aws:sqs:us-east-1:123456789012:realstaging-jobs");
        let url = Url::parse("http://localhost:4566/queue/jobs").unwrap();
        let source = QueueSource::from_queue_url(&url, "eu-west-1").unwrap();
        assert_eq!(source.arn(), "arn:aws:sqs:eu-west-1:000000000000:jobs");
        let url = Url::parse("http://localhost:4566/").unwrap();
        assert_eq!(QueueSource::from_queue_url(&url, "eu-west-1"), None);
    }

    #[test]
    fn the_sqs_event_has_the_lambda_shape_and_reads_back_as_an_sqs_event() {
        let body = r#"{"version":1,"job_id":"27168fe5-1f66-416d-ae59-4622a55a2249","image_id":"d41ca52e-e14c-4516-bf4b-8be584278143"}"#;
        let event = sqs_event(&[message("m-1", body), message("m-2", "not json")], &moto_source());

        let record = &event["Records"][0];
        let keys: BTreeSet<&str> = record.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "messageId",
                "receiptHandle",
                "body",
                "attributes",
                "messageAttributes",
                "md5OfBody",
                "eventSource",
                "eventSourceARN",
                "awsRegion"
            ])
        );
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(record["messageAttributes"], json!({}));

        let parsed: SqsEvent = shared::serde_json::from_value(event).unwrap();
        assert_eq!(parsed.records.len(), 2);
        let first = &parsed.records[0];
        assert_eq!(first.message_id.as_deref(), Some("m-1"));
        assert_eq!(first.receipt_handle.as_deref(), Some("handle-m-1"));
        assert_eq!(first.body.as_deref(), Some(body));
        assert_eq!(first.md5_of_body.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(first.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(
            first.event_source_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:realstaging-jobs")
        );
        assert_eq!(first.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(first.attributes["SentTimestamp"], "1764000000000");
        assert_eq!(first.attributes["SenderId"], "AIDAIT2UOQQY3AUEKVGXU");
        assert_eq!(first.attributes["ApproximateFirstReceiveTimestamp"], "1764000000123");
        assert!(first.message_attributes.is_empty());
        assert_eq!(parsed.records[1].body.as_deref(), Some("not json"));
    }

    #[test]
    fn a_message_without_md5_leaves_the_field_out() {
        let mut m = message("m-1", "{}");
        m.md5_of_body = None;
        let event = sqs_event(&[m], &moto_source());
        assert!(event["Records"][0].get("md5OfBody").is_none());
        let parsed: SqsEvent = shared::serde_json::from_value(event).unwrap();
        assert_eq!(parsed.records[0].md5_of_body, None);
    }

    #[test]
    fn the_scheduled_event_reads_back_as_an_eventbridge_event() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 5).unwrap();
        let event = scheduled_event(&moto_source(), "reconcile-schedule", now);
        assert_eq!(event["time"], "2026-11-25T10:00:05Z");
        let parsed: EventBridgeEvent<Value> = shared::serde_json::from_value(event).unwrap();
        assert_eq!(parsed.detail_type, "Scheduled Event");
        assert_eq!(parsed.source, "aws.events");
        assert_eq!(parsed.version.as_deref(), Some("0"));
        assert_eq!(parsed.account.as_deref(), Some("123456789012"));
        assert_eq!(parsed.region.as_deref(), Some("us-east-1"));
        assert_eq!(parsed.time, Some(now));
        assert_eq!(
            parsed.resources,
            Some(vec![
                "arn:aws:events:us-east-1:123456789012:rule/reconcile-schedule".to_string()
            ])
        );
        assert_eq!(parsed.detail, json!({}));
        assert!(parsed.id.is_some_and(|id| Uuid::parse_str(&id).is_ok()));
    }

    #[test]
    fn empty_and_null_answers_mean_full_success() {
        let batch = ids(&["a", "b"]);
        for body in [
            "",
            "  \n",
            "null",
            "{}",
            r#"{"batchItemFailures":null}"#,
            r#"{"batchItemFailures":[]}"#,
        ] {
            assert_eq!(
                read_batch_response(body.as_bytes(), &batch),
                BatchOutcome::AllSucceeded,
                "{body:?}"
            );
        }
    }

    #[test]
    fn listed_ids_fail_and_the_rest_succeed() {
        let batch = ids(&["a", "b", "c"]);
        let body = br#"{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"c"},{"itemIdentifier":"b"}]}"#;
        assert_eq!(
            read_batch_response(body, &batch),
            BatchOutcome::SomeFailed(ids(&["b", "c"]))
        );
    }

    #[test]
    fn a_bad_answer_fails_the_whole_batch() {
        let batch = ids(&["a", "b"]);
        for body in [
            "not json",
            "[]",
            r#""ok""#,
            r#"{"batchItemFailures":{}}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"itemId":"a"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"zzz"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":1}]}"#,
        ] {
            assert!(
                matches!(read_batch_response(body.as_bytes(), &batch), BatchOutcome::AllFailed(_)),
                "{body:?}"
            );
        }
    }

    #[test]
    fn truncate_cuts_on_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééééé", 2), "éé…");
    }
}

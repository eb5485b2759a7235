//! The staging job queue (Amazon SQS; any SQS-compatible endpoint locally and in tests).
//!
//! The message body is a small versioned JSON contract (docs/queue.md): it names the job, and the
//! worker reads everything else from the database, so a message can never carry stale or forged
//! job details.

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use crate::db::jobs::JobRef;
use crate::platform::config::{ConfigError, Env, Secret};

pub const JOB_MESSAGE_VERSION: u32 = 1;

/// The body of one SQS message: `{"version":1,"job_id":"…","image_id":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMessage {
    pub version: u32,
    pub job_id: Uuid,
    pub image_id: Uuid,
}

impl JobMessage {
    pub fn new(job_id: Uuid, image_id: Uuid) -> Self {
        JobMessage {
            version: JOB_MESSAGE_VERSION,
            job_id,
            image_id,
        }
    }

    /// Reads a message body; anything but this version's exact shape is refused with the reason.
    pub fn parse(body: &str) -> Result<Self, String> {
        let message: JobMessage = serde_json::from_str(body).map_err(|e| format!("not a job message: {e}"))?;
        if message.version != JOB_MESSAGE_VERSION {
            return Err(format!("unsupported job message version {}", message.version));
        }
        Ok(message)
    }

    /// The body as stored with the job (`jobs.payload_json`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "version": self.version, "job_id": self.job_id, "image_id": self.image_id })
    }

    /// The job this message names.
    pub fn job(&self) -> JobRef {
        JobRef {
            job_id: self.job_id,
            image_id: self.image_id,
        }
    }
}

impl From<JobRef> for JobMessage {
    fn from(job: JobRef) -> Self {
        JobMessage::new(job.job_id, job.image_id)
    }
}

#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub queue_url: Url,
    /// `AWS_ENDPOINT_URL_SQS` (the SDK's standard variable): a local SQS-compatible endpoint.
    pub endpoint: Option<Url>,
    pub region: String,
    /// Explicit credentials (tests); `None` uses the default AWS chain (the Lambda role).
    pub credentials: Option<(String, Secret)>,
}

impl QueueConfig {
    /// `SQS_QUEUE_URL`, `AWS_ENDPOINT_URL_SQS` (optional), `AWS_REGION` (set by Lambda; else
    /// taken from the queue URL's host `sqs.<region>.amazonaws.com`).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let queue_url = env.url("SQS_QUEUE_URL")?;
        let endpoint = env
            .optional("AWS_ENDPOINT_URL_SQS")
            .map(|raw| Url::parse(&raw).map_err(|e| ConfigError::invalid("AWS_ENDPOINT_URL_SQS", e.to_string())))
            .transpose()?;
        let region = match env.optional("AWS_REGION") {
            Some(region) => region,
            None => queue_url
                .host_str()
                .and_then(|h| h.strip_prefix("sqs."))
                .and_then(|h| h.split('.').next())
                .map(str::to_string)
                .ok_or(ConfigError::Missing("AWS_REGION"))?,
        };
        Ok(QueueConfig {
            queue_url,
            endpoint,
            region,
            credentials: None,
        })
    }
}

/// One message as received from the queue, independent of the SDK's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub md5_of_body: Option<String>,
    /// System attributes by name (ApproximateReceiveCount, SentTimestamp, SenderId,
    /// ApproximateFirstReceiveTimestamp, ...), exactly as SQS returned them.
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl ReceivedMessage {
    pub fn receive_count(&self) -> Option<&str> {
        self.attributes.get("ApproximateReceiveCount").map(String::as_str)
    }
}

#[derive(Clone)]
pub struct JobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl JobQueue {
    pub async fn new(config: &QueueConfig) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(config.region.clone()));
        if let Some((id, secret)) = &config.credentials {
            loader = loader.credentials_provider(Credentials::new(id, secret.expose(), None, None, "static"));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_sqs::config::Builder::from(&shared);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.as_str().trim_end_matches('/'));
        }
        JobQueue {
            client: aws_sdk_sqs::Client::from_conf(builder.build()),
            queue_url: config.queue_url.to_string(),
        }
    }

    /// The SDK client, for setting up queues (local stack, tests). Everything the product does
    /// with the queue goes through the methods here.
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Receives up to `max` (1–10) messages, waiting up to `wait` seconds for the first (long
    /// polling), with their system attributes: what Lambda's SQS poller does, for the local stack.
    pub async fn receive(&self, max: i32, wait_seconds: i32) -> Result<Vec<ReceivedMessage>, anyhow::Error> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await?;
        Ok(output
            .messages()
            .iter()
            .filter_map(|message| {
                Some(ReceivedMessage {
                    message_id: message.message_id()?.to_string(),
                    receipt_handle: message.receipt_handle()?.to_string(),
                    body: message.body().unwrap_or_default().to_string(),
                    md5_of_body: message.md5_of_body().map(str::to_string),
                    attributes: message
                        .attributes()
                        .into_iter()
                        .flatten()
                        .map(|(name, value)| (name.as_str().to_string(), value.clone()))
                        .collect(),
                })
            })
            .collect())
    }

    /// Deletes a received message (it was handled).
    pub async fn delete(&self, receipt_handle: &str) -> Result<(), anyhow::Error> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await?;
        Ok(())
    }

    /// Makes a received message visible again after `after` instead of the queue's full
    /// visibility timeout (best effort: if this fails it simply comes back later).
    pub async fn return_after(&self, receipt_handle: &str, after: std::time::Duration) {
        let seconds = after.as_secs().min(43_200) as i32;
        if let Err(err) = self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
        {
            tracing::warn!(error = %anyhow::Error::new(err), "could not shorten the message's visibility");
        }
    }

    /// Sends the messages (in SQS batches of ten) and returns the job ids SQS accepted. A batch
    /// that fails as a whole is logged and its jobs are simply absent from the result: the caller
    /// leaves them marked unsent and the reconciler sends them again.
    pub async fn send(&self, messages: &[JobMessage]) -> Vec<Uuid> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        let mut accepted = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    let body = serde_json::to_string(m).ok()?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .ok()
                })
                .collect();
            match self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    for ok in out.successful() {
                        if let Some(m) = ok.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                            accepted.push(m.job_id);
                        }
                    }
                    for failed in out.failed() {
                        tracing::warn!(entry = failed.id(), code = failed.code(), message = ?failed.message(), "SQS refused a job message; it stays marked unsent");
                    }
                }
                Err(err) => {
                    let err = anyhow::Error::new(err);
                    tracing::warn!(error = %format!("{err:#}"), jobs = chunk.len(), "sending job messages failed; they stay marked unsent");
                }
            }
        }
        accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_message_contract_is_small_and_versioned() {
        let (job, image) = (Uuid::nil(), Uuid::max());
        let text = serde_json::to_string(&JobMessage::new(job, image)).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"job_id":"00000000-0000-0000-0000-000000000000","image_id":"ffffffff-ffff-ffff-ffff-ffffffffffff"}"#
        );
        let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(JobMessage::new(job, image).to_json(), stored);
        assert!(JobMessage::parse(r#"{"version":1,"job_id":"x"}"#).is_err());
        let v2 = text.replace(r#""version":1"#, r#""version":2"#);
        assert_eq!(JobMessage::parse(&v2).unwrap_err(), "unsupported job message version 2");
    }

    #[test]
    fn region_comes_from_the_queue_url_when_not_set() {
        let vars: HashMap<&str, &str> = [("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123/jobs")].into();
        assert_eq!(QueueConfig::from_env(&Env(&vars)).unwrap().region, "eu-west-1");
        let vars: HashMap<&str, &str> = [("SQS_QUEUE_URL", "http://127.0.0.1:5000/123/jobs")].into();
        assert_eq!(QueueConfig::from_env(&Env(&vars)).unwrap_err().variable(), "AWS_REGION");
    }
}

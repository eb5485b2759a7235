//! Live image status for `GET /api/v1/events?image_id=` as Server-Sent Events, in a shape that
//! survives API Gateway HTTP APIs (which buffer a Lambda's whole response: nothing streams).
//!
//! Long-poll SSE: every response is short and complete, and EventSource's own reconnect loop
//! (`retry:` and the `Last-Event-ID` header it sends back) turns the responses into a stream.
//! An event's id is `<status>:<updated_at in unix microseconds>`, so "has anything changed since
//! the client's last event" is a string comparison against the current row:
//!
//! * no `Last-Event-ID`, or a different one (malformed ones included): the current status at once;
//! * the same id and a terminal status (`ready`, `error`): nothing more will come → 204, which
//!   tells EventSource to stop reconnecting;
//! * the same id, still `queued`/`processing`: poll the row every [`POLL_INTERVAL`] for up to the
//!   caller's bound, answering the moment it changes, else a `: no change` comment (the client
//!   simply reconnects with the same id). A wait holds a Lambda instance, so each takes a lease
//!   (`db::event_streams`): a user may have [`MAX_WAITING_PER_USER`] waits at once, one more is
//!   a 429 with `Retry-After`.
//!
//! See docs/events.md for the wire format, the client code and the costs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tokio::time::Instant;
use uuid::Uuid;

use crate::db::event_streams::{self, Lease};
use crate::db::images::{self, Image, ImageStatus};
use crate::platform::error::ApiError;

/// The reconnection delay EventSource is told to use (the `retry:` field), in milliseconds.
pub const RETRY_MS: u64 = 3000;
/// How often a waiting request re-reads the image row.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long a request waits for a change in production: well under API Gateway's 30 s
/// integration timeout (and the function's 15 s timeout), so a quiet image ends in a normal 200.
/// Short, because a waiting request holds a whole Lambda instance (and its database pool).
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// How many waits one user may have in progress at once (over all images, tabs and devices).
/// One more is a 429 with `Retry-After`; answers that do not wait (a changed status, a 204) are
/// never refused. Browsers hold ~6 connections per origin anyway; docs/events.md says to follow
/// a handful of images and poll the image list for batches.
pub const MAX_WAITING_PER_USER: i64 = 5;
/// A lease outlives its wait by this much before it counts as abandoned (an instance that died
/// mid-wait never deletes its lease).
const LEASE_SLACK: Duration = Duration::from_secs(10);

/// The `data:` of a `status` event (one line of JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusEvent {
    pub image_id: Uuid,
    pub status: ImageStatus,
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Image> for StatusEvent {
    fn from(image: &Image) -> Self {
        StatusEvent {
            image_id: image.id,
            status: image.status,
            error: image.error.clone(),
            updated_at: image.updated_at,
        }
    }
}

impl StatusEvent {
    /// `<status>:<updated_at as unix microseconds>`. `updated_at` is set by a trigger on every
    /// UPDATE and Postgres keeps microseconds, so any change of the row changes the id.
    pub fn id(&self) -> String {
        format!("{}:{}", self.status.as_str(), self.updated_at.timestamp_micros())
    }

    /// `ready` and `error` are final: nothing will change after them.
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
}

/// What one request of the event stream answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// 200 with this event (the status differs from what the client last saw).
    Event(StatusEvent),
    /// 200 with only the retry hint and a comment: nothing changed within the wait.
    NoChange,
    /// 204: the client has already seen the final status; EventSource stops reconnecting.
    Finished,
}

/// Decides the answer for the owner's image given the client's `Last-Event-ID`, waiting up to
/// `max_wait` (polling every [`POLL_INTERVAL`]) when the client is already up to date.
/// A missing, deleted or foreign image — before or during the wait — is a 404.
pub async fn next(
    db: &PgPool,
    owner: Uuid,
    image_id: Uuid,
    last_event_id: Option<&str>,
    max_wait: Duration,
) -> Result<Next, ApiError> {
    let deadline = Instant::now() + max_wait;
    let current = load(db, owner, image_id).await?;
    let last = match last_event_id {
        Some(last) if last == current.id() => last,
        _ => return Ok(Next::Event(current)),
    };
    if current.is_terminal() {
        return Ok(Next::Finished);
    }
    let lease = match event_streams::acquire(db, owner, MAX_WAITING_PER_USER, max_wait + LEASE_SLACK).await? {
        Lease::Granted(id) => id,
        Lease::Full { oldest_taken_at } => {
            // The oldest wait ends by the time it was taken plus the wait bound.
            let frees_at = oldest_taken_at + chrono::Duration::from_std(max_wait).unwrap_or_default();
            let seconds = ((frees_at - Utc::now()).num_milliseconds() + 999) / 1000;
            let retry_after_secs = seconds.clamp(1, max_wait.as_secs().max(1) as i64) as u64;
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "You are following too many images at once (at most {MAX_WAITING_PER_USER}); \
                     close some or retry in {retry_after_secs} s"
                ),
                retry_after_secs,
            });
        }
    };
    let outcome = wait_for_change(db, owner, image_id, last, deadline).await;
    if let Err(err) = event_streams::release(db, lease).await {
        tracing::warn!(error = %err, "could not release an event stream lease; it expires on its own");
    }
    outcome
}

/// Re-reads the row every [`POLL_INTERVAL`] until its id differs from `last` or `deadline` passes.
async fn wait_for_change(
    db: &PgPool,
    owner: Uuid,
    image_id: Uuid,
    last: &str,
    deadline: Instant,
) -> Result<Next, ApiError> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(Next::NoChange);
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
        let current = load(db, owner, image_id).await?;
        if current.id() != last {
            return Ok(Next::Event(current));
        }
    }
}

async fn load(db: &PgPool, owner: Uuid, image_id: Uuid) -> Result<StatusEvent, ApiError> {
    let image = images::find_owned(db, owner, image_id)
        .await?
        .ok_or(ApiError::NotFound("image"))?;
    Ok(StatusEvent::from(&image))
}

/// The `text/event-stream` body of a 200: the retry hint, then the event or the comment.
pub fn render(next: &Next) -> String {
    let mut body = format!("retry: {RETRY_MS}\n\n");
    match next {
        Next::Event(event) => {
            // serde_json escapes control characters, so the data is always a single line.
            let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_string());
            body.push_str(&format!("id: {}\nevent: status\ndata: {data}\n\n", event.id()));
        }
        Next::NoChange => body.push_str(": no change\n\n"),
        Next::Finished => {}
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event(status: ImageStatus, error: Option<&str>) -> StatusEvent {
        StatusEvent {
            image_id: Uuid::nil(),
            status,
            error: error.map(str::to_string),
            updated_at: Utc.timestamp_micros(1_795_000_000_123_456).unwrap(),
        }
    }

    #[test]
    fn id_is_status_and_microseconds() {
        assert_eq!(event(ImageStatus::Queued, None).id(), "queued:1795000000123456");
        assert!(event(ImageStatus::Ready, None).is_terminal());
        assert!(event(ImageStatus::Error, Some("x")).is_terminal());
        assert!(!event(ImageStatus::Processing, None).is_terminal());
    }

    #[test]
    fn rendered_event_is_one_data_line_even_with_newlines_in_the_error() {
        let body = render(&Next::Event(event(ImageStatus::Error, Some("line one\nline two\r\n"))));
        assert!(body.starts_with("retry: 3000\n\n"), "{body}");
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines[2], "id: error:1795000000123456");
        assert_eq!(lines[3], "event: status");
        assert!(lines[4].starts_with("data: {"), "{body}");
        assert_eq!(body.matches("data:").count(), 1);
        assert!(body.ends_with("}\n\n"));
        let data: serde_json::Value = serde_json::from_str(lines[4].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["error"], "line one\nline two\r\n");
        assert_eq!(data["updated_at"], "2026-11-18T11:06:40.123456Z");
    }

    #[test]
    fn no_change_is_a_comment() {
        assert_eq!(render(&Next::NoChange), "retry: 3000\n\n: no change\n\n");
    }
}

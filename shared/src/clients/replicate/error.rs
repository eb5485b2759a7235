//! What can go wrong talking to Replicate, and how the worker should read each failure.

use std::time::Duration;

use super::OutputRefused;

/// Everything that can go wrong talking to Replicate. None of these carry the token.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error("Replicate is throttling requests (429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("Replicate answered with server error {status}")]
    Server { status: u16 },
    #[error("request to Replicate failed: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("request to Replicate timed out after {after:?}")]
    TimedOut { after: Duration },
    #[error("Replicate refused the request ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    #[error("not found on Replicate")]
    NotFound,
    #[error("Replicate answered with something that is not a prediction: {0}")]
    InvalidResponse(#[source] serde_json::Error),
    #[error("the response is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("`{0}` is not a model id of the form owner/name")]
    InvalidModelId(String),
    #[error("only http and https URLs can be downloaded, not `{scheme}`")]
    UnsupportedUrl { scheme: String },
    #[error("the Replicate base URL cannot have paths appended")]
    InvalidBaseUrl,
    #[error("the Replicate API token contains characters that cannot be sent in a header")]
    InvalidToken,
    #[error("Replicate's list pointed to a next page elsewhere than its API")]
    InvalidNextPage,
    /// The output URL (or a redirect from it, or its DNS answer) is outside the download
    /// allowlist ([`OutputPolicy`]): nothing was, or will be, fetched from it.
    #[error("output download refused: {0}")]
    OutputRefused(#[source] OutputRefused),
}

impl ReplicateError {
    /// Worth trying again later (at the job level): throttling, server errors, network trouble.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ReplicateError::Throttled { .. }
                | ReplicateError::Server { .. }
                | ReplicateError::Transport(_)
                | ReplicateError::TimedOut { .. }
        )
    }

    /// A fault of the operator's account, not of the photo: the token is wrong or rotated (401),
    /// the account is out of credit (402), access to the model was lost (403), or the model does
    /// not exist (a create's 404). Retrying will not help until the operator acts; failing the
    /// user's job for it would be wrong.
    pub fn is_account_fault(&self) -> bool {
        matches!(self, ReplicateError::Rejected { status: 401..=404, .. })
    }

    /// Replicate may have acted on the request although the answer was lost or unusable: a server
    /// error, a dropped connection, a timeout, or a 2xx body that is not a prediction.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            ReplicateError::Server { .. }
                | ReplicateError::Transport(_)
                | ReplicateError::TimedOut { .. }
                | ReplicateError::InvalidResponse(_)
                | ReplicateError::TooLarge { .. }
        )
    }

    /// The wait Replicate asked for, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ReplicateError::Throttled { retry_after } => *retry_after,
            _ => None,
        }
    }
}

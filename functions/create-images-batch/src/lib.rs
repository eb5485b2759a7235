//! TODO(issue 3): being written.

use shared::http::ApiResult;
use shared::lambda_http::Request;
use shared::state::StagingState;

pub async fn handle(_state: &StagingState, _req: Request) -> ApiResult {
    Err(shared::ApiError::NotFound("route"))
}

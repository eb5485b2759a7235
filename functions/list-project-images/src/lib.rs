//! TODO(issue 3): being written.

use shared::http::ApiResult;
use shared::lambda_http::Request;
use shared::state::StorageState;

pub async fn handle(_state: &StorageState, _req: Request) -> ApiResult {
    Err(shared::ApiError::NotFound("route"))
}

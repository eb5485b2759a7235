//! TODO(issue 3): being written.

use shared::http::ApiResult;
use shared::lambda_http::Request;
use shared::state::ApiState;

pub async fn handle(_state: &ApiState, _req: Request) -> ApiResult {
    Err(shared::ApiError::NotFound("route"))
}

//! `GET /api/v1/user/profile`: the caller's profile (the user row is created on the first call).

use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::ApiState;
use shared::profile::ProfileView;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    ok(&ProfileView::from(user))
}

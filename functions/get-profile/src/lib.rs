//! `GET /api/v1/user/profile`: the caller's profile (the user row is created on the first call).

use shared::http::{ApiResult, ok};
use shared::lambda_http::Request;
use shared::profile::ProfileView;
use shared::state::ApiState;

pub async fn handle(state: &ApiState, req: Request) -> ApiResult {
    let user = state.current_user(&req).await?;
    ok(&ProfileView::from(user))
}

//! `GET /s/{token}`: the public disclosure page of a shared image or project (no sign-in; the
//! unguessable token is the key). See [`shared::sharing::page`].

use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, path_param};
use shared::platform::state::SharePageState;

pub async fn handle(state: &SharePageState, req: Request) -> ApiResult {
    let token = path_param(&req, "token")?;
    shared::sharing::page::handle(state, token).await
}

//! `POST /api/v1/uploads/presign`: a presigned PUT for one original photo
//! (see [`shared::staging::uploads`]).

use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, json_body, ok};
use shared::platform::state::StorageState;
use shared::staging::uploads::{PresignUploadBody, presign_upload};

pub async fn handle(state: &StorageState, req: Request) -> ApiResult {
    let user = state.api.current_user(&req).await?;
    let upload = json_body::<PresignUploadBody>(&req)?.validate()?;
    ok(&presign_upload(&state.storage, user.id, upload).await?)
}

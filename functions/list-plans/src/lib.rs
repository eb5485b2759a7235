//! `GET /api/v1/plans`: the subscription plans, public.

use serde::Serialize;
use shared::db::plans::{self, Plan};
use shared::http_types::{HeaderValue, header};
use shared::lambda_http::Request;
use shared::platform::http::{ApiResult, ok};
use shared::platform::state::PublicState;
use shared::serde;

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct PlanView {
    code: String,
    name: String,
    monthly_limit: i32,
    price_id: Option<String>,
}

#[derive(Serialize)]
#[serde(crate = "shared::serde")]
struct PlanList {
    plans: Vec<PlanView>,
}

pub async fn handle(state: &PublicState, _req: Request) -> ApiResult {
    let plans = plans::list_active(&state.db)
        .await?
        .into_iter()
        .map(
            |Plan {
                 code,
                 name,
                 price_id,
                 monthly_limit,
             }| PlanView {
                code,
                name,
                monthly_limit,
                price_id,
            },
        )
        .collect();
    let mut response = ok(&PlanList { plans })?;
    // The same for everyone and changed only by a deploy.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}

//! HTTP glue shared by every API function: reading requests (JSON bodies with a size limit, path
//! and query parameters), writing JSON responses, and [`respond`], the wrapper every handler runs
//! inside (request span and id, CORS, security headers, error mapping, one access-log line).

mod request;
mod respond;

pub use request::{JSON_BODY_LIMIT, json_body, path_param, path_uuid, query_param, reject_query_token, request_id};
pub use respond::respond;

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

/// What a handler returns; errors become responses in [`crate::platform::error::ApiError::into_response`].
pub type ApiResult = Result<Response<Body>, crate::platform::error::ApiError>;

/// A JSON response. Serialising our own response types cannot fail; if it ever did, the client
/// gets a plain 500 rather than a panic.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut response = Response::new(Body::Binary(bytes));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "response serialisation failed");
            let mut response = Response::new(Body::Text(
                r#"{"error":"internal_server_error","message":"An internal error occurred."}"#.into(),
            ));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
    }
}

/// `200 OK` with a JSON body.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> ApiResult {
    Ok(json_response(StatusCode::OK, value))
}

/// A response without a body (204 and the like).
pub fn empty(status: StatusCode) -> ApiResult {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    Ok(response)
}

use http::header;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::platform::error::{ApiError, FieldError};

/// Bodies of this API are small JSON documents; anything larger is refused before parsing.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Parses the JSON body into `T`.
///
/// * no body, or not JSON at all, or not an object → 400 `bad_request`;
/// * a body sent with another content type → 415;
/// * over [`JSON_BODY_LIMIT`] → 413;
/// * an object whose fields have the wrong type, are missing or unknown → 422 naming the field.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > JSON_BODY_LIMIT {
        return Err(ApiError::PayloadTooLarge { limit: JSON_BODY_LIMIT });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("A JSON request body is required"));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType(
            "Send the request body as JSON with `Content-Type: application/json`".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON ({e})")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("The request body must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        ApiError::Validation(vec![field_error_from_serde(&path, &message)])
    })
}

/// serde reports missing and unknown fields at the parent's path with the name in the message;
/// put the name where a client looks for it.
fn field_error_from_serde(path: &str, message: &str) -> FieldError {
    let parent = if path == "." { "" } else { path };
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(name) = rest.split('`').next()
        {
            // For unknown fields the path already ends with the name; for missing ones it is the parent's.
            let field = if parent.is_empty() || parent == name || parent.ends_with(&format!(".{name}")) {
                if parent.is_empty() {
                    name.to_string()
                } else {
                    parent.to_string()
                }
            } else {
                format!("{parent}.{name}")
            };
            let text = if prefix.starts_with("missing") {
                "is required".to_string()
            } else {
                "is not a known field".to_string()
            };
            return FieldError::new(field, text);
        }
    }
    let field = if parent.is_empty() {
        "body".to_string()
    } else {
        parent.to_string()
    };
    // serde's "invalid type: integer `5`, expected a string" is already a clear message.
    FieldError::new(field, message.split(" at line ").next().unwrap_or(message).to_string())
}

/// A path parameter that must be a UUID: absent or malformed → 400.
pub fn path_uuid(req: &Request, name: &str) -> Result<Uuid, ApiError> {
    let raw = req
        .path_parameters_ref()
        .and_then(|params| params.first(name))
        .ok_or_else(|| ApiError::bad_request(format!("Missing path parameter `{name}`")))?;
    Uuid::parse_str(raw).map_err(|_| ApiError::bad_request(format!("`{name}` must be a UUID")))
}

/// A path parameter as text (a slug or a key): absent → 400. Callers look the value up in a fixed
/// table, so anything else is a 404 there.
pub fn path_param<'a>(req: &'a Request, name: &str) -> Result<&'a str, ApiError> {
    req.path_parameters_ref()
        .and_then(|params| params.first(name))
        .ok_or_else(|| ApiError::bad_request(format!("Missing path parameter `{name}`")))
}

/// The single value of a query parameter; sending it twice is a client error.
pub fn query_param<'a>(req: &'a Request, name: &str) -> Result<Option<&'a str>, ApiError> {
    let Some(params) = req.query_string_parameters_ref() else {
        return Ok(None);
    };
    match params.all(name) {
        None => Ok(None),
        Some(values) if values.len() == 1 => Ok(Some(values[0])),
        Some(_) => Err(ApiError::bad_request(format!(
            "Query parameter `{name}` was given more than once"
        ))),
    }
}

/// Access tokens in URLs end up in access logs and browser history, so they are refused on every
/// route except the Server-Sent Events route (EventSource cannot set headers).
pub fn reject_query_token(req: &Request) -> Result<(), ApiError> {
    let in_query = req
        .query_string_parameters_ref()
        .is_some_and(|params| params.first("access_token").is_some() || params.first("token").is_some());
    if in_query {
        return Err(ApiError::unauthorized(
            "Access tokens are not accepted in the query string; send `Authorization: Bearer <token>`",
        ));
    }
    Ok(())
}

/// The API Gateway request id (what the gateway's access log shows), else the Lambda request id.
pub fn request_id(req: &Request) -> String {
    #[allow(unreachable_patterns)]
    let gateway_id = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    gateway_id
        .filter(|id| !id.is_empty())
        .or_else(|| {
            req.lambda_context_ref()
                .map(|ctx| ctx.request_id.clone())
                .filter(|id| !id.is_empty())
        })
        .unwrap_or_else(|| Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        count: Option<u32>,
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::builder().method("POST").uri("/x");
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        builder.body(Body::Text(body.to_string())).unwrap()
    }

    fn status(result: Result<Sample, ApiError>) -> u16 {
        result.unwrap_err().status().as_u16()
    }

    #[test]
    fn body_errors_map_to_the_right_status() {
        let json = Some("application/json");
        assert!(json_body::<Sample>(&request(json, r#"{"name":"a"}"#)).is_ok());
        assert!(json_body::<Sample>(&request(Some("application/json; charset=utf-8"), r#"{"name":"a"}"#)).is_ok());
        assert_eq!(status(json_body(&request(json, ""))), 400);
        assert_eq!(status(json_body(&request(json, "{\"name\":"))), 400);
        assert_eq!(status(json_body(&request(json, "[1,2]"))), 400);
        assert_eq!(status(json_body(&request(Some("text/plain"), r#"{"name":"a"}"#))), 415);
        assert_eq!(status(json_body(&request(None, r#"{"name":"a"}"#))), 415);
        assert_eq!(status(json_body(&request(json, r#"{"name":5}"#))), 422);
        assert_eq!(status(json_body(&request(json, r#"{}"#))), 422);
        let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(JSON_BODY_LIMIT));
        assert_eq!(status(json_body(&request(json, &big))), 413);
    }

    #[test]
    fn field_errors_name_the_field() {
        let err =
            json_body::<Sample>(&request(Some("application/json"), r#"{"name":"a","role":"admin"}"#)).unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("expected validation error")
        };
        assert_eq!(errors[0].field, "role");
        let err = json_body::<Sample>(&request(Some("application/json"), r#"{}"#)).unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("expected validation error")
        };
        assert_eq!(errors[0], FieldError::new("name", "is required"));
        let err = json_body::<Sample>(&request(Some("application/json"), r#"{"name":"a","count":-1}"#)).unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("expected validation error")
        };
        assert_eq!(errors[0].field, "count");
    }
}

//! Uploading an original photo: the presign request (`POST /api/v1/uploads/presign`), the
//! presigned PUT it answers, and the check that what was uploaded is what was presigned.
//!
//! The key is chosen by the server in the caller's prefix (`uploads/<user id>/<random>.<ext>`);
//! the client's filename is only used to check the extension and never reaches the key. The PUT
//! signs the content type and the exact size, so the store refuses anything else.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::clients::storage::{ImageFormat, MAX_UPLOAD_BYTES, ObjectInfo, Storage, UploadKey};
use crate::platform::error::{ApiError, FieldError};

/// Body of `POST /api/v1/uploads/presign`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresignUploadBody {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub file_size: Option<i64>,
}

/// A validated upload request.
#[derive(Debug, Clone, Copy)]
pub struct UploadRequest {
    pub format: ImageFormat,
    pub size: u64,
}

impl PresignUploadBody {
    pub fn validate(self) -> Result<UploadRequest, ApiError> {
        let mut errors = Vec::new();
        let name_format = match self.filename.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push(FieldError::new("filename", "is required"));
                None
            }
            Some(name) if name.chars().count() > 255 => {
                errors.push(FieldError::new("filename", "must be at most 255 characters"));
                None
            }
            Some(name) if name.chars().any(char::is_control) => {
                errors.push(FieldError::new("filename", "must not contain control characters"));
                None
            }
            Some(name) => match ImageFormat::from_filename(name) {
                Some(format) => Some(format),
                None => {
                    errors.push(FieldError::new("filename", "must end in .jpg, .jpeg, .png or .webp"));
                    None
                }
            },
        };
        let type_format = match self.content_type.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push(FieldError::new("content_type", "is required"));
                None
            }
            Some(ct) => match ImageFormat::from_content_type(ct) {
                Some(format) => Some(format),
                None => {
                    errors.push(FieldError::new(
                        "content_type",
                        "must be image/jpeg, image/png or image/webp",
                    ));
                    None
                }
            },
        };
        if let (Some(by_name), Some(by_type)) = (name_format, type_format)
            && by_name != by_type
        {
            errors.push(FieldError::new(
                "content_type",
                format!(
                    "{} does not match the file extension (expected {})",
                    by_type.content_type(),
                    by_name.content_type()
                ),
            ));
        }
        let size = match self.file_size {
            None => {
                errors.push(FieldError::new("file_size", "is required"));
                None
            }
            Some(size) if size < 1 || size as u64 > MAX_UPLOAD_BYTES => {
                errors.push(FieldError::new(
                    "file_size",
                    format!("must be between 1 byte and {MAX_UPLOAD_BYTES} bytes (10 MiB)"),
                ));
                None
            }
            Some(size) => Some(size as u64),
        };
        match (type_format, size) {
            (Some(format), Some(size)) if errors.is_empty() => Ok(UploadRequest { format, size }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// What `POST /api/v1/uploads/presign` answers.
#[derive(Debug, Serialize)]
pub struct PresignedUpload {
    pub upload_url: String,
    pub file_key: String,
    pub expires_in: u64,
    /// The headers the PUT must carry, exactly (canonical names: `Content-Type`, `Content-Length`).
    pub headers: Map<String, Value>,
}

/// A presigned PUT for one original photo of `owner`, at a fresh server-chosen key.
pub async fn presign_upload(
    storage: &Storage,
    owner: Uuid,
    upload: UploadRequest,
) -> Result<PresignedUpload, ApiError> {
    let key = UploadKey::generate(owner, upload.format).to_string();
    let presigned = storage
        .presign_upload(&key, upload.format, upload.size)
        .await
        .map_err(|e| ApiError::unavailable("Storage is temporarily unavailable", e))?;
    let headers = presigned
        .headers
        .into_iter()
        .map(|(name, value)| (canonical_header_name(&name), Value::String(value)))
        .collect();
    Ok(PresignedUpload {
        upload_url: presigned.url,
        file_key: key,
        expires_in: presigned.expires_in.as_secs(),
        headers,
    })
}

/// `content-type` → `Content-Type` (header names are case-insensitive; clients copy these as shown).
fn canonical_header_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Checks what HEAD says about an uploaded original: present, within limits, the right type.
pub fn check_uploaded(info: Option<&ObjectInfo>, key: &UploadKey) -> Result<(), &'static str> {
    let Some(info) = info else {
        return Err("no file has been uploaded with this key (PUT it to the upload_url first)");
    };
    if info.size == 0 || info.size > MAX_UPLOAD_BYTES {
        return Err("the uploaded file is empty or larger than 10 MiB");
    }
    let declared = info.content_type.as_deref().and_then(ImageFormat::from_content_type);
    if declared != Some(key.format) {
        return Err("the uploaded file's content type does not match its key");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presign(json: &str) -> Result<UploadRequest, ApiError> {
        serde_json::from_str::<PresignUploadBody>(json).unwrap().validate()
    }

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn presign_lists_every_bad_field() {
        assert!(presign(r#"{"filename":"room.JPG","content_type":"image/jpeg","file_size":1}"#).is_ok());
        assert_eq!(
            fields(presign("{}").unwrap_err()),
            vec!["filename", "content_type", "file_size"]
        );
        assert_eq!(
            fields(presign(r#"{"filename":"a.gif","content_type":"text/html","file_size":10485761}"#).unwrap_err()),
            vec!["filename", "content_type", "file_size"]
        );
        assert_eq!(
            fields(presign(r#"{"filename":"a.png","content_type":"image/jpeg","file_size":5}"#).unwrap_err()),
            vec!["content_type"]
        );
        assert!(presign(r#"{"filename":"a.webp","content_type":"image/webp","file_size":10485760}"#).is_ok());
        assert_eq!(
            fields(presign(r#"{"filename":"a.png","content_type":"image/png","file_size":0}"#).unwrap_err()),
            vec!["file_size"]
        );
    }

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
        assert_eq!(canonical_header_name("CONTENT-LENGTH"), "Content-Length");
        assert_eq!(canonical_header_name("x-amz-acl"), "X-Amz-Acl");
    }
}

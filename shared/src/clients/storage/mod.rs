//! Object storage: Backblaze B2 through its S3-compatible API (or any S3-compatible store).
//!
//! Keys are stored in the database, URLs are minted on read: presigned PUTs for uploads (content
//! type and exact size signed) and short-lived presigned GETs for display and download.

pub mod keys;

use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::presigning::PresigningConfig;
use url::Url;

use crate::platform::config::{ConfigError, Env, Secret};

pub use keys::{ImageFormat, JobInputKey, UploadKey, disclosed_key, staged_key};

/// Uploads are capped at 10 MiB.
pub const MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;
/// How long a presigned upload URL stays valid.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(900);
/// Presigned GETs: default and upper bound.
pub const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(600);
pub const MAX_DOWNLOAD_URL_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Custom endpoint (B2: `https://s3.<region>.backblazeb2.com`); `None` means AWS S3.
    pub endpoint: Option<Url>,
    pub region: String,
    pub bucket: String,
    /// Static credentials (B2 application key); `None` uses the default AWS chain.
    pub credentials: Option<(String, Secret)>,
    pub path_style: bool,
}

impl StorageConfig {
    /// `S3_ENDPOINT`, `S3_REGION`, `S3_BUCKET_NAME`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`, `S3_USE_PATH_STYLE`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let endpoint = match env.optional("S3_ENDPOINT") {
            None => None,
            Some(raw) => {
                let url =
                    Url::parse(&raw).map_err(|e| ConfigError::invalid("S3_ENDPOINT", format!("not a URL ({e})")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(ConfigError::invalid("S3_ENDPOINT", "must be an http(s) URL"));
                }
                Some(url)
            }
        };
        let region = env.required("S3_REGION")?;
        let bucket = env.required("S3_BUCKET_NAME")?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !bucket_ok {
            return Err(ConfigError::invalid(
                "S3_BUCKET_NAME",
                "must be a valid bucket name (3-63 of a-z 0-9 - .)",
            ));
        }
        let credentials = match (env.optional("S3_ACCESS_KEY"), env.optional("S3_SECRET_KEY")) {
            (Some(id), Some(secret)) => Some((id, Secret::new(secret))),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Missing("S3_SECRET_KEY")),
            (None, Some(_)) => return Err(ConfigError::Missing("S3_ACCESS_KEY")),
        };
        let path_style = match env
            .optional("S3_USE_PATH_STYLE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => return Err(ConfigError::invalid("S3_USE_PATH_STYLE", "must be true or false")),
        };
        Ok(StorageConfig {
            endpoint,
            region,
            bucket,
            credentials,
            path_style,
        })
    }
}

/// Presigning settings for an expiry (exposed so tests can mint already-expired URLs).
pub fn presigning_config(expires_in: Duration) -> anyhow::Result<PresigningConfig> {
    Ok(PresigningConfig::expires_in(expires_in)?)
}

/// An object bigger than the caller was willing to read.
#[derive(Debug, thiserror::Error)]
#[error("the object is {size} bytes; at most {limit} are read")]
pub struct ObjectTooLarge {
    pub size: u64,
    pub limit: usize,
}

/// What a HEAD of an object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub content_type: Option<String>,
}

/// A presigned request: the URL and the headers the caller must send with it.
#[derive(Debug, Clone)]
pub struct PresignedRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expires_in: Duration,
}

#[derive(Clone)]
pub struct Storage {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl Storage {
    /// The one S3 client constructor, for B2 and every S3-compatible store. Request checksums and
    /// response validation are "when required": B2 rejects the SDK's default checksum headers.
    pub fn new(config: &StorageConfig) -> Self {
        let mut builder = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .force_path_style(config.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.as_str().trim_end_matches('/'));
        }
        if let Some((id, secret)) = &config.credentials {
            builder = builder.credentials_provider(Credentials::new(id, secret.expose(), None, None, "static"));
        }
        Storage {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
        }
    }

    /// With the default AWS credential chain (when no static keys are configured).
    pub async fn from_config(config: &StorageConfig) -> Self {
        if config.credentials.is_some() {
            return Storage::new(config);
        }
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .load()
            .await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.as_str().trim_end_matches('/'));
        }
        Storage {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// A PUT URL for exactly one upload: the content type and the exact byte size are signed, so
    /// the store refuses any other type or size (the 10 MiB cap cannot be bypassed).
    pub async fn presign_upload(&self, key: &str, format: ImageFormat, size: u64) -> anyhow::Result<PresignedRequest> {
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(format.content_type())
            .content_length(size as i64)
            .presigned(PresigningConfig::expires_in(UPLOAD_URL_TTL)?)
            .await?;
        Ok(PresignedRequest {
            url: presigned.uri().to_string(),
            // Only the signed headers: the SDK may add unsigned ones (x-amzn-trace-id inside Lambda)
            // that a browser must not be told to send (the bucket's CORS rule would refuse them).
            headers: presigned
                .headers()
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type") || k.eq_ignore_ascii_case("content-length"))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            expires_in: UPLOAD_URL_TTL,
        })
    }

    /// A short-lived GET URL; `download` asks the browser to save instead of display.
    pub async fn presign_download(
        &self,
        key: &str,
        expires_in: Duration,
        download: Option<&str>,
    ) -> anyhow::Result<PresignedRequest> {
        let expires_in = expires_in.min(MAX_DOWNLOAD_URL_TTL);
        let mut request = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(filename) = download {
            request = request.response_content_disposition(format!("attachment; filename=\"{filename}\""));
        }
        let presigned = request.presigned(PresigningConfig::expires_in(expires_in)?).await?;
        Ok(PresignedRequest {
            url: presigned.uri().to_string(),
            headers: Vec::new(),
            expires_in,
        })
    }

    /// Size and type of an object, or `None` when it does not exist.
    pub async fn head(&self, key: &str) -> anyhow::Result<Option<ObjectInfo>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                content_type: out.content_type().map(str::to_string),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(anyhow::Error::new(err).context(format!("HEAD {key}"))),
        }
    }

    /// Reads a whole object of at most `max_bytes`: `Ok(None)` when it does not exist,
    /// [`ObjectTooLarge`] (inside the error) when it is bigger, checked on the declared length and
    /// again while reading, so a store that lies about the length cannot make the worker buffer more.
    pub async fn get_bounded(&self, key: &str, max_bytes: usize) -> anyhow::Result<Option<Vec<u8>>> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(err) => return Err(anyhow::Error::new(err).context(format!("GET {key}"))),
        };
        let declared = out.content_length().unwrap_or(0).max(0) as u64;
        if declared > max_bytes as u64 {
            return Err(ObjectTooLarge {
                size: declared,
                limit: max_bytes,
            }
            .into());
        }
        let mut body = out.body;
        let mut bytes = Vec::with_capacity(declared as usize);
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| anyhow::Error::new(e).context(format!("GET {key}")))?
        {
            if bytes.len() + chunk.len() > max_bytes {
                return Err(ObjectTooLarge {
                    size: (bytes.len() + chunk.len()) as u64,
                    limit: max_bytes,
                }
                .into());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }

    /// Writes an object (replacing any object under the key: writing the same result twice is harmless).
    pub async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str, cache_control: &str) -> anyhow::Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .cache_control(cache_control)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e).context(format!("PUT {key}")))?;
        Ok(())
    }

    /// Deletes an object; deleting a missing object succeeds (S3 semantics).
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e).context(format!("DELETE {key}")))?;
        Ok(())
    }
}

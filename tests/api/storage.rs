//! The storage layer against a real S3-compatible server that checks signatures (s3s-fs):
//! presigned PUTs accept exactly the announced upload and nothing else.

use std::time::Duration;

use shared::clients::storage::{ImageFormat, UploadKey};
use uuid::Uuid;

use crate::support::*;

fn jpeg(size: usize) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.resize(size, 0x42);
    bytes
}

#[tokio::test]
async fn a_presigned_put_accepts_the_announced_upload() {
    let storage = test_storage().await;
    let key = UploadKey::generate(Uuid::new_v4(), ImageFormat::Jpeg).to_string();
    let presigned = storage.presign_upload(&key, ImageFormat::Jpeg, 2048).await.unwrap();
    // Exactly the signed headers, nothing a browser should not send.
    let mut names: Vec<String> = presigned.headers.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
    names.sort();
    assert_eq!(names, vec!["content-length", "content-type"]);
    assert!(
        presigned
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "image/jpeg")
    );
    assert_eq!(put_presigned(&presigned.url, &presigned.headers, jpeg(2048)).await, 200);
    let info = storage.head(&key).await.unwrap().expect("the object exists");
    assert_eq!(info.size, 2048);
    assert_eq!(info.content_type.as_deref(), Some("image/jpeg"));
}

#[tokio::test]
async fn a_presigned_put_refuses_another_type_size_or_a_tampered_url() {
    let storage = test_storage().await;
    let key = UploadKey::generate(Uuid::new_v4(), ImageFormat::Png).to_string();
    let presigned = storage.presign_upload(&key, ImageFormat::Png, 1000).await.unwrap();
    let with_type = |ct: &str| -> Vec<(String, String)> {
        presigned
            .headers
            .iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case("content-type") {
                    (k.clone(), ct.to_string())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect()
    };
    // Another content type (an HTML file passed off as the PNG).
    assert_eq!(
        put_presigned(&presigned.url, &with_type("text/html"), vec![b'<'; 1000]).await,
        403
    );
    // Another size: more than announced, and less.
    assert_eq!(
        put_presigned(&presigned.url, &presigned.headers, vec![0; 5000]).await,
        403
    );
    assert_eq!(
        put_presigned(&presigned.url, &presigned.headers, vec![0; 999]).await,
        403
    );
    // A tampered URL: another key with the same signature.
    let other_key = UploadKey::generate(Uuid::new_v4(), ImageFormat::Png).to_string();
    let tampered = presigned.url.replace(&key, &other_key);
    let status = put_presigned(&tampered, &presigned.headers, vec![0; 1000]).await;
    assert!(
        (400..500).contains(&status),
        "a URL signed for another key is refused, got {status}"
    );
    // The same URL with one hex digit of the signature changed.
    let last = presigned.url.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    let bad_signature = format!("{}{flipped}", &presigned.url[..presigned.url.len() - 1]);
    assert_eq!(
        put_presigned(&bad_signature, &presigned.headers, vec![0; 1000]).await,
        403
    );
    assert_eq!(storage.head(&key).await.unwrap(), None, "nothing was stored");
    assert_eq!(storage.head(&other_key).await.unwrap(), None, "nothing was stored");
}

#[tokio::test]
async fn an_expired_presigned_put_is_refused() {
    let storage = test_storage().await;
    let key = UploadKey::generate(Uuid::new_v4(), ImageFormat::Jpeg).to_string();
    let presigned = storage
        .client()
        .put_object()
        .bucket(storage.bucket())
        .key(&key)
        .content_type("image/jpeg")
        .content_length(10)
        .presigned(shared::clients::storage::presigning_config(Duration::from_secs(1)).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let headers: Vec<(String, String)> = presigned
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(put_presigned(presigned.uri(), &headers, jpeg(10)).await, 403);
}

#[tokio::test]
async fn presigned_gets_are_short_lived_and_can_ask_for_a_download() {
    let storage = test_storage().await;
    let key = UploadKey::generate(Uuid::new_v4(), ImageFormat::Jpeg).to_string();
    let upload = storage.presign_upload(&key, ImageFormat::Jpeg, 64).await.unwrap();
    assert_eq!(put_presigned(&upload.url, &upload.headers, jpeg(64)).await, 200);

    let link = storage
        .presign_download(&key, Duration::from_secs(7200), Some("staged.jpg"))
        .await
        .unwrap();
    assert_eq!(
        link.expires_in,
        shared::clients::storage::MAX_DOWNLOAD_URL_TTL,
        "expiry is capped"
    );
    assert!(link.url.contains("X-Amz-Expires=3600"));
    let response = shared::reqwest::get(&link.url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let disposition = response
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(disposition.as_deref(), Some("attachment; filename=\"staged.jpg\""));
    assert_eq!(response.bytes().await.unwrap().len(), 64);

    let unsigned = link.url.split('?').next().unwrap().to_string();
    assert_eq!(shared::reqwest::get(&unsigned).await.unwrap().status().as_u16(), 403);
}

#[tokio::test]
async fn head_and_delete() {
    let storage = test_storage().await;
    let key = UploadKey::generate(Uuid::new_v4(), ImageFormat::Webp).to_string();
    assert_eq!(storage.head(&key).await.unwrap(), None);
    storage.delete(&key).await.unwrap();
    let upload = storage.presign_upload(&key, ImageFormat::Webp, 10).await.unwrap();
    assert_eq!(put_presigned(&upload.url, &upload.headers, vec![1; 10]).await, 200);
    assert!(storage.head(&key).await.unwrap().is_some());
    storage.delete(&key).await.unwrap();
    assert_eq!(storage.head(&key).await.unwrap(), None);
}

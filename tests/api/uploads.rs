//! POST /api/v1/uploads/presign: presigned PUTs for originals, against a real signature-checking
//! S3 server (s3s-fs).

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

const ROUTE: &str = "/api/v1/uploads/presign";
const MIB: i64 = 1024 * 1024;

async fn presign(sa: &StagingApp, sub: &str, body: Value) -> TestResponse {
    call("POST", ROUTE)
        .bearer(&sa.app.token(sub))
        .json(body)
        .send(&sa.storage, &sa.storage.api.web, presign_upload::handle)
        .await
}

async fn user_id(sa: &StagingApp, sub: &str) -> Uuid {
    shared::db::users::ensure_by_sub(&sa.app.db, sub).await.unwrap().id
}

fn headers_of(body: &Value) -> Vec<(String, String)> {
    body["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

#[sqlx::test]
async fn presign_answers_a_url_the_browser_can_put_to(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let response = presign(
        &sa,
        "auth0|alice",
        json!({"filename": "Living Room.JPEG", "content_type": "image/jpeg", "file_size": 2048}),
    )
    .await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let body = response.json();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["expires_in", "file_key", "headers", "upload_url"]
    );
    assert_eq!(body["expires_in"], 900);
    assert_eq!(
        body["headers"],
        json!({"Content-Type": "image/jpeg", "Content-Length": "2048"})
    );
    let alice = user_id(&sa, "auth0|alice").await;
    let key = body["file_key"].as_str().unwrap();
    assert!(key.starts_with(&format!("uploads/{alice}/")), "{key}");
    assert!(key.ends_with(".jpg"), "{key}");
    let parsed = shared::clients::storage::UploadKey::parse(key).expect("a key the server can parse back");
    assert_eq!(parsed.user_id, alice);
    let url = body["upload_url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");

    // Nothing is stored until the browser PUTs the bytes with the given headers.
    assert_eq!(sa.storage.storage.head(key).await.unwrap(), None);
    assert_eq!(put_presigned(url, &headers_of(&body), vec![7u8; 2048]).await, 200);
    let info = sa.storage.storage.head(key).await.unwrap().expect("the object exists");
    assert_eq!(info.size, 2048);
    assert_eq!(info.content_type.as_deref(), Some("image/jpeg"));

    // The signature binds type and size: another size or type is refused by the store.
    assert_ne!(put_presigned(url, &headers_of(&body), vec![7u8; 2047]).await, 200);
    let wrong_type = vec![
        ("Content-Type".to_string(), "image/png".to_string()),
        ("Content-Length".to_string(), "2048".to_string()),
    ];
    assert_ne!(put_presigned(url, &wrong_type, vec![7u8; 2048]).await, 200);
}

#[sqlx::test]
async fn presign_accepts_every_format_and_the_size_limits(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    for (filename, content_type, size, ext) in [
        ("a.jpg", "image/jpeg", 1, "jpg"),
        ("b.PNG", "image/png", 10 * MIB, "png"),
        ("c.webp", "image/webp", 500, "webp"),
        ("d.png", "image/png; charset=binary", 5, "png"),
    ] {
        let response = presign(
            &sa,
            "auth0|alice",
            json!({"filename": filename, "content_type": content_type, "file_size": size}),
        )
        .await;
        assert_eq!(
            response.status,
            200,
            "{filename}: {}",
            String::from_utf8_lossy(&response.body)
        );
        let body = response.json();
        assert!(
            body["file_key"].as_str().unwrap().ends_with(&format!(".{ext}")),
            "{body}"
        );
        assert_eq!(body["headers"]["Content-Length"], size.to_string());
    }
    // 255 characters (not bytes) is the limit.
    let name = format!("{}.png", "é".repeat(251));
    let response = presign(
        &sa,
        "auth0|alice",
        json!({"filename": name, "content_type": "image/png", "file_size": 10}),
    )
    .await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
}

#[sqlx::test]
async fn client_filenames_never_reach_the_key(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let alice = user_id(&sa, "auth0|alice").await;
    let mut keys = Vec::new();
    for filename in [
        "../../uploads/other-user/evil.jpg",
        "my living room.jpg",
        "..\\..\\x.jpg",
        "%2e%2e%2fx.jpg",
    ] {
        let response = presign(
            &sa,
            "auth0|alice",
            json!({"filename": filename, "content_type": "image/jpeg", "file_size": 100}),
        )
        .await;
        assert_eq!(
            response.status,
            200,
            "{filename}: {}",
            String::from_utf8_lossy(&response.body)
        );
        let key = response.json()["file_key"].as_str().unwrap().to_string();
        for fragment in ["..", " ", "evil", "living", "other-user", "%", "\\"] {
            assert!(!key.contains(fragment), "{key} contains {fragment:?}");
        }
        assert!(key.starts_with(&format!("uploads/{alice}/")), "{key}");
        assert!(shared::clients::storage::UploadKey::parse(&key).is_some(), "{key}");
        keys.push(key);
    }
    // Every presign is a fresh object.
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4);
}

#[sqlx::test]
async fn presign_lists_every_invalid_field(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let ok = json!({"filename": "a.jpg", "content_type": "image/jpeg", "file_size": 100});
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = ok.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["filename", "content_type", "file_size"]),
        (without("filename"), vec!["filename"]),
        (without("content_type"), vec!["content_type"]),
        (without("file_size"), vec!["file_size"]),
        (with("filename", json!("")), vec!["filename"]),
        (with("filename", json!("   ")), vec!["filename"]),
        (with("filename", json!("photo.gif")), vec!["filename"]),
        (with("filename", json!("photo")), vec!["filename"]),
        (with("filename", json!("photo.jpg.exe")), vec!["filename"]),
        (
            with("filename", json!(format!("{}.jpg", "a".repeat(252)))),
            vec!["filename"],
        ),
        (with("filename", json!("a\u{0}b.jpg")), vec!["filename"]),
        (with("content_type", json!("image/gif")), vec!["content_type"]),
        (with("content_type", json!("text/html")), vec!["content_type"]),
        (with("content_type", json!("")), vec!["content_type"]),
        // The type must match the extension.
        (with("content_type", json!("image/png")), vec!["content_type"]),
        (
            json!({"filename": "a.webp", "content_type": "image/jpeg", "file_size": 1}),
            vec!["content_type"],
        ),
        (with("file_size", json!(0)), vec!["file_size"]),
        (with("file_size", json!(-1)), vec!["file_size"]),
        (with("file_size", json!(10 * MIB + 1)), vec!["file_size"]),
        (
            json!({"filename": "a.gif", "content_type": "text/html", "file_size": 10 * MIB + 1}),
            vec!["filename", "content_type", "file_size"],
        ),
        // Wrong JSON types are named too.
        (with("file_size", json!("100")), vec!["file_size"]),
        (with("file_size", json!(1.5)), vec!["file_size"]),
        (with("filename", json!(7)), vec!["filename"]),
        // Unknown fields are refused (a client cannot choose the key).
        (with("file_key", json!("uploads/x/y.jpg")), vec!["file_key"]),
    ];
    for (body, fields) in cases {
        let response = presign(&sa, "auth0|alice", body.clone()).await;
        assert_eq!(response.invalid_fields(), fields, "{body}");
    }
}

#[sqlx::test]
async fn presign_rejects_malformed_and_unauthenticated_requests(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let token = sa.app.token("auth0|alice");
    let sa_ref = &sa;
    let send = |c: Call| async move {
        c.send(&sa_ref.storage, &sa_ref.storage.api.web, presign_upload::handle)
            .await
    };
    let ok = json!({"filename": "a.jpg", "content_type": "image/jpeg", "file_size": 1});
    let response = send(call("POST", ROUTE).json(ok.clone())).await;
    response.assert_error(401, "unauthorized");
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    send(call("POST", ROUTE).bearer("not-a-jwt").json(ok.clone()))
        .await
        .assert_error(401, "unauthorized");
    // Tokens in the query string are refused.
    send(call("POST", ROUTE).query("access_token", &token).json(ok))
        .await
        .assert_error(401, "unauthorized");
    // Refused before any user row is created.
    assert_eq!(sa.app.user_count().await, 0);
    send(
        call("POST", ROUTE)
            .bearer(&token)
            .raw_body("application/json", "{\"filename\":"),
    )
    .await
    .assert_error(400, "bad_request");
    send(call("POST", ROUTE).bearer(&token).raw_body("application/json", "[]"))
        .await
        .assert_error(400, "bad_request");
    send(call("POST", ROUTE).bearer(&token))
        .await
        .assert_error(400, "bad_request");
    send(call("POST", ROUTE).bearer(&token).raw_body(
        "text/plain",
        r#"{"filename":"a.jpg","content_type":"image/jpeg","file_size":1}"#,
    ))
    .await
    .assert_error(415, "unsupported_media_type");
}

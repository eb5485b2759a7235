//! Renditions: the worker stores a preview (480 px) and a web size (1600 px) of each image's
//! original and result from the pixels it decodes anyway; the image JSON and the presign route
//! offer them; the reconciler makes them, a few per run, for images staged before; the purge
//! deletes them. Real storage (s3s-fs), Replicate faked over HTTP.

use shared::clients::storage::ImageFormat;
use shared::staging::imaging::{RenditionSize, samples};
use shared::staging::renditions::{self, Photo};
use sqlx::PgPool;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::fake_replicate::FakeReplicate;
use crate::support::*;

const ALICE: &str = "auth0|alice";
const BOB: &str = "auth0|bob";

async fn stored(w: &WorkerApp, key: &str) -> Option<Vec<u8>> {
    w.staging.storage.storage.get_bounded(key, 50 << 20).await.unwrap()
}

async fn presign(w: &WorkerApp, sub: &str, image: Uuid, kind: &str) -> TestResponse {
    call("GET", "/api/v1/images/{id}/presign")
        .path_param("id", image)
        .query("kind", kind)
        .bearer(&w.staging.app.token(sub))
        .send(&w.staging.storage, &w.staging.storage.api.web, presign_image::handle)
        .await
}

async fn get_image(w: &WorkerApp, sub: &str, image: Uuid) -> TestResponse {
    call("GET", "/api/v1/images/{id}")
        .path_param("id", image)
        .bearer(&w.staging.app.token(sub))
        .send(&w.staging.storage, &w.staging.storage.api.web, get_image::handle)
        .await
}

fn dimensions(jpeg: &[u8]) -> (u32, u32) {
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    let image = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).unwrap();
    (image.width(), image.height())
}

/// No APP1 (EXIF/XMP) or APP2 (ICC) segment before the frame.
fn has_metadata(jpeg: &[u8]) -> bool {
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF {
        let marker = jpeg[pos + 1];
        if marker == 0xDA {
            break;
        }
        if marker == 0xE1 || marker == 0xE2 {
            return true;
        }
        pos += 2 + usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
    }
    false
}

async fn renditions_at(w: &WorkerApp, image: Uuid) -> Option<chrono::DateTime<chrono::Utc>> {
    sqlx::query_scalar("SELECT renditions_at FROM images WHERE id = $1")
        .bind(image)
        .fetch_one(w.db())
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_finished_job_stores_four_renditions_from_the_pixels_it_decoded(db: PgPool) {
    let w = spawn_worker(db).await;
    // A 2000×1500 original; the model answers 2048×1536.
    let queued = w
        .queue_image(ALICE, samples::room_jpeg(2000, 1500), "bedroom", "modern")
        .await;
    FakeReplicate::mount(&w.replicate, &w.file_url("out.png")).await;
    Mock::given(method("GET"))
        .and(path("/files/out.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(samples::room_png(2048, 1536), "image/png"))
        .mount(&w.replicate)
        .await;
    assert!(w.deliver().await.is_empty());
    assert_eq!(w.image_row(queued.image_id).await.status, "ready");
    assert!(renditions_at(&w, queued.image_id).await.is_some());

    for (photo, size, expected) in [
        (Photo::Original, RenditionSize::Preview, (480, 360)),
        (Photo::Original, RenditionSize::Web, (1600, 1200)),
        (Photo::Staged, RenditionSize::Preview, (480, 360)),
        (Photo::Staged, RenditionSize::Web, (1600, 1200)),
    ] {
        let key = renditions::key(queued.user_id, queued.image_id, photo, size);
        let bytes = stored(&w, &key).await.unwrap_or_else(|| panic!("{key} is missing"));
        assert_eq!(dimensions(&bytes), expected, "{key}");
        assert!(!has_metadata(&bytes), "{key}");
    }

    // The JSON has the preview links; the presign route every size; they download.
    let image = get_image(&w, ALICE, queued.image_id).await.json();
    for field in ["original_preview_url", "staged_preview_url"] {
        let url = image[field].as_str().unwrap_or_else(|| panic!("{field}: {image}"));
        let bytes = shared::reqwest::get(url).await.unwrap().bytes().await.unwrap();
        assert_eq!(dimensions(&bytes), (480, 360), "{field}");
    }
    for (kind, expected) in [
        ("original_preview", (480, 360)),
        ("original_web", (1600, 1200)),
        ("staged_preview", (480, 360)),
        ("staged_web", (1600, 1200)),
    ] {
        let response = presign(&w, ALICE, queued.image_id, kind).await;
        assert_eq!(response.status, 200, "{kind}");
        let url = response.json()["url"].as_str().unwrap().to_owned();
        let bytes = shared::reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        assert_eq!(dimensions(&bytes), expected, "{kind}");
        // Another user's rendition: not found.
        presign(&w, BOB, queued.image_id, kind)
            .await
            .assert_error(404, "not_found");
    }
    presign(&w, ALICE, queued.image_id, "thumbnail")
        .await
        .assert_error(400, "bad_request");

    // A duplicate delivery of the finished job makes nothing again.
    let gone = renditions::key(queued.user_id, queued.image_id, Photo::Staged, RenditionSize::Preview);
    w.staging.storage.storage.delete(&gone).await.unwrap();
    let first = renditions_at(&w, queued.image_id).await;
    let message = shared::staging::queue::JobMessage::new(queued.job_id, queued.image_id);
    w.staging.staging.queue.send(&[message]).await;
    assert!(w.deliver().await.is_empty());
    assert!(stored(&w, &gone).await.is_none(), "no rendition was made again");
    assert_eq!(renditions_at(&w, queued.image_id).await, first);
    assert_eq!(w.creates().await, 1);
}

#[sqlx::test]
async fn a_queued_image_has_no_preview_links_yet(db: PgPool) {
    let w = spawn_worker(db).await;
    let queued = w
        .queue_image(ALICE, samples::room_jpeg(640, 480), "bedroom", "modern")
        .await;
    let image = get_image(&w, ALICE, queued.image_id).await.json();
    assert_eq!(image["original_preview_url"], serde_json::Value::Null);
    assert_eq!(image["staged_preview_url"], serde_json::Value::Null);
    presign(&w, ALICE, queued.image_id, "original_preview")
        .await
        .assert_error(409, "conflict");
}

/// A ready image as one staged before renditions existed: its renditions removed and forgotten.
async fn staged_before_renditions(w: &WorkerApp, project: Uuid) -> Uuid {
    let key = w
        .upload_bytes(ALICE, ImageFormat::Jpeg, samples::room_jpeg(1200, 900))
        .await;
    let queued = w.queue_image_of(ALICE, project, &key, "living_room", "modern").await;
    assert!(w.deliver().await.is_empty());
    for key in renditions::all_keys(queued.user_id, queued.image_id) {
        w.staging.storage.storage.delete(&key).await.unwrap();
    }
    sqlx::query("UPDATE images SET renditions_at = NULL WHERE id = $1")
        .bind(queued.image_id)
        .execute(w.db())
        .await
        .unwrap();
    queued.image_id
}

#[sqlx::test]
async fn the_reconciler_backfills_renditions_bounded_and_idempotent(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    // Twelve images: more than the free plan's monthly ten.
    let vars: std::collections::HashMap<&str, &str> = [("PLAN_FREE_MONTHLY_LIMIT", "50")].into();
    let plans = shared::billing::plans::PlansConfig::from_env(
        &shared::platform::config::Env(&vars),
        shared::platform::config::AppEnv::Test,
    )
    .unwrap();
    shared::db::migrate::migrate_and_sync(w.db(), &plans).await.unwrap();
    let project = w.staging.project(ALICE, "1 Old Street").await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(staged_before_renditions(&w, project).await);
    }
    let user = shared::db::users::ensure_by_sub(w.db(), ALICE).await.unwrap().id;
    // A ready image whose stored photos are gone gets none, and does not stop the others.
    let broken = ids[11];
    let staged: String = sqlx::query_scalar("SELECT staged_key FROM images WHERE id = $1")
        .bind(broken)
        .fetch_one(w.db())
        .await
        .unwrap();
    w.staging.storage.storage.delete(&staged).await.unwrap();

    // At most 10 per run (the default), then the rest, then nothing.
    let first = crate::reconcile::reconcile(&w).await;
    assert_eq!(first.renditions_made + first.renditions_unavailable, 10, "{first:?}");
    assert!(first.errors.is_empty(), "{first:?}");
    let second = crate::reconcile::reconcile(&w).await;
    assert_eq!(first.renditions_made + second.renditions_made, 11, "{second:?}");
    let third = crate::reconcile::reconcile(&w).await;
    assert_eq!(third.renditions_made, 0, "{third:?}");
    for id in &ids[..11] {
        assert!(renditions_at(&w, *id).await.is_some());
        for key in renditions::all_keys(user, *id) {
            assert!(stored(&w, &key).await.is_some(), "{key}");
        }
    }
    assert!(renditions_at(&w, broken).await.is_none());
    // The web size of a 1200×900 photo is the photo's size (never upscaled); the preview 480×360.
    let preview = stored(
        &w,
        &renditions::key(user, ids[0], Photo::Original, RenditionSize::Preview),
    )
    .await
    .unwrap();
    assert_eq!(dimensions(&preview), (480, 360));
    let web = stored(&w, &renditions::key(user, ids[0], Photo::Original, RenditionSize::Web))
        .await
        .unwrap();
    assert_eq!(dimensions(&web), (1200, 900));
}

#[sqlx::test]
async fn purging_a_deleted_image_removes_its_renditions(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let queued = w
        .queue_image(ALICE, samples::room_jpeg(800, 600), "bedroom", "modern")
        .await;
    assert!(w.deliver().await.is_empty());
    let keys = renditions::all_keys(queued.user_id, queued.image_id);
    for key in &keys {
        assert!(stored(&w, key).await.is_some(), "{key}");
    }
    let deleted = call("DELETE", "/api/v1/images/{id}")
        .path_param("id", queued.image_id)
        .bearer(&w.staging.app.token(ALICE))
        .send(&w.staging.staging.api, &w.staging.staging.api.web, delete_image::handle)
        .await;
    assert_eq!(deleted.status, 204);
    let report = crate::reconcile::reconcile(&w).await;
    assert_eq!(report.purged_images, 1, "{report:?}");
    for key in &keys {
        assert!(stored(&w, key).await.is_none(), "{key}");
    }
}

//! GET|DELETE /api/v1/images/{id}, GET /api/v1/images/{id}/presign, and a project's images:
//! GET /api/v1/projects/{id}/images, .../images/grouped and .../cost.
//!
//! Images are created through the production path (`shared::staging::create::create_images`: a real
//! upload, HEAD-checked, allowance reserved in the ledger, a job queued); a finished image is
//! simulated by writing a real object at its staged key and marking the row ready in SQL.

use serde_json::{Value, json};
use shared::clients::storage::{ImageFormat, UploadKey};
use shared::staging::requests::ImageRequest;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

const IMAGE: &str = "/api/v1/images/{id}";
const PRESIGN: &str = "/api/v1/images/{id}/presign";
const IMAGES: &str = "/api/v1/projects/{id}/images";
const GROUPED: &str = "/api/v1/projects/{id}/images/grouped";
const COST: &str = "/api/v1/projects/{id}/cost";
const PROJECT: &str = "/api/v1/projects/{id}";

const ALICE: &str = "auth0|alice";
const BOB: &str = "auth0|bob";

async fn user_id(sa: &StagingApp, sub: &str) -> Uuid {
    shared::db::users::ensure_by_sub(&sa.app.db, sub).await.unwrap().id
}

/// Creates one image per style from `file_key`, each in its own request (so each gets its own
/// `created_at`), through the production create path. Returns the ids in creation order.
async fn stage(sa: &StagingApp, sub: &str, project: Uuid, file_key: &str, styles: &[&str]) -> Vec<Uuid> {
    let owner = user_id(sa, sub).await;
    let mut ids = Vec::new();
    for style in styles {
        let request = ImageRequest {
            project_id: project,
            file_key: UploadKey::parse(file_key).unwrap(),
            room_type: "living_room".parse().unwrap(),
            treatment: shared::staging::vocabulary::Treatment::Stage(style.parse().unwrap()),
            seed: Some(7),
            prompt: Some("keep the fireplace visible".into()),
            variations: 1,
        };
        let images = shared::staging::create::create_images(
            &sa.app.db,
            &sa.staging.storage,
            &sa.staging.queue,
            owner,
            vec![request],
            |_| String::new(),
        )
        .await
        .unwrap();
        ids.push(images[0].id);
    }
    ids
}

/// One uploaded JPEG of `size` bytes (0xAB each) staged once in `modern`.
async fn one_image(sa: &StagingApp, sub: &str, project: Uuid, size: usize) -> (Uuid, String) {
    let key = sa.upload(sub, ImageFormat::Jpeg, size).await;
    let id = stage(sa, sub, project, &key, &["modern"]).await[0];
    (id, key)
}

/// What the worker does when it finishes: the result object at the staged key, the row ready.
async fn make_ready(sa: &StagingApp, sub: &str, image: Uuid, bytes: Vec<u8>, cost: &str) -> String {
    let key = shared::clients::storage::staged_key(user_id(sa, sub).await, image);
    let presigned = sa
        .storage
        .storage
        .presign_upload(&key, ImageFormat::Jpeg, bytes.len() as u64)
        .await
        .unwrap();
    assert_eq!(put_presigned(&presigned.url, &presigned.headers, bytes).await, 200);
    sqlx::query(
        "UPDATE images SET status = 'ready', staged_key = $2, staged_content_type = 'image/jpeg', \
         cost_usd = $3::numeric, model_used = 'qwen/qwen-image-edit', processing_time_ms = 4200 WHERE id = $1",
    )
    .bind(image)
    .bind(&key)
    .bind(cost)
    .execute(&sa.app.db)
    .await
    .unwrap();
    key
}

/// A real HTTP GET of a presigned URL: status, Content-Disposition and body.
async fn download(url: &str) -> (u16, Option<String>, Vec<u8>) {
    let response = shared::reqwest::Client::new().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let disposition = response
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_string());
    (status, disposition, response.bytes().await.unwrap().to_vec())
}

async fn get(sa: &StagingApp, sub: &str, id: impl ToString) -> TestResponse {
    call("GET", IMAGE)
        .path_param("id", id)
        .bearer(&sa.app.token(sub))
        .send(&sa.storage, &sa.storage.api.web, get_image::handle)
        .await
}

async fn delete(sa: &StagingApp, sub: &str, id: impl ToString) -> TestResponse {
    call("DELETE", IMAGE)
        .path_param("id", id)
        .bearer(&sa.app.token(sub))
        .send(&sa.app.api, &sa.app.api.web, delete_image::handle)
        .await
}

async fn presign(sa: &StagingApp, sub: &str, id: impl ToString, query: &[(&str, &str)]) -> TestResponse {
    let mut c = call("GET", PRESIGN).path_param("id", id).bearer(&sa.app.token(sub));
    for (k, v) in query {
        c = c.query(k, v);
    }
    c.send(&sa.storage, &sa.storage.api.web, presign_image::handle).await
}

async fn list(sa: &StagingApp, sub: &str, project: impl ToString) -> TestResponse {
    call("GET", IMAGES)
        .path_param("id", project)
        .bearer(&sa.app.token(sub))
        .send(&sa.storage, &sa.storage.api.web, list_project_images::handle)
        .await
}

async fn grouped(sa: &StagingApp, sub: &str, project: impl ToString) -> TestResponse {
    call("GET", GROUPED)
        .path_param("id", project)
        .bearer(&sa.app.token(sub))
        .send(&sa.storage, &sa.storage.api.web, list_project_images_grouped::handle)
        .await
}

async fn cost(sa: &StagingApp, sub: &str, project: impl ToString) -> TestResponse {
    call("GET", COST)
        .path_param("id", project)
        .bearer(&sa.app.token(sub))
        .send(&sa.app.api, &sa.app.api.web, project_cost::handle)
        .await
}

fn ids_of(images: &Value) -> Vec<String> {
    images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn strs(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

async fn ledger(db: &PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), COALESCE(SUM(units), 0)::bigint FROM usage_ledger")
        .fetch_one(db)
        .await
        .unwrap()
}

async fn set_created_at(db: &PgPool, id: Uuid, minutes_ago: i32) {
    sqlx::query("UPDATE images SET created_at = now() - make_interval(mins => $2) WHERE id = $1")
        .bind(id)
        .bind(minutes_ago)
        .execute(db)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// GET /api/v1/images/{id}

#[sqlx::test]
async fn get_shows_own_image_with_links_that_download(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let project = sa.project(ALICE, "Maple").await;
    let (id, key) = one_image(&sa, ALICE, project, 1234).await;

    let response = get(&sa, ALICE, id).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let body = response.json();
    assert_eq!(
        body.as_object().unwrap().keys().map(String::as_str).collect::<Vec<_>>(),
        IMAGE_FIELDS
    );
    assert_eq!(body["id"], id.to_string());
    assert_eq!(body["project_id"], project.to_string());
    assert_eq!(body["status"], "queued");
    assert_eq!(body["room_type"], "living_room");
    assert_eq!(body["style"], "modern");
    assert_eq!(body["seed"], 7);
    assert_eq!(body["prompt"], "keep the fireplace visible");
    assert_eq!(body["file_key"], key);
    for absent in ["error", "model_used", "cost_usd", "processing_time_ms", "staged_url"] {
        assert_eq!(body[absent], Value::Null, "{absent}");
    }
    let (status, _, bytes) = download(body["original_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, vec![0xAB; 1234]);

    let staged_bytes: Vec<u8> = (0..=255).cycle().take(3000).collect();
    make_ready(&sa, ALICE, id, staged_bytes.clone(), "0.0123").await;
    let body = get(&sa, ALICE, id).await.json();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["cost_usd"], 0.0123);
    assert_eq!(body["model_used"], "qwen/qwen-image-edit");
    assert_eq!(body["processing_time_ms"], 4200);
    let (status, _, bytes) = download(body["staged_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, staged_bytes);
}

#[sqlx::test]
async fn get_answers_404_for_foreign_missing_and_deleted_images(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let project = sa.project(ALICE, "Maple").await;
    let (id, _) = one_image(&sa, ALICE, project, 100).await;
    let (deleted, _) = one_image(&sa, ALICE, project, 100).await;

    let foreign = get(&sa, BOB, id).await;
    foreign.assert_error(404, "not_found");
    let missing = get(&sa, ALICE, Uuid::new_v4()).await;
    missing.assert_error(404, "not_found");
    assert_eq!(
        foreign.json(),
        missing.json(),
        "a foreign image looks exactly like a missing one"
    );
    assert_eq!(foreign.json()["message"], "Image not found");

    assert_eq!(delete(&sa, ALICE, deleted).await.status, 204);
    assert_eq!(get(&sa, ALICE, deleted).await.json(), missing.json());

    get(&sa, ALICE, "not-a-uuid").await.assert_error(400, "bad_request");
    call("GET", IMAGE)
        .path_param("id", id)
        .send(&sa.storage, &sa.storage.api.web, get_image::handle)
        .await
        .assert_error(401, "unauthorized");
    // The owner still sees it: the 404s above were about who asked.
    assert_eq!(get(&sa, ALICE, id).await.status, 200);
}

// ---------------------------------------------------------------------------------------------
// DELETE /api/v1/images/{id}

#[sqlx::test]
async fn delete_soft_deletes_and_keeps_usage(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let project = sa.project(ALICE, "Maple").await;
    let (id, _) = one_image(&sa, ALICE, project, 100).await;
    let (kept, _) = one_image(&sa, ALICE, project, 100).await;
    let bob_project = sa.project(BOB, "Bob's").await;
    let (bobs, _) = one_image(&sa, BOB, bob_project, 100).await;
    let before = ledger(&sa.app.db).await;
    assert_eq!(before, (3, 3));

    let response = delete(&sa, ALICE, id).await;
    assert_eq!(response.status, 204, "{}", String::from_utf8_lossy(&response.body));
    assert!(response.body.is_empty());
    get(&sa, ALICE, id).await.assert_error(404, "not_found");
    assert_eq!(ids_of(&list(&sa, ALICE, project).await.json()["images"]), strs(&[kept]));
    let variants = &grouped(&sa, ALICE, project).await.json()["images"];
    assert_eq!(variants.as_array().unwrap().len(), 1);
    assert_eq!(ids_of(&variants[0]["variants"]), strs(&[kept]));

    let (deleted_at, purged_at): (
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as("SELECT deleted_at, purged_at FROM images WHERE id = $1")
        .bind(id)
        .fetch_one(&sa.app.db)
        .await
        .unwrap();
    assert!(deleted_at.is_some(), "soft delete: the row stays, marked");
    assert!(purged_at.is_none(), "storage purge is left to the reconciler");
    assert_eq!(ledger(&sa.app.db).await, before, "the ledger is never touched");

    // Twice, foreign, missing: 404, and nothing changes.
    delete(&sa, ALICE, id).await.assert_error(404, "not_found");
    delete(&sa, ALICE, bobs).await.assert_error(404, "not_found");
    delete(&sa, ALICE, Uuid::new_v4()).await.assert_error(404, "not_found");
    delete(&sa, ALICE, "nope").await.assert_error(400, "bad_request");
    call("DELETE", IMAGE)
        .path_param("id", kept)
        .send(&sa.app.api, &sa.app.api.web, delete_image::handle)
        .await
        .assert_error(401, "unauthorized");
    let live: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM images WHERE deleted_at IS NULL ORDER BY id")
        .fetch_all(&sa.app.db)
        .await
        .unwrap();
    let mut expected = vec![kept, bobs];
    expected.sort();
    assert_eq!(live, expected);
    assert_eq!(get(&sa, BOB, bobs).await.status, 200);
    assert_eq!(ledger(&sa.app.db).await, before);
}

// ---------------------------------------------------------------------------------------------
// GET /api/v1/images/{id}/presign

#[sqlx::test]
async fn presign_gives_working_links_to_original_and_staged(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let project = sa.project(ALICE, "Maple").await;
    let key = sa.upload(ALICE, ImageFormat::Png, 777).await;
    let id = stage(&sa, ALICE, project, &key, &["modern"]).await[0];

    // Default: the original, inline, 600 seconds.
    let response = presign(&sa, ALICE, id, &[]).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let body = response.json();
    assert_eq!(
        body.as_object().unwrap().keys().map(String::as_str).collect::<Vec<_>>(),
        ["expires_in", "url"]
    );
    assert_eq!(body["expires_in"], 600);
    let url = body["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Expires=600"), "{url}");
    let (status, disposition, bytes) = download(url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, vec![0xAB; 777]);
    assert!(!disposition.unwrap_or_default().contains("attachment"));

    // Not finished yet: 409.
    let not_ready = presign(&sa, ALICE, id, &[("kind", "staged")]).await;
    not_ready.assert_error(409, "conflict");
    assert_eq!(not_ready.json()["message"], "The staged photo is not ready yet");

    let staged: Vec<u8> = (0..=255).rev().cycle().take(2048).collect();
    make_ready(&sa, ALICE, id, staged.clone(), "0.0100").await;
    let body = presign(&sa, ALICE, id, &[("kind", "staged"), ("expires_in", "3600")])
        .await
        .json();
    assert_eq!(body["expires_in"], 3600);
    let url = body["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Expires=3600"), "{url}");
    let (status, _, bytes) = download(url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, staged);

    // download=1: the store answers with an attachment named after the image and kind.
    for (kind, ext, expected) in [("staged", "jpg", staged.clone()), ("original", "png", vec![0xAB; 777])] {
        for flag in ["1", "true"] {
            let body = presign(&sa, ALICE, id, &[("kind", kind), ("download", flag)])
                .await
                .json();
            let (status, disposition, bytes) = download(body["url"].as_str().unwrap()).await;
            assert_eq!(status, 200);
            assert_eq!(bytes, expected);
            assert_eq!(
                disposition.as_deref(),
                Some(format!("attachment; filename=\"{id}-{kind}.{ext}\"").as_str())
            );
        }
    }
    for flag in ["0", "false"] {
        let body = presign(&sa, ALICE, id, &[("kind", "staged"), ("download", flag)])
            .await
            .json();
        let (_, disposition, _) = download(body["url"].as_str().unwrap()).await;
        assert!(!disposition.unwrap_or_default().contains("attachment"));
    }
}

#[sqlx::test]
async fn presign_rejects_bad_parameters_and_foreign_images(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let project = sa.project(ALICE, "Maple").await;
    let (id, _) = one_image(&sa, ALICE, project, 100).await;

    for query in [
        vec![("expires_in", "7200")],
        vec![("expires_in", "30")],
        vec![("expires_in", "59")],
        vec![("expires_in", "3601")],
        vec![("expires_in", "ten")],
        vec![("expires_in", "-60")],
        vec![("kind", "thumbnail")],
        vec![("kind", "")],
        vec![("kind", "STAGED")],
        vec![("download", "yes")],
        vec![("download", "2")],
        vec![("kind", "original"), ("kind", "staged")],
    ] {
        presign(&sa, ALICE, id, &query).await.assert_error(400, "bad_request");
    }
    for (secs, expected) in [("60", 60), ("3600", 3600)] {
        let body = presign(&sa, ALICE, id, &[("expires_in", secs)]).await.json();
        assert_eq!(body["expires_in"], expected);
    }

    let foreign = presign(&sa, BOB, id, &[]).await;
    foreign.assert_error(404, "not_found");
    let missing = presign(&sa, ALICE, Uuid::new_v4(), &[]).await;
    assert_eq!(foreign.json(), missing.json());
    // A foreign image's readiness is not revealed either.
    presign(&sa, BOB, id, &[("kind", "staged")])
        .await
        .assert_error(404, "not_found");
    assert_eq!(delete(&sa, ALICE, id).await.status, 204);
    presign(&sa, ALICE, id, &[]).await.assert_error(404, "not_found");
    presign(&sa, ALICE, "123", &[]).await.assert_error(400, "bad_request");
    call("GET", PRESIGN)
        .path_param("id", id)
        .send(&sa.storage, &sa.storage.api.web, presign_image::handle)
        .await
        .assert_error(401, "unauthorized");
}

// ---------------------------------------------------------------------------------------------
// GET /api/v1/projects/{id}/images

#[sqlx::test]
async fn list_shows_live_images_of_an_owned_project_newest_first(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let project = sa.project(ALICE, "Maple").await;
    let other = sa.project(ALICE, "Oak").await;
    let key = sa.upload(ALICE, ImageFormat::Jpeg, 100).await;
    let ids = stage(
        &sa,
        ALICE,
        project,
        &key,
        &["modern", "industrial", "scandinavian", "traditional"],
    )
    .await;
    let elsewhere = stage(&sa, ALICE, other, &key, &["modern"]).await;
    assert_eq!(delete(&sa, ALICE, ids[1]).await.status, 204);

    let response = list(&sa, ALICE, project).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let body = response.json();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["images", "next_cursor"]
    );
    assert_eq!(body["next_cursor"], Value::Null, "everything fits on one page");
    assert_eq!(ids_of(&body["images"]), strs(&[ids[3], ids[2], ids[0]]));
    let first = &body["images"][0];
    assert_eq!(
        first
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        IMAGE_FIELDS
    );
    assert_eq!(first["style"], "traditional");
    let (status, _, bytes) = download(first["original_url"].as_str().unwrap()).await;
    assert_eq!((status, bytes.len()), (200, 100));
    assert_eq!(
        ids_of(&list(&sa, ALICE, other).await.json()["images"]),
        strs(&elsewhere)
    );

    // An empty project: an empty array, never null.
    let empty = sa.project(ALICE, "Empty").await;
    assert_eq!(
        list(&sa, ALICE, empty).await.json(),
        json!({"images": [], "next_cursor": null})
    );

    // Foreign, missing and deleted projects are all the same 404.
    let foreign = list(&sa, BOB, project).await;
    foreign.assert_error(404, "not_found");
    assert_eq!(foreign.json()["message"], "Project not found");
    assert_eq!(list(&sa, ALICE, Uuid::new_v4()).await.json(), foreign.json());
    let deleted = call("DELETE", PROJECT)
        .path_param("id", other)
        .bearer(&sa.app.token(ALICE))
        .send(&sa.app.api, &sa.app.api.web, delete_project::handle)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(list(&sa, ALICE, other).await.json(), foreign.json());
    list(&sa, ALICE, "x").await.assert_error(400, "bad_request");
    call("GET", IMAGES)
        .path_param("id", project)
        .send(&sa.storage, &sa.storage.api.web, list_project_images::handle)
        .await
        .assert_error(401, "unauthorized");
}

// ---------------------------------------------------------------------------------------------
// GET /api/v1/projects/{id}/images/grouped

#[sqlx::test]
async fn grouped_groups_variants_by_original_photo(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let project = sa.project(ALICE, "Maple").await;
    let kitchen = sa.upload(ALICE, ImageFormat::Jpeg, 300).await;
    let lounge = sa.upload(ALICE, ImageFormat::Webp, 200).await;
    let styles = ["modern", "industrial", "scandinavian"];
    let k = stage(&sa, ALICE, project, &kitchen, &styles).await;
    let l = stage(&sa, ALICE, project, &lounge, &styles).await;
    // The kitchen photo was staged first, but its newest variant is the newest of all, so its
    // group comes first; within each group, newest variant first.
    for (id, minutes_ago) in [(k[0], 60), (k[1], 50), (l[0], 40), (l[1], 30), (l[2], 20), (k[2], 10)] {
        set_created_at(&sa.app.db, id, minutes_ago).await;
    }
    sqlx::query("UPDATE images SET room_type = 'kitchen', seed = 99 WHERE id = $1")
        .bind(k[2])
        .execute(&sa.app.db)
        .await
        .unwrap();

    let response = grouped(&sa, ALICE, project).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let body = response.json();
    let groups = body["images"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(
        groups[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["file_key", "original_url", "prompt", "room_type", "seed", "variants"]
    );
    assert_eq!(groups[0]["file_key"], kitchen);
    assert_eq!(ids_of(&groups[0]["variants"]), strs(&[k[2], k[1], k[0]]));
    // The group shows its newest variant's settings.
    assert_eq!(groups[0]["room_type"], "kitchen");
    assert_eq!(groups[0]["seed"], 99);
    assert_eq!(groups[0]["prompt"], "keep the fireplace visible");
    assert_eq!(groups[1]["file_key"], lounge);
    assert_eq!(groups[1]["room_type"], "living_room");
    assert_eq!(ids_of(&groups[1]["variants"]), strs(&[l[2], l[1], l[0]]));
    let (status, _, bytes) = download(groups[1]["original_url"].as_str().unwrap()).await;
    assert_eq!((status, bytes), (200, vec![0xAB; 200]));
    assert_eq!(
        groups[1]["variants"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        IMAGE_FIELDS
    );

    // Ties on created_at are broken by id: the same answer on every call.
    for id in l.iter().chain(&k) {
        sqlx::query("UPDATE images SET created_at = '2026-11-01T00:00:00Z' WHERE id = $1")
            .bind(id)
            .execute(&sa.app.db)
            .await
            .unwrap();
    }
    let shape = |body: Value| -> Vec<(String, Vec<String>)> {
        body["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["file_key"].as_str().unwrap().to_string(), ids_of(&g["variants"])))
            .collect()
    };
    let first = shape(grouped(&sa, ALICE, project).await.json());
    let mut all: Vec<Uuid> = k.iter().chain(&l).copied().collect();
    all.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        first[0].1[0],
        all[0].to_string(),
        "the group of the highest id comes first"
    );
    for group in &first {
        let mut sorted = group.1.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(group.1, sorted, "variants by id, descending");
    }
    for _ in 0..3 {
        assert_eq!(shape(grouped(&sa, ALICE, project).await.json()), first);
    }

    // Same access rules as the flat list.
    let empty = sa.project(ALICE, "Empty").await;
    assert_eq!(
        grouped(&sa, ALICE, empty).await.json(),
        json!({"images": [], "next_cursor": null})
    );
    let foreign = grouped(&sa, BOB, project).await;
    foreign.assert_error(404, "not_found");
    assert_eq!(grouped(&sa, ALICE, Uuid::new_v4()).await.json(), foreign.json());
    sqlx::query("UPDATE projects SET deleted_at = now() WHERE id = $1")
        .bind(empty)
        .execute(&sa.app.db)
        .await
        .unwrap();
    grouped(&sa, ALICE, empty).await.assert_error(404, "not_found");
    grouped(&sa, ALICE, "x").await.assert_error(400, "bad_request");
    call("GET", GROUPED)
        .path_param("id", project)
        .send(&sa.storage, &sa.storage.api.web, list_project_images_grouped::handle)
        .await
        .assert_error(401, "unauthorized");
}

// ---------------------------------------------------------------------------------------------
// GET /api/v1/projects/{id}/cost

#[sqlx::test]
async fn cost_sums_model_spend_including_deleted_images(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let project = sa.project(ALICE, "Maple").await;
    let key = sa.upload(ALICE, ImageFormat::Jpeg, 100).await;
    let ids = stage(
        &sa,
        ALICE,
        project,
        &key,
        &["modern", "industrial", "scandinavian", "traditional"],
    )
    .await;
    for (id, usd) in [(ids[0], "0.0100"), (ids[1], "0.0300"), (ids[2], "0.0200")] {
        sqlx::query("UPDATE images SET cost_usd = $2::numeric WHERE id = $1")
            .bind(id)
            .bind(usd)
            .execute(&sa.app.db)
            .await
            .unwrap();
    }
    // ids[3] never finished (no cost); ids[2] was deleted after it was paid for.
    assert_eq!(delete(&sa, ALICE, ids[2]).await.status, 204);
    // Another project's spend is not this one's.
    let other = sa.project(ALICE, "Oak").await;
    let o = stage(&sa, ALICE, other, &key, &["modern"]).await;
    sqlx::query("UPDATE images SET cost_usd = 5 WHERE id = $1")
        .bind(o[0])
        .execute(&sa.app.db)
        .await
        .unwrap();

    let response = cost(&sa, ALICE, project).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let body = response.json();
    assert_eq!(
        body.as_object().unwrap().keys().map(String::as_str).collect::<Vec<_>>(),
        ["avg_cost_usd", "image_count", "project_id", "total_cost_usd"]
    );
    assert_eq!(body["project_id"], project.to_string());
    assert_eq!(body["image_count"], 4);
    assert!((body["total_cost_usd"].as_f64().unwrap() - 0.06).abs() < 1e-9, "{body}");
    // The average is over images that have a cost.
    assert!((body["avg_cost_usd"].as_f64().unwrap() - 0.02).abs() < 1e-9, "{body}");

    let empty = sa.project(ALICE, "Empty").await;
    assert_eq!(
        cost(&sa, ALICE, empty).await.json(),
        json!({"project_id": empty, "total_cost_usd": 0.0, "image_count": 0, "avg_cost_usd": 0.0})
    );
    let foreign = cost(&sa, BOB, project).await;
    foreign.assert_error(404, "not_found");
    assert_eq!(cost(&sa, ALICE, Uuid::new_v4()).await.json(), foreign.json());
    cost(&sa, ALICE, "x").await.assert_error(400, "bad_request");
    call("GET", COST)
        .path_param("id", project)
        .send(&sa.app.api, &sa.app.api.web, project_cost::handle)
        .await
        .assert_error(401, "unauthorized");
}

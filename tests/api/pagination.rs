//! Cursor pagination at the API edge (shared::platform::pagination), on every paginated route: the projects
//! list, the admin audit log, and a project's flat and grouped image lists. A cursor comes back
//! from the client, so a tampered one is bad input (400, the normal error body), never a 500; and
//! a project of thousands of images answers in bounded pages that together hold every image once.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

const ALICE: &str = "auth0|alice";
const IMAGES: &str = "/api/v1/projects/{id}/images";
const GROUPED: &str = "/api/v1/projects/{id}/images/grouped";

/// Cursors no page of this API ever returned, each as the client would send it.
fn tampered_cursors() -> Vec<(&'static str, String)> {
    let id = Uuid::new_v4();
    let cursor = |text: String| URL_SAFE_NO_PAD.encode(text);
    vec![
        // 100000 BC: chrono holds it, Postgres' timestamptz does not (this used to be a 500).
        ("year -100000", cursor(format!("-3217000000000000000:{id}"))),
        // Year 255000: a timestamp no row can have.
        ("year 255000", cursor(format!("8000000000000000000:{id}"))),
        // Year 300000: not even a 64-bit count of microseconds.
        ("year 300000", cursor(format!("9467000000000000000:{id}"))),
        ("i64 max", cursor(format!("{}:{id}", i64::MAX))),
        ("before 1970", cursor(format!("-1:{id}"))),
        ("not a number", cursor(format!("soon:{id}"))),
        ("not a uuid", cursor("1795000000000000:not-a-uuid".into())),
        ("no separator", cursor("1795000000000000".into())),
        ("not utf-8", URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x3a, 0x00])),
        ("not base64", "%%%!".into()),
        ("empty", String::new()),
    ]
}

#[track_caller]
fn assert_bad_cursor(what: &str, response: &TestResponse) {
    assert_eq!(
        response.status,
        400,
        "{what}: {}",
        String::from_utf8_lossy(&response.body)
    );
    let body = response.json();
    assert_eq!(body["error"], "bad_request", "{what}");
    assert_eq!(
        body["message"], "`cursor` is not a cursor returned by this API",
        "{what}"
    );
    assert_eq!(body.as_object().unwrap().len(), 2, "{what}: the normal error body");
}

async fn image_page(
    sa: &StagingApp,
    token: &str,
    route: &'static str,
    project: Uuid,
    query: &[(&str, &str)],
) -> TestResponse {
    let mut request = call("GET", route).path_param("id", project).bearer(token);
    for (name, value) in query {
        request = request.query(name, value);
    }
    if route == GROUPED {
        request
            .send(&sa.storage, &sa.storage.api.web, list_project_images_grouped::handle)
            .await
    } else {
        request
            .send(&sa.storage, &sa.storage.api.web, list_project_images::handle)
            .await
    }
}

#[sqlx::test]
async fn a_tampered_cursor_is_a_400_on_every_paginated_route(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let token = sa.app.token(ALICE);
    let project = sa.project(ALICE, "Maple").await;
    sqlx::query("UPDATE users SET role = 'admin' WHERE auth0_sub = $1")
        .bind(ALICE)
        .execute(&sa.app.db)
        .await
        .unwrap();
    // A real cursor, to show the routes do page and that tampering is what is refused.
    let real = shared::platform::pagination::Cursor {
        created_at: chrono::Utc::now(),
        id: Uuid::new_v4(),
    }
    .encode();

    for (what, cursor) in tampered_cursors().into_iter().chain([("real", real)]) {
        let expect_ok = what == "real";
        let check = |route: &str, response: TestResponse| {
            if expect_ok {
                assert_eq!(
                    response.status,
                    200,
                    "{route}: {}",
                    String::from_utf8_lossy(&response.body)
                );
            } else {
                assert_bad_cursor(&format!("{route}, {what}"), &response);
            }
        };
        let projects = call("GET", "/api/v1/projects")
            .bearer(&token)
            .query("cursor", &cursor)
            .send(&sa.app.api, &sa.app.api.web, list_projects::handle)
            .await;
        check("projects", projects);
        let audit = call("GET", "/api/v1/admin/audit-log")
            .bearer(&token)
            .query("cursor", &cursor)
            .send(&sa.app.api, &sa.app.api.web, admin_audit_log::handle)
            .await;
        check("audit log", audit);
        for route in [IMAGES, GROUPED] {
            let response = image_page(&sa, &token, route, project, &[("cursor", cursor.as_str())]).await;
            check(route, response);
        }
    }
    // The same cursor twice is ambiguous, not a silent pick.
    let twice = image_page(&sa, &token, IMAGES, project, &[("cursor", "a"), ("cursor", "b")]).await;
    twice.assert_error(400, "bad_request");
    // Auth still comes first: no token, no hint about the cursor.
    call("GET", IMAGES)
        .path_param("id", project)
        .query("cursor", "%%%")
        .send(&sa.storage, &sa.storage.api.web, list_project_images::handle)
        .await
        .assert_error(401, "unauthorized");
}

/// 5 000 images, inserted in one statement (creating them through the API would take minutes),
/// with timestamps that tie in threes so the id tie-break is exercised; every fourth image shares
/// an original photo with its neighbours (variants). A few are deleted.
async fn seed_images(db: &PgPool, owner: Uuid, project: Uuid, count: i32) {
    sqlx::query(
        "INSERT INTO images (project_id, user_id, original_key, original_content_type, original_size_bytes, \
                             room_type, style, created_at) \
         SELECT $1, $2, format('uploads/%s/%s.jpg', $2, g / 4), 'image/jpeg', 1000, 'bedroom', 'modern', \
                timestamptz '2026-11-01T00:00:00Z' + make_interval(secs => (g / 3)::float8 / 1000) \
         FROM generate_series(1, $3) AS g",
    )
    .bind(project)
    .bind(owner)
    .bind(count)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE images SET deleted_at = now() WHERE id IN \
         (SELECT id FROM images WHERE project_id = $1 ORDER BY id LIMIT 7)",
    )
    .bind(project)
    .execute(db)
    .await
    .unwrap();
}

/// The live images newest first, straight from the database: what the pages must add up to.
async fn expected_order(db: &PgPool, project: Uuid) -> Vec<(String, String)> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, original_key FROM images WHERE project_id = $1 AND deleted_at IS NULL \
         ORDER BY created_at DESC, id DESC",
    )
    .bind(project)
    .fetch_all(db)
    .await
    .unwrap();
    rows.into_iter().map(|(id, key)| (id.to_string(), key)).collect()
}

/// Walks every page of `route` with `limit` (None: the default), returning the pages' bodies and
/// the size of the largest response.
async fn walk(
    sa: &StagingApp,
    token: &str,
    route: &'static str,
    project: Uuid,
    limit: Option<&str>,
) -> (Vec<Value>, usize) {
    let mut pages = Vec::new();
    let mut largest = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(limit) = limit {
            query.push(("limit", limit));
        }
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let response = image_page(sa, token, route, project, &query).await;
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
        largest = largest.max(response.body.len());
        let body = response.json();
        let next = body["next_cursor"].as_str().map(str::to_string);
        pages.push(body);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages.len() <= 200, "the walk must end");
    }
    (pages, largest)
}

#[sqlx::test]
async fn a_5000_image_project_answers_in_bounded_pages_holding_every_image_once(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let token = sa.app.token(ALICE);
    let owner = shared::db::users::ensure_by_sub(&sa.app.db, ALICE).await.unwrap().id;
    let project = sa.project(ALICE, "Tower block").await;
    seed_images(&sa.app.db, owner, project, 5000).await;
    let expected = expected_order(&sa.app.db, project).await;
    assert_eq!(expected.len(), 4993);
    let expected_ids: Vec<String> = expected.iter().map(|(id, _)| id.clone()).collect();

    // The flat list at the default page size (50) and at the largest (100).
    for (limit, page_size) in [(None, 50), (Some("100"), 100)] {
        let (pages, largest) = walk(&sa, &token, IMAGES, project, limit).await;
        assert_eq!(pages.len(), expected.len().div_ceil(page_size));
        let mut seen = Vec::new();
        for (i, page) in pages.iter().enumerate() {
            let images = page["images"].as_array().unwrap();
            let last = i + 1 == pages.len();
            assert!(images.len() == page_size || last, "full pages until the last");
            assert_eq!(page["next_cursor"].is_null(), last);
            seen.extend(images.iter().map(|image| image["id"].as_str().unwrap().to_string()));
        }
        assert_eq!(seen, expected_ids, "every live image exactly once, newest first");
        // One page is a small fraction of Lambda's 6 MB response limit.
        assert!(largest < 200 * 1024 * page_size / 100, "largest page: {largest} bytes");
    }

    // The grouped list pages by images too; merging pages by file_key gives the whole grouping.
    let (pages, largest) = walk(&sa, &token, GROUPED, project, Some("100")).await;
    assert_eq!(pages.len(), expected.len().div_ceil(100));
    assert!(largest < 200 * 1024, "largest page: {largest} bytes");
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut variants_seen = HashSet::new();
    for page in &pages {
        let groups = page["images"].as_array().unwrap();
        let on_page: usize = groups.iter().map(|g| g["variants"].as_array().unwrap().len()).sum();
        assert!(on_page <= 100);
        for group in groups {
            let key = group["file_key"].as_str().unwrap().to_string();
            let slot = *index.entry(key.clone()).or_insert_with(|| {
                merged.push((key.clone(), Vec::new()));
                merged.len() - 1
            });
            for variant in group["variants"].as_array().unwrap() {
                let id = variant["id"].as_str().unwrap().to_string();
                assert_eq!(variant["file_key"], key.as_str());
                assert!(variants_seen.insert(id.clone()), "{id} twice");
                merged[slot].1.push(id);
            }
        }
    }
    let mut want: Vec<(String, Vec<String>)> = Vec::new();
    let mut want_index: HashMap<String, usize> = HashMap::new();
    for (id, key) in &expected {
        let slot = *want_index.entry(key.clone()).or_insert_with(|| {
            want.push((key.clone(), Vec::new()));
            want.len() - 1
        });
        want[slot].1.push(id.clone());
    }
    assert_eq!(merged, want, "groups by newest variant, variants newest first");

    // Out-of-range page sizes are refused on both lists.
    for route in [IMAGES, GROUPED] {
        for limit in ["0", "101", "-1", "all"] {
            image_page(&sa, &token, route, project, &[("limit", limit)])
                .await
                .assert_error(400, "bad_request");
        }
    }
}

#[sqlx::test]
async fn pages_stay_consistent_while_images_are_added_and_deleted(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let token = sa.app.token(ALICE);
    let owner = shared::db::users::ensure_by_sub(&sa.app.db, ALICE).await.unwrap().id;
    let project = sa.project(ALICE, "Maple").await;
    seed_images(&sa.app.db, owner, project, 30).await;
    let before = expected_order(&sa.app.db, project).await;

    let first = image_page(&sa, &token, IMAGES, project, &[("limit", "10")])
        .await
        .json();
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    // A new image arrives (newest: it belongs before the cursor) and one of the next page goes.
    sqlx::query(
        "INSERT INTO images (project_id, user_id, original_key, room_type, style) \
         VALUES ($1, $2, 'uploads/new.jpg', 'kitchen', 'modern')",
    )
    .bind(project)
    .bind(owner)
    .execute(&sa.app.db)
    .await
    .unwrap();
    let gone: Uuid = before[12].0.parse().unwrap();
    sqlx::query("UPDATE images SET deleted_at = now() WHERE id = $1")
        .bind(gone)
        .execute(&sa.app.db)
        .await
        .unwrap();
    let second = image_page(&sa, &token, IMAGES, project, &[("limit", "10"), ("cursor", &cursor)])
        .await
        .json();
    let ids: Vec<String> = second["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = before[10..21]
        .iter()
        .filter(|(id, _)| *id != gone.to_string())
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        ids, want,
        "the next page continues where the first ended, without the deleted image"
    );
}

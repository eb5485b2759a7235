//! Disclosure (California AB 723): share links of ready images and whole projects, the public
//! page `GET /s/{token}`, the disclosed photo with its burned-in label, and the QR code. Staged
//! photos come from the worker's offline simulator, in real storage (s3s-fs).

use base64::Engine;
use serde_json::{Value, json};
use shared::clients::storage::ImageFormat;
use shared::sharing::label::label_band;
use shared::staging::imaging::samples;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

const ALICE: &str = "auth0|alice";
const BOB: &str = "auth0|bob";

fn text(response: &TestResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

async fn share(w: &WorkerApp, sub: &str, image: impl ToString) -> TestResponse {
    let sa = &w.staging;
    call("POST", "/api/v1/images/{id}/share")
        .path_param("id", image)
        .bearer(&sa.app.token(sub))
        .send(&sa.sharing, &sa.sharing.api.web, share_image::handle)
        .await
}

async fn revoke_image(w: &WorkerApp, sub: &str, image: impl ToString) -> TestResponse {
    let sa = &w.staging;
    call("DELETE", "/api/v1/images/{id}/share")
        .path_param("id", image)
        .bearer(&sa.app.token(sub))
        .send(&sa.sharing, &sa.sharing.api.web, revoke_image_share::handle)
        .await
}

async fn share_project(w: &WorkerApp, sub: &str, project: impl ToString) -> TestResponse {
    let sa = &w.staging;
    call("GET", "/api/v1/projects/{id}/share")
        .path_param("id", project)
        .bearer(&sa.app.token(sub))
        .send(&sa.sharing, &sa.sharing.api.web, share_project::handle)
        .await
}

async fn revoke_project(w: &WorkerApp, sub: &str, project: impl ToString) -> TestResponse {
    let sa = &w.staging;
    call("DELETE", "/api/v1/projects/{id}/share")
        .path_param("id", project)
        .bearer(&sa.app.token(sub))
        .send(&sa.sharing, &sa.sharing.api.web, revoke_project_share::handle)
        .await
}

async fn qr(w: &WorkerApp, sub: &str, image: impl ToString, format: Option<&str>) -> TestResponse {
    let sa = &w.staging;
    let mut request = call("GET", "/api/v1/images/{id}/share/qr")
        .path_param("id", image)
        .bearer(&sa.app.token(sub));
    if let Some(format) = format {
        request = request.query("format", format);
    }
    request
        .send(&sa.sharing, &sa.sharing.api.web, share_image_qr::handle)
        .await
}

async fn page(w: &WorkerApp, token: &str) -> TestResponse {
    let sa = &w.staging;
    call("GET", "/s/{token}")
        .path_param("token", token)
        .send(&sa.share_page, &sa.share_page.web, share_page::handle)
        .await
}

async fn presign(w: &WorkerApp, sub: &str, image: impl ToString, kind: &str) -> TestResponse {
    let sa = &w.staging;
    call("GET", "/api/v1/images/{id}/presign")
        .path_param("id", image)
        .query("kind", kind)
        .bearer(&sa.app.token(sub))
        .send(&sa.storage, &sa.storage.api.web, presign_image::handle)
        .await
}

async fn fetch(url: &str) -> Vec<u8> {
    let response = shared::reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.unwrap().to_vec()
}

/// Stages `count` variations of a fresh photo of `sub` in `project` (offline simulator) and
/// returns their ids.
async fn staged(w: &WorkerApp, sub: &str, project: Uuid, count: u8) -> Vec<Uuid> {
    let key = w
        .upload_bytes(sub, ImageFormat::Jpeg, samples::room_jpeg(640, 427))
        .await;
    let response = call("POST", "/api/v1/images")
        .bearer(&w.staging.app.token(sub))
        .json(
            json!({"project_id": project, "file_key": key, "room_type": "living_room", "style": "modern",
                     "variations": count}),
        )
        .send(&w.staging.staging, &w.staging.staging.api.web, create_image::handle)
        .await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let body = response.json();
    let ids: Vec<Uuid> = match body.get("images") {
        Some(images) => images
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().parse().unwrap())
            .collect(),
        None => vec![body["id"].as_str().unwrap().parse().unwrap()],
    };
    assert!(w.deliver().await.is_empty());
    for id in &ids {
        assert_eq!(w.image_row(*id).await.status, "ready");
    }
    ids
}

/// The share page shows variations side by side; offline (the simulator, as in scripts/demo)
/// they must be different pictures too, each drawn from its own seed.
#[sqlx::test]
async fn offline_variations_of_one_photo_are_different_pictures(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let project = w.staging.project(ALICE, "3 Variations Way").await;
    let ids = staged(&w, ALICE, project, 3).await;
    let mut pictures = Vec::new();
    for id in &ids {
        let key = w.image_row(*id).await.staged_key.expect("a staged photo");
        let bytes = w
            .staging
            .storage
            .storage
            .get_bounded(&key, 50 << 20)
            .await
            .unwrap()
            .expect("the staged photo is stored");
        pictures.push(image::load_from_memory(&bytes).unwrap().to_rgb8());
    }
    let seeds: Vec<Option<i64>> = sqlx::query_scalar("SELECT seed FROM images WHERE id = ANY($1) ORDER BY id")
        .bind(&ids)
        .fetch_all(w.db())
        .await
        .unwrap();
    assert!(seeds.iter().all(Option::is_some), "{seeds:?}");
    let different = [(0, 1), (0, 2), (1, 2)]
        .iter()
        .filter(|&&(a, b)| pictures[a] != pictures[b])
        .count();
    assert!(different >= 2, "offline variations look the same (seeds {seeds:?})");
}

fn img_sources(html: &str) -> Vec<String> {
    html.split("<img src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().replace("&amp;", "&"))
        .collect()
}

#[sqlx::test]
async fn sharing_an_image_is_idempotent_owned_and_unguessable(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let project = w.staging.project(ALICE, "12 Maple <Street>").await;
    let image = staged(&w, ALICE, project, 1).await[0];

    let first = share(&w, ALICE, image).await;
    assert_eq!(first.status, 201, "{}", text(&first));
    let link = first.json();
    let token = link["token"].as_str().unwrap();
    // 128 random bits, URL-safe base64 without padding.
    assert_eq!(token.len(), 22);
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .unwrap()
            .len(),
        16
    );
    assert_eq!(link["url"], format!("{SHARE_BASE}/s/{token}"));
    assert_eq!(link["scope"], "image");
    assert_eq!(link["image_id"], image.to_string());
    assert_eq!(link["disclosed_photo"], true);
    assert_eq!(
        link["disclosure_text"],
        format!("Virtually staged · original: listings.example.test/s/{token}")
    );

    // Again: the same link, 200.
    let again = share(&w, ALICE, image).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["token"], token);
    // Another user: not found, and nothing created; nor can they revoke or see its QR code.
    share(&w, BOB, image).await.assert_error(404, "not_found");
    revoke_image(&w, BOB, image).await.assert_error(404, "not_found");
    qr(&w, BOB, image, None).await.assert_error(404, "not_found");
    share_project(&w, BOB, project).await.assert_error(404, "not_found");
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM share_links")
        .fetch_one(w.db())
        .await
        .unwrap();
    assert_eq!(links, 1);

    // Many tokens: all distinct and all 22 characters.
    let tokens: std::collections::HashSet<String> =
        (0..200).map(|_| shared::sharing::links::new_token().unwrap()).collect();
    assert_eq!(tokens.len(), 200);
    assert!(
        tokens
            .iter()
            .all(|t| t.len() == 22 && shared::sharing::links::looks_like_token(t))
    );
}

#[sqlx::test]
async fn only_ready_images_are_shared(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let queued = w
        .queue_image(ALICE, samples::room_jpeg(320, 240), "bedroom", "modern")
        .await;
    share(&w, ALICE, queued.image_id).await.assert_error(409, "conflict");
    qr(&w, ALICE, queued.image_id, None).await.assert_error(409, "conflict");
    presign(&w, ALICE, queued.image_id, "disclosed")
        .await
        .assert_error(409, "conflict");
    share(&w, ALICE, "nope").await.assert_error(400, "bad_request");
}

#[sqlx::test]
async fn the_page_shows_the_original_beside_the_staged_photo_and_nothing_after_revocation(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let project = w.staging.project(ALICE, "12 Maple <Street>").await;
    let ids = staged(&w, ALICE, project, 2).await;
    let token = share(&w, ALICE, ids[0]).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = page(&w, &token).await;
    assert_eq!(response.status, 200, "{}", text(&response));
    let html = text(&response);
    assert!(html.contains("Original, unaltered photo"));
    assert!(html.contains("Virtually staged (digitally altered)"));
    assert!(html.contains(shared::sharing::page::STATEMENT));
    assert!(html.contains("12 Maple &lt;Street&gt;"), "the name is escaped");
    assert!(html.contains("<meta name=\"robots\" content=\"noindex,nofollow\">"));
    assert!(!html.contains("<script"));
    // Exactly the shared image: its original and its staged photo, not the other variation.
    let sources = img_sources(&html);
    assert_eq!(sources.len(), 2, "{html}");
    // The web-size renditions, with the previews for small screens (srcset).
    assert!(
        sources[0].contains(&format!("renditions/")) && sources[0].contains(&format!("{}/original-web.jpg", ids[0])),
        "{}",
        sources[0]
    );
    assert!(
        sources[1].contains(&format!("{}/staged-web.jpg", ids[0])),
        "{}",
        sources[1]
    );
    assert!(html.contains(&format!("{}/original-preview.jpg", ids[0])));
    assert!(html.contains(&format!("{}/staged-preview.jpg", ids[0])));
    assert!(!html.contains(&ids[1].to_string()));
    // Short-lived links that work.
    assert!(sources.iter().all(|s| s.contains("X-Amz-Expires=900")), "{sources:?}");
    assert_eq!(&fetch(&sources[1]).await[..3], &[0xFF, 0xD8, 0xFF]);
    // Headers: HTML, not indexed, not stored, a CSP that allows the storage host's images and the
    // page's own style sheet only.
    assert_eq!(response.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(response.header("x-robots-tag"), Some("noindex, nofollow"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let csp = response.header("content-security-policy").unwrap();
    let storage_origin = url::Url::parse(&sources[0]).unwrap().origin().ascii_serialization();
    assert!(csp.starts_with("default-src 'none'; "), "{csp}");
    assert!(csp.contains(&format!("img-src {storage_origin};")), "{csp}");
    assert!(csp.contains("style-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");

    // Revoked: 410 in the same chrome, no images; a second revoke finds nothing.
    assert_eq!(revoke_image(&w, ALICE, ids[0]).await.status, 204);
    let gone = page(&w, &token).await;
    assert_eq!(gone.status, 410);
    let html = text(&gone);
    assert!(html.contains("No longer available") && html.contains("<style>"));
    assert!(img_sources(&html).is_empty());
    revoke_image(&w, ALICE, ids[0]).await.assert_error(404, "not_found");
    presign(&w, ALICE, ids[0], "disclosed")
        .await
        .assert_error(409, "conflict");
    // Sharing again makes a new link.
    let renewed = share(&w, ALICE, ids[0]).await;
    assert_eq!(renewed.status, 201);
    assert_ne!(renewed.json()["token"], token.as_str());

    // Unknown and malformed tokens: 404, same chrome.
    for unknown in [
        shared::sharing::links::new_token().unwrap(),
        "x".into(),
        "../../etc/passwd".into(),
    ] {
        let response = page(&w, &unknown).await;
        assert_eq!(response.status, 404, "{unknown}");
        assert!(text(&response).contains("Page not found"));
    }
}

#[sqlx::test]
async fn a_deleted_image_or_project_takes_its_page_down(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let project = w.staging.project(ALICE, "9 Oak Court").await;
    let image = staged(&w, ALICE, project, 1).await[0];
    let image_token = share(&w, ALICE, image).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let project_token = share_project(&w, ALICE, project).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(page(&w, &image_token).await.status, 200);
    let deleted = call("DELETE", "/api/v1/images/{id}")
        .path_param("id", image)
        .bearer(&w.staging.app.token(ALICE))
        .send(&w.staging.staging.api, &w.staging.staging.api.web, delete_image::handle)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(page(&w, &image_token).await.status, 410);
    // The project page stays, without the deleted photo.
    let html = text(&page(&w, &project_token).await);
    assert!(img_sources(&html).is_empty(), "{html}");
    sqlx::query("UPDATE projects SET deleted_at = now() WHERE id = $1")
        .bind(project)
        .execute(w.db())
        .await
        .unwrap();
    assert_eq!(page(&w, &project_token).await.status, 410);
}

#[sqlx::test]
async fn a_project_page_shows_exactly_that_projects_ready_photos(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let project = w.staging.project(ALICE, "5 Cedar Way").await;
    let other = w.staging.project(ALICE, "7 Pine Road").await;
    let two = staged(&w, ALICE, project, 2).await;
    let one = staged(&w, ALICE, project, 1).await;
    let elsewhere = staged(&w, ALICE, other, 1).await;
    // Queued, not ready: not on the page.
    let key = w
        .upload_bytes(ALICE, ImageFormat::Jpeg, samples::room_jpeg(320, 240))
        .await;
    let pending = w.queue_image_of(ALICE, project, &key, "bedroom", "modern").await;

    let first = share_project(&w, ALICE, project).await;
    assert_eq!(first.status, 201, "{}", text(&first));
    let link = first.json();
    assert_eq!(link["scope"], "project");
    assert_eq!(link["image_id"], Value::Null);
    assert_eq!(link["disclosed_photo"], false);
    let again = share_project(&w, ALICE, project).await;
    assert_eq!(
        (again.status, again.json()["token"].clone()),
        (200, link["token"].clone())
    );

    let html = text(&page(&w, link["token"].as_str().unwrap()).await);
    let sources = img_sources(&html);
    // Two originals, each once, then their staged versions: 2 + 3 images.
    assert_eq!(sources.len(), 5, "{html}");
    assert_eq!(html.matches("Original, unaltered photo</figcaption>").count(), 2);
    assert_eq!(html.matches("Virtually staged (digitally altered) <span").count(), 3);
    for id in two.iter().chain(&one) {
        let staged = format!("{id}/staged-web.jpg");
        assert_eq!(sources.iter().filter(|s| s.contains(&staged)).count(), 1, "{staged}");
    }
    assert!(!html.contains(&elsewhere[0].to_string()));
    assert!(!html.contains(&pending.image_id.to_string()));
    // The newest original comes first.
    assert!(
        sources[0].contains(&format!("{}/original-web.jpg", one[0])),
        "{}",
        sources[0]
    );

    assert_eq!(revoke_project(&w, ALICE, project).await.status, 204);
    assert_eq!(page(&w, link["token"].as_str().unwrap()).await.status, 410);
    revoke_project(&w, ALICE, project).await.assert_error(404, "not_found");
}

#[sqlx::test]
async fn the_disclosed_photo_is_the_staged_photo_with_the_label_burned_in(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let project = w.staging.project(ALICE, "12 Maple Street").await;
    let image = staged(&w, ALICE, project, 1).await[0];
    presign(&w, ALICE, image, "disclosed")
        .await
        .assert_error(409, "conflict");
    let link = share(&w, ALICE, image).await.json();

    let staged_url = presign(&w, ALICE, image, "staged").await.json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = presign(&w, ALICE, image, "disclosed").await;
    assert_eq!(response.status, 200, "{}", text(&response));
    let disclosed_url = response.json()["url"].as_str().unwrap().to_owned();
    let staged = image::load_from_memory(&fetch(&staged_url).await).unwrap().to_rgb8();
    let disclosed_bytes = fetch(&disclosed_url).await;
    assert_eq!(&disclosed_bytes[..3], &[0xFF, 0xD8, 0xFF]);
    let disclosed = image::load_from_memory(&disclosed_bytes).unwrap().to_rgb8();
    assert_eq!(disclosed.dimensions(), staged.dimensions());
    let (width, height) = disclosed.dimensions();
    let band = label_band(width, height);
    assert!(band.top + band.height == height && band.height >= 24, "{band:?}");
    // In the band: mostly black, with white text; above it: the staged photo (JPEG noise aside).
    let band_pixels: Vec<[u8; 3]> = (band.top..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| disclosed.get_pixel(x, y).0)
        .collect();
    let dark = band_pixels.iter().filter(|p| p.iter().all(|&c| c < 60)).count();
    let light = band_pixels.iter().filter(|p| p.iter().all(|&c| c > 190)).count();
    assert!(dark > band_pixels.len() / 2, "{dark} of {}", band_pixels.len());
    assert!(light > 100, "text pixels: {light}");
    let mut differing = 0;
    for y in 0..band.top.saturating_sub(8) {
        for x in 0..width {
            let (a, b) = (disclosed.get_pixel(x, y).0, staged.get_pixel(x, y).0);
            if a.iter().zip(b).any(|(p, q)| p.abs_diff(q) > 40) {
                differing += 1;
            }
        }
    }
    assert!(
        differing < (width * band.top / 200) as usize,
        "{differing} pixels differ above the band"
    );
    // The plain staged photo is untouched.
    let staged_bytes_again = fetch(&staged_url).await;
    assert_ne!(staged_bytes_again, disclosed_bytes);
    assert_eq!(link["disclosed_photo"], true);

    // Revoking deletes the disclosed photo.
    let key: String = sqlx::query_scalar("SELECT disclosed_key FROM share_links WHERE image_id = $1")
        .bind(image)
        .fetch_one(w.db())
        .await
        .unwrap();
    assert!(key.starts_with("disclosed/"));
    assert_eq!(revoke_image(&w, ALICE, image).await.status, 204);
    assert!(w.staging.storage.storage.head(&key).await.unwrap().is_none());
}

#[sqlx::test]
async fn the_qr_code_decodes_back_to_the_share_url(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let project = w.staging.project(ALICE, "12 Maple Street").await;
    let image = staged(&w, ALICE, project, 1).await[0];
    let url = share(&w, ALICE, image).await.json()["url"].as_str().unwrap().to_owned();

    let png = qr(&w, ALICE, image, None).await;
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type"), Some("image/png"));
    let decoded = image::load_from_memory(&png.body).unwrap().to_luma8();
    let (qr_width, qr_height) = decoded.dimensions();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(qr_width as usize, qr_height as usize, |x, y| {
        decoded.get_pixel(x as u32, y as u32).0[0]
    });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, url);

    let svg = qr(&w, ALICE, image, Some("svg")).await;
    assert_eq!(svg.status, 200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    let body = text(&svg);
    assert!(body.contains("<svg") && body.trim_end().ends_with("</svg>"));
    qr(&w, ALICE, image, Some("gif")).await.assert_error(400, "bad_request");
}

#[sqlx::test]
async fn purging_a_deleted_image_removes_its_disclosed_photos(db: PgPool) {
    let w = spawn_worker_with(db, fast_worker_config(), true).await;
    let project = w.staging.project(ALICE, "12 Maple Street").await;
    let image = staged(&w, ALICE, project, 1).await[0];
    share(&w, ALICE, image).await;
    let key: String = sqlx::query_scalar("SELECT disclosed_key FROM share_links WHERE image_id = $1")
        .bind(image)
        .fetch_one(w.db())
        .await
        .unwrap();
    assert!(w.staging.storage.storage.head(&key).await.unwrap().is_some());
    let deleted = call("DELETE", "/api/v1/images/{id}")
        .path_param("id", image)
        .bearer(&w.staging.app.token(ALICE))
        .send(&w.staging.staging.api, &w.staging.staging.api.web, delete_image::handle)
        .await;
    assert_eq!(deleted.status, 204);
    let report = crate::reconcile::reconcile(&w).await;
    assert_eq!(report.purged_images, 1, "{report:?}");
    assert!(w.staging.storage.storage.head(&key).await.unwrap().is_none());
}

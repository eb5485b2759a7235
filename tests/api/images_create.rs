//! POST /api/v1/images and POST /api/v1/images/batch: images and jobs created from real uploads
//! (s3s-fs), allowance reserved atomically in Postgres, one message per job on a real SQS
//! endpoint (moto).

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use shared::billing::plans::PlansConfig;
use shared::clients::storage::{ImageFormat, UploadKey};
use shared::platform::config::{AppEnv, Env};
use shared::staging::queue::JobMessage;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

const SINGLE: &str = "/api/v1/images";
const BATCH: &str = "/api/v1/images/batch";
const ALICE: &str = "auth0|alice";
const BOB: &str = "auth0|bob";

async fn create_on(state: &shared::platform::state::StagingState, token: &str, body: Value) -> TestResponse {
    call("POST", SINGLE)
        .bearer(token)
        .json(body)
        .send(state, &state.api.web, create_image::handle)
        .await
}

async fn create(sa: &StagingApp, sub: &str, body: Value) -> TestResponse {
    create_on(&sa.staging, &sa.app.token(sub), body).await
}

async fn batch(sa: &StagingApp, sub: &str, items: Vec<Value>) -> TestResponse {
    call("POST", BATCH)
        .bearer(&sa.app.token(sub))
        .json(json!({ "images": items }))
        .send(&sa.staging, &sa.staging.api.web, create_images_batch::handle)
        .await
}

fn item(project: Uuid, key: &str, style: &str) -> Value {
    json!({"project_id": project, "file_key": key, "room_type": "living_room", "style": style})
}

/// A project and an uploaded 1234-byte JPEG of `sub`.
async fn ready(sa: &StagingApp, sub: &str) -> (Uuid, String) {
    let project = sa.project(sub, "12 Maple Street").await;
    let key = sa.upload(sub, ImageFormat::Jpeg, 1234).await;
    (project, key)
}

async fn user_id(sa: &StagingApp, sub: &str) -> Uuid {
    shared::db::users::ensure_by_sub(&sa.app.db, sub).await.unwrap().id
}

/// (images, jobs, ledger rows, ledger units) in the whole database.
async fn counts(db: &PgPool) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM jobs), \
                (SELECT count(*) FROM usage_ledger), (SELECT COALESCE(SUM(units), 0)::bigint FROM usage_ledger)",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

/// Allowance already used this month, written straight to the ledger.
async fn use_allowance(db: &PgPool, user: Uuid, units: i32) {
    sqlx::query(
        "INSERT INTO usage_ledger (user_id, kind, units, period_at, reason) VALUES ($1, 'reserve', $2, now(), 'test')",
    )
    .bind(user)
    .bind(units)
    .execute(db)
    .await
    .unwrap();
}

/// Syncs the plans table with the free plan's limit set to `limit`.
async fn set_free_limit(db: &PgPool, limit: u32) {
    let limit = limit.to_string();
    let vars: HashMap<&str, &str> = [("PLAN_FREE_MONTHLY_LIMIT", limit.as_str())].into();
    let plans = PlansConfig::from_env(&Env(&vars), AppEnv::Test).unwrap();
    shared::db::migrate::migrate_and_sync(db, &plans).await.unwrap();
}

fn text(response: &TestResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

// ---------------------------------------------------------------------------------------------
// POST /api/v1/images

#[sqlx::test]
async fn create_answers_201_and_queues_one_job(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let alice = user_id(&sa, ALICE).await;
    let response = create(
        &sa,
        ALICE,
        json!({"project_id": project, "file_key": key, "room_type": "living_room", "style": "scandinavian",
               "seed": 42, "prompt": "  A bright room with oak floors  "}),
    )
    .await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let body = response.json();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        IMAGE_FIELDS.to_vec()
    );
    assert_eq!(body["status"], "queued");
    assert_eq!(body["project_id"], project.to_string());
    assert_eq!(body["file_key"], key);
    assert_eq!(body["room_type"], "living_room");
    assert_eq!(body["style"], "scandinavian");
    assert_eq!(body["seed"], 42);
    assert_eq!(body["prompt"], "A bright room with oak floors");
    for absent in ["error", "model_used", "cost_usd", "processing_time_ms", "staged_url"] {
        assert_eq!(body[absent], Value::Null, "{absent}");
    }
    // The original link is a working presigned GET.
    let original = shared::reqwest::get(body["original_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(original.status(), 200);
    assert_eq!(original.bytes().await.unwrap().len(), 1234);

    let image_id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    let (owner, status, content_type, size, prompt): (Uuid, String, String, i64, String) = sqlx::query_as(
        "SELECT user_id, status, original_content_type, original_size_bytes, prompt FROM images WHERE id = $1",
    )
    .bind(image_id)
    .fetch_one(&sa.app.db)
    .await
    .unwrap();
    assert_eq!(
        (owner, status.as_str(), content_type.as_str(), size, prompt.as_str()),
        (alice, "queued", "image/jpeg", 1234, "A bright room with oak floors")
    );
    let (job_id, job_status, enqueued): (Uuid, String, bool) =
        sqlx::query_as("SELECT id, status, enqueued_at IS NOT NULL FROM jobs WHERE image_id = $1")
            .bind(image_id)
            .fetch_one(&sa.app.db)
            .await
            .unwrap();
    assert_eq!(job_status, "queued");
    assert!(enqueued, "a job SQS accepted is marked enqueued");
    let ledger: Vec<(Uuid, Option<Uuid>, String, i32)> =
        sqlx::query_as("SELECT user_id, image_id, kind, units FROM usage_ledger")
            .fetch_all(&sa.app.db)
            .await
            .unwrap();
    assert_eq!(ledger, vec![(alice, Some(image_id), "reserve".to_string(), 1)]);
    assert_eq!(
        receive_jobs(&sa.staging.queue, 10).await,
        vec![JobMessage::new(job_id, image_id)]
    );
}

#[sqlx::test]
async fn create_accepts_the_seed_bounds_and_a_blank_prompt(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    for (seed, prompt) in [(json!(1), json!("   ")), (json!(4_294_967_295_i64), json!(null))] {
        let response = create(
            &sa,
            ALICE,
            json!({"project_id": project, "file_key": key, "room_type": "kitchen", "style": "modern",
                   "seed": seed, "prompt": prompt}),
        )
        .await;
        assert_eq!(response.status, 201, "{}", text(&response));
        let body = response.json();
        assert_eq!(body["seed"], seed);
        assert_eq!(body["prompt"], Value::Null);
    }
    // PNG and WebP originals too; the same upload can be staged any number of times.
    for format in [ImageFormat::Png, ImageFormat::Webp] {
        let key = sa.upload(ALICE, format, 10).await;
        assert_eq!(create(&sa, ALICE, item(project, &key, "industrial")).await.status, 201);
    }
    assert_eq!(counts(&sa.app.db).await, (4, 4, 4, 4));
}

#[sqlx::test]
async fn create_lists_every_invalid_field_and_writes_nothing(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let ok = item(project, &key, "modern");
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["project_id", "file_key", "room_type", "style"]),
        (
            json!({"project_id": "nope", "file_key": "uploads/x/y.jpg", "room_type": "garage", "style": "baroque",
                   "seed": 0, "prompt": "short"}),
            vec!["project_id", "file_key", "room_type", "style", "seed", "prompt"],
        ),
        (with("room_type", json!("garage")), vec!["room_type"]),
        (with("room_type", json!("Living Room")), vec!["room_type"]),
        (with("style", json!("baroque")), vec!["style"]),
        (with("seed", json!(0)), vec!["seed"]),
        (with("seed", json!(-1)), vec!["seed"]),
        (with("seed", json!(4_294_967_296_i64)), vec!["seed"]),
        (with("seed", json!("42")), vec!["seed"]),
        (with("prompt", json!("too short")), vec!["prompt"]),
        (with("prompt", json!("x".repeat(2001))), vec!["prompt"]),
        (with("prompt", json!("a bell \u{7} rings here")), vec!["prompt"]),
        (with("project_id", json!("not-a-uuid")), vec!["project_id"]),
        (with("file_key", json!("staged/x/y.jpg")), vec!["file_key"]),
        (
            with("file_key", json!(key.replace("uploads/", "uploads/../"))),
            vec!["file_key"],
        ),
        (with("file_key", json!(key.to_uppercase())), vec!["file_key"]),
        (with("user_id", json!(Uuid::new_v4())), vec!["user_id"]),
    ];
    for (body, fields) in cases {
        let response = create(&sa, ALICE, body.clone()).await;
        assert_eq!(response.invalid_fields(), fields, "{body}");
    }
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0, 0));
}

#[sqlx::test]
async fn create_checks_the_upload_in_storage(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, _) = ready(&sa, ALICE).await;
    let alice = user_id(&sa, ALICE).await;
    // A well-formed key of the caller that was presigned but never PUT.
    let never = UploadKey::generate(alice, ImageFormat::Jpeg).to_string();
    let response = create(&sa, ALICE, item(project, &never, "modern")).await;
    assert_eq!(response.invalid_fields(), vec!["file_key"]);
    assert!(
        text(&response).contains("no file has been uploaded"),
        "{}",
        text(&response)
    );
    // An object whose stored type is not the one its key says.
    let mismatched = UploadKey::generate(alice, ImageFormat::Jpeg).to_string();
    sa.staging
        .storage
        .client()
        .put_object()
        .bucket(sa.staging.storage.bucket())
        .key(&mismatched)
        .content_type("image/png")
        .body(vec![1u8; 10].into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        create(&sa, ALICE, item(project, &mismatched, "modern"))
            .await
            .invalid_fields(),
        vec!["file_key"]
    );
    // Bob's upload, even with Alice's own project: the key is not hers.
    let bobs = sa.upload(BOB, ImageFormat::Jpeg, 50).await;
    let response = create(&sa, ALICE, item(project, &bobs, "modern")).await;
    assert_eq!(response.invalid_fields(), vec!["file_key"]);
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0, 0));
    assert!(receive_jobs(&sa.staging.queue, 1).await.is_empty());
}

#[sqlx::test]
async fn create_answers_404_for_a_project_that_is_not_the_callers(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (_, key) = ready(&sa, ALICE).await;
    let bobs_project = sa.project(BOB, "Bob's house").await;
    let deleted = sa.project(ALICE, "Sold").await;
    sqlx::query("UPDATE projects SET deleted_at = now() WHERE id = $1")
        .bind(deleted)
        .execute(&sa.app.db)
        .await
        .unwrap();
    for project in [bobs_project, Uuid::new_v4(), deleted] {
        let response = create(&sa, ALICE, item(project, &key, "modern")).await;
        response.assert_error(404, "not_found");
        assert_eq!(response.json()["message"], "Project not found");
    }
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0, 0));
    assert!(receive_jobs(&sa.staging.queue, 1).await.is_empty());
}

#[sqlx::test]
async fn create_rejects_malformed_and_unauthenticated_requests(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let token = sa.app.token(ALICE);
    let sa_ref = &sa;
    let send = |c: Call| async move {
        c.send(&sa_ref.staging, &sa_ref.staging.api.web, create_image::handle)
            .await
    };
    send(
        call("POST", SINGLE)
            .bearer(&token)
            .raw_body("application/json", "{\"project_id\":"),
    )
    .await
    .assert_error(400, "bad_request");
    send(
        call("POST", SINGLE)
            .bearer(&token)
            .raw_body("application/json", "\"x\""),
    )
    .await
    .assert_error(400, "bad_request");
    let response = send(call("POST", SINGLE).json(item(project, &key, "modern"))).await;
    response.assert_error(401, "unauthorized");
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    // A token of another issuer's key is refused before anything is read.
    let forged = sign(&sa.app.claims(ALICE), Some(DEV_KID), attacker_private_key());
    send(call("POST", SINGLE).bearer(&forged).json(item(project, &key, "modern")))
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0, 0));
}

#[sqlx::test]
async fn a_job_whose_message_was_not_sent_is_marked_for_resend(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let endpoint = std::env::var("TEST_SQS_ENDPOINT").unwrap();
    let missing = shared::staging::queue::JobQueue::new(&queue_config(&format!(
        "{}/000000000000/missing-queue",
        endpoint.trim_end_matches('/')
    )))
    .await;
    let state = shared::platform::state::StagingState {
        api: shared::platform::state::ApiState::new(web_config(), sa.app.db.clone(), sa.app.auth.clone()).unwrap(),
        storage: sa.staging.storage.clone(),
        queue: missing,
    };
    let response = create_on(&state, &sa.app.token(ALICE), item(project, &key, "modern")).await;
    assert_eq!(response.status, 201, "the work is recorded: {}", text(&response));
    let image_id: Uuid = response.json()["id"].as_str().unwrap().parse().unwrap();
    let (status, enqueued_at): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT status, enqueued_at FROM jobs WHERE image_id = $1")
            .bind(image_id)
            .fetch_one(&sa.app.db)
            .await
            .unwrap();
    assert_eq!((status.as_str(), enqueued_at), ("queued", None));
    assert_eq!(counts(&sa.app.db).await, (1, 1, 1, 1));
}

// ---------------------------------------------------------------------------------------------
// POST /api/v1/images/batch

#[sqlx::test]
async fn batch_stages_one_upload_in_five_styles(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let styles = ["modern", "contemporary", "traditional", "industrial", "scandinavian"];
    let response = batch(&sa, ALICE, styles.iter().map(|s| item(project, &key, s)).collect()).await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let body = response.json();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["failed", "images", "success"]
    );
    assert_eq!(body["success"], 5);
    assert_eq!(body["failed"], 0);
    let images = body["images"].as_array().unwrap();
    let got: Vec<&str> = images.iter().map(|i| i["style"].as_str().unwrap()).collect();
    assert_eq!(got, styles, "images in request order");
    assert!(images.iter().all(|i| i["file_key"] == key && i["status"] == "queued"));
    assert_eq!(counts(&sa.app.db).await, (5, 5, 5, 5));
    let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE enqueued_at IS NULL")
        .fetch_one(&sa.app.db)
        .await
        .unwrap();
    assert_eq!(unsent, 0);
    let expected: BTreeSet<(Uuid, Uuid)> = sqlx::query_as("SELECT image_id, id FROM jobs")
        .fetch_all(&sa.app.db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let sent: BTreeSet<(Uuid, Uuid)> = receive_jobs(&sa.staging.queue, 10)
        .await
        .into_iter()
        .map(|m| (m.image_id, m.job_id))
        .collect();
    assert_eq!(sent, expected);
    let returned: BTreeSet<Uuid> = images
        .iter()
        .map(|i| i["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(returned, expected.iter().map(|(image, _)| *image).collect());
}

#[sqlx::test]
async fn batch_spans_projects_and_uploads(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (first, key) = ready(&sa, ALICE).await;
    let second = sa.project(ALICE, "Second listing").await;
    let other_key = sa.upload(ALICE, ImageFormat::Webp, 99).await;
    let response = batch(
        &sa,
        ALICE,
        vec![
            item(first, &key, "modern"),
            item(second, &other_key, "modern"),
            item(second, &key, "traditional"),
        ],
    )
    .await;
    assert_eq!(response.status, 201, "{}", text(&response));
    assert_eq!(response.json()["success"], 3);
    let per_project: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT project_id, count(*) FROM images GROUP BY project_id ORDER BY count(*)")
            .fetch_all(&sa.app.db)
            .await
            .unwrap();
    assert_eq!(per_project, vec![(first, 1), (second, 2)]);
}

#[sqlx::test]
async fn batch_size_must_be_1_to_50(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    assert_eq!(batch(&sa, ALICE, vec![]).await.invalid_fields(), vec!["images"]);
    let many: Vec<Value> = (0..51).map(|_| item(project, &key, "modern")).collect();
    assert_eq!(batch(&sa, ALICE, many).await.invalid_fields(), vec!["images"]);
    let token = sa.app.token(ALICE);
    for body in [json!({}), json!({"images": "all"}), json!({"images": null})] {
        let response = call("POST", BATCH)
            .bearer(&token)
            .json(body.clone())
            .send(&sa.staging, &sa.staging.api.web, create_images_batch::handle)
            .await;
        assert_eq!(response.invalid_fields(), vec!["images"], "{body}");
    }
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0, 0));
    // 50 is allowed (and exceeds the free plan: the limit, not the size, stops it).
    let fifty: Vec<Value> = (0..50).map(|_| item(project, &key, "modern")).collect();
    batch(&sa, ALICE, fifty).await.assert_error(402, "usage_limit_exceeded");
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0, 0));
}

#[sqlx::test]
async fn one_bad_item_fails_the_whole_batch(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let good = || item(project, &key, "modern");
    let mut bad_style = good();
    bad_style["style"] = json!("baroque");
    assert_eq!(
        batch(&sa, ALICE, vec![good(), good(), bad_style, good()])
            .await
            .invalid_fields(),
        vec!["images[2].style"]
    );
    // Every problem of every item is listed.
    let mut bad_room = good();
    bad_room["room_type"] = json!("garage");
    let mut bad_seed_prompt = good();
    bad_seed_prompt["seed"] = json!(0);
    bad_seed_prompt["prompt"] = json!("short");
    assert_eq!(
        batch(&sa, ALICE, vec![bad_room, good(), bad_seed_prompt])
            .await
            .invalid_fields(),
        vec!["images[0].room_type", "images[2].seed", "images[2].prompt"]
    );
    // Wrong types and unknown fields inside an item name the item.
    let mut unknown = good();
    unknown["user_id"] = json!(Uuid::new_v4());
    assert_eq!(
        batch(&sa, ALICE, vec![good(), unknown]).await.invalid_fields(),
        vec!["images[1].user_id"]
    );
    let mut wrong_type = good();
    wrong_type["seed"] = json!("7");
    assert_eq!(
        batch(&sa, ALICE, vec![good(), good(), good(), wrong_type])
            .await
            .invalid_fields(),
        vec!["images[3].seed"]
    );
    // A key that was never uploaded, and another user's upload.
    let alice = user_id(&sa, ALICE).await;
    let never = UploadKey::generate(alice, ImageFormat::Png).to_string();
    assert_eq!(
        batch(&sa, ALICE, vec![good(), item(project, &never, "modern")])
            .await
            .invalid_fields(),
        vec!["images[1].file_key"]
    );
    let bobs = sa.upload(BOB, ImageFormat::Jpeg, 50).await;
    assert_eq!(
        batch(&sa, ALICE, vec![item(project, &bobs, "modern"), good()])
            .await
            .invalid_fields(),
        vec!["images[0].file_key"]
    );
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0, 0));
    assert!(receive_jobs(&sa.staging.queue, 1).await.is_empty());
}

#[sqlx::test]
async fn batch_with_a_foreign_or_missing_project_creates_nothing(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let bobs_project = sa.project(BOB, "Bob's").await;
    for other in [bobs_project, Uuid::new_v4()] {
        batch(
            &sa,
            ALICE,
            vec![item(project, &key, "modern"), item(other, &key, "modern")],
        )
        .await
        .assert_error(404, "not_found");
    }
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0, 0));
}

#[sqlx::test]
async fn batch_rejects_malformed_and_unauthenticated_requests(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let sa_ref = &sa;
    let send = |c: Call| async move {
        c.send(&sa_ref.staging, &sa_ref.staging.api.web, create_images_batch::handle)
            .await
    };
    send(
        call("POST", BATCH)
            .bearer(&sa.app.token(ALICE))
            .raw_body("application/json", "{\"images\": ["),
    )
    .await
    .assert_error(400, "bad_request");
    send(call("POST", BATCH).json(json!({"images": [item(project, &key, "modern")]})))
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0, 0));
}

// ---------------------------------------------------------------------------------------------
// Monthly allowance

#[sqlx::test]
async fn at_limit_minus_3_asking_for_5_gets_402_and_nothing_is_created(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    set_free_limit(&sa.app.db, 8).await;
    let (project, key) = ready(&sa, ALICE).await;
    let alice = user_id(&sa, ALICE).await;
    use_allowance(&sa.app.db, alice, 5).await;
    let before = counts(&sa.app.db).await;
    assert_eq!(before, (0, 0, 1, 5));

    let five: Vec<Value> = (0..5).map(|_| item(project, &key, "modern")).collect();
    let response = batch(&sa, ALICE, five).await;
    response.assert_error(402, "usage_limit_exceeded");
    let body = response.json();
    assert_eq!(body["monthly_limit"], 8);
    assert_eq!(body["images_used"], 5);
    assert_eq!(body["remaining"], 3);
    assert_eq!(body["requested"], 5);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(counts(&sa.app.db).await, before, "no images, jobs or ledger rows");
    assert!(receive_jobs(&sa.staging.queue, 1).await.is_empty());

    // Exactly what remains fits.
    let three: Vec<Value> = (0..3).map(|_| item(project, &key, "modern")).collect();
    let response = batch(&sa, ALICE, three).await;
    assert_eq!(response.status, 201, "{}", text(&response));
    assert_eq!(response.json()["success"], 3);
    assert_eq!(counts(&sa.app.db).await, (3, 3, 4, 8));

    // And then nothing does, through either route.
    let response = create(&sa, ALICE, item(project, &key, "modern")).await;
    response.assert_error(402, "usage_limit_exceeded");
    let body = response.json();
    assert_eq!(
        (body["remaining"].clone(), body["requested"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(counts(&sa.app.db).await, (3, 3, 4, 8));

    // Another user's allowance is their own.
    let (bobs_project, bobs_key) = ready(&sa, BOB).await;
    assert_eq!(
        create(&sa, BOB, item(bobs_project, &bobs_key, "modern")).await.status,
        201
    );
}

#[sqlx::test]
async fn without_a_subscription_the_free_plan_applies_never_zero(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let alice = user_id(&sa, ALICE).await;
    // The plans table is empty (no sync yet) and the only subscription is canceled.
    let plans: i64 = sqlx::query_scalar("SELECT count(*) FROM plans")
        .fetch_one(&sa.app.db)
        .await
        .unwrap();
    assert_eq!(plans, 0);
    sqlx::query(
        "INSERT INTO subscriptions (user_id, stripe_subscription_id, status, price_id) VALUES ($1, 'sub_old', 'canceled', 'price_pro')",
    )
    .bind(alice)
    .execute(&sa.app.db)
    .await
    .unwrap();
    let ten: Vec<Value> = (0..10).map(|_| item(project, &key, "modern")).collect();
    let response = batch(&sa, ALICE, ten).await;
    assert_eq!(response.status, 201, "{}", text(&response));
    assert_eq!(response.json()["success"], 10);
    let response = create(&sa, ALICE, item(project, &key, "modern")).await;
    response.assert_error(402, "usage_limit_exceeded");
    let body = response.json();
    assert_eq!(body["monthly_limit"], 10);
    assert_eq!(body["images_used"], 10);
    assert_eq!(counts(&sa.app.db).await, (10, 10, 10, 10));
}

#[sqlx::test]
async fn deleting_a_project_does_not_give_allowance_back(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    set_free_limit(&sa.app.db, 2).await;
    let (project, key) = ready(&sa, ALICE).await;
    let response = batch(
        &sa,
        ALICE,
        vec![item(project, &key, "modern"), item(project, &key, "traditional")],
    )
    .await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let deleted = call("DELETE", "/api/v1/projects/{id}")
        .path_param("id", project)
        .bearer(&sa.app.token(ALICE))
        .send(&sa.app.api, &sa.app.api.web, delete_project::handle)
        .await;
    assert_eq!(deleted.status, 204, "{}", text(&deleted));
    let fresh = sa.project(ALICE, "New listing").await;
    let response = create(&sa, ALICE, item(fresh, &key, "modern")).await;
    response.assert_error(402, "usage_limit_exceeded");
    assert_eq!(response.json()["images_used"], 2);
}

#[sqlx::test]
async fn concurrent_batches_never_reserve_more_than_the_limit(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let token = sa.app.token(ALICE);
    let calls: Vec<Call> = (0..50)
        .map(|i| {
            let items: Vec<Value> = (0..(i % 2 + 1)).map(|_| item(project, &key, "modern")).collect();
            call("POST", BATCH).bearer(&token).json(json!({ "images": items }))
        })
        .collect();
    let responses = futures::future::join_all(
        calls
            .iter()
            .map(|c| c.send(&sa.staging, &sa.staging.api.web, create_images_batch::handle)),
    )
    .await;
    let mut created = 0;
    for response in &responses {
        match response.status {
            201 => created += response.json()["success"].as_i64().unwrap(),
            402 => {
                let body = response.json();
                assert!(body["requested"].as_i64() > body["remaining"].as_i64(), "{body}");
            }
            other => panic!("unexpected {other}: {}", text(response)),
        }
    }
    let (images, jobs, _, units) = counts(&sa.app.db).await;
    // Never more than the limit; and exactly the limit, since 25 one-image requests are only refused
    // once nothing remains.
    assert_eq!(units, 10, "reserved {units} of a limit of 10");
    assert_eq!((images, jobs, units), (created, created, created));
    let per_image: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM images i JOIN usage_ledger l ON l.image_id = i.id AND l.kind = 'reserve'",
    )
    .fetch_one(&sa.app.db)
    .await
    .unwrap();
    assert_eq!(per_image, created, "every image has exactly one reservation");
}

// ---------------------------------------------------------------------------------------------
// Variations: several images of one photo in one request

#[sqlx::test]
async fn variations_make_that_many_images_jobs_and_reservations_with_their_own_seeds(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = ready(&sa, ALICE).await;
    let mut body = item(project, &key, "modern");
    body["variations"] = json!(3);
    body["seed"] = json!(100);
    let response = create(&sa, ALICE, body).await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let answer = response.json();
    assert_eq!(
        (answer["success"].clone(), answer["failed"].clone()),
        (json!(3), json!(0))
    );
    let images = answer["images"].as_array().unwrap();
    let seeds: Vec<i64> = images.iter().map(|i| i["seed"].as_i64().unwrap()).collect();
    assert_eq!(seeds, vec![100, 101, 102], "the request's seed and the ones after it");
    assert!(
        images
            .iter()
            .all(|i| i["file_key"] == key.as_str() && i["status"] == "queued")
    );
    // One reservation per image, one job per image, one message per job.
    assert_eq!(counts(&sa.app.db).await, (3, 3, 3, 3));
    let messages = receive_jobs(&sa.staging.queue, 10).await;
    let queued: BTreeSet<Uuid> = messages.iter().map(|m| m.image_id).collect();
    let made: BTreeSet<Uuid> = images
        .iter()
        .map(|i| i["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(queued, made);

    // Without a seed each variation still gets its own, recorded so it can be made again.
    let mut body = item(project, &key, "industrial");
    body["variations"] = json!(2);
    let answer = create(&sa, ALICE, body).await.json();
    let seeds: BTreeSet<i64> = answer["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["seed"].as_i64().expect("a recorded seed"))
        .collect();
    assert_eq!(seeds.len(), 2);

    // The grouped list shows them as variants of one original.
    let grouped = call("GET", "/api/v1/projects/{id}/images/grouped")
        .path_param("id", &project.to_string())
        .bearer(&sa.app.token(ALICE))
        .send(&sa.storage, &sa.storage.api.web, list_project_images_grouped::handle)
        .await
        .json();
    let groups = grouped["images"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["variants"].as_array().unwrap().len(), 5);
}

#[sqlx::test]
async fn variations_are_all_or_nothing_at_the_allowance_edge(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    set_free_limit(&sa.app.db, 10).await;
    let (project, key) = ready(&sa, ALICE).await;
    let alice = user_id(&sa, ALICE).await;
    use_allowance(&sa.app.db, alice, 8).await;
    let before = counts(&sa.app.db).await;
    let mut body = item(project, &key, "modern");
    body["variations"] = json!(3);
    let response = create(&sa, ALICE, body.clone()).await;
    response.assert_error(402, "usage_limit_exceeded");
    assert_eq!(response.json()["requested"], 3);
    assert_eq!(counts(&sa.app.db).await, before, "nothing reserved, nothing created");
    assert!(receive_jobs(&sa.staging.queue, 1).await.is_empty());
    body["variations"] = json!(2);
    assert_eq!(create(&sa, ALICE, body).await.json()["success"], 2);
}

#[sqlx::test]
async fn variations_must_be_1_to_4_and_a_batch_at_most_50_images(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    set_free_limit(&sa.app.db, 100).await;
    let (project, key) = ready(&sa, ALICE).await;
    for bad in [json!(0), json!(5), json!(-1), json!(1.5), json!("2")] {
        let mut body = item(project, &key, "modern");
        body["variations"] = bad.clone();
        let response = create(&sa, ALICE, body).await;
        assert!(
            matches!(response.status, 400 | 422),
            "{bad}: {} {}",
            response.status,
            text(&response)
        );
        if response.status == 422 {
            assert_eq!(response.invalid_fields(), vec!["variations"], "{bad}");
        }
    }
    // 13 items × 4 variations = 52 images: refused as a whole, naming the list.
    let items: Vec<Value> = (0..13)
        .map(|_| {
            let mut i = item(project, &key, "modern");
            i["variations"] = json!(4);
            i
        })
        .collect();
    let response = batch(&sa, ALICE, items).await;
    assert_eq!(response.invalid_fields(), vec!["images"]);
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0, 0));
    // 12 × 4 = 48 fits.
    let items: Vec<Value> = (0..12)
        .map(|_| {
            let mut i = item(project, &key, "modern");
            i["variations"] = json!(4);
            i
        })
        .collect();
    let response = batch(&sa, ALICE, items).await;
    assert_eq!(response.status, 201, "{}", text(&response));
    assert_eq!(response.json()["success"], 48);
}

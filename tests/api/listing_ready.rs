//! Operations (stage, declutter, declutter_and_stage, twilight) and re-stage, through the real
//! routes: requests validated per operation, the registry deciding which model may run which
//! operation, `POST /api/v1/images/{id}/restage` reusing the original without a new upload, and
//! the worker sending each operation's prompt (and one prediction per variation) to Replicate.

use serde_json::{Value, json};
use shared::clients::storage::ImageFormat;
use shared::staging::imaging::samples;
use sqlx::PgPool;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::fake_replicate::FakeReplicate;
use crate::support::*;

const ALICE: &str = "auth0|alice";
const BOB: &str = "auth0|bob";

async fn create(sa: &StagingApp, sub: &str, body: Value) -> TestResponse {
    call("POST", "/api/v1/images")
        .bearer(&sa.app.token(sub))
        .json(body)
        .send(&sa.staging, &sa.staging.api.web, create_image::handle)
        .await
}

async fn restage(sa: &StagingApp, sub: &str, image: impl ToString, body: Value) -> TestResponse {
    call("POST", "/api/v1/images/{id}/restage")
        .path_param("id", image)
        .bearer(&sa.app.token(sub))
        .json(body)
        .send(&sa.staging, &sa.staging.api.web, restage_image::handle)
        .await
}

fn text(response: &TestResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// (images, jobs, ledger units) in the whole database.
async fn counts(db: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM jobs), \
                (SELECT COALESCE(SUM(units), 0)::bigint FROM usage_ledger)",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

async fn set_active_model(db: &PgPool, model: &str) {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ('active_model', $1) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(model)
    .execute(db)
    .await
    .unwrap();
}

/// Syncs the plans table with the free plan's limit set to `limit`.
async fn set_free_limit(db: &PgPool, limit: u32) {
    let limit = limit.to_string();
    let vars: std::collections::HashMap<&str, &str> = [("PLAN_FREE_MONTHLY_LIMIT", limit.as_str())].into();
    let plans = shared::billing::plans::PlansConfig::from_env(
        &shared::platform::config::Env(&vars),
        shared::platform::config::AppEnv::Test,
    )
    .unwrap();
    shared::db::migrate::migrate_and_sync(db, &plans).await.unwrap();
}

/// A project and an uploaded photo of `sub`.
async fn photo(sa: &StagingApp, sub: &str) -> (Uuid, String) {
    (
        sa.project(sub, "12 Maple Street").await,
        sa.upload(sub, ImageFormat::Jpeg, 1234).await,
    )
}

// ---------------------------------------------------------------------------------------------
// Operations on create

#[sqlx::test]
async fn each_operation_is_created_with_its_style_only_when_it_furnishes(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = photo(&sa, ALICE).await;
    let cases = [
        (
            json!({"room_type": "bedroom", "style": "modern"}),
            "stage",
            json!("modern"),
        ),
        (
            json!({"room_type": "bedroom", "operation": "declutter"}),
            "declutter",
            Value::Null,
        ),
        (
            json!({"room_type": "living_room", "operation": "declutter_and_stage", "style": "industrial"}),
            "declutter_and_stage",
            json!("industrial"),
        ),
        (
            json!({"room_type": "outdoor", "operation": "twilight"}),
            "twilight",
            Value::Null,
        ),
    ];
    for (mut body, operation, style) in cases {
        body["project_id"] = json!(project);
        body["file_key"] = json!(key);
        let response = create(&sa, ALICE, body).await;
        assert_eq!(response.status, 201, "{operation}: {}", text(&response));
        let image = response.json();
        assert_eq!(image["operation"], operation);
        assert_eq!(image["style"], style);
        assert_eq!(
            image.as_object().unwrap().keys().collect::<Vec<_>>(),
            IMAGE_FIELDS.to_vec()
        );
        let stored: (String, Option<String>) =
            sqlx::query_as("SELECT operation, style FROM images WHERE id = $1::uuid")
                .bind(image["id"].as_str().unwrap())
                .fetch_one(&sa.app.db)
                .await
                .unwrap();
        assert_eq!(stored.0, operation);
        assert_eq!(stored.1.as_deref(), style.as_str());
    }
    assert_eq!(counts(&sa.app.db).await, (4, 4, 4));
}

#[sqlx::test]
async fn operations_refuse_what_does_not_fit_and_change_nothing(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = photo(&sa, ALICE).await;
    let cases = [
        (
            json!({"room_type": "bedroom", "operation": "declutter", "style": "modern"}),
            "style",
        ),
        (
            json!({"room_type": "bedroom", "operation": "declutter_and_stage"}),
            "style",
        ),
        (json!({"room_type": "bedroom"}), "style"),
        (json!({"room_type": "kitchen", "operation": "twilight"}), "operation"),
        (
            json!({"room_type": "bedroom", "operation": "remove_walls"}),
            "operation",
        ),
        (json!({"room_type": "bedroom", "operation": 3}), "operation"),
    ];
    for (mut body, field) in cases {
        body["project_id"] = json!(project);
        body["file_key"] = json!(key);
        let response = create(&sa, ALICE, body.clone()).await;
        response.assert_error(422, "validation_failed");
        assert_eq!(response.invalid_fields(), vec![field], "{body}");
    }
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0));
}

#[sqlx::test]
async fn the_active_model_must_offer_the_operation(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let (project, key) = photo(&sa, ALICE).await;
    set_active_model(&sa.app.db, "openai/gpt-image-1").await;
    let declutter = json!({"project_id": project, "file_key": key, "room_type": "bedroom", "operation": "declutter"});
    let response = create(&sa, ALICE, declutter.clone()).await;
    response.assert_error(422, "validation_failed");
    assert_eq!(response.invalid_fields(), vec!["operation"]);
    assert!(text(&response).contains("GPT Image 1"), "{}", text(&response));
    assert_eq!(counts(&sa.app.db).await, (0, 0, 0));
    // What it does offer still works; another model offers the rest.
    let stage = json!({"project_id": project, "file_key": key, "room_type": "bedroom", "style": "modern"});
    assert_eq!(create(&sa, ALICE, stage).await.status, 201);
    set_active_model(&sa.app.db, "black-forest-labs/flux-kontext-pro").await;
    assert_eq!(create(&sa, ALICE, declutter).await.status, 201);
}

// ---------------------------------------------------------------------------------------------
// Re-stage

async fn one_image(sa: &StagingApp, sub: &str) -> Value {
    let (project, key) = photo(sa, sub).await;
    let response = create(
        sa,
        sub,
        json!({"project_id": project, "file_key": key, "room_type": "living_room", "style": "modern", "seed": 7,
               "prompt": "Add a green velvet sofa"}),
    )
    .await;
    assert_eq!(response.status, 201, "{}", text(&response));
    response.json()
}

#[sqlx::test]
async fn restage_makes_a_new_image_of_the_same_original_without_an_upload(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let source = one_image(&sa, ALICE).await;
    let response = restage(
        &sa,
        ALICE,
        source["id"].as_str().unwrap(),
        json!({"operation": "declutter_and_stage", "style": "industrial"}),
    )
    .await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let image = response.json();
    assert_ne!(image["id"], source["id"]);
    assert_eq!(image["file_key"], source["file_key"]);
    assert_eq!(image["project_id"], source["project_id"]);
    assert_eq!(image["room_type"], "living_room");
    assert_eq!(image["operation"], "declutter_and_stage");
    assert_eq!(image["style"], "industrial");
    assert_eq!(image["status"], "queued");
    // The custom prompt carries over; the seed is a fresh one, recorded.
    assert_eq!(image["prompt"], "Add a green velvet sofa");
    let seed = image["seed"].as_i64().unwrap();
    assert!(seed != 7 && (1..=4_294_967_295).contains(&seed), "{seed}");
    // One more image, job and unit; its message is on the queue.
    assert_eq!(counts(&sa.app.db).await, (2, 2, 2));
    let jobs = receive_jobs(&sa.staging.queue, 10).await;
    assert!(
        jobs.iter()
            .any(|job| job.image_id.to_string() == image["id"].as_str().unwrap())
    );

    // Only what is given changes: a declutter drops the style, a given seed is kept, "" clears
    // the prompt; variations answer the batch shape.
    let response = restage(
        &sa,
        ALICE,
        source["id"].as_str().unwrap(),
        json!({"operation": "declutter", "seed": 99, "prompt": "", "variations": 2}),
    )
    .await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let batch = response.json();
    assert_eq!(batch["success"], 2);
    let images = batch["images"].as_array().unwrap();
    assert_eq!(images[0]["operation"], "declutter");
    assert_eq!(images[0]["style"], Value::Null);
    assert_eq!(images[0]["prompt"], Value::Null);
    assert_eq!(
        images.iter().map(|i| i["seed"].as_i64().unwrap()).collect::<Vec<_>>(),
        vec![99, 100]
    );
    assert_eq!(counts(&sa.app.db).await, (4, 4, 4));
}

#[sqlx::test]
async fn restage_of_a_foreign_or_deleted_image_is_not_found_and_over_quota_is_402(db: PgPool) {
    let sa = spawn_staging_app(db).await;
    let source = one_image(&sa, ALICE).await;
    let id = source["id"].as_str().unwrap().to_owned();
    let before = counts(&sa.app.db).await;

    restage(&sa, BOB, &id, json!({})).await.assert_error(404, "not_found");
    restage(&sa, ALICE, Uuid::new_v4(), json!({}))
        .await
        .assert_error(404, "not_found");
    restage(&sa, ALICE, "not-a-uuid", json!({}))
        .await
        .assert_error(400, "bad_request");
    let bad = restage(&sa, ALICE, &id, json!({"operation": "twilight"})).await;
    bad.assert_error(422, "validation_failed");
    assert_eq!(bad.invalid_fields(), vec!["operation"]);
    // The original is the source's: a body cannot name another one.
    restage(&sa, ALICE, &id, json!({"file_key": "uploads/x.jpg"}))
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(counts(&sa.app.db).await, before);

    // With a free allowance of 2 (one used by the source), one restage fits, the next does not.
    set_free_limit(&sa.app.db, 2).await;
    assert_eq!(restage(&sa, ALICE, &id, json!({})).await.status, 201);
    restage(&sa, ALICE, &id, json!({}))
        .await
        .assert_error(402, "usage_limit_exceeded");
    let after_quota = counts(&sa.app.db).await;
    assert_eq!((after_quota.0, after_quota.1), (before.0 + 1, before.1 + 1));

    let deleted = call("DELETE", "/api/v1/images/{id}")
        .path_param("id", &id)
        .bearer(&sa.app.token(ALICE))
        .send(&sa.staging.api, &sa.staging.api.web, delete_image::handle)
        .await;
    assert_eq!(deleted.status, 204);
    restage(&sa, ALICE, &id, json!({})).await.assert_error(404, "not_found");
}

// ---------------------------------------------------------------------------------------------
// The worker

#[sqlx::test]
async fn the_operation_prompt_reaches_the_model_once_per_variation(db: PgPool) {
    let w = spawn_worker(db).await;
    let project = w.staging.project(ALICE, "3 Birch Lane").await;
    let key = w
        .upload_bytes(ALICE, ImageFormat::Jpeg, samples::room_jpeg(640, 427))
        .await;
    let response = call("POST", "/api/v1/images")
        .bearer(&w.staging.app.token(ALICE))
        .json(
            json!({"project_id": project, "file_key": key, "room_type": "bedroom", "operation": "declutter",
                     "variations": 2}),
        )
        .send(&w.staging.staging, &w.staging.staging.api.web, create_image::handle)
        .await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let fake = FakeReplicate::mount(&w.replicate, &w.file_url("declutter.jpg")).await;
    Mock::given(method("GET"))
        .and(path("/files/declutter.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(samples::room_jpeg(640, 427), "image/jpeg"))
        .mount(&w.replicate)
        .await;

    assert!(w.deliver().await.is_empty());
    assert_eq!(fake.predictions_made(), 2, "one prediction per variation");
    let expected = shared::staging::prompts::library_prompt(
        shared::staging::vocabulary::RoomType::Bedroom,
        shared::staging::vocabulary::Treatment::Declutter,
    );
    let mut seeds = Vec::new();
    for i in 0..2 {
        let input = fake.input(i);
        assert_eq!(input["prompt"], expected);
        seeds.push(input["seed"].as_i64().unwrap());
    }
    seeds.dedup();
    assert_eq!(seeds.len(), 2, "each variation has its own seed: {seeds:?}");
    let ready: i64 =
        sqlx::query_scalar("SELECT count(*) FROM images WHERE status = 'ready' AND operation = 'declutter'")
            .fetch_one(w.db())
            .await
            .unwrap();
    assert_eq!(ready, 2);
}

#[sqlx::test]
async fn a_job_whose_model_cannot_do_its_operation_fails_refunded_before_any_prediction(db: PgPool) {
    let w = spawn_worker(db).await;
    let project = w.staging.project(ALICE, "3 Birch Lane").await;
    let key = w
        .upload_bytes(ALICE, ImageFormat::Jpeg, samples::room_jpeg(640, 427))
        .await;
    let queued = w.queue_image_of(ALICE, project, &key, "outdoor", "modern").await;
    // The operator switches, after the image was accepted, to a model that cannot do it.
    sqlx::query("UPDATE images SET operation = 'twilight', style = NULL WHERE id = $1")
        .bind(queued.image_id)
        .execute(w.db())
        .await
        .unwrap();
    set_active_model(w.db(), "openai/gpt-image-1").await;
    assert!(w.deliver().await.is_empty());
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "error");
    assert!(image.error.unwrap().contains("cannot twilight"));
    assert_eq!(w.ledger(queued.image_id).await, (1, 1));
    assert_eq!(w.creates().await, 0);
}

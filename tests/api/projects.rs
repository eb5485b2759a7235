//! POST|GET /api/v1/projects and GET|PUT|DELETE /api/v1/projects/{id}.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

const COLLECTION: &str = "/api/v1/projects";
const ITEM: &str = "/api/v1/projects/{id}";

async fn create(app: &TestApp, sub: &str, name: &str) -> TestResponse {
    call("POST", COLLECTION)
        .bearer(&app.token(sub))
        .json(json!({ "name": name }))
        .send(&app.api, &app.api.web, create_project::handle)
        .await
}

async fn create_id(app: &TestApp, sub: &str, name: &str) -> String {
    let response = create(app, sub, name).await;
    assert_eq!(response.status, 201, "{}", String::from_utf8_lossy(&response.body));
    response.json()["id"].as_str().unwrap().to_string()
}

async fn list(app: &TestApp, sub: &str, query: &[(&str, &str)]) -> TestResponse {
    let mut c = call("GET", COLLECTION).bearer(&app.token(sub));
    for (k, v) in query {
        c = c.query(k, v);
    }
    c.send(&app.api, &app.api.web, list_projects::handle).await
}

async fn get(app: &TestApp, sub: &str, id: &str) -> TestResponse {
    call("GET", ITEM)
        .path_param("id", id)
        .bearer(&app.token(sub))
        .send(&app.api, &app.api.web, get_project::handle)
        .await
}

async fn rename(app: &TestApp, sub: &str, id: &str, body: Value) -> TestResponse {
    call("PUT", ITEM)
        .path_param("id", id)
        .bearer(&app.token(sub))
        .json(body)
        .send(&app.api, &app.api.web, rename_project::handle)
        .await
}

async fn delete(app: &TestApp, sub: &str, id: &str) -> TestResponse {
    call("DELETE", ITEM)
        .path_param("id", id)
        .bearer(&app.token(sub))
        .send(&app.api, &app.api.web, delete_project::handle)
        .await
}

async fn project_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM projects")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn create_answers_201_with_the_project(db: PgPool) {
    let app = spawn_app(db).await;
    let response = create(&app, "auth0|alice", "  12 Maple Street  ").await;
    assert_eq!(response.status, 201);
    let body = response.json();
    assert_eq!(body["name"], "12 Maple Street");
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("/api/v1/projects/{id}").as_str())
    );
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["created_at", "id", "name", "updated_at"]
    );
    let owner: String =
        sqlx::query_scalar("SELECT u.auth0_sub FROM projects p JOIN users u ON u.id = p.user_id WHERE p.id = $1::uuid")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(owner, "auth0|alice");
}

#[sqlx::test]
async fn create_rejects_bad_input_and_writes_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    for name in ["", "   ", &"x".repeat(101), "tab\tinside"] {
        assert_eq!(
            create(&app, "auth0|alice", name).await.invalid_fields(),
            vec!["name"],
            "{name:?}"
        );
    }
    let token = app.token("auth0|alice");
    let app_ref = &app;
    let send = |c: Call| async move { c.send(&app_ref.api, &app_ref.api.web, create_project::handle).await };
    send(
        call("POST", COLLECTION)
            .bearer(&token)
            .raw_body("application/json", "{name:"),
    )
    .await
    .assert_error(400, "bad_request");
    assert_eq!(
        send(call("POST", COLLECTION).bearer(&token).json(json!({})))
            .await
            .invalid_fields(),
        vec!["name"]
    );
    assert_eq!(
        send(call("POST", COLLECTION).bearer(&token).json(json!({"name": 7})))
            .await
            .invalid_fields(),
        vec!["name"]
    );
    assert_eq!(
        send(
            call("POST", COLLECTION)
                .bearer(&token)
                .json(json!({"name": "ok", "user_id": Uuid::new_v4()}))
        )
        .await
        .invalid_fields(),
        vec!["user_id"]
    );
    send(call("POST", COLLECTION).json(json!({"name": "ok"})))
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(project_count(&app).await, 0);
    // 100 characters (not bytes) is the limit.
    assert_eq!(create(&app, "auth0|alice", &"é".repeat(100)).await.status, 201);
}

#[sqlx::test]
async fn list_shows_only_own_projects_newest_first(db: PgPool) {
    let app = spawn_app(db).await;
    for name in ["first", "second", "third"] {
        create_id(&app, "auth0|alice", name).await;
    }
    create_id(&app, "auth0|bob", "bob's").await;
    let body = list(&app, "auth0|alice", &[]).await.json();
    let names: Vec<&str> = body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["third", "second", "first"]);
    assert_eq!(body["next_cursor"], Value::Null);
    // A new user has an empty array, never null.
    let body = list(&app, "auth0|carol", &[]).await.json();
    assert_eq!(body["projects"], json!([]));
    list(&app, "auth0|alice", &[]).await;
    call("GET", COLLECTION)
        .send(&app.api, &app.api.web, list_projects::handle)
        .await
        .assert_error(401, "unauthorized");
}

#[sqlx::test]
async fn list_paginates_with_a_cursor(db: PgPool) {
    let app = spawn_app(db).await;
    for i in 0..5 {
        create_id(&app, "auth0|alice", &format!("p{i}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "2")];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let body = list(&app, "auth0|alice", &query).await.json();
        let page = body["projects"].as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|p| p["name"].as_str().unwrap().to_string()));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, vec!["p4", "p3", "p2", "p1", "p0"]);
    for bad in [("limit", "0"), ("limit", "101"), ("limit", "ten"), ("cursor", "bogus")] {
        list(&app, "auth0|alice", &[bad]).await.assert_error(400, "bad_request");
    }
}

#[sqlx::test]
async fn get_answers_404_for_missing_and_foreign_projects(db: PgPool) {
    let app = spawn_app(db).await;
    let id = create_id(&app, "auth0|alice", "Maple").await;
    let own = get(&app, "auth0|alice", &id).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.json()["name"], "Maple");
    let foreign = get(&app, "auth0|bob", &id).await;
    foreign.assert_error(404, "not_found");
    // Exactly the answer for a project that does not exist: nothing to learn by probing.
    let missing = get(&app, "auth0|bob", &Uuid::new_v4().to_string()).await;
    assert_eq!(foreign.json(), missing.json());
    get(&app, "auth0|alice", "not-a-uuid")
        .await
        .assert_error(400, "bad_request");
    call("GET", ITEM)
        .path_param("id", &id)
        .send(&app.api, &app.api.web, get_project::handle)
        .await
        .assert_error(401, "unauthorized");
}

#[sqlx::test]
async fn rename_changes_own_projects_only(db: PgPool) {
    let app = spawn_app(db).await;
    let id = create_id(&app, "auth0|alice", "Old name").await;
    let before = get(&app, "auth0|alice", &id).await.json();
    let renamed = rename(&app, "auth0|alice", &id, json!({"name": " New name "})).await;
    assert_eq!(renamed.status, 200);
    let after = renamed.json();
    assert_eq!(after["name"], "New name");
    assert_eq!(after["created_at"], before["created_at"]);
    assert!(after["updated_at"].as_str().unwrap() > before["updated_at"].as_str().unwrap());

    rename(&app, "auth0|bob", &id, json!({"name": "Hijacked"}))
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        rename(&app, "auth0|alice", &id, json!({"name": ""}))
            .await
            .invalid_fields(),
        vec!["name"]
    );
    assert_eq!(
        rename(&app, "auth0|alice", &id, json!({"title": "x"}))
            .await
            .invalid_fields(),
        vec!["title"]
    );
    rename(&app, "auth0|alice", "123", json!({"name": "x"}))
        .await
        .assert_error(400, "bad_request");
    let malformed = call("PUT", ITEM)
        .path_param("id", &id)
        .bearer(&app.token("auth0|alice"))
        .raw_body("application/json", "nope");
    malformed
        .send(&app.api, &app.api.web, rename_project::handle)
        .await
        .assert_error(400, "bad_request");
    assert_eq!(get(&app, "auth0|alice", &id).await.json()["name"], "New name");
}

#[sqlx::test]
async fn delete_hides_the_project_and_keeps_usage_history(db: PgPool) {
    let app = spawn_app(db).await;
    let id = create_id(&app, "auth0|alice", "Listing").await;
    let keep = create_id(&app, "auth0|alice", "Other listing").await;
    // An image in the project and the allowance it used.
    sqlx::query(
        "WITH p AS (SELECT id, user_id FROM projects WHERE id = $1::uuid), \
              i AS (INSERT INTO images (project_id, user_id, original_key, room_type, style) \
                    SELECT id, user_id, 'uploads/u/x.jpg', 'bedroom', 'modern' FROM p RETURNING id, user_id) \
         INSERT INTO usage_ledger (user_id, image_id, kind, units, period_at) SELECT user_id, id, 'reserve', 1, now() FROM i",
    )
    .bind(&id)
    .execute(&app.db)
    .await
    .unwrap();

    delete(&app, "auth0|bob", &id).await.assert_error(404, "not_found");
    assert_eq!(
        get(&app, "auth0|alice", &id).await.status,
        200,
        "a foreign delete changed nothing"
    );

    let response = delete(&app, "auth0|alice", &id).await;
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
    get(&app, "auth0|alice", &id).await.assert_error(404, "not_found");
    delete(&app, "auth0|alice", &id).await.assert_error(404, "not_found");
    let names: Vec<String> = list(&app, "auth0|alice", &[]).await.json()["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec![keep]);

    let (ledger, deleted_images): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM usage_ledger), (SELECT count(*) FROM images WHERE deleted_at IS NOT NULL)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(ledger, 1, "usage history survives the delete");
    assert_eq!(
        deleted_images, 1,
        "images are soft-deleted with their project, awaiting storage purge"
    );
    delete(&app, "auth0|alice", "nope")
        .await
        .assert_error(400, "bad_request");
}

#[sqlx::test]
async fn responses_carry_security_and_cors_headers(db: PgPool) {
    let app = spawn_app(db).await;
    let response = call("GET", COLLECTION)
        .bearer(&app.token("auth0|alice"))
        .header("origin", FRONTEND)
        .send(&app.api, &app.api.web, list_projects::handle)
        .await;
    assert_eq!(response.header("access-control-allow-origin"), Some(FRONTEND));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert!(
        response
            .header("strict-transport-security")
            .unwrap()
            .starts_with("max-age=")
    );
    assert!(response.header("x-request-id").unwrap().starts_with("test-"));
    assert_eq!(response.header("content-type"), Some("application/json"));

    let foreign_origin = call("GET", COLLECTION)
        .bearer(&app.token("auth0|alice"))
        .header("origin", "https://evil.example.com")
        .send(&app.api, &app.api.web, list_projects::handle)
        .await;
    assert_eq!(foreign_origin.header("access-control-allow-origin"), None);

    // Errors carry the same headers.
    let error = call("GET", COLLECTION)
        .header("origin", FRONTEND)
        .send(&app.api, &app.api.web, list_projects::handle)
        .await;
    assert_eq!(error.status, 401);
    assert_eq!(error.header("access-control-allow-origin"), Some(FRONTEND));
    assert_eq!(error.header("x-content-type-options"), Some("nosniff"));

    let preflight = call("OPTIONS", COLLECTION)
        .header("origin", FRONTEND)
        .header("access-control-request-method", "POST")
        .send(&app.api, &app.api.web, create_project::handle)
        .await;
    assert_eq!(preflight.status, 204);
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(
        preflight
            .header("access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    assert_eq!(project_count(&app).await, 0, "a preflight never runs the handler");
}

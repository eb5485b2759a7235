//! Operators' controls (docs/admin.md): the admin routes through their real handlers (API Gateway
//! events in, responses and database rows out), the `set-user-role` function as Lambda invokes it,
//! and the worker picking up a switched model on its next job with Replicate faked over HTTP.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use shared::platform::state::{AdminSecretsState, ApiState};
use shared::staging::imaging::samples;
use sqlx::PgPool;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::*;

const ADMIN: &str = "auth0|operator-olivia";
const PLAIN: &str = "auth0|agent-alice";

const MODELS: &str = "/api/v1/admin/models";
const ACTIVE: &str = "/api/v1/admin/models/active";
const CONFIG: &str = "/api/v1/admin/models/{slug}/config";
const SETTINGS: &str = "/api/v1/admin/settings";
const SETTING: &str = "/api/v1/admin/settings/{key}";
const AUDIT: &str = "/api/v1/admin/audit-log";

/// Sends admin requests through the real handlers, on the app's own database and issuer.
struct Admin<'a> {
    app: &'a TestApp,
    secrets: AdminSecretsState,
}

fn admin_routes(app: &TestApp) -> Admin<'_> {
    Admin {
        app,
        secrets: AdminSecretsState {
            api: ApiState::new(web_config(), app.db.clone(), app.auth.clone()).unwrap(),
            cipher: test_cipher(),
        },
    }
}

impl Admin<'_> {
    async fn send(&self, method: &'static str, route: &'static str, request: Call) -> TestResponse {
        let api = &self.app.api;
        let web = &api.web;
        match (method, route) {
            ("GET", MODELS) => request.send(api, web, admin_list_models::handle).await,
            ("GET", ACTIVE) => request.send(api, web, admin_get_active_model::handle).await,
            ("PUT", ACTIVE) => request.send(api, web, admin_set_active_model::handle).await,
            ("GET", CONFIG) => request.send(api, web, admin_get_model_config::handle).await,
            ("PUT", CONFIG) => {
                request
                    .send(&self.secrets, web, admin_update_model_config::handle)
                    .await
            }
            ("GET", SETTINGS) => request.send(api, web, admin_list_settings::handle).await,
            ("GET", SETTING) => request.send(api, web, admin_get_setting::handle).await,
            ("PUT", SETTING) => request.send(api, web, admin_update_setting::handle).await,
            ("GET", AUDIT) => request.send(api, web, admin_audit_log::handle).await,
            other => panic!("no admin route {other:?}"),
        }
    }

    async fn get(&self, sub: &str, route: &'static str, param: Option<(&str, &str)>) -> TestResponse {
        let mut request = call("GET", route).bearer(&self.app.token(sub));
        if let Some((name, value)) = param {
            request = request.path_param(name, value);
        }
        self.send("GET", route, request).await
    }

    async fn put(&self, sub: &str, route: &'static str, param: Option<(&str, &str)>, body: Value) -> TestResponse {
        let mut request = call("PUT", route).bearer(&self.app.token(sub)).json(body);
        if let Some((name, value)) = param {
            request = request.path_param(name, value);
        }
        self.send("PUT", route, request).await
    }

    async fn config(&self, sub: &str, slug: &str) -> TestResponse {
        self.get(sub, CONFIG, Some(("slug", slug))).await
    }

    async fn put_config(&self, sub: &str, slug: &str, body: Value) -> TestResponse {
        self.put(sub, CONFIG, Some(("slug", slug)), body).await
    }

    async fn activate(&self, sub: &str, model_id: &str) -> TestResponse {
        self.put(sub, ACTIVE, None, json!({ "model_id": model_id })).await
    }
}

/// Invokes the set-user-role function as `aws lambda invoke` does.
pub async fn set_role(db: &PgPool, payload: Value) -> Result<Value, String> {
    let state = set_user_role::RoleState { db: db.clone() };
    let mut context = shared::lambda_runtime::Context::default();
    context.request_id = format!("invoke-{}", Uuid::new_v4());
    set_user_role::handle(&state, shared::lambda_runtime::LambdaEvent::new(payload, context))
        .await
        .map_err(|err| err.to_string())
}

/// Runs the set-user-role function as an operator does: the dry run, then the same payload with
/// `confirm` set to the account it showed. Returns (dry run, applied) reports.
pub async fn set_role_confirmed(db: &PgPool, payload: Value) -> (Value, Value) {
    let dry = set_role(db, payload.clone()).await.unwrap();
    assert_eq!(dry["applied"], false, "{dry}");
    let mut confirmed = payload;
    confirmed["confirm"] = dry["confirm"].clone();
    let applied = set_role(db, confirmed).await.unwrap();
    assert_eq!(applied["applied"], true, "{applied}");
    (dry, applied)
}

/// Makes `sub` an admin through the set-user-role function.
async fn grant_admin(db: &PgPool, sub: &str) -> Uuid {
    let (_, report) = set_role_confirmed(db, json!({ "auth0_sub": sub, "role": "admin" })).await;
    assert_eq!(report["role"], "admin");
    report["user_id"].as_str().unwrap().parse().unwrap()
}

async fn settings_rows(db: &PgPool) -> Vec<(String, String, Value, Option<Uuid>)> {
    sqlx::query_as("SELECT key, value, model_settings, updated_by FROM settings ORDER BY key")
        .fetch_all(db)
        .await
        .unwrap()
}

fn body_text(response: &TestResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

#[track_caller]
fn assert_ok(response: &TestResponse) {
    assert_eq!(response.status, 200, "{}", body_text(response));
}

type Attempt = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    Option<Value>,
);

#[sqlx::test]
async fn every_admin_route_refuses_plain_users_and_changes_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let routes = admin_routes(&app);
    grant_admin(&app.db, ADMIN).await;
    let before = settings_rows(&app.db).await;
    let audit_before = audit_count(&app.db).await;
    let gpt = Some(("slug", "gpt-image-1"));
    let staging = Some(("key", "staging_enabled"));
    // (method, route, path parameter, body)
    let attempts: Vec<Attempt> = vec![
        ("GET", MODELS, None, None),
        ("GET", ACTIVE, None, None),
        (
            "PUT",
            ACTIVE,
            None,
            Some(json!({"model_id": "black-forest-labs/flux-kontext-pro"})),
        ),
        ("GET", CONFIG, gpt, None),
        (
            "PUT",
            CONFIG,
            gpt,
            Some(json!({"openai_api_key": "sk-plain-user-key", "quality": "high"})),
        ),
        ("GET", SETTINGS, None, None),
        ("GET", SETTING, staging, None),
        ("PUT", SETTING, staging, Some(json!({"value": false}))),
        ("GET", AUDIT, None, None),
    ];
    for (method, route, param, body) in attempts.clone() {
        let build = || {
            let mut request = call(method, route);
            if let Some((name, value)) = param {
                request = request.path_param(name, value);
            }
            if let Some(body) = &body {
                request = request.json(body.clone());
            }
            request
        };
        // A signed-in user without the role: 403, reads included.
        let response = routes.send(method, route, build().bearer(&app.token(PLAIN))).await;
        response.assert_error(403, "forbidden");
        assert!(!body_text(&response).contains("sk-plain-user-key"));
        // A malformed body does not get a plain user further (no 400/422 hints).
        if body.is_some() {
            let mut request = call(method, route)
                .bearer(&app.token(PLAIN))
                .raw_body("application/json", "{oops");
            if let Some((name, value)) = param {
                request = request.path_param(name, value);
            }
            routes.send(method, route, request).await.assert_error(403, "forbidden");
        }
        // No token at all: 401.
        routes
            .send(method, route, build())
            .await
            .assert_error(401, "unauthorized");
        // A token from another issuer's key, claiming to be the admin: 401.
        let forged = sign(&app.claims(ADMIN), Some(DEV_KID), attacker_private_key());
        routes
            .send(method, route, build().bearer(&forged))
            .await
            .assert_error(401, "unauthorized");
    }
    assert_eq!(
        settings_rows(&app.db).await,
        before,
        "nothing a plain user sent was stored"
    );
    assert_eq!(audit_count(&app.db).await, audit_before);
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE auth0_sub = $1")
        .bind(PLAIN)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(role, "user");
}

#[sqlx::test]
async fn set_user_role_grants_and_revokes_the_role_with_an_audit_entry(db: PgPool) {
    let app = spawn_app(db).await;
    let routes = admin_routes(&app);
    routes.get(PLAIN, MODELS, None).await.assert_error(403, "forbidden");

    // Granted by sub: a dry run first (nothing changes), then the confirmed change; the next
    // request of the same token is an admin's.
    let (dry, report) = set_role_confirmed(&app.db, json!({"auth0_sub": PLAIN, "role": "admin"})).await;
    assert_eq!(dry["auth0_sub"], PLAIN);
    assert_eq!(dry["matched_by"], "auth0_sub");
    assert_eq!(dry["changed"], true, "the dry run says the grant would change the role");
    assert!(dry["user_id"].is_string() && dry["created_at"].is_string(), "{dry}");
    assert_eq!(report["previous_role"], "user");
    assert_eq!(report["changed"], true);
    assert_eq!(report["user_id"], dry["user_id"]);
    assert_ok(&routes.get(PLAIN, MODELS, None).await);

    // The same grant again changes nothing and records nothing.
    let entries = audit_count(&app.db).await;
    let (_, again) = set_role_confirmed(&app.db, json!({"auth0_sub": PLAIN, "role": "admin"})).await;
    assert_eq!(again["changed"], false);
    assert_eq!(audit_count(&app.db).await, entries);

    // A user who never signed in can be made admin ahead of time: the dry run says so (no id yet).
    let (dry, future) = set_role_confirmed(
        &app.db,
        json!({"auth0_sub": "auth0|not-yet-signed-in", "role": "admin"}),
    )
    .await;
    assert!(dry["user_id"].is_null() && dry["created_at"].is_null(), "{dry}");
    assert_eq!(future["previous_role"], "user");
    assert_ok(&routes.get("auth0|not-yet-signed-in", SETTINGS, None).await);

    // Revoked: 403 again at once.
    let (_, revoked) = set_role_confirmed(&app.db, json!({"auth0_sub": PLAIN, "role": "user"})).await;
    assert_eq!(revoked["auth0_sub"], PLAIN);
    assert_eq!(revoked["role"], "user");
    routes.get(PLAIN, MODELS, None).await.assert_error(403, "forbidden");

    // Refused, and nothing changes: unknown role, both or neither target, a bad sub or confirm,
    // an e-mail nobody verified, a confirm naming another account.
    let entries = audit_count(&app.db).await;
    for (payload, expect) in [
        (json!({"auth0_sub": PLAIN, "role": "superuser"}), "invalid request"),
        (
            json!({"auth0_sub": PLAIN, "email": "a@b.c", "role": "admin"}),
            "exactly one",
        ),
        (json!({"role": "admin"}), "exactly one"),
        (json!({"auth0_sub": "auth0|has space", "role": "admin"}), "auth0_sub"),
        (json!({"auth0_sub": PLAIN, "role": "admin", "confirm": " "}), "confirm"),
        (json!({"email": "nobody@example.com", "role": "admin"}), "no user"),
        (
            json!({"auth0_sub": PLAIN, "role": "admin", "confirm": "auth0|someone-else"}),
            "confirm names auth0|someone-else",
        ),
        (
            json!({"auth0_sub": PLAIN, "role": "admin", "extra": 1}),
            "invalid request",
        ),
        (json!("admin"), "invalid request"),
    ] {
        let err = set_role(&app.db, payload.clone()).await.unwrap_err();
        assert!(err.contains(expect), "{payload}: {err}");
    }
    assert_eq!(audit_count(&app.db).await, entries);
    let admins: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(admins, 1, "only the pre-provisioned user is still an admin");

    // The trail: three role changes by the operator tool, newest first.
    let actor = grant_admin(&app.db, ADMIN).await;
    let log = routes.get(ADMIN, AUDIT, None).await;
    assert_ok(&log);
    let entries = log.json()["entries"].as_array().unwrap().clone();
    let roles: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            assert_eq!(e["action"], "user.role.update");
            assert_eq!(e["actor"], "operator:set-user-role");
            assert!(e["actor_user_id"].is_null());
            assert!(e["request_id"].as_str().unwrap().starts_with("invoke-"));
            (
                e["after"]["auth0_sub"].as_str().unwrap().to_string(),
                e["after"]["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            (ADMIN.to_string(), "admin".to_string()),
            (PLAIN.to_string(), "user".to_string()),
            ("auth0|not-yet-signed-in".to_string(), "admin".to_string()),
            (PLAIN.to_string(), "admin".to_string()),
        ]
    );
    assert_eq!(entries[0]["target"], actor.to_string());
}

#[sqlx::test]
async fn an_admin_sees_every_model_with_its_schema_and_whether_it_can_run(db: PgPool) {
    let app = spawn_app(db).await;
    let routes = admin_routes(&app);
    grant_admin(&app.db, ADMIN).await;
    let response = routes.get(ADMIN, MODELS, None).await;
    assert_ok(&response);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let models = response.json()["models"].as_array().unwrap().clone();
    let ids: Vec<&str> = models.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let registry: Vec<&str> = shared::models::registry().iter().map(|spec| spec.id).collect();
    assert_eq!(ids, registry);
    let by_id = |id: &str| models.iter().find(|m| m["id"] == id).unwrap().clone();
    let qwen = by_id("qwen/qwen-image-edit");
    assert_eq!(qwen["slug"], "qwen-image-edit");
    assert_eq!(qwen["is_active"], true);
    assert_eq!(qwen["can_activate"], true);
    assert_eq!(qwen["price_per_image_usd"], "0.0300");
    let quality = qwen["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "output_quality")
        .unwrap();
    assert_eq!(quality["type"], "integer");
    assert_eq!(quality["default"], 90);
    assert!(quality["min"].is_number() && quality["max"].is_number());
    let gpt = by_id("openai/gpt-image-1");
    assert_eq!(gpt["is_active"], false);
    assert_eq!(gpt["can_activate"], false);
    assert_eq!(gpt["missing_settings"], json!(["openai_api_key"]));
    let key = gpt["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "openai_api_key")
        .unwrap();
    assert_eq!(
        (key["secret"].clone(), key["required"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(
        models.iter().filter(|m| m["is_active"] == true).count(),
        1,
        "exactly one model is active"
    );
}

#[sqlx::test]
async fn an_admin_switches_the_model_and_the_change_is_audited(db: PgPool) {
    let app = spawn_app(db).await;
    let routes = admin_routes(&app);
    let admin_id = grant_admin(&app.db, ADMIN).await;

    let current = routes.get(ADMIN, ACTIVE, None).await;
    assert_ok(&current);
    assert_eq!(current.json()["model_id"], "qwen/qwen-image-edit");

    let switched = routes.activate(ADMIN, "black-forest-labs/flux-kontext-pro").await;
    assert_ok(&switched);
    let view = switched.json();
    assert_eq!(view["model_id"], "black-forest-labs/flux-kontext-pro");
    assert_eq!(view["slug"], "flux-kontext-pro");
    assert_eq!(view["price_per_image_usd"], "0.0400");
    assert_eq!(view["updated_by"], admin_id.to_string());
    assert_eq!(
        routes.get(ADMIN, ACTIVE, None).await.json()["model_id"],
        "black-forest-labs/flux-kontext-pro"
    );
    assert_eq!(
        shared::db::settings::active_model(&app.db).await.unwrap().as_deref(),
        Some("black-forest-labs/flux-kontext-pro"),
        "what the worker reads"
    );

    // The same model again: 200, nothing new in the trail.
    let entries = audit_count(&app.db).await;
    assert_ok(&routes.activate(ADMIN, "black-forest-labs/flux-kontext-pro").await);
    assert_eq!(audit_count(&app.db).await, entries);

    // The earlier front end's body shape works too.
    let legacy = routes
        .put(ADMIN, ACTIVE, None, json!({"value": "bytedance/seedream-4"}))
        .await;
    assert_ok(&legacy);
    assert_eq!(legacy.json()["model_id"], "bytedance/seedream-4");

    // Unknown models, a URL-encoded id, wrong shapes: refused, nothing changes.
    for bad in [
        "qwen/qwen-image-edit-plus",
        "qwen%2Fqwen-image-edit",
        "",
        "openai/gpt-image-1.5",
    ] {
        assert_eq!(
            routes.activate(ADMIN, bad).await.invalid_fields(),
            ["model_id"],
            "{bad}"
        );
    }
    assert_eq!(
        routes
            .put(ADMIN, ACTIVE, None, json!({"model_id": 7}))
            .await
            .invalid_fields(),
        ["model_id"]
    );
    assert_eq!(
        routes
            .put(
                ADMIN,
                ACTIVE,
                None,
                json!({"model_id": "qwen/qwen-image-edit", "force": true})
            )
            .await
            .invalid_fields(),
        ["force"]
    );
    let raw = call("PUT", ACTIVE)
        .bearer(&app.token(ADMIN))
        .raw_body("application/json", "not json");
    routes.send("PUT", ACTIVE, raw).await.assert_error(400, "bad_request");
    assert_eq!(
        routes.get(ADMIN, ACTIVE, None).await.json()["model_id"],
        "bytedance/seedream-4"
    );

    let log = routes.get(ADMIN, AUDIT, None).await.json();
    let activations: Vec<(Value, Value)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "model.activate")
        .map(|e| {
            assert_eq!(e["actor"], ADMIN);
            assert_eq!(e["actor_user_id"], admin_id.to_string());
            assert_eq!(e["target"], "active_model");
            assert!(e["request_id"].as_str().unwrap().starts_with("test-"));
            (e["before"]["model_id"].clone(), e["after"]["model_id"].clone())
        })
        .collect();
    assert_eq!(
        activations,
        [
            (
                json!("black-forest-labs/flux-kontext-pro"),
                json!("bytedance/seedream-4")
            ),
            (
                json!("qwen/qwen-image-edit"),
                json!("black-forest-labs/flux-kontext-pro")
            ),
        ]
    );
}

#[sqlx::test]
async fn a_model_cannot_be_activated_without_its_required_secret(db: PgPool) {
    let app = spawn_app(db).await;
    let routes = admin_routes(&app);
    grant_admin(&app.db, ADMIN).await;

    let refused = routes.activate(ADMIN, "openai/gpt-image-1").await;
    assert_eq!(refused.invalid_fields(), ["openai_api_key"]);
    let message = refused.json()["validation_errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("/api/v1/admin/models/gpt-image-1/config"), "{message}");
    // The settings route is not a way around the check (upstream pitfall 49).
    let sneaky = routes
        .put(
            ADMIN,
            SETTING,
            Some(("key", "active_model")),
            json!({"value": "openai/gpt-image-1"}),
        )
        .await;
    assert_eq!(sneaky.invalid_fields(), ["openai_api_key"]);
    assert_eq!(
        routes.get(ADMIN, ACTIVE, None).await.json()["model_id"],
        "qwen/qwen-image-edit"
    );

    // With the key stored, it can be activated.
    assert_ok(
        &routes
            .put_config(ADMIN, "gpt-image-1", json!({"openai_api_key": "sk-test-activation"}))
            .await,
    );
    let models = routes.get(ADMIN, MODELS, None).await.json();
    let gpt = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["slug"] == "gpt-image-1")
        .unwrap()
        .clone();
    assert_eq!(gpt["can_activate"], true);
    assert_ok(&routes.activate(ADMIN, "openai/gpt-image-1").await);

    // While it is active its key cannot be removed...
    let removal = routes
        .put_config(ADMIN, "gpt-image-1", json!({"openai_api_key": null}))
        .await;
    assert_eq!(removal.invalid_fields(), ["openai_api_key"]);
    assert_eq!(
        routes.config(ADMIN, "gpt-image-1").await.json()["secrets"]["openai_api_key"]["set"],
        true
    );
    // ... a blank value or leaving it out keeps it ...
    assert_ok(
        &routes
            .put_config(ADMIN, "gpt-image-1", json!({"openai_api_key": "  ", "quality": "high"}))
            .await,
    );
    assert_ok(
        &routes
            .put_config(ADMIN, "gpt-image-1", json!({"quality": "high"}))
            .await,
    );
    assert_eq!(
        routes.config(ADMIN, "gpt-image-1").await.json()["secrets"]["openai_api_key"]["set"],
        true
    );
    // ... and once another model is active, it can.
    assert_ok(&routes.activate(ADMIN, "qwen/qwen-image-edit").await);
    let removed = routes
        .put_config(ADMIN, "gpt-image-1", json!({"openai_api_key": null, "quality": "high"}))
        .await;
    assert_ok(&removed);
    assert_eq!(removed.json()["secrets"]["openai_api_key"]["set"], false);
    assert_eq!(removed.json()["missing_settings"], json!(["openai_api_key"]));
    assert_eq!(
        routes.activate(ADMIN, "openai/gpt-image-1").await.invalid_fields(),
        ["openai_api_key"]
    );
}

#[sqlx::test]
async fn invalid_settings_are_refused_field_by_field_and_valid_ones_replace_the_config(db: PgPool) {
    let app = spawn_app(db).await;
    let routes = admin_routes(&app);
    let admin_id = grant_admin(&app.db, ADMIN).await;
    let before = settings_rows(&app.db).await;

    let refused = routes
        .put_config(
            ADMIN,
            "qwen-image-edit",
            json!({
                "output_quality": 500,
                "go_fast": "yes",
                "aspect_ratio": "7:5",
                "seed": -1,
                "temperature": 0.2,
                "output_format": "jpg"
            }),
        )
        .await;
    let fields: BTreeSet<String> = refused.invalid_fields().into_iter().collect();
    assert_eq!(
        fields,
        ["aspect_ratio", "go_fast", "output_quality", "seed", "temperature"]
            .map(String::from)
            .into(),
        "{}",
        body_text(&refused)
    );
    assert_eq!(settings_rows(&app.db).await, before, "nothing was stored");
    assert_eq!(audit_count(&app.db).await, 1, "only the role grant");

    routes
        .put_config(ADMIN, "no-such-model", json!({}))
        .await
        .assert_error(404, "not_found");
    // The model id in the path, encoded, is not a slug.
    routes
        .config(ADMIN, "qwen%2Fqwen-image-edit")
        .await
        .assert_error(404, "not_found");
    let array = call("PUT", CONFIG)
        .bearer(&app.token(ADMIN))
        .path_param("slug", "qwen-image-edit")
        .raw_body("application/json", "[1, 2]");
    routes.send("PUT", CONFIG, array).await.assert_error(400, "bad_request");

    // A valid config replaces the stored one: fields left out go back to their defaults.
    assert_ok(
        &routes
            .put_config(
                ADMIN,
                "qwen-image-edit",
                json!({"output_quality": 70, "go_fast": false}),
            )
            .await,
    );
    let saved = routes
        .put_config(ADMIN, "qwen-image-edit", json!({"output_quality": 75, "seed": 42}))
        .await;
    assert_ok(&saved);
    let view = saved.json();
    assert_eq!(view["model_id"], "qwen/qwen-image-edit");
    assert_eq!(
        view["config"],
        json!({"aspect_ratio": "match_input_image", "go_fast": true, "output_format": "jpg", "output_quality": 75, "seed": 42})
    );
    assert_eq!(view["secrets"], json!({}));
    assert_eq!(view["updated_by"], admin_id.to_string());
    assert_eq!(
        routes.config(ADMIN, "qwen-image-edit").await.json()["config"],
        view["config"]
    );
    // What the worker reads validates to the same thing.
    let stored = shared::db::settings::model_config(&app.db, "qwen-image-edit")
        .await
        .unwrap()
        .unwrap();
    let spec = shared::models::find_by_slug("qwen-image-edit").unwrap();
    assert_eq!(
        spec.validate_config(&stored).unwrap().get("output_quality"),
        Some(&json!(75))
    );

    // Saving the same again records nothing.
    let entries = audit_count(&app.db).await;
    assert_ok(
        &routes
            .put_config(ADMIN, "qwen-image-edit", json!({"output_quality": 75, "seed": 42}))
            .await,
    );
    assert_eq!(audit_count(&app.db).await, entries);
    let log = routes.get(ADMIN, AUDIT, None).await.json();
    let latest = &log["entries"][0];
    assert_eq!(latest["action"], "model.config.update");
    assert_eq!(latest["target"], "model_config.qwen-image-edit");
    assert_eq!(latest["before"]["config"]["output_quality"], 70);
    assert_eq!(latest["after"]["config"]["output_quality"], 75);
}

#[sqlx::test]
async fn a_secret_is_sealed_never_shown_never_logged_and_reaches_the_model(db: PgPool) {
    let (logs, _guard) = capture_logs();
    let w = spawn_worker(db).await;
    let app = &w.staging.app;
    let routes = admin_routes(app);
    grant_admin(w.db(), ADMIN).await;
    let secret = format!("sk-proj-NEVER-SHOWN-{}", Uuid::new_v4().simple());

    // Bad secret values are refused without echoing them.
    let too_long = format!("{secret}{}", "x".repeat(600));
    for bad in [json!(too_long), json!(12345678), json!({"key": secret})] {
        let response = routes
            .put_config(ADMIN, "gpt-image-1", json!({"openai_api_key": bad}))
            .await;
        assert_eq!(response.invalid_fields(), ["openai_api_key"]);
        assert!(!body_text(&response).contains(&secret) && !body_text(&response).contains("12345678"));
    }

    let saved = routes
        .put_config(
            ADMIN,
            "gpt-image-1",
            json!({"openai_api_key": format!("  {secret} "), "quality": "high"}),
        )
        .await;
    assert_ok(&saved);
    let view = saved.json();
    assert_eq!(view["secrets"]["openai_api_key"]["set"], true);
    assert!(view["config"].get("openai_api_key").is_none());
    assert_eq!(view["config"]["quality"], "high");

    // At rest: sealed, in its own row, nowhere in plain text.
    let (value, is_secret): (String, bool) =
        sqlx::query_as("SELECT value, is_secret FROM settings WHERE key = 'model_secret.gpt-image-1.openai_api_key'")
            .fetch_one(w.db())
            .await
            .unwrap();
    assert!(is_secret);
    assert!(value.starts_with("v1."), "{value}");
    let dump: String = sqlx::query_scalar("SELECT string_agg(s::text, ' ') FROM settings s")
        .fetch_one(w.db())
        .await
        .unwrap();
    let audit_dump: String = sqlx::query_scalar("SELECT coalesce(string_agg(a::text, ' '), '') FROM admin_audit_log a")
        .fetch_one(w.db())
        .await
        .unwrap();
    assert!(!dump.contains(&secret) && !audit_dump.contains(&secret));

    // Saving the same key again is not a change.
    let entries = audit_count(w.db()).await;
    assert_ok(
        &routes
            .put_config(
                ADMIN,
                "gpt-image-1",
                json!({"openai_api_key": secret, "quality": "high"}),
            )
            .await,
    );
    assert_eq!(audit_count(w.db()).await, entries);

    // Every read an admin can make.
    let activated = routes.activate(ADMIN, "openai/gpt-image-1").await;
    assert_ok(&activated);
    let mut responses = vec![saved, activated];
    responses.push(routes.config(ADMIN, "gpt-image-1").await);
    responses.push(routes.get(ADMIN, MODELS, None).await);
    responses.push(routes.get(ADMIN, ACTIVE, None).await);
    responses.push(routes.get(ADMIN, SETTINGS, None).await);
    responses.push(routes.get(ADMIN, SETTING, Some(("key", "active_model"))).await);
    responses.push(routes.get(ADMIN, AUDIT, None).await);
    for response in &responses {
        assert_ok(response);
        assert!(!body_text(response).contains(&secret), "{}", body_text(response));
    }
    let audit = routes.get(ADMIN, AUDIT, None).await.json();
    let config_change = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "model.config.update")
        .unwrap()
        .clone();
    assert_eq!(
        config_change["before"]["secrets"]["openai_api_key"],
        json!({"set": false})
    );
    assert_eq!(
        config_change["after"]["secrets"]["openai_api_key"],
        json!({"set": true, "replaced": true})
    );

    // The next job runs on gpt-image-1 with the key opened for Replicate's input.
    let queued = w
        .queue_image(PLAIN, samples::room_jpeg(640, 427), "bedroom", "scandinavian")
        .await;
    let output = w.file_url("gpt.png");
    Mock::given(method("POST"))
        .and(path("/v1/models/openai/gpt-image-1/predictions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(
            "p6gpt",
            "openai/gpt-image-1",
            "succeeded",
            json!([output]),
        )))
        .expect(1)
        .mount(&w.replicate)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/gpt.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(samples::room_png(300, 200), "image/png"))
        .mount(&w.replicate)
        .await;
    assert!(w.deliver().await.is_empty());
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "ready", "{image:?}");
    assert_eq!(image.model_used.as_deref(), Some("openai/gpt-image-1"));
    let requests = w.replicate.received_requests().await.unwrap();
    let create: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        create["input"]["openai_api_key"],
        secret.as_str(),
        "trimmed, opened, sent"
    );
    assert_eq!(create["input"]["quality"], "high");

    let captured = logs.text();
    assert!(
        captured.contains("admin change recorded"),
        "the capture saw the admin routes"
    );
    assert!(captured.contains("prediction created"), "the capture saw the worker");
    assert!(!captured.contains(&secret), "a log line carries the secret");
}

#[sqlx::test]
async fn the_next_job_after_a_switch_uses_the_new_model(db: PgPool) {
    let w = spawn_worker(db).await;
    let routes = admin_routes(&w.staging.app);
    grant_admin(w.db(), ADMIN).await;
    for (model, slug, id) in [
        ("black-forest-labs/flux-kontext-pro", "flux-kontext-pro", "p1flux"),
        ("qwen/qwen-image-edit", "qwen-image-edit", "p2qwen"),
    ] {
        if model != "qwen/qwen-image-edit" {
            assert_ok(&routes.activate(ADMIN, model).await);
        } else {
            assert_ok(
                &routes
                    .put(ADMIN, SETTING, Some(("key", "active_model")), json!({"value": model}))
                    .await,
            );
        }
        assert_eq!(routes.get(ADMIN, ACTIVE, None).await.json()["slug"], slug);
        let queued = w
            .queue_image(PLAIN, samples::room_jpeg(640, 427), "living_room", "modern")
            .await;
        let output = w.file_url(&format!("{id}.jpg"));
        Mock::given(method("POST"))
            .and(path(format!("/v1/models/{model}/predictions")))
            .respond_with(ResponseTemplate::new(201).set_body_json(prediction(id, model, "succeeded", json!(output))))
            .expect(1)
            .mount(&w.replicate)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/files/{id}.jpg")))
            .respond_with(ResponseTemplate::new(200).set_body_raw(samples::room_jpeg(300, 200), "image/jpeg"))
            .mount(&w.replicate)
            .await;
        assert!(w.deliver().await.is_empty());
        let image = w.image_row(queued.image_id).await;
        assert_eq!(image.status, "ready", "{image:?}");
        assert_eq!(image.model_used.as_deref(), Some(model));
        assert_eq!(image.replicate_prediction_id.as_deref(), Some(id));
    }
    let creates: Vec<String> = w
        .replicate_calls()
        .await
        .into_iter()
        .filter(|(m, p)| m == "POST" && p.starts_with("/v1/models/"))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        creates,
        [
            "/v1/models/black-forest-labs/flux-kontext-pro/predictions",
            "/v1/models/qwen/qwen-image-edit/predictions",
        ]
    );
}

#[sqlx::test]
async fn only_allowlisted_settings_exist_and_pausing_staging_refuses_new_work(db: PgPool) {
    let staging = spawn_staging_app(db).await;
    let app = &staging.app;
    let routes = admin_routes(app);
    let admin_id = grant_admin(&app.db, ADMIN).await;

    let list = routes.get(ADMIN, SETTINGS, None).await;
    assert_ok(&list);
    let keys: Vec<(Value, Value, Value)> = list.json()["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].clone(), s["type"].clone(), s["value"].clone()))
        .collect();
    assert_eq!(
        keys,
        [
            (json!("active_model"), json!("model_id"), json!("qwen/qwen-image-edit")),
            (json!("staging_enabled"), json!("bool"), json!(true)),
        ]
    );
    for hidden in [
        "model_config.gpt-image-1",
        "model_secret.gpt-image-1.openai_api_key",
        "users",
        "STAGING_ENABLED",
    ] {
        routes
            .get(ADMIN, SETTING, Some(("key", hidden)))
            .await
            .assert_error(404, "not_found");
        routes
            .put(ADMIN, SETTING, Some(("key", hidden)), json!({"value": "x"}))
            .await
            .assert_error(404, "not_found");
    }
    for bad in [json!("nope"), json!(0), json!(null), json!(["false"])] {
        let response = routes
            .put(
                ADMIN,
                SETTING,
                Some(("key", "staging_enabled")),
                json!({ "value": bad }),
            )
            .await;
        assert_eq!(response.invalid_fields(), ["value"], "{bad}");
    }
    assert_eq!(
        routes
            .put(ADMIN, SETTING, Some(("key", "staging_enabled")), json!({}))
            .await
            .invalid_fields(),
        ["value"]
    );

    // Paused: a valid staging request is refused with 503 and nothing is reserved or created.
    let project = staging.project(PLAIN, "3 Birch Lane").await;
    let key = staging
        .upload(PLAIN, shared::clients::storage::ImageFormat::Jpeg, 2048)
        .await;
    let paused = routes
        .put(
            ADMIN,
            SETTING,
            Some(("key", "staging_enabled")),
            json!({"value": "false"}),
        )
        .await;
    assert_ok(&paused);
    assert_eq!(paused.json()["value"], false);
    assert_eq!(paused.json()["updated_by"], admin_id.to_string());
    let body = json!({"project_id": project, "file_key": key, "room_type": "kitchen", "style": "modern"});
    let create = || {
        call("POST", "/api/v1/images")
            .bearer(&app.token(PLAIN))
            .json(body.clone())
    };
    let refused = create()
        .send(&staging.staging, &staging.staging.api.web, create_image::handle)
        .await;
    refused.assert_error(503, "service_unavailable");
    assert!(refused.json()["message"].as_str().unwrap().contains("paused"));
    let batch = call("POST", "/api/v1/images/batch")
        .bearer(&app.token(PLAIN))
        .json(json!({"images": [body.clone(), body.clone()]}))
        .send(&staging.staging, &staging.staging.api.web, create_images_batch::handle)
        .await;
    batch.assert_error(503, "service_unavailable");
    let (images, ledger): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM usage_ledger)")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((images, ledger), (0, 0));

    // Resumed: the same request goes through.
    assert_ok(
        &routes
            .put(ADMIN, SETTING, Some(("key", "staging_enabled")), json!({"value": true}))
            .await,
    );
    let accepted = create()
        .send(&staging.staging, &staging.staging.api.web, create_image::handle)
        .await;
    assert_eq!(accepted.status, 201, "{}", body_text(&accepted));

    let log = routes.get(ADMIN, AUDIT, None).await.json();
    let toggles: Vec<(Value, Value)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "setting.update")
        .map(|e| (e["before"]["value"].clone(), e["after"]["value"].clone()))
        .collect();
    assert_eq!(toggles, [(json!(false), json!(true)), (json!(true), json!(false))]);
}

#[sqlx::test]
async fn the_audit_trail_pages_newest_first_and_cannot_be_rewritten(db: PgPool) {
    let app = spawn_app(db).await;
    let routes = admin_routes(&app);
    grant_admin(&app.db, ADMIN).await;
    for model in [
        "black-forest-labs/flux-kontext-pro",
        "black-forest-labs/flux-kontext-max",
        "bytedance/seedream-4",
    ] {
        assert_ok(&routes.activate(ADMIN, model).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = call("GET", AUDIT).bearer(&app.token(ADMIN)).query("limit", 2);
        if let Some(c) = &cursor {
            request = request.query("cursor", c);
        }
        let page = routes.send("GET", AUDIT, request).await;
        assert_ok(&page);
        let body = page.json();
        seen.extend(
            body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["action"].as_str().unwrap().to_string()),
        );
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["model.activate", "model.activate", "model.activate", "user.role.update"]
    );
    for (name, value) in [("limit", "0"), ("limit", "101"), ("cursor", "garbage")] {
        let request = call("GET", AUDIT).bearer(&app.token(ADMIN)).query(name, value);
        routes
            .send("GET", AUDIT, request)
            .await
            .assert_error(400, "bad_request");
    }
    for statement in [
        "UPDATE admin_audit_log SET actor = 'someone else'",
        "DELETE FROM admin_audit_log",
    ] {
        let refused = sqlx::query(statement).execute(&app.db).await;
        assert!(refused.is_err(), "{statement} must be refused");
    }
    assert_eq!(audit_count(&app.db).await, 4);
    // Erasing an admin keeps their entries, without the user id.
    sqlx::query("DELETE FROM users WHERE auth0_sub = $1")
        .bind(ADMIN)
        .execute(&app.db)
        .await
        .unwrap();
    let orphaned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM admin_audit_log WHERE actor = $1 AND actor_user_id IS NULL")
            .bind(ADMIN)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(orphaned, 3);
}

#[sqlx::test]
async fn malformed_oversized_and_mistyped_admin_bodies_are_refused_and_change_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let routes = admin_routes(&app);
    grant_admin(&app.db, ADMIN).await;
    let before = settings_rows(&app.db).await;
    let audit_before = audit_count(&app.db).await;
    // 70 KiB of a secret-looking value: over the JSON body limit, so it is never parsed or stored.
    let oversized = format!("{{\"openai_api_key\":\"sk-{}\"}}", "k".repeat(70 * 1024));
    let cases: [(&str, &str, u16, &str); 5] = [
        ("application/json", "{\"model_id\":", 400, "bad_request"),
        ("application/json", "", 400, "bad_request"),
        ("application/json", "\"just a string\"", 400, "bad_request"),
        ("text/plain", "{\"value\":false}", 415, "unsupported_media_type"),
        ("application/json", &oversized, 413, "payload_too_large"),
    ];
    let targets: [(&'static str, Option<(&str, &str)>); 3] = [
        (ACTIVE, None),
        (CONFIG, Some(("slug", "gpt-image-1"))),
        (SETTING, Some(("key", "staging_enabled"))),
    ];
    for (content_type, body, status, code) in cases {
        for (route, param) in targets {
            let mut request = call("PUT", route)
                .bearer(&app.token(ADMIN))
                .raw_body(content_type, body);
            if let Some((name, value)) = param {
                request = request.path_param(name, value);
            }
            let response = routes.send("PUT", route, request).await;
            response.assert_error(status, code);
            assert!(
                !body_text(&response).contains("kkkkkkkk"),
                "{route}: the body is not echoed"
            );
        }
    }
    assert_eq!(settings_rows(&app.db).await, before, "no setting changed");
    assert_eq!(audit_count(&app.db).await, audit_before, "nothing audited");
}

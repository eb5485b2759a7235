//! Roles from verified identity only (issue 11, docs/admin.md). The attack: a user types the
//! operator's e-mail address into their profile before the operator ever signs in, hoping a grant
//! "by e-mail" lands on them. A role is granted by Auth0 subject, or by an address the identity
//! provider verified (a signed token's `email_verified: true`), and only after a dry run that shows
//! the account and a confirm naming that same account. Driven through the real handlers: sign-ins
//! and profile edits as API Gateway events, the grant as `aws lambda invoke` would send it.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::admin::{set_role, set_role_confirmed};
use crate::support::*;

const OPERATOR: &str = "auth0|operator-olivia";
const OPERATOR_EMAIL: &str = "olivia@realstaging.example";
const MALLORY: &str = "auth0|mallory";
const MODELS: &str = "/api/v1/admin/models";

/// A token for `sub` carrying `extra` claims (the e-mail claims an Auth0 Action adds).
fn token_with(app: &TestApp, sub: &str, extra: Value) -> String {
    let mut claims = app.claims(sub);
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    sign(&claims, Some(DEV_KID), dev_private_key())
}

/// Signs in (any authenticated call) with `token`: GET /api/v1/user/profile.
async fn sign_in(app: &TestApp, token: &str) -> Value {
    let response = call("GET", "/api/v1/user/profile")
        .bearer(token)
        .send(&app.api, &app.api.web, get_profile::handle)
        .await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

async fn patch_profile(app: &TestApp, sub: &str, body: Value) -> TestResponse {
    call("PATCH", "/api/v1/user/profile")
        .bearer(&app.token(sub))
        .json(body)
        .send(&app.api, &app.api.web, update_profile::handle)
        .await
}

async fn models(app: &TestApp, sub: &str) -> TestResponse {
    call("GET", MODELS)
        .bearer(&app.token(sub))
        .send(&app.api, &app.api.web, admin_list_models::handle)
        .await
}

async fn role_of(db: &PgPool, sub: &str) -> Option<String> {
    sqlx::query_scalar("SELECT role FROM users WHERE auth0_sub = $1")
        .bind(sub)
        .fetch_optional(db)
        .await
        .unwrap()
}

async fn verified_email_of(db: &PgPool, sub: &str) -> Option<String> {
    sqlx::query_scalar("SELECT verified_email FROM users WHERE auth0_sub = $1")
        .bind(sub)
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_role_grant_by_an_email_a_user_typed_into_their_profile_is_impossible(db: PgPool) {
    let app = spawn_app(db).await;
    // Mallory claims the operator's address everywhere a user can: the profile field...
    let patched = patch_profile(&app, MALLORY, json!({"email": OPERATOR_EMAIL})).await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["email"], OPERATOR_EMAIL);
    // ...the verified column itself (unknown profile field: refused, nothing stored)...
    let forged = patch_profile(
        &app,
        MALLORY,
        json!({"verified_email": OPERATOR_EMAIL, "email_verified": true}),
    )
    .await;
    assert_eq!(forged.status, 422, "{}", String::from_utf8_lossy(&forged.body));
    // ...and her own Auth0 account, where she registered the address without verifying it.
    sign_in(
        &app,
        &token_with(&app, MALLORY, json!({"email": OPERATOR_EMAIL, "email_verified": false})),
    )
    .await;
    assert_eq!(verified_email_of(&app.db, MALLORY).await, None);

    // The operator asks for the grant by e-mail before signing in: nobody matches, nothing changes,
    // with or without a confirm naming Mallory.
    for payload in [
        json!({"email": OPERATOR_EMAIL, "role": "admin"}),
        json!({"email": OPERATOR_EMAIL.to_uppercase(), "role": "admin", "confirm": MALLORY}),
    ] {
        let err = set_role(&app.db, payload).await.unwrap_err();
        assert!(err.contains("no user has the verified e-mail address"), "{err}");
        assert!(err.contains("profile's e-mail is never used"), "{err}");
    }
    assert_eq!(role_of(&app.db, MALLORY).await.as_deref(), Some("user"));
    assert_eq!(audit_count(&app.db).await, 0);
    models(&app, MALLORY).await.assert_error(403, "forbidden");

    // The operator signs in (her token vouches for the address); the grant by e-mail now shows her
    // account, never Mallory's, though Mallory's profile says the same address.
    let olivia = sign_in(
        &app,
        &token_with(&app, OPERATOR, json!({"email": OPERATOR_EMAIL, "email_verified": true})),
    )
    .await;
    let dry = set_role(&app.db, json!({"email": OPERATOR_EMAIL, "role": "admin"}))
        .await
        .unwrap();
    assert_eq!(dry["auth0_sub"], OPERATOR);
    assert_eq!(dry["user_id"], olivia["id"]);
    assert_eq!(role_of(&app.db, MALLORY).await.as_deref(), Some("user"));
    // A confirm naming Mallory (say, pasted from the wrong terminal) is refused.
    let err = set_role(
        &app.db,
        json!({"email": OPERATOR_EMAIL, "role": "admin", "confirm": MALLORY}),
    )
    .await
    .unwrap_err();
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(role_of(&app.db, MALLORY).await.as_deref(), Some("user"));
    assert_eq!(role_of(&app.db, OPERATOR).await.as_deref(), Some("user"));
    assert_eq!(audit_count(&app.db).await, 0);
}

#[sqlx::test]
async fn a_grant_by_verified_email_shows_the_account_first_and_applies_only_on_confirm(db: PgPool) {
    let app = spawn_app(db).await;
    let olivia = sign_in(
        &app,
        &token_with(&app, OPERATOR, json!({"email": OPERATOR_EMAIL, "email_verified": true})),
    )
    .await;
    assert_eq!(
        verified_email_of(&app.db, OPERATOR).await.as_deref(),
        Some(OPERATOR_EMAIL)
    );
    assert_eq!(
        olivia["email"],
        Value::Null,
        "the profile e-mail is the user's own field, untouched"
    );
    patch_profile(&app, MALLORY, json!({"email": OPERATOR_EMAIL})).await;

    // The dry run: the matched account in full, nothing written.
    let dry = set_role(&app.db, json!({"email": "OLIVIA@realstaging.example", "role": "admin"}))
        .await
        .unwrap();
    assert_eq!(dry["applied"], false);
    assert_eq!(dry["matched_by"], "verified_email");
    assert_eq!(dry["user_id"], olivia["id"]);
    assert_eq!(dry["auth0_sub"], OPERATOR);
    assert_eq!(dry["verified_email"], OPERATOR_EMAIL);
    assert_eq!(dry["created_at"], olivia["created_at"]);
    assert_eq!(dry["previous_role"], "user");
    assert_eq!(dry["changed"], true);
    assert_eq!(dry["confirm"], OPERATOR);
    assert_eq!(role_of(&app.db, OPERATOR).await.as_deref(), Some("user"));
    assert_eq!(audit_count(&app.db).await, 0);
    models(&app, OPERATOR).await.assert_error(403, "forbidden");

    // Confirmed: applied to exactly that account, audited with how it was matched.
    let (_, applied) = set_role_confirmed(&app.db, json!({"email": OPERATOR_EMAIL, "role": "admin"})).await;
    assert_eq!(applied["user_id"], olivia["id"]);
    assert_eq!(applied["changed"], true);
    assert_eq!(models(&app, OPERATOR).await.status, 200);
    models(&app, MALLORY).await.assert_error(403, "forbidden");
    let after: Value = sqlx::query_scalar("SELECT after FROM admin_audit_log")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        after,
        json!({"auth0_sub": OPERATOR, "role": "admin", "matched_by": "verified_email", "verified_email": OPERATOR_EMAIL})
    );

    // Namespaced claims (under the API identifier) count the same.
    let mut claims = serde_json::Map::new();
    claims.insert(format!("{AUDIENCE}/email"), json!("nina@realstaging.example"));
    claims.insert(format!("{AUDIENCE}/email_verified"), json!(true));
    let namespaced = token_with(&app, "auth0|nina", Value::Object(claims));
    sign_in(&app, &namespaced).await;
    let (_, nina) = set_role_confirmed(&app.db, json!({"email": "nina@realstaging.example", "role": "admin"})).await;
    assert_eq!(nina["auth0_sub"], "auth0|nina");

    // When the identity provider stops vouching for the address (changed, not yet verified), the
    // stored one is forgotten and can no longer select the account; a token without e-mail claims
    // changes nothing.
    sign_in(
        &app,
        &token_with(
            &app,
            "auth0|nina",
            json!({"email": "nina@elsewhere.example", "email_verified": false}),
        ),
    )
    .await;
    assert_eq!(verified_email_of(&app.db, "auth0|nina").await, None);
    let err = set_role(&app.db, json!({"email": "nina@realstaging.example", "role": "user"}))
        .await
        .unwrap_err();
    assert!(err.contains("no user has the verified e-mail address"), "{err}");
    sign_in(&app, &app.token(OPERATOR)).await;
    assert_eq!(
        verified_email_of(&app.db, OPERATOR).await.as_deref(),
        Some(OPERATOR_EMAIL)
    );
}

#[sqlx::test]
async fn a_verified_email_shared_by_two_accounts_refuses_and_names_both(db: PgPool) {
    let app = spawn_app(db).await;
    // One person, two Auth0 logins (password and Google), both verified.
    for (sub, email) in [
        ("auth0|olivia-password", OPERATOR_EMAIL),
        ("google-oauth2|1098", "Olivia@RealStaging.example"),
    ] {
        sign_in(
            &app,
            &token_with(&app, sub, json!({"email": email, "email_verified": true})),
        )
        .await;
    }
    for payload in [
        json!({"email": OPERATOR_EMAIL, "role": "admin"}),
        json!({"email": OPERATOR_EMAIL, "role": "admin", "confirm": "auth0|olivia-password"}),
    ] {
        let err = set_role(&app.db, payload).await.unwrap_err();
        assert!(err.contains("2 users have the verified e-mail address"), "{err}");
        assert!(
            err.contains("auth0|olivia-password") && err.contains("google-oauth2|1098"),
            "{err}"
        );
        assert!(err.contains("name the user by auth0_sub"), "{err}");
    }
    assert_eq!(audit_count(&app.db).await, 0);
    // By subject it works, for exactly the one named.
    let (_, report) = set_role_confirmed(&app.db, json!({"auth0_sub": "google-oauth2|1098", "role": "admin"})).await;
    assert_eq!(report["changed"], true);
    assert_eq!(role_of(&app.db, "google-oauth2|1098").await.as_deref(), Some("admin"));
    assert_eq!(role_of(&app.db, "auth0|olivia-password").await.as_deref(), Some("user"));
}

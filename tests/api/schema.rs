//! The schema itself: reversible migrations and constraints that agree with the domain crate.

use shared::db::MIGRATOR;
use shared::staging::vocabulary::{RoomType, Style};
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn migrations_are_reversible(db: PgPool) {
    MIGRATOR.run(&db).await.unwrap();
    MIGRATOR.undo(&db, 0).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        tables, 0,
        "the down migrations remove everything the up migrations created"
    );
    MIGRATOR.run(&db).await.unwrap();
}

#[sqlx::test]
async fn every_room_type_and_style_is_accepted_by_the_database(db: PgPool) {
    let (user, project): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "WITH u AS (INSERT INTO users (auth0_sub) VALUES ('auth0|x') RETURNING id) \
         INSERT INTO projects (user_id, name) SELECT id, 'p' FROM u RETURNING user_id, id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let insert =
        "INSERT INTO images (project_id, user_id, original_key, room_type, style) VALUES ($1, $2, 'k', $3, $4)";
    for room in RoomType::ALL {
        for style in Style::ALL {
            sqlx::query(insert)
                .bind(project)
                .bind(user)
                .bind(room.as_str())
                .bind(style.as_str())
                .execute(&db)
                .await
                .unwrap();
        }
    }
    let bogus = sqlx::query(insert)
        .bind(project)
        .bind(user)
        .bind("garage")
        .bind("modern")
        .execute(&db)
        .await;
    assert!(bogus.is_err(), "the CHECK constraint and the enumeration agree");
}

#[sqlx::test]
async fn every_operation_is_accepted_and_its_style_and_room_rules_hold_in_the_database(db: PgPool) {
    use shared::staging::vocabulary::Operation;
    let (user, project): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "WITH u AS (INSERT INTO users (auth0_sub) VALUES ('auth0|x') RETURNING id) \
         INSERT INTO projects (user_id, name) SELECT id, 'p' FROM u RETURNING user_id, id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let insert = |operation: &str, room: &str, style: Option<&str>| {
        sqlx::query(
            "INSERT INTO images (project_id, user_id, original_key, operation, room_type, style) \
             VALUES ($1, $2, 'k', $3, $4, $5)",
        )
        .bind(project)
        .bind(user)
        .bind(operation.to_owned())
        .bind(room.to_owned())
        .bind(style.map(str::to_owned))
        .execute(&db)
    };
    for operation in Operation::ALL {
        let style = operation.furnishes().then_some("modern");
        insert(operation.as_str(), "outdoor", style).await.unwrap();
        // The other half of the pairing is refused.
        let flipped = if style.is_some() { None } else { Some("modern") };
        assert!(
            insert(operation.as_str(), "outdoor", flipped).await.is_err(),
            "{operation}"
        );
    }
    assert!(
        insert("twilight", "kitchen", None).await.is_err(),
        "twilight is for exteriors"
    );
    assert!(
        insert("repaint", "kitchen", None).await.is_err(),
        "the CHECK and the enumeration agree"
    );
}

#[sqlx::test]
async fn an_image_cannot_point_at_another_users_project(db: PgPool) {
    let ids: Vec<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
        "WITH u AS (INSERT INTO users (auth0_sub) VALUES ('auth0|a'), ('auth0|b') RETURNING id) \
         INSERT INTO projects (user_id, name) SELECT id, 'p' FROM u RETURNING user_id, id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let (alice, _) = ids[0];
    let (_, bobs_project) = ids[1];
    let result = sqlx::query(
        "INSERT INTO images (project_id, user_id, original_key, room_type, style) VALUES ($1, $2, 'k', 'bedroom', 'modern')",
    )
    .bind(bobs_project)
    .bind(alice)
    .execute(&db)
    .await;
    assert!(result.is_err());
}

#[sqlx::test]
async fn the_usage_ledger_is_append_only(db: PgPool) {
    sqlx::query(
        "WITH u AS (INSERT INTO users (auth0_sub) VALUES ('auth0|a') RETURNING id) \
         INSERT INTO usage_ledger (user_id, kind, units, period_at) SELECT id, 'reserve', 1, now() FROM u",
    )
    .execute(&db)
    .await
    .unwrap();
    assert!(
        sqlx::query("UPDATE usage_ledger SET units = 0")
            .execute(&db)
            .await
            .is_err()
    );
    assert!(sqlx::query("DELETE FROM usage_ledger").execute(&db).await.is_err());
    // Erasing the user (the one legitimate removal) cascades.
    sqlx::query("DELETE FROM users").execute(&db).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_ledger")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// The migrations seed the active model and every registered model's configuration, and what they
/// seed is exactly the registry's defaults (so the worker never starts on an invalid setting).
#[sqlx::test]
async fn model_settings_are_seeded_with_the_registry_defaults(db: PgPool) {
    let active: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = 'active_model'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(active, shared::models::DEFAULT_MODEL_ID);
    for spec in shared::models::registry() {
        let key = shared::db::settings::model_config_key(spec.slug);
        let row: Option<(String, serde_json::Value, bool)> =
            sqlx::query_as("SELECT value, model_settings, is_secret FROM settings WHERE key = $1")
                .bind(&key)
                .fetch_optional(&db)
                .await
                .unwrap();
        let expected = spec.default_config().as_json_without_secrets();
        let Some((value, stored, is_secret)) = row else {
            panic!("no {key} row; seed it with {expected}");
        };
        assert_eq!(value, spec.id);
        assert!(!is_secret);
        assert_eq!(stored, expected, "{key}");
        assert!(spec.validate_config(&stored).is_ok(), "{key} validates");
    }
}

/// Every subscription status the code knows is one the table accepts, and reads back as itself
/// (the enum goes to the row as text and comes back typed); anything else is refused.
#[sqlx::test]
async fn every_subscription_status_round_trips_through_the_table(db: PgPool) {
    use shared::db::subscriptions::SubscriptionStatus;
    let user: uuid::Uuid = sqlx::query_scalar("INSERT INTO users (auth0_sub) VALUES ('auth0|s') RETURNING id")
        .fetch_one(&db)
        .await
        .unwrap();
    for (i, status) in SubscriptionStatus::ALL.into_iter().enumerate() {
        let stored: SubscriptionStatus = sqlx::query_scalar(
            "INSERT INTO subscriptions (user_id, stripe_subscription_id, status) VALUES ($1, $2, $3) RETURNING status",
        )
        .bind(user)
        .bind(format!("sub_{i}"))
        .bind(status)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(stored, status);
        assert_eq!(SubscriptionStatus::parse(status.as_str()), Some(status));
    }
    let bogus = sqlx::query(
        "INSERT INTO subscriptions (user_id, stripe_subscription_id, status) VALUES ($1, 'sub_x', 'suspended')",
    )
    .bind(user)
    .execute(&db)
    .await;
    assert!(bogus.is_err(), "the CHECK constraint and the enumeration agree");
}

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::profile::ProfileChanges;

/// The roles a user can have, as stored in `users.role` (text with a CHECK constraint): typed from
/// the row to the answer, never compared as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: Uuid,
    pub auth0_sub: String,
    pub role: Role,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub company_name: Option<String>,
    pub phone: Option<String>,
    pub billing_address: Option<Value>,
    pub profile_photo_url: Option<String>,
    pub preferences: Value,
    pub stripe_customer_id: Option<String>,
    /// The address the identity provider vouched for (a verified token claim); never user input.
    pub verified_email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

macro_rules! columns {
    () => {
        "id, auth0_sub, role, email, full_name, company_name, phone, billing_address, \
         profile_photo_url, preferences, stripe_customer_id, verified_email, created_at, updated_at"
    };
}

/// The user row for an Auth0 subject, created on first sight.
///
/// Race-free without a write on the common path: read; if absent, `INSERT .. ON CONFLICT DO
/// NOTHING`; if a concurrent request won the insert, read again (a new statement sees its commit).
pub async fn ensure_by_sub(db: &PgPool, sub: &str) -> Result<User, sqlx::Error> {
    const SELECT: &str = concat!("SELECT ", columns!(), " FROM users WHERE auth0_sub = $1");
    const INSERT: &str = concat!(
        "INSERT INTO users (auth0_sub) VALUES ($1) ON CONFLICT (auth0_sub) DO NOTHING RETURNING ",
        columns!()
    );
    if let Some(user) = sqlx::query_as::<_, User>(SELECT).bind(sub).fetch_optional(db).await? {
        return Ok(user);
    }
    if let Some(user) = sqlx::query_as::<_, User>(INSERT).bind(sub).fetch_optional(db).await? {
        tracing::info!(user_id = %user.id, "created user on first sign-in");
        return Ok(user);
    }
    sqlx::query_as::<_, User>(SELECT)
        .bind(sub)
        .fetch_optional(db)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

/// Records what the identity provider says about the user's e-mail (called on sign-in, only with
/// values taken from a verified token): `Some` = this address is verified, `None` = the token says
/// the address is not verified (any earlier one is forgotten). Writes only when it differs;
/// `None` when the user row is gone.
pub async fn sync_verified_email(
    db: &PgPool,
    user: User,
    verified_email: Option<&str>,
) -> Result<Option<User>, sqlx::Error> {
    if user.verified_email.as_deref() == verified_email {
        return Ok(Some(user));
    }
    const SQL: &str = concat!(
        "UPDATE users SET verified_email = $2 WHERE id = $1 RETURNING ",
        columns!()
    );
    let updated: Option<User> = sqlx::query_as(SQL)
        .bind(user.id)
        .bind(verified_email)
        .fetch_optional(db)
        .await?;
    tracing::info!(user_id = %user.id, verified = verified_email.is_some(), "recorded the identity provider's e-mail verification");
    Ok(updated)
}

/// Applies a validated partial update. Each column is touched only when its field was sent:
/// `$n_set` says whether to write, `$n` is the new value (possibly NULL to clear). `None` when the
/// user row is gone.
pub async fn update_profile(db: &PgPool, user_id: Uuid, changes: &ProfileChanges) -> Result<Option<User>, sqlx::Error> {
    const SQL: &str = concat!(
        "UPDATE users SET \
            email             = CASE WHEN $2  THEN $3  ELSE email END, \
            full_name         = CASE WHEN $4  THEN $5  ELSE full_name END, \
            company_name      = CASE WHEN $6  THEN $7  ELSE company_name END, \
            phone             = CASE WHEN $8  THEN $9  ELSE phone END, \
            billing_address   = CASE WHEN $10 THEN $11 ELSE billing_address END, \
            profile_photo_url = CASE WHEN $12 THEN $13 ELSE profile_photo_url END, \
            preferences       = (preferences || $14::jsonb) - $15::text[] \
         WHERE id = $1 RETURNING ",
        columns!()
    );
    sqlx::query_as::<_, User>(SQL)
        .bind(user_id)
        .bind(changes.email.is_some())
        .bind(changes.email.clone().flatten())
        .bind(changes.full_name.is_some())
        .bind(changes.full_name.clone().flatten())
        .bind(changes.company_name.is_some())
        .bind(changes.company_name.clone().flatten())
        .bind(changes.phone.is_some())
        .bind(changes.phone.clone().flatten())
        .bind(changes.billing_address.is_some())
        .bind(changes.billing_address.clone().flatten())
        .bind(changes.profile_photo_url.is_some())
        .bind(changes.profile_photo_url.clone().flatten())
        .bind(Value::Object(changes.preferences_set.clone()))
        .bind(&changes.preferences_removed)
        .fetch_optional(db)
        .await
}

/// Stores `customer_id` as the user's Stripe customer unless one is stored already, and returns the
/// stored one (which the caller must use from then on).
///
/// Race-safe: when two requests race, the second `UPDATE` waits for the first to commit, re-checks
/// `IS NULL`, changes nothing, and the follow-up read (a new statement, so a new snapshot) returns
/// the first request's id. The loser's Stripe customer is simply never stored. `None` when the
/// user row is gone.
pub async fn set_stripe_customer_id_if_unset(
    db: &PgPool,
    user_id: Uuid,
    customer_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let stored: Option<String> = sqlx::query_scalar(
        "UPDATE users SET stripe_customer_id = $2 WHERE id = $1 AND stripe_customer_id IS NULL \
         RETURNING stripe_customer_id",
    )
    .bind(user_id)
    .bind(customer_id)
    .fetch_optional(db)
    .await?;
    if let Some(id) = stored {
        return Ok(Some(id));
    }
    let existing: Option<Option<String>> = sqlx::query_scalar("SELECT stripe_customer_id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db)
        .await?;
    // `Some(None)` cannot follow a failed `IS NULL` update unless the row vanished in between.
    let existing = existing.flatten();
    if existing.as_deref().is_some_and(|id| id != customer_id) {
        tracing::warn!(%user_id, "another request stored a Stripe customer first; using that one");
    }
    Ok(existing)
}

/// The user of an Auth0 subject, created when absent, locked for the rest of the transaction
/// (the role grant creates users an operator names before they ever sign in).
pub async fn lock_or_create_by_sub(conn: &mut sqlx::PgConnection, sub: &str) -> Result<User, sqlx::Error> {
    sqlx::query("INSERT INTO users (auth0_sub) VALUES ($1) ON CONFLICT (auth0_sub) DO NOTHING")
        .bind(sub)
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM users WHERE auth0_sub = $1 FOR UPDATE"
    ))
    .bind(sub)
    .fetch_one(conn)
    .await
}

/// The user of an Auth0 subject, if they exist (a read: the role grant's dry run changes nothing).
pub async fn find_by_sub(conn: &mut sqlx::PgConnection, sub: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", columns!(), " FROM users WHERE auth0_sub = $1"))
        .bind(sub)
        .fetch_optional(conn)
        .await
}

/// Every user whose *verified* e-mail is `email` (case-insensitive), oldest first, locked. Never
/// `users.email`: that is profile text any user can set to anyone's address. More than one is
/// possible (one person, two Auth0 logins; the caller refuses to choose).
pub async fn lock_by_verified_email(conn: &mut sqlx::PgConnection, email: &str) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM users WHERE lower(verified_email) = lower($1) ORDER BY created_at, id LIMIT 5 FOR UPDATE"
    ))
    .bind(email)
    .fetch_all(conn)
    .await
}

pub async fn set_role(conn: &mut sqlx::PgConnection, user_id: Uuid, role: Role) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
        .bind(user_id)
        .bind(role)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks the user's row until the transaction ends: changes that must see each other (allowance
/// reservations, subscription changes of one user) run one after another.
pub async fn lock(conn: &mut sqlx::PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn exists(conn: &mut sqlx::PgConnection, user_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await
}

/// The user a Stripe customer belongs to.
pub async fn by_stripe_customer(conn: &mut sqlx::PgConnection, customer: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM users WHERE stripe_customer_id = $1")
        .bind(customer)
        .fetch_optional(&mut *conn)
        .await
}

/// Stores `customer` on the user unless the user has a customer already or the customer is
/// another user's. Returns `None` when the user is missing or the customer is another user's,
/// else the user's customer after the statement (the new one, or the one kept).
pub async fn link_stripe_customer(
    conn: &mut sqlx::PgConnection,
    user_id: Uuid,
    customer: &str,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET stripe_customer_id = COALESCE(stripe_customer_id, $2) \
         WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM users other WHERE other.stripe_customer_id = $2 AND other.id <> $1) \
         RETURNING stripe_customer_id",
    )
    .bind(user_id)
    .bind(customer)
    .fetch_optional(&mut *conn)
    .await
}

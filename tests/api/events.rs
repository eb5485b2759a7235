//! GET /api/v1/events?image_id=: long-poll Server-Sent Events (docs/events.md).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

const ROUTE: &str = "/api/v1/events";
/// The wait bound of the tests (production waits 20 s).
const SHORT_WAIT: Duration = Duration::from_secs(1);

/// An image row for `sub` (with its user and project) in the given status.
async fn image(app: &TestApp, sub: &str, status: &str) -> Uuid {
    let user = shared::db::users::ensure_by_sub(&app.db, sub).await.unwrap();
    let project: Uuid = sqlx::query_scalar("INSERT INTO projects (user_id, name) VALUES ($1, 'Events') RETURNING id")
        .bind(user.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let (staged_key, error) = match status {
        "ready" => (Some(format!("staged/{}/x.jpg", user.id)), None),
        "error" => (None, Some("the model gave up")),
        _ => (None, None),
    };
    sqlx::query_scalar(
        "INSERT INTO images (project_id, user_id, original_key, room_type, style, status, staged_key, error) \
         VALUES ($1, $2, $3, 'bedroom', 'modern', $4, $5, $6) RETURNING id",
    )
    .bind(project)
    .bind(user.id)
    .bind(format!("uploads/{}/{}.jpg", user.id, Uuid::new_v4()))
    .bind(status)
    .bind(staged_key)
    .bind(error)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// The id the stream gives the image's current row: `<status>:<updated_at micros>`.
async fn current_id(app: &TestApp, id: Uuid) -> String {
    let (status, micros): (String, i64) =
        sqlx::query_as("SELECT status, (extract(epoch FROM updated_at) * 1000000)::bigint FROM images WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    format!("{status}:{micros}")
}

fn events_call(image_id: impl ToString) -> Call {
    call("GET", ROUTE).query("image_id", image_id)
}

async fn send(app: &TestApp, c: Call) -> TestResponse {
    c.send(&app.api, &app.api.web, image_events::handle).await
}

async fn send_waiting(app: &TestApp, c: Call, wait: Duration) -> TestResponse {
    c.send(&app.api, &app.api.web, |s, r| {
        image_events::handle_with_wait(s, r, wait)
    })
    .await
}

/// A `text/event-stream` body read the way EventSource reads it.
#[derive(Debug, Default)]
struct Stream {
    retry: Option<u64>,
    comments: Vec<String>,
    /// (id, event type, data) of every dispatched event.
    events: Vec<(String, String, String)>,
}

fn parse_sse(response: &TestResponse) -> Stream {
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let text = std::str::from_utf8(&response.body).unwrap();
    assert!(text.ends_with("\n\n"), "the last event must be terminated: {text:?}");
    let mut stream = Stream::default();
    let (mut id, mut kind, mut data) = (String::new(), String::new(), Vec::<String>::new());
    for line in text.split('\n') {
        if line.is_empty() {
            if !data.is_empty() {
                stream.events.push((id.clone(), kind.clone(), data.join("\n")));
            }
            kind.clear();
            data.clear();
            continue;
        }
        if let Some(comment) = line.strip_prefix(':') {
            stream.comments.push(comment.trim().to_string());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = value.to_string(),
            "event" => kind = value.to_string(),
            "data" => data.push(value.to_string()),
            "retry" => stream.retry = Some(value.parse().expect("retry is a number")),
            other => panic!("unexpected field {other:?} in {text:?}"),
        }
    }
    stream
}

/// The one `status` event of a response, its data parsed.
fn single_status(response: &TestResponse) -> (String, Value) {
    let stream = parse_sse(response);
    assert_eq!(stream.retry, Some(3000));
    assert!(
        std::str::from_utf8(&response.body)
            .unwrap()
            .starts_with("retry: 3000\n"),
        "the response begins with the retry hint"
    );
    assert_eq!(stream.events.len(), 1, "{stream:?}");
    let (id, kind, data) = stream.events.into_iter().next().unwrap();
    assert_eq!(kind, "status");
    assert!(!data.contains('\n'), "data is one line: {data:?}");
    (id, serde_json::from_str(&data).unwrap())
}

#[sqlx::test]
async fn first_connection_gets_the_current_status_at_once(db: PgPool) {
    let app = spawn_app(db).await;
    let id = image(&app, "auth0|alice", "queued").await;
    let started = Instant::now();
    let response = send(&app, events_call(id).bearer(&app.token("auth0|alice"))).await;
    assert!(started.elapsed() < Duration::from_secs(5), "a snapshot never waits");
    let (event_id, data) = single_status(&response);
    assert_eq!(event_id, current_id(&app, id).await);
    assert!(event_id.starts_with("queued:"));
    let updated_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT updated_at FROM images WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let sent_at: chrono::DateTime<chrono::Utc> = data["updated_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(sent_at, updated_at, "updated_at to the microsecond");
    assert_eq!(
        data,
        json!({ "image_id": id, "status": "queued", "error": null, "updated_at": data["updated_at"] })
    );
    // The respond wrapper's headers are there too.
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
}

#[sqlx::test]
async fn an_error_status_carries_its_message(db: PgPool) {
    let app = spawn_app(db).await;
    let id = image(&app, "auth0|alice", "error").await;
    let response = send(&app, events_call(id).bearer(&app.token("auth0|alice"))).await;
    let (event_id, data) = single_status(&response);
    assert!(event_id.starts_with("error:"), "{event_id}");
    assert_eq!(data["status"], "error");
    assert_eq!(data["error"], "the model gave up");
}

#[sqlx::test]
async fn the_token_may_come_in_the_query_here_but_not_twice(db: PgPool) {
    let app = spawn_app(db).await;
    let id = image(&app, "auth0|alice", "processing").await;
    let token = app.token("auth0|alice");
    let response = send(&app, events_call(id).query("access_token", &token)).await;
    let (_, data) = single_status(&response);
    assert_eq!(data["status"], "processing");

    send(&app, events_call(id).query("access_token", &token).bearer(&token))
        .await
        .assert_error(401, "unauthorized");
    send(
        &app,
        events_call(id)
            .query("access_token", &token)
            .query("access_token", &token),
    )
    .await
    .assert_error(401, "unauthorized");
}

#[sqlx::test]
async fn missing_forged_or_expired_tokens_are_refused(db: PgPool) {
    let app = spawn_app(db).await;
    let id = image(&app, "auth0|alice", "queued").await;
    let users_before = app.user_count().await;

    let response = send(&app, events_call(id)).await;
    response.assert_error(401, "unauthorized");
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));

    let forged = sign(&app.claims("auth0|alice"), Some(DEV_KID), attacker_private_key());
    let mut expired_claims = app.claims("auth0|alice");
    expired_claims["exp"] = json!(now() - 3600);
    expired_claims["iat"] = json!(now() - 7200);
    let expired = sign(&expired_claims, Some(DEV_KID), dev_private_key());
    for token in [&forged, &expired] {
        send(&app, events_call(id).bearer(token))
            .await
            .assert_error(401, "unauthorized");
        send(&app, events_call(id).query("access_token", token))
            .await
            .assert_error(401, "unauthorized");
    }
    send(&app, events_call(id).query("access_token", "not-a-jwt"))
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(app.user_count().await, users_before);
}

#[sqlx::test]
async fn foreign_missing_and_deleted_images_are_404(db: PgPool) {
    let app = spawn_app(db).await;
    let bobs = image(&app, "auth0|bob", "queued").await;
    let alices = image(&app, "auth0|alice", "queued").await;
    let token = app.token("auth0|alice");
    send(&app, events_call(bobs).bearer(&token))
        .await
        .assert_error(404, "not_found");
    // Even with Bob's current id as Last-Event-ID (no waiting on someone else's image).
    send(
        &app,
        events_call(bobs)
            .bearer(&token)
            .header("last-event-id", current_id(&app, bobs).await),
    )
    .await
    .assert_error(404, "not_found");
    send(&app, events_call(Uuid::new_v4()).bearer(&token))
        .await
        .assert_error(404, "not_found");
    sqlx::query("UPDATE images SET deleted_at = now() WHERE id = $1")
        .bind(alices)
        .execute(&app.db)
        .await
        .unwrap();
    send(&app, events_call(alices).bearer(&token))
        .await
        .assert_error(404, "not_found");
    // Bob still sees his own.
    assert_eq!(
        send(&app, events_call(bobs).bearer(&app.token("auth0|bob")))
            .await
            .status,
        200
    );
}

#[sqlx::test]
async fn image_id_must_be_one_uuid(db: PgPool) {
    let app = spawn_app(db).await;
    let id = image(&app, "auth0|alice", "queued").await;
    let token = app.token("auth0|alice");
    send(&app, call("GET", ROUTE).bearer(&token))
        .await
        .assert_error(400, "bad_request");
    for bad in ["", "123", "not-a-uuid", &format!("{id}x")] {
        send(&app, events_call(bad).bearer(&token))
            .await
            .assert_error(400, "bad_request");
    }
    send(&app, events_call(id).query("image_id", id).bearer(&token))
        .await
        .assert_error(400, "bad_request");
}

#[sqlx::test]
async fn an_up_to_date_client_gets_the_change_as_soon_as_it_happens(db: PgPool) {
    let app = spawn_app(db).await;
    let id = image(&app, "auth0|alice", "queued").await;
    let seen = current_id(&app, id).await;
    let pool = app.db.clone();
    let worker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query("UPDATE images SET status = 'processing' WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    });
    let started = Instant::now();
    // A generous bound: the answer must come with the change, long before the bound.
    let response = send_waiting(
        &app,
        events_call(id)
            .bearer(&app.token("auth0|alice"))
            .header("Last-Event-ID", &seen),
        Duration::from_secs(60),
    )
    .await;
    let elapsed = started.elapsed();
    worker.await.unwrap();
    let (event_id, data) = single_status(&response);
    assert_eq!(data["status"], "processing");
    assert_eq!(event_id, current_id(&app, id).await);
    assert_ne!(event_id, seen);
    assert!(
        elapsed >= Duration::from_millis(300),
        "answered before the change: {elapsed:?}"
    );
    // Not a speed check: only that the answer came with the change rather than at the 60 s bound
    // (the margin is wide so a loaded CI machine cannot make this fail).
    assert!(
        elapsed < Duration::from_secs(45),
        "answered at the bound, not at the change: {elapsed:?}"
    );
}

#[sqlx::test]
async fn an_up_to_date_client_gets_no_change_after_the_wait(db: PgPool) {
    let app = spawn_app(db).await;
    let id = image(&app, "auth0|alice", "processing").await;
    let seen = current_id(&app, id).await;
    let started = Instant::now();
    let response = send_waiting(
        &app,
        events_call(id)
            .bearer(&app.token("auth0|alice"))
            .header("last-event-id", &seen),
        SHORT_WAIT,
    )
    .await;
    let elapsed = started.elapsed();
    let stream = parse_sse(&response);
    assert_eq!(stream.retry, Some(3000));
    assert!(stream.events.is_empty(), "{stream:?}");
    assert_eq!(stream.comments, vec!["no change"]);
    assert_eq!(
        std::str::from_utf8(&response.body).unwrap(),
        "retry: 3000\n\n: no change\n\n"
    );
    assert!(elapsed >= SHORT_WAIT, "it waited the whole bound: {elapsed:?}");
    assert!(elapsed < SHORT_WAIT + Duration::from_secs(4), "{elapsed:?}");
    // The row is untouched.
    assert_eq!(current_id(&app, id).await, seen);
}

#[sqlx::test]
async fn an_image_deleted_during_the_wait_ends_the_stream_with_404(db: PgPool) {
    let app = spawn_app(db).await;
    let id = image(&app, "auth0|alice", "queued").await;
    let seen = current_id(&app, id).await;
    let pool = app.db.clone();
    let deleter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("UPDATE images SET deleted_at = now() WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    });
    let response = send_waiting(
        &app,
        events_call(id)
            .bearer(&app.token("auth0|alice"))
            .header("last-event-id", &seen),
        Duration::from_secs(5),
    )
    .await;
    deleter.await.unwrap();
    response.assert_error(404, "not_found");
    assert_eq!(
        leases_of(&app, "auth0|alice").await,
        0,
        "a wait that ends in an error frees its lease"
    );
}

#[sqlx::test]
async fn a_client_that_saw_the_final_status_is_told_to_stop(db: PgPool) {
    let app = spawn_app(db).await;
    let token = app.token("auth0|alice");
    for status in ["ready", "error"] {
        let id = image(&app, "auth0|alice", status).await;
        let started = Instant::now();
        let response = send_waiting(
            &app,
            events_call(id)
                .bearer(&token)
                .header("last-event-id", current_id(&app, id).await),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(
            response.status,
            204,
            "{status}: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert!(response.body.is_empty());
        assert!(started.elapsed() < Duration::from_secs(5), "204 never waits");
    }
}

#[sqlx::test]
async fn a_stale_or_malformed_last_event_id_gets_the_current_status_at_once(db: PgPool) {
    let app = spawn_app(db).await;
    let id = image(&app, "auth0|alice", "ready").await;
    let current = current_id(&app, id).await;
    let (_, micros) = current.split_once(':').unwrap();
    let token = app.token("auth0|alice");
    for last in [
        format!("processing:{micros}"),
        format!("ready:{}", micros.parse::<i64>().unwrap() - 1),
        "queued:1".to_string(),
        "garbage".to_string(),
        format!("{current} "),
    ] {
        // A long bound: a wrong "unchanged" decision would show as a slow answer or a 204.
        let started = Instant::now();
        let response = send_waiting(
            &app,
            events_call(id).bearer(&token).header("last-event-id", &last),
            Duration::from_secs(10),
        )
        .await;
        if last.trim() == current {
            // Surrounding whitespace is not part of the id (header values are trimmed).
            assert_eq!(response.status, 204, "{last:?}");
            continue;
        }
        let (event_id, data) = single_status(&response);
        assert_eq!(event_id, current, "{last:?}");
        assert_eq!(data["status"], "ready");
        assert!(started.elapsed() < Duration::from_secs(5), "{last:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// One user cannot hold many instances (and their database connections) by waiting on many streams.

async fn leases_of(app: &TestApp, sub: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM event_stream_leases l JOIN users u ON u.id = l.user_id WHERE u.auth0_sub = $1",
    )
    .bind(sub)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// A request that will wait: `sub`'s fresh queued image, with its current id as Last-Event-ID.
async fn waiting_call(app: &TestApp, sub: &str) -> Call {
    let id = image(app, sub, "queued").await;
    let seen = current_id(app, id).await;
    events_call(id).bearer(&app.token(sub)).header("last-event-id", seen)
}

#[sqlx::test]
async fn one_user_may_hold_only_a_few_waiting_streams_and_the_next_is_a_429(db: PgPool) {
    let app = spawn_app(db).await;
    let cap = shared::staging::events::MAX_WAITING_PER_USER as usize;
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(waiting_call(&app, "auth0|alice").await);
    }
    // From the web app's origin, so the answer carries its CORS headers.
    let extra = waiting_call(&app, "auth0|alice").await.header("origin", FRONTEND);
    let bobs = waiting_call(&app, "auth0|bob").await;
    let snapshot_image = image(&app, "auth0|alice", "queued").await;
    let finished_image = image(&app, "auth0|alice", "ready").await;
    let finished_id = current_id(&app, finished_image).await;
    let hold_for = Duration::from_secs(4);

    let holders = futures::future::join_all(held.into_iter().map(|c| send_waiting(&app, c, hold_for)));
    let probe = async {
        // Until all of Alice's waits hold their lease.
        let started = Instant::now();
        while leases_of(&app, "auth0|alice").await < cap as i64 {
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "the waits never took their leases"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let over = send_waiting(&app, extra, hold_for).await;
        // Other users are not affected, and answers that do not wait are never refused.
        let bob = send_waiting(&app, bobs, Duration::from_millis(200)).await;
        let snapshot = send(&app, events_call(snapshot_image).bearer(&app.token("auth0|alice"))).await;
        let finished = send(
            &app,
            events_call(finished_image)
                .bearer(&app.token("auth0|alice"))
                .header("last-event-id", &finished_id),
        )
        .await;
        let during = leases_of(&app, "auth0|alice").await;
        (over, bob, snapshot, finished, during)
    };
    let (held, (over, bob, snapshot, finished, during)) = tokio::join!(holders, probe);

    over.assert_error(429, "too_many_requests");
    let retry_after: u64 = over.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=4).contains(&retry_after),
        "until the oldest wait ends: {retry_after}"
    );
    assert!(
        over.header("access-control-expose-headers")
            .unwrap()
            .contains("retry-after"),
        "the web app can read it"
    );
    assert!(
        over.json()["message"]
            .as_str()
            .unwrap()
            .contains("too many images at once"),
        "{}",
        over.json()
    );
    assert_eq!(during, cap as i64, "the refused request took no lease");
    assert_eq!(parse_sse(&bob).comments, vec!["no change"]);
    assert_eq!(single_status(&snapshot).1["status"], "queued");
    assert_eq!(finished.status, 204);
    for response in &held {
        assert_eq!(parse_sse(response).comments, vec!["no change"]);
    }
    // Every wait gave its lease back: Alice can wait again.
    assert_eq!(leases_of(&app, "auth0|alice").await, 0);
    assert_eq!(leases_of(&app, "auth0|bob").await, 0);
    let again = send_waiting(
        &app,
        waiting_call(&app, "auth0|alice").await,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(parse_sse(&again).comments, vec!["no change"]);
}

#[sqlx::test]
async fn leases_of_instances_that_died_mid_wait_expire(db: PgPool) {
    let app = spawn_app(db).await;
    let next = waiting_call(&app, "auth0|alice").await;
    let user = shared::db::users::ensure_by_sub(&app.db, "auth0|alice").await.unwrap();
    // Five waits whose instances died 2 s into a 10 s wait: their leases are still live.
    let cap = shared::staging::events::MAX_WAITING_PER_USER;
    sqlx::query(
        "INSERT INTO event_stream_leases (user_id, created_at, expires_at) \
         SELECT $1, now() - interval '2 seconds', now() + interval '18 seconds' FROM generate_series(1, $2)",
    )
    .bind(user.id)
    .bind(cap as i32)
    .execute(&app.db)
    .await
    .unwrap();
    let refused = send_waiting(&app, waiting_call(&app, "auth0|alice").await, Duration::from_secs(10)).await;
    refused.assert_error(429, "too_many_requests");
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (7..=9).contains(&retry_after),
        "the oldest wait ends ~8 s from now: {retry_after}"
    );

    // Once past their expiry they no longer count (and are swept).
    sqlx::query("UPDATE event_stream_leases SET expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    let response = send_waiting(&app, next, Duration::from_millis(200)).await;
    assert_eq!(parse_sse(&response).comments, vec!["no change"]);
    assert_eq!(leases_of(&app, "auth0|alice").await, 0);
}

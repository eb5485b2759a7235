//! At most one paid prediction per job, and provider account faults that wait for the operator,
//! against a stateful fake Replicate (fake_replicate.rs) that plays the real API's ordinary
//! misbehaviour: a create that was made although the client saw a 502, an unreadable body, or no
//! answer in time; a worker that dies between create and record; an account out of credit.

use std::time::Duration;

use serde_json::json;
use shared::staging::imaging::samples;
use sqlx::PgPool;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::fake_replicate::{CreateAnswer, FakeReplicate};
use crate::support::*;

const ALICE: &str = "auth0|alice";

async fn setup(db: PgPool) -> (WorkerApp, FakeReplicate) {
    let w = spawn_worker(db).await;
    let fake = FakeReplicate::mount(&w.replicate, &w.file_url("out.jpg")).await;
    Mock::given(method("GET"))
        .and(path("/files/out.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(samples::room_jpeg(320, 240), "image/jpeg"))
        .mount(&w.replicate)
        .await;
    (w, fake)
}

fn room() -> Vec<u8> {
    samples::room_jpeg(640, 427)
}

#[derive(Debug, sqlx::FromRow)]
struct Trace {
    status: String,
    attempts: i32,
    prediction_id: Option<String>,
    create_sent: bool,
    operator_fault: bool,
}

async fn trace(w: &WorkerApp, job: uuid::Uuid) -> Trace {
    sqlx::query_as(
        "SELECT status, attempts, prediction_id, create_started_at IS NOT NULL AS create_sent, \
         operator_fault_at IS NOT NULL AS operator_fault FROM jobs WHERE id = $1",
    )
    .bind(job)
    .fetch_one(w.db())
    .await
    .unwrap()
}

async fn input_copy(w: &WorkerApp, queued: &QueuedImage) -> Option<Vec<u8>> {
    let key = format!("inputs/{}/{}.jpg", queued.user_id, queued.job_id);
    w.staging.storage.storage.get_bounded(&key, 50 << 20).await.unwrap()
}

/// The first delivery's create is made at Replicate but its answer is lost (`answer`); the
/// message comes back, the next delivery finds the prediction in Replicate's list, adopts it and
/// finishes the image. One prediction, one create request, no refund.
async fn lost_answer_is_adopted(db: PgPool, answer: CreateAnswer) {
    let (w, fake) = setup(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    fake.script([answer.clone()]);

    let failures = w.deliver().await;
    assert_eq!(failures.len(), 1, "{answer:?}: the message comes back");
    let first = trace(&w, queued.job_id).await;
    assert_eq!(
        (first.status.as_str(), first.prediction_id.as_deref(), first.create_sent),
        ("processing", None, true),
        "{answer:?}: the job knows a create went out, not what it made"
    );
    assert_eq!(fake.predictions_made(), 1, "{answer:?}: Replicate made one");
    assert_eq!(w.image_row(queued.image_id).await.status, "processing");

    assert!(w.deliver().await.is_empty(), "{answer:?}");
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "ready", "{answer:?}: {image:?}");
    assert_eq!(fake.predictions_made(), 1, "{answer:?}: never a second paid prediction");
    assert_eq!(fake.creates_received(), 1, "{answer:?}: no second create was even sent");
    let job = trace(&w, queued.job_id).await;
    assert_eq!(job.prediction_id.as_deref(), Some("fake1"), "{answer:?}: adopted");
    assert_eq!(image.replicate_prediction_id.as_deref(), Some("fake1"));
    assert_eq!(
        w.ledger(queued.image_id).await,
        (1, 0),
        "{answer:?}: charged once, no refund"
    );
    assert!(fake.cancels().is_empty());
    assert_eq!(
        input_copy(&w, &queued).await,
        None,
        "the job's input copy is deleted when it ends"
    );
}

#[sqlx::test]
async fn a_create_made_although_replicate_answered_502_is_adopted(db: PgPool) {
    lost_answer_is_adopted(db, CreateAnswer::CreatedThenBadGateway).await;
}

#[sqlx::test]
async fn a_create_whose_answer_never_came_during_prefer_wait_is_adopted(db: PgPool) {
    // The client gives up after the 1 s sync wait plus its 2 s margin; the answer takes 5 s.
    lost_answer_is_adopted(db, CreateAnswer::CreatedThenSlow(Duration::from_secs(5))).await;
}

#[sqlx::test]
async fn a_create_answered_with_an_unreadable_2xx_is_adopted(db: PgPool) {
    lost_answer_is_adopted(db, CreateAnswer::CreatedThenUnreadable).await;
}

#[sqlx::test]
async fn a_worker_that_dies_between_create_and_record_is_followed_by_one_that_adopts(db: PgPool) {
    let (w, fake) = setup(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    // The instance "dies" exactly between Replicate's answer and storing the id: the database
    // refuses the write that would record it.
    sqlx::query(
        "CREATE FUNCTION refuse_prediction_id() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.prediction_id IS NOT NULL AND OLD.prediction_id IS NULL THEN RAISE EXCEPTION 'simulated crash'; END IF; \
           RETURN NEW; END $$",
    )
    .execute(w.db())
    .await
    .unwrap();
    sqlx::query("CREATE TRIGGER refuse_prediction_id BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_prediction_id()")
        .execute(w.db())
        .await
        .unwrap();
    assert_eq!(w.deliver().await.len(), 1);
    assert_eq!(fake.predictions_made(), 1);
    assert_eq!(trace(&w, queued.job_id).await.prediction_id, None);

    sqlx::query("DROP TRIGGER refuse_prediction_id ON jobs")
        .execute(w.db())
        .await
        .unwrap();
    assert!(w.deliver().await.is_empty());
    assert_eq!(w.image_row(queued.image_id).await.status, "ready");
    assert_eq!((fake.predictions_made(), fake.creates_received()), (1, 1));
    assert_eq!(trace(&w, queued.job_id).await.prediction_id.as_deref(), Some("fake1"));
}

#[sqlx::test]
async fn a_lost_create_that_made_nothing_is_created_once_after_the_list_proves_it(db: PgPool) {
    let (w, fake) = setup(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    // A 502 that really made nothing: the client cannot tell it from the one above.
    fake.script([CreateAnswer::Refused(502, "Bad Gateway")]);
    assert_eq!(w.deliver().await.len(), 1);
    assert_eq!(fake.predictions_made(), 0);

    assert!(w.deliver().await.is_empty());
    assert_eq!(w.image_row(queued.image_id).await.status, "ready");
    assert_eq!((fake.predictions_made(), fake.creates_received()), (1, 2));
    let calls = w.replicate_calls().await;
    let list = calls.iter().position(|(m, p)| m == "GET" && p == "/v1/predictions");
    let second_create = calls
        .iter()
        .enumerate()
        .filter(|(_, (m, p))| m == "POST" && p.starts_with("/v1/models/"))
        .nth(1)
        .map(|(i, _)| i);
    assert!(
        list.is_some() && list < second_create,
        "listed before creating again: {calls:?}"
    );
}

#[sqlx::test]
async fn of_several_predictions_of_one_job_the_best_is_kept_and_the_rest_canceled(db: PgPool) {
    let (w, fake) = setup(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    // Two earlier creates both went through (an old bug, a replayed request): one finished, one
    // still runs. Both carry the job's input URL; a third belongs to another job.
    let url = |job: uuid::Uuid| {
        format!(
            "{}/bucket/inputs/{}/{job}.jpg?X-Amz-Signature=00",
            std::env::var("TEST_S3_ENDPOINT").unwrap(),
            queued.user_id
        )
    };
    let running = fake.add_prediction(json!({"image": url(queued.job_id), "prompt": "x"}), "processing");
    let done = fake.add_prediction(json!({"image": url(queued.job_id), "prompt": "x"}), "succeeded");
    let other = fake.add_prediction(json!({"image": url(uuid::Uuid::new_v4()), "prompt": "x"}), "processing");
    sqlx::query("UPDATE jobs SET create_started_at = now() - interval '10 seconds' WHERE id = $1")
        .bind(queued.job_id)
        .execute(w.db())
        .await
        .unwrap();

    assert!(w.deliver().await.is_empty());
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "ready");
    assert_eq!(image.replicate_prediction_id.as_deref(), Some(done.as_str()));
    assert_eq!(fake.creates_received(), 0, "nothing new was paid for");
    assert_eq!(
        fake.cancels(),
        vec![running.clone()],
        "the duplicate is canceled, nothing else"
    );
    let statuses = fake.statuses();
    assert!(statuses.contains(&(running, "canceled".into())));
    assert!(
        statuses.contains(&(other, "processing".into())),
        "another job's prediction is left alone"
    );
}

#[sqlx::test]
async fn when_the_list_is_too_long_to_be_sure_nothing_is_created(db: PgPool) {
    let (w, fake) = setup(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    fake.set_page_size(1);
    for _ in 0..25 {
        fake.add_prediction(json!({"prompt": "someone else's"}), "succeeded");
    }
    sqlx::query("UPDATE jobs SET create_started_at = now() - interval '10 seconds' WHERE id = $1")
        .bind(queued.job_id)
        .execute(w.db())
        .await
        .unwrap();
    assert_eq!(w.deliver().await.len(), 1, "the message comes back later");
    assert_eq!(fake.creates_received(), 0, "no create without proof that none exists");
    let job = trace(&w, queued.job_id).await;
    assert_eq!((job.status.as_str(), job.prediction_id), ("processing", None));
    assert_eq!(w.ledger(queued.image_id).await, (1, 0));
}

#[sqlx::test]
async fn a_job_failing_after_an_ambiguous_last_create_cancels_what_it_made(db: PgPool) {
    let (w, fake) = setup(db).await;
    let queued = w.queue_image(ALICE, room(), "living_room", "modern").await;
    sqlx::query("UPDATE jobs SET max_attempts = 1 WHERE id = $1")
        .bind(queued.job_id)
        .execute(w.db())
        .await
        .unwrap();
    fake.set_polls_before_done(1_000);
    fake.script([CreateAnswer::CreatedThenUnreadable]);
    assert!(w.deliver().await.is_empty(), "the last attempt settles the job");
    let image = w.image_row(queued.image_id).await;
    assert_eq!(image.status, "error");
    assert_eq!(w.ledger(queued.image_id).await, (1, 1), "refunded");
    // Never a silent orphan: what the lost create made is canceled, not left running.
    assert_eq!(fake.statuses(), vec![("fake1".to_string(), "canceled".to_string())]);
}

#[sqlx::test]
async fn the_reconciler_cancels_predictions_that_belong_to_no_live_job(db: PgPool) {
    let (w, fake) = setup(db).await;
    let finished = w.queue_image(ALICE, room(), "living_room", "modern").await;
    let live = w.queue_image("auth0|bob", room(), "bedroom", "modern").await;
    let url = |q: &QueuedImage| {
        format!(
            "http://b2.example/bucket/inputs/{}/{}.jpg?X-Amz-Signature=00",
            q.user_id, q.job_id
        )
    };
    // The finished job's lost prediction still runs; the live job's may still be adopted; a job
    // this database does not know (another environment on the same account) is not ours to judge.
    let orphan = fake.add_prediction(json!({"image": url(&finished)}), "processing");
    let adoptable = fake.add_prediction(json!({"image": url(&live)}), "processing");
    let stranger = fake.add_prediction(
        json!({"image": format!("http://b2.example/b/inputs/{}/{}.png", uuid::Uuid::new_v4(), uuid::Uuid::new_v4())}),
        "processing",
    );
    sqlx::query("UPDATE jobs SET status = 'failed', finished_at = now(), error = 'x' WHERE id = $1")
        .bind(finished.job_id)
        .execute(w.db())
        .await
        .unwrap();

    let report = crate::reconcile::reconcile(&w).await;
    assert_eq!(report.orphans_canceled, 1, "{report:?}");
    assert_eq!(fake.cancels(), vec![orphan.clone()]);
    let statuses = fake.statuses();
    assert!(statuses.contains(&(orphan, "canceled".into())));
    assert!(statuses.contains(&(adoptable, "processing".into())));
    assert!(statuses.contains(&(stranger, "processing".into())));
    // Idempotent: nothing more to cancel.
    assert_eq!(crate::reconcile::reconcile(&w).await.orphans_canceled, 0);
}

#[sqlx::test]
async fn the_model_reads_the_checked_bytes_even_if_the_upload_is_overwritten(db: PgPool) {
    let (w, fake) = setup(db).await;
    let original = room();
    let queued = w.queue_image(ALICE, original.clone(), "living_room", "modern").await;
    let upload_key: String = sqlx::query_scalar("SELECT original_key FROM images WHERE id = $1")
        .bind(queued.image_id)
        .fetch_one(w.db())
        .await
        .unwrap();
    fake.set_polls_before_done(1_000);
    let event = w.receive_event(1).await;
    assert_eq!(
        w.run_worker(event, Duration::from_secs(2)).await.len(),
        1,
        "still running"
    );

    // The user overwrites the upload with other bytes while the model runs.
    let storage = &w.staging.storage.storage;
    let other = samples::room_jpeg(300, 200);
    let presigned = storage
        .presign_upload(
            &upload_key,
            shared::clients::storage::ImageFormat::Jpeg,
            other.len() as u64,
        )
        .await
        .unwrap();
    assert_eq!(
        put_presigned(&presigned.url, &presigned.headers, other.clone()).await,
        200
    );
    assert_eq!(
        storage.get_bounded(&upload_key, 50 << 20).await.unwrap().unwrap(),
        other
    );

    // What the model was given is the job's copy of exactly what the worker checked.
    let image_url = fake.input(0)["image"].as_str().unwrap().to_string();
    assert!(
        image_url.contains(&format!("/inputs/{}/{}.jpg", queued.user_id, queued.job_id)),
        "{image_url}"
    );
    assert!(
        !image_url.contains("uploads/"),
        "never the user-writable key: {image_url}"
    );
    let fetched = shared::reqwest::get(&image_url).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), original);
}

#[sqlx::test]
async fn account_faults_keep_the_job_queued_unrefunded_and_loud_and_the_user_sees_a_generic_note(db: PgPool) {
    let (w, fake) = setup(db).await;
    for (status, detail) in [
        (
            402,
            "You have insufficient credit to run this model. Go to https://replicate.com/account/billing",
        ),
        (401, "You did not pass a valid authentication token"),
        (403, "You do not have permission to run this model"),
    ] {
        let sub = format!("auth0|user{status}");
        let queued = w.queue_image(&sub, room(), "living_room", "modern").await;
        fake.set_account_fault(Some((status, detail)));
        // However often it comes back, the job neither fails nor uses up its attempts.
        for round in 0..3 {
            if round > 0 {
                // Acknowledged, not bounced: nothing comes back until the reconciler sends it again.
                assert!(w.receive_event(1).await.records.is_empty(), "{status}");
                sqlx::query("UPDATE jobs SET enqueued_at = now() - interval '20 minutes' WHERE id = $1")
                    .bind(queued.job_id)
                    .execute(w.db())
                    .await
                    .unwrap();
                let report = crate::reconcile::reconcile(&w).await;
                assert_eq!(report.resent, 1, "{status}: {report:?}");
            }
            let event = w.receive_event(1).await;
            assert_eq!(event.records.len(), 1, "{status}");
            let (logs, guard) = capture_logs();
            assert!(
                w.run_worker(event, Duration::from_secs(30)).await.is_empty(),
                "{status}: acknowledged"
            );
            drop(guard);
            let text = logs.text();
            assert!(
                text.lines()
                    .any(|l| l.contains("ERROR") && l.contains("replicate_account")),
                "{status}: ERROR with the stable code: {text}"
            );
        }
        let job = trace(&w, queued.job_id).await;
        assert_eq!(
            (job.status.as_str(), job.attempts, job.operator_fault),
            ("queued", 0, true),
            "{status}"
        );
        assert_eq!(w.ledger(queued.image_id).await, (1, 0), "{status}: not refunded");
        let image = w.image_row(queued.image_id).await;
        assert_eq!(image.status, "queued", "{status}");
        // What the user reads through the API: a generic note, never the vendor's words.
        let response = call("GET", "/api/v1/images/{id}")
            .path_param("id", queued.image_id)
            .bearer(&w.staging.app.token(&sub))
            .send(&w.staging.storage, &w.staging.storage.api.web, get_image::handle)
            .await;
        assert_eq!(response.status, 200);
        let body = response.json();
        assert_eq!(body["status"], "queued");
        assert_eq!(body["error"], shared::staging::worker::DELAYED_NOTE);
        let shown = body.to_string().to_lowercase();
        for vendor in ["replicate", "credit", "authentication", "permission"] {
            assert!(!shown.contains(vendor), "{status}: the user sees {vendor:?}: {shown}");
        }

        // The operator fixes the account: the next send stages it, normally.
        fake.set_account_fault(None);
        sqlx::query("UPDATE jobs SET enqueued_at = now() - interval '20 minutes' WHERE id = $1")
            .bind(queued.job_id)
            .execute(w.db())
            .await
            .unwrap();
        crate::reconcile::reconcile(&w).await;
        assert!(w.deliver().await.is_empty());
        let image = w.image_row(queued.image_id).await;
        assert_eq!((image.status.as_str(), image.error), ("ready", None), "{status}");
        assert_eq!(w.ledger(queued.image_id).await, (1, 0));
    }
}

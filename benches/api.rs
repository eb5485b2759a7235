//! Benchmarks of the API's hot paths and of a real function's cold start.
//!
//!     DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --workspace --bench api
//!
//! What runs, and why it is built the way it is (docs/benchmarks.md has the numbers):
//!
//! * Everything goes through production code: the states are built by `HttpState::from_env` from
//!   the same variables the functions read, requests are real API Gateway v2 (payload 2.0) events
//!   parsed by `lambda_http`, and handlers run inside `shared::platform::http::respond`, as on Lambda.
//! * Postgres is real: a database `realstaging_bench_<random>` is created on the server of
//!   `DATABASE_URL`, migrated with `shared::db::MIGRATOR`, and dropped at the end (also after a
//!   panic). Only the identity provider is fake: wiremock serves the dev JWKS (dev/issuer/).
//! * The in-process benchmarks run on a current-thread Tokio runtime, like `run_http` does, and
//!   one request at a time, like one Lambda instance serves them. No tracing subscriber is
//!   installed, so log formatting and writing are not part of these numbers.
//! * Cold starts spawn the real function binaries against a fake Lambda Runtime API served from
//!   this process, so they include exec, init (config, pools, warm-up) and the first request.
//!
//! Timings are printed, never asserted on: they depend on the machine. Response statuses are
//! checked, because a benchmark of 401s or 500s would measure the wrong thing.
//!
//! Knobs (environment): BENCH_ITERATIONS (per in-process benchmark, default 2000; JWT verification
//! runs 5x as many), BENCH_COLD_RUNS (per function, default 10), BENCH_FUNCTION_DIR (where the
//! function binaries are; default: the directory this benchmark was built into, target/release).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use shared::lambda_http::Request;
use shared::platform::config::{Env, WebConfig};
use shared::platform::http::ApiResult;
use shared::platform::state::{ApiState, HttpState, PublicState};
use sqlx::{Connection, PgConnection};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const AUDIENCE: &str = "https://api.bench.realstaging";
const FRONTEND_URL: &str = "http://localhost:3000";
const DEV_KID: &str = "dev-key-1";
const DEV_PRIVATE_KEY: &[u8] = include_bytes!("../dev/issuer/dev-signing-key.pem");
const DEV_JWKS: &str = include_str!("../dev/issuer/.well-known/jwks.json");

/// Projects owned by the user of the listing benchmark: the API's default page size, so one page
/// holds them all and the query still has to look for a 51st row.
const LISTED_PROJECTS: usize = 50;

fn main() {
    let Some(admin_url) = std::env::var("DATABASE_URL").ok().filter(|v| !v.trim().is_empty()) else {
        eprintln!(
            "benches/api needs a Postgres server on which it may create and drop a database:\n\
             \n    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --workspace --bench api\n"
        );
        std::process::exit(2);
    };
    // The Lambda functions run on a current-thread runtime too (shared::platform::lambda::run_http).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let failed = runtime.block_on(run_in_own_database(&admin_url));
    if failed {
        std::process::exit(1);
    }
}

/// Creates the benchmark database, runs everything, and drops the database whatever happened.
/// Returns whether something failed.
async fn run_in_own_database(admin_url: &str) -> bool {
    let name = format!("realstaging_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut admin = PgConnection::connect(admin_url)
        .await
        .expect("connecting to DATABASE_URL");
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    // The name is ours (hex digits), so building the statement from it is safe.
    sqlx::query(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE (the DATABASE_URL role needs CREATEDB)");
    let db_url = with_database(admin_url, &name);

    // catch_unwind so that a failed status check still drops the database.
    let outcome = std::panic::AssertUnwindSafe(run_benchmarks(db_url, server_version))
        .catch_unwind()
        .await;

    // FORCE ends the connections still open (pools being torn down, a killed function's session).
    let drop_sql = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
    if let Err(err) = sqlx::query(sqlx::AssertSqlSafe(drop_sql.clone()))
        .execute(&mut admin)
        .await
    {
        eprintln!("could not drop the benchmark database ({err}); drop it by hand: {drop_sql}");
    }
    match outcome {
        Ok(Ok(())) => false,
        Ok(Err(message)) => {
            eprintln!("benchmark failed: {message}");
            true
        }
        Err(_) => true, // the panic message is already on stderr
    }
}

async fn run_benchmarks(db_url: String, server_version: String) -> Result<(), String> {
    let iterations = env_count("BENCH_ITERATIONS", 2000);
    let cold_runs = env_count("BENCH_COLD_RUNS", 10);
    // Taken before we add our own load: other work on the machine skews every number.
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    {
        let mut conn = PgConnection::connect(&db_url).await.map_err(|e| e.to_string())?;
        shared::db::MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| format!("migrations: {e}"))?;
        conn.close().await.ok();
    }

    // The fake Auth0 tenant: its JWKS is what a cold start fetches during warm-up.
    let issuer_server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(DEV_JWKS, "application/json"))
        .mount(&issuer_server)
        .await;
    let issuer = format!("{}/", issuer_server.uri());

    // One set of variables, read by the in-process states and passed to the function binaries.
    let function_env: HashMap<String, String> = [
        ("APP_ENV", "test"),
        ("DATABASE_URL", db_url.as_str()),
        ("FRONTEND_URL", FRONTEND_URL),
        ("AUTH0_ISSUER", issuer.as_str()),
        ("AUTH0_AUDIENCE", AUDIENCE),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    let api = ApiState::from_env(&Env(&function_env))
        .await
        .map_err(|e| e.to_string())?;
    let public = PublicState::from_env(&Env(&function_env))
        .await
        .map_err(|e| e.to_string())?;
    // As at a cold start: one database connection open and the signing keys cached.
    api.warm_up().await;
    public.warm_up().await;

    let profile_user = "auth0|bench-profile";
    let creator_user = "auth0|bench-creator";
    let lister_user = "auth0|bench-lister";
    let profile_token = sign_token(&issuer, profile_user);

    // The listing user owns exactly LISTED_PROJECTS projects, inserted one statement at a time
    // so their created_at differ, as real ones do.
    let lister = shared::db::users::ensure_by_sub(&api.db, lister_user)
        .await
        .map_err(|e| e.to_string())?;
    for i in 0..LISTED_PROJECTS {
        let name = shared::projects::ProjectName::parse(&format!("Listing {i:02}")).unwrap();
        shared::db::projects::create(&api.db, lister.id, &name)
            .await
            .map_err(|e| e.to_string())?;
    }

    let mut results = Vec::new();

    // 1. Token verification alone: RS256 signature check and claim validation with the key
    // already cached; what every authenticated request pays before touching the database.
    let (auth, token) = (&api.auth, profile_token.as_str());
    results.push(
        measure(
            "JWT verify (cached key)",
            iterations / 10,
            iterations * 5,
            || async move {
                let started = Instant::now();
                let identity = auth.verify(token).await;
                let elapsed = started.elapsed();
                assert_eq!(identity.expect("the bench token verifies").sub, profile_user);
                elapsed
            },
        )
        .await,
    );

    // 2–5. Whole requests through `respond`. The first request of a user creates its row; the
    // warm-up absorbs it, so the measured profile requests take the read-only path.
    let profile_event = api_event("GET", "/api/v1/user/profile", "", Some(&profile_token), None);
    results.push(
        bench_route(
            "GET /api/v1/user/profile",
            &api,
            &api.web,
            &profile_event,
            200,
            iterations,
            get_profile::handle,
        )
        .await,
    );

    let create_event = api_event(
        "POST",
        "/api/v1/projects",
        "",
        Some(&sign_token(&issuer, creator_user)),
        Some(&json!({ "name": "Maple Street 12" })),
    );
    results.push(
        bench_route(
            "POST /api/v1/projects",
            &api,
            &api.web,
            &create_event,
            201,
            iterations,
            create_project::handle,
        )
        .await,
    );

    let list_event = api_event(
        "GET",
        "/api/v1/projects",
        "",
        Some(&sign_token(&issuer, lister_user)),
        None,
    );
    let listed = run_once(&api, &api.web, &list_event, list_projects::handle).await;
    let count = listed["projects"].as_array().map_or(0, Vec::len);
    if count != LISTED_PROJECTS {
        return Err(format!(
            "the listing returned {count} projects, expected {LISTED_PROJECTS}: {listed}"
        ));
    }
    results.push(
        bench_route(
            &format!("GET /api/v1/projects ({LISTED_PROJECTS} rows)"),
            &api,
            &api.web,
            &list_event,
            200,
            iterations,
            list_projects::handle,
        )
        .await,
    );

    let health_event = api_event("GET", "/health", "", None, None);
    results.push(
        bench_route(
            "GET /health",
            &public,
            &public.web,
            &health_event,
            200,
            iterations,
            health::handle,
        )
        .await,
    );

    // 6. Cold starts. Blocking code (child processes, a thread-per-connection HTTP server) on
    // the blocking pool; the JWKS mock keeps serving from its own thread meanwhile.
    let cold_env = function_env.clone();
    let cold_results = tokio::task::spawn_blocking(move || {
        let mut rows = Vec::new();
        // hello-lambda (tools/) is the reference: the same runtime crates, nothing at init.
        let functions = [
            ("hello-lambda", health_event.clone()),
            ("health", health_event),
            ("get-profile", profile_event),
        ];
        for (function, event) in functions {
            match cold_start::bench(function, &event, &cold_env, cold_runs) {
                Ok(mut r) => rows.append(&mut r),
                Err(skip) => println!("\ncold start of `{function}` skipped: {skip}"),
            }
        }
        rows
    })
    .await
    .map_err(|e| format!("cold start benchmark panicked: {e}"))?;
    results.extend(cold_results);

    // Close the pools before the database is dropped.
    api.db.close().await;
    public.db.close().await;

    print_report(&results, &server_version, iterations, cold_runs, &load_before);
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Measuring and reporting
// ------------------------------------------------------------------------------------------------

struct Stats {
    name: String,
    samples: Vec<Duration>,
}

impl Stats {
    fn new(name: impl Into<String>, mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Stats {
            name: name.into(),
            samples,
        }
    }
    fn mean(&self) -> Duration {
        self.samples.iter().sum::<Duration>() / self.samples.len().max(1) as u32
    }
    /// Nearest-rank percentile: a value that was actually observed. With 10 samples p95 and p99
    /// are both the slowest run.
    fn percentile(&self, p: f64) -> Duration {
        let rank = ((p / 100.0) * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.clamp(1, self.samples.len()) - 1]
    }
}

/// Runs `op` `warmup` times untimed, then `iterations` times; `op` returns its own duration so
/// per-iteration set-up (parsing the event) stays outside the measurement.
async fn measure<F, Fut>(name: &str, warmup: usize, iterations: usize, mut op: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Duration>,
{
    for _ in 0..warmup {
        op().await;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        samples.push(op().await);
    }
    Stats::new(name, samples)
}

/// One route end to end through `respond`, as `run_http` calls it for each invocation. The event
/// is parsed into a `Request` before the clock starts (on Lambda the runtime does that part).
async fn bench_route<'a, S, F, Fut>(
    name: &str,
    state: &'a S,
    web: &WebConfig,
    event: &str,
    expected_status: u16,
    iterations: usize,
    handler: F,
) -> Stats
where
    F: Fn(&'a S, Request) -> Fut + Copy,
    Fut: Future<Output = ApiResult>,
{
    measure(name, iterations / 10, iterations, || async move {
        let request = parse_event(event);
        let started = Instant::now();
        let response = shared::platform::http::respond(state, web, request, handler).await;
        let elapsed = started.elapsed();
        if response.status().as_u16() != expected_status {
            panic!(
                "{name}: expected {expected_status}, got {}: {}",
                response.status(),
                String::from_utf8_lossy(response.body().as_ref())
            );
        }
        elapsed
    })
    .await
}

/// One request, for checking what a route answers before benchmarking it.
async fn run_once<'a, S, F, Fut>(state: &'a S, web: &WebConfig, event: &str, handler: F) -> Value
where
    F: FnOnce(&'a S, Request) -> Fut,
    Fut: Future<Output = ApiResult>,
{
    let response = shared::platform::http::respond(state, web, parse_event(event), handler).await;
    serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null)
}

fn print_report(results: &[Stats], server_version: &str, iterations: usize, cold_runs: usize, load_before: &str) {
    let profile = if cfg!(debug_assertions) {
        "debug (unoptimised!)"
    } else {
        "optimised (bench/release profile)"
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "realstaging API benchmarks, {}",
        shared::chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "build: {profile}; {cores} CPU cores; {} {}; PostgreSQL {server_version}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!(
        "in-process: {iterations} iterations per benchmark after {} warm-up ({} for JWT verify); cold start: {cold_runs} runs per function",
        iterations / 10,
        iterations * 5
    );
    let load: Vec<&str> = load_before.split_whitespace().take(3).collect();
    if !load.is_empty() {
        println!("load average (1, 5, 15 min) before the run: {}", load.join(" "));
    }
    println!();
    let width = results.iter().map(|r| r.name.len()).max().unwrap_or(10).max(9);
    println!(
        "{:<width$} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "benchmark", "n", "mean µs", "p50 µs", "p95 µs", "p99 µs", "ops/s"
    );
    println!("{}", "-".repeat(width + 6 * 12 + 1));
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    for r in results {
        println!(
            "{:<width$} {:>6} {:>11.1} {:>11.1} {:>11.1} {:>11.1} {:>11.0}",
            r.name,
            r.samples.len(),
            micros(r.mean()),
            micros(r.percentile(50.0)),
            micros(r.percentile(95.0)),
            micros(r.percentile(99.0)),
            1.0 / r.mean().as_secs_f64(),
        );
    }
    println!();
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

// ------------------------------------------------------------------------------------------------
// Tokens, events, the database URL
// ------------------------------------------------------------------------------------------------

/// An access token as Auth0 would issue it, signed by the dev key the JWKS mock publishes. Valid
/// for an hour: far longer than a run.
fn sign_token(issuer: &str, sub: &str) -> String {
    let now = shared::chrono::Utc::now().timestamp();
    let claims = json!({ "iss": issuer, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 3600 });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(DEV_KID.to_string());
    encode(&header, &claims, &EncodingKey::from_rsa_pem(DEV_PRIVATE_KEY).unwrap()).unwrap()
}

/// An API Gateway HTTP API (payload 2.0) event, as tests/api/support.rs builds them, serialised:
/// the form in which it reaches a function binary from the Runtime API.
fn api_event(method: &str, route: &str, raw_query: &str, token: Option<&str>, body: Option<&Value>) -> String {
    let mut headers = json!({
        "host": "api.realstaging.test",
        "user-agent": "benches/api",
        "origin": FRONTEND_URL,
    });
    if let Some(token) = token {
        headers["authorization"] = json!(format!("Bearer {token}"));
    }
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": route,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "benchapi",
            "domainName": "api.realstaging.test",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": route,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "benches/api"
            },
            "requestId": format!("bench-{}", uuid::Uuid::new_v4()),
            "routeKey": format!("{method} {route}"),
            "stage": "$default",
            "time": "25/Nov/2026:13:00:00 +0000",
            "timeEpoch": 1_795_000_000_000_i64
        },
        "body": body.map(Value::to_string),
        "isBase64Encoded": false
    })
    .to_string()
}

fn parse_event(event: &str) -> Request {
    shared::lambda_http::request::from_str(event).expect("a valid API Gateway v2 event")
}

/// `url` with its database name replaced; user, host and query parameters (sslmode, ...) kept.
fn with_database(url: &str, database: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let path = url[authority..].find(['/', '?']).map_or(url.len(), |i| authority + i);
    let query = url[path..].find('?').map_or(url.len(), |i| path + i);
    format!("{}/{}{}", &url[..path], database, &url[query..])
}

// ------------------------------------------------------------------------------------------------
// Cold starts
// ------------------------------------------------------------------------------------------------

mod cold_start {
    use super::*;
    use crate::fake_runtime::{FakeRuntimeApi, Invocation, Report};
    use std::io::Read;
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc::RecvTimeoutError;

    /// A run that takes longer than this is broken, not slow.
    const RUN_TIMEOUT: Duration = Duration::from_secs(30);

    /// `runs` cold starts of `function` (plus one untimed run that pages the binary into the
    /// file cache, so every timed run starts from the same place). Err = skipped, with why.
    pub fn bench(
        function: &str,
        event: &str,
        env: &HashMap<String, String>,
        runs: usize,
    ) -> Result<Vec<Stats>, String> {
        let binary = locate(function)?;
        println!("cold start of `{function}`: {}", binary.display());
        warn_if_stale(&binary, function);
        let api = FakeRuntimeApi::start().map_err(|e| format!("cannot start the fake Runtime API: {e}"))?;
        let mut init = Vec::new();
        let mut first_request = Vec::new();
        let mut total = Vec::new();
        for run in 0..=runs {
            let timing = run_once(&binary, function, event, env, &api)?;
            if run > 0 {
                init.push(timing.init);
                first_request.push(timing.first_request);
                total.push(timing.total);
            }
        }
        Ok(vec![
            Stats::new(format!("cold start {function}: init (spawn → GET /next)"), init),
            Stats::new(
                format!("cold start {function}: first request (event → POST)"),
                first_request,
            ),
            Stats::new(format!("cold start {function}: total (spawn → response POST)"), total),
        ])
    }

    struct Timing {
        init: Duration,
        first_request: Duration,
        total: Duration,
    }

    fn run_once(
        binary: &Path,
        function: &str,
        event: &str,
        env: &HashMap<String, String>,
        api: &FakeRuntimeApi,
    ) -> Result<Timing, String> {
        api.queue(Invocation {
            request_id: uuid::Uuid::new_v4().to_string(),
            function: function.to_string(),
            event: event.to_string(),
        });
        let spawned = Instant::now();
        let child = Command::new(binary)
            // Only what Lambda would set: nothing of the developer's environment leaks in.
            .env_clear()
            .envs(env)
            .envs(lambda_environment(function, &api.address()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut child = RunningFunction::new(child);

        let mut next_requested = None;
        let outcome = loop {
            match api.reports.recv_timeout(Duration::from_millis(50)) {
                Ok(Report::NextRequested(at)) => next_requested = Some(at),
                Ok(Report::Responded { at, body }) => break Ok((at, body)),
                Ok(Report::Failed { path, body }) => {
                    break Err(format!(
                        "the function reported an error on {path}: {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.0.try_wait() {
                        break Err(format!("the function exited ({status}) before answering"));
                    }
                    if spawned.elapsed() > RUN_TIMEOUT {
                        break Err(format!("no response within {RUN_TIMEOUT:?}"));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break Err("the fake Runtime API stopped".to_string()),
            }
        };
        let output = child.kill_and_collect_output();
        let (responded, body) = outcome.map_err(|e| format!("{function}: {e}\n--- function output ---\n{output}"))?;

        // The Runtime API receives the API Gateway response object; its statusCode is what the
        // client would have seen.
        let response: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if response["statusCode"] != 200 {
            return Err(format!(
                "{function} answered {response}\n--- function output ---\n{output}"
            ));
        }
        let next_requested = next_requested.ok_or("the response came before any GET /next")?;
        Ok(Timing {
            init: next_requested - spawned,
            first_request: responded - next_requested,
            total: responded - spawned,
        })
    }

    /// The variables Lambda itself sets that the Rust runtime reads (it panics without the first
    /// three), and the log settings the SAM template configures (JSON, INFO).
    fn lambda_environment(function: &str, runtime_api: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_FUNCTION_NAME", function.to_string()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_string()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_string()),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_string()),
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ]
    }

    /// The function process, killed when dropped so that no failure path leaves one behind.
    struct RunningFunction(Child);

    impl RunningFunction {
        fn new(child: Child) -> Self {
            RunningFunction(child)
        }

        /// Kills the process (it would otherwise wait on GET /next forever) and returns what it
        /// printed, for error messages.
        fn kill_and_collect_output(&mut self) -> String {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let mut output = String::new();
            if let Some(mut stdout) = self.0.stdout.take() {
                let _ = stdout.read_to_string(&mut output);
            }
            if let Some(mut stderr) = self.0.stderr.take() {
                let _ = stderr.read_to_string(&mut output);
            }
            output
        }
    }

    impl Drop for RunningFunction {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The function binary next to this benchmark's own build (`target/release/<function>` for
    /// `cargo bench`), or in BENCH_FUNCTION_DIR. Building it here would take minutes, so a missing
    /// binary is a skip with instructions.
    fn locate(function: &str) -> Result<PathBuf, String> {
        let dir = match std::env::var_os("BENCH_FUNCTION_DIR") {
            Some(dir) => PathBuf::from(dir),
            // This executable is <target>/<profile>/deps/api-<hash>.
            None => std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release")),
        };
        let binary = dir.join(function);
        if binary.is_file() {
            Ok(binary)
        } else {
            Err(format!(
                "{} does not exist. Build the function binaries first (several minutes on 2 cores the first time):\n\
                 \n    cargo build --release -p hello-lambda -p health -p get-profile\n",
                binary.display()
            ))
        }
    }

    /// A binary older than the code it is built from would silently measure old code.
    fn warn_if_stale(binary: &Path, function: &str) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let built = binary
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let sources = [
            root.join("shared/src"),
            root.join(format!("functions/{function}/src")),
            root.join("Cargo.lock"),
        ];
        if sources.iter().any(|source| newest_modification(source) > built) {
            println!(
                "\nwarning: {} is older than its sources; rebuild it (cargo build --release -p {function}) \
                 or the cold start measures old code",
                binary.display()
            );
        }
    }

    fn newest_modification(path: &Path) -> SystemTime {
        let own = path
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let children = std::fs::read_dir(path).into_iter().flatten().flatten();
        children
            .map(|entry| newest_modification(&entry.path()))
            .fold(own, SystemTime::max)
    }
}

/// Just enough of the Lambda Runtime API (HTTP/1.1, one thread per connection) to serve one
/// invocation per function process and record when the function reaches each step.
///
/// std threads rather than Tokio: the timestamps are taken the moment a request is read, not when
/// a busy runtime gets round to polling a task, and no extra Tokio features are needed.
mod fake_runtime {
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::mpsc::{self, Receiver, Sender};
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    const NEXT: &str = "/2018-06-01/runtime/invocation/next";

    pub struct Invocation {
        pub request_id: String,
        pub function: String,
        pub event: String,
    }

    pub enum Report {
        /// The function finished init and asked for its first event.
        NextRequested(Instant),
        /// The invocation response was received in full.
        Responded { at: Instant, body: Vec<u8> },
        /// POST to an init or invocation error endpoint.
        Failed { path: String, body: Vec<u8> },
    }

    pub struct FakeRuntimeApi {
        address: SocketAddr,
        pending: Arc<Mutex<Option<Invocation>>>,
        pub reports: Receiver<Report>,
    }

    impl FakeRuntimeApi {
        pub fn start() -> io::Result<Self> {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let address = listener.local_addr()?;
            let pending = Arc::new(Mutex::new(None));
            let (reports_tx, reports) = mpsc::channel();
            let shared = Arc::clone(&pending);
            // Lives until the benchmark process exits.
            thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (pending, reports_tx) = (Arc::clone(&shared), reports_tx.clone());
                    thread::spawn(move || serve(stream, &pending, &reports_tx));
                }
            });
            Ok(FakeRuntimeApi {
                address,
                pending,
                reports,
            })
        }

        /// `host:port`, the form AWS_LAMBDA_RUNTIME_API takes.
        pub fn address(&self) -> String {
            self.address.to_string()
        }

        /// Makes `invocation` the event of the next GET /next, forgetting reports of earlier runs.
        pub fn queue(&self, invocation: Invocation) {
            while self.reports.try_recv().is_ok() {}
            *self.pending.lock().unwrap() = Some(invocation);
        }
    }

    fn serve(stream: TcpStream, pending: &Mutex<Option<Invocation>>, reports: &Sender<Report>) {
        let _ = stream.set_nodelay(true);
        let Ok(read_half) = stream.try_clone() else { return };
        let mut reader = BufReader::new(read_half);
        let mut writer = stream;
        while let Ok(Some((method, path, body))) = read_request(&mut reader) {
            let at = Instant::now();
            let written = match (method.as_str(), path.as_str()) {
                ("GET", NEXT) => {
                    let Some(invocation) = pending.lock().unwrap().take() else {
                        // The real API holds this long poll until there is an event; there will be
                        // none, so hold it until the process is killed and the connection closes.
                        let _ = reader.read(&mut [0u8; 1]);
                        return;
                    };
                    let _ = reports.send(Report::NextRequested(at));
                    let deadline_ms =
                        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(10);
                    let headers = [
                        ("content-type", "application/json".to_string()),
                        ("lambda-runtime-aws-request-id", invocation.request_id.clone()),
                        ("lambda-runtime-deadline-ms", deadline_ms.as_millis().to_string()),
                        (
                            "lambda-runtime-invoked-function-arn",
                            format!("arn:aws:lambda:us-east-1:123456789012:function:{}", invocation.function),
                        ),
                    ];
                    write_response(&mut writer, "200 OK", &headers, invocation.event.as_bytes())
                }
                ("POST", p) if p.starts_with("/2018-06-01/runtime/invocation/") && p.ends_with("/response") => {
                    let _ = reports.send(Report::Responded { at, body });
                    write_response(&mut writer, "202 Accepted", &[], br#"{"status":"OK"}"#)
                }
                ("POST", _) => {
                    let _ = reports.send(Report::Failed { path, body });
                    write_response(&mut writer, "202 Accepted", &[], br#"{"status":"OK"}"#)
                }
                _ => write_response(&mut writer, "404 Not Found", &[], b""),
            };
            if written.is_err() {
                return;
            }
        }
    }

    /// One request: method, path and body (Content-Length or chunked). None at end of stream.
    fn read_request(reader: &mut impl BufRead) -> io::Result<Option<(String, String, Vec<u8>)>> {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut content_length = 0;
        let mut chunked = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
                if size == 0 {
                    // Trailers, then the blank line that ends the message.
                    loop {
                        line.clear();
                        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                reader.read_exact(&mut body[start..])?;
                line.clear();
                reader.read_line(&mut line)?; // the CRLF after the chunk
            }
        } else {
            body.resize(content_length, 0);
            reader.read_exact(&mut body)?;
        }
        Ok(Some((method, path, body)))
    }

    fn write_response(
        writer: &mut impl Write,
        status: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        writer.write_all(body)?;
        writer.flush()
    }
}

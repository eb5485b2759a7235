use shared::lambda_runtime::{self, LambdaEvent, service_fn};
use shared::platform::config::{Env, ProcessEnv};
use shared::serde_json::Value;

fn main() -> Result<(), lambda_runtime::Error> {
    shared::platform::lambda::init_logging();
    let runtime = shared::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let state = migrate::MigrateState::from_env(&Env(&ProcessEnv))
            .inspect_err(|err| shared::tracing::error!(error = %err, "function init failed"))?;
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
            // Run as a program (local scripts, CI): migrate once, print the report, exit.
            let report = shared::db::migrate::migrate_and_sync(&state.db, &state.plans).await?;
            println!("{}", shared::serde_json::to_string(&report)?);
            return Ok(());
        }
        let state = &state;
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
            migrate::handle(state, event.payload).await
        }))
        .await
    })
}

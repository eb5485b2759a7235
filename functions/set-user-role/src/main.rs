use shared::lambda_runtime::{self, LambdaEvent, service_fn};
use shared::platform::config::{Env, ProcessEnv};
use shared::serde_json::Value;

fn main() -> Result<(), lambda_runtime::Error> {
    shared::platform::lambda::init_logging();
    let runtime = shared::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let state = set_user_role::RoleState::from_env(&Env(&ProcessEnv))
            .inspect_err(|err| shared::tracing::error!(error = %err, "function init failed"))?;
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
            // Run as a program (scripts/set-user-role): one change, the report on stdout.
            let args: Vec<String> = std::env::args().skip(1).collect();
            match set_user_role::run_cli(&state, &args).await {
                Ok(report) => {
                    println!("{}", shared::serde_json::to_string(&report)?);
                    if let Some(hint) = set_user_role::dry_run_hint(&args, &report) {
                        eprintln!("{hint}");
                    }
                    return Ok(());
                }
                Err(err) => {
                    eprintln!("set-user-role: {err}");
                    std::process::exit(1);
                }
            }
        }
        let state = &state;
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
            set_user_role::handle(state, event).await
        }))
        .await
    })
}

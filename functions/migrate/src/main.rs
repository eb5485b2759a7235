fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_events_or_program(
        |env| async move { migrate::MigrateState::from_env(&env) },
        |state, event: shared::lambda_runtime::LambdaEvent<shared::serde_json::Value>| async move {
            migrate::handle(&state, event.payload).await
        },
        |state, _args| async move { migrate::run_program(&state).await },
    )
}

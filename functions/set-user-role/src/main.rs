fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_events_or_program(
        |env| async move { set_user_role::RoleState::from_env(&env) },
        |state, event| async move { set_user_role::handle(&state, event).await },
        |state, args| async move { set_user_role::run_program(&state, &args).await },
    )
}

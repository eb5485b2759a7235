fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_events(
        |env| async move { shared::platform::uptime::UptimeCheck::from_env(&env) },
        uptime_check::handle,
    )
}

fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_events(
        |env| async move { shared::staging::worker::Worker::from_env(&env).await },
        reconcile::handle,
    )
}

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_events(
        |env| async move { shared::worker::Worker::from_env(&env).await },
        stage_worker::handle,
    )
}

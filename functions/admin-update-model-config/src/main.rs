fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_http::<shared::platform::state::AdminSecretsState, _, _>(
        admin_update_model_config::handle,
    )
}

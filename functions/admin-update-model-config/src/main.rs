fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::AdminSecretsState, _, _>(admin_update_model_config::handle)
}

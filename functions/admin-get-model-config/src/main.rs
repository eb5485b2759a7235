fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::ApiState, _, _>(admin_get_model_config::handle)
}

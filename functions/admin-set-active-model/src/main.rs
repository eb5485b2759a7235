fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::ApiState, _, _>(admin_set_active_model::handle)
}

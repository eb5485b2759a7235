fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::ApiState, _, _>(admin_list_models::handle)
}

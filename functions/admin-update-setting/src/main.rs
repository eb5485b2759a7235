fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::ApiState, _, _>(admin_update_setting::handle)
}

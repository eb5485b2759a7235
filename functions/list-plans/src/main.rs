fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::PublicState, _, _>(list_plans::handle)
}

fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_http::<shared::platform::state::PublicState, _, _>(health::handle)
}

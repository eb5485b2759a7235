fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_http::<shared::platform::state::SharingState, _, _>(share_project::handle)
}

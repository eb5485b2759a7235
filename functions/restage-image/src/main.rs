fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_http::<shared::platform::state::StagingState, _, _>(restage_image::handle)
}

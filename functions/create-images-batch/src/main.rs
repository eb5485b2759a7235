fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::StagingState, _, _>(create_images_batch::handle)
}

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::StorageState, _, _>(list_project_images_grouped::handle)
}

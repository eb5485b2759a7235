fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_http::<shared::platform::state::StorageState, _, _>(list_project_images::handle)
}

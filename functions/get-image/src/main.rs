fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::StorageState, _, _>(get_image::handle)
}

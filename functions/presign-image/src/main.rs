fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::StorageState, _, _>(presign_image::handle)
}

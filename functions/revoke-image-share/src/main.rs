fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_http::<shared::platform::state::SharingState, _, _>(revoke_image_share::handle)
}

fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_http::<shared::platform::state::SharePageState, _, _>(share_page::handle)
}

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::BillingState, _, _>(create_checkout::handle)
}

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::BillingState, _, _>(cancel_subscription::handle)
}

fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_http::<shared::platform::state::BillingState, _, _>(cancel_subscription::handle)
}

fn main() -> Result<(), shared::platform::lambda::Error> {
    shared::platform::lambda::run_http::<shared::platform::state::WebhookState, _, _>(stripe_webhook::handle)
}

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http::<shared::state::WebhookState, _, _>(stripe_webhook::handle)
}

//! The Stripe API client (being written: helper F).

use super::StripeConfig;

/// The Stripe API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Stripe {
    pub(crate) config: StripeConfig,
    pub(crate) http: reqwest::Client,
}

impl Stripe {
    pub fn new(config: StripeConfig, http: reqwest::Client) -> Self {
        Stripe { config, http }
    }
}

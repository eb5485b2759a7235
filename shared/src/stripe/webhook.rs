//! The Stripe webhook (being written: helper G).

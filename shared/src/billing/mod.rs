//! Paying for staging: the plans (from configuration), usage and the monthly allowance reserved
//! atomically, the billing routes' shared rules, and Stripe (its API client and the verified
//! webhook). docs/billing.md.

pub mod checkout;
pub mod plans;
pub mod routes;
pub mod stripe;
pub mod usage;

//! Plans and their configuration. Prices live in Stripe; the plan table is synced from these
//! settings by the migrate function on every deploy.

use crate::platform::config::{AppEnv, ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDefinition {
    pub code: &'static str,
    pub name: &'static str,
    pub price_id: Option<String>,
    pub monthly_limit: u32,
}

#[derive(Debug, Clone)]
pub struct PlansConfig {
    pub plans: Vec<PlanDefinition>,
}

impl PlansConfig {
    /// `STRIPE_PRICE_{FREE,PRO,BUSINESS}` and `PLAN_{FREE,PRO,BUSINESS}_MONTHLY_LIMIT` (10/100/500).
    /// Paid prices are required in deployed environments; the free plan never needs one.
    pub fn from_env(env: &Env, app_env: AppEnv) -> Result<Self, ConfigError> {
        let table: [(&'static str, &'static str, &'static str, &'static str, u32, bool); 3] = [
            (
                "free",
                "Free",
                "STRIPE_PRICE_FREE",
                "PLAN_FREE_MONTHLY_LIMIT",
                10,
                false,
            ),
            ("pro", "Pro", "STRIPE_PRICE_PRO", "PLAN_PRO_MONTHLY_LIMIT", 100, true),
            (
                "business",
                "Business",
                "STRIPE_PRICE_BUSINESS",
                "PLAN_BUSINESS_MONTHLY_LIMIT",
                500,
                true,
            ),
        ];
        let mut plans = Vec::with_capacity(table.len());
        for (code, name, price_var, limit_var, default_limit, paid) in table {
            let price_id = if paid && app_env.is_deployed() {
                Some(env.required(price_var)?)
            } else {
                env.optional(price_var)
            };
            if let Some(price) = &price_id {
                let well_formed = price.starts_with("price_")
                    && price.len() <= 255
                    && price.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !well_formed {
                    return Err(ConfigError::invalid(price_var, "must be a Stripe price id (price_...)"));
                }
                if plans
                    .iter()
                    .any(|p: &PlanDefinition| p.price_id.as_ref() == Some(price))
                {
                    return Err(ConfigError::invalid(price_var, "is the same price as another plan"));
                }
            }
            let monthly_limit: u32 = env.parsed(limit_var, default_limit)?;
            if monthly_limit > 1_000_000 {
                return Err(ConfigError::invalid(limit_var, "must be at most 1000000"));
            }
            plans.push(PlanDefinition {
                code,
                name,
                price_id,
                monthly_limit,
            });
        }
        Ok(PlansConfig { plans })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_requirements() {
        let vars: HashMap<&str, &str> = HashMap::new();
        let plans = PlansConfig::from_env(&Env(&vars), AppEnv::Development).unwrap().plans;
        assert_eq!(
            plans.iter().map(|p| p.monthly_limit).collect::<Vec<_>>(),
            vec![10, 100, 500]
        );
        assert!(plans.iter().all(|p| p.price_id.is_none()));
        let err = PlansConfig::from_env(&Env(&vars), AppEnv::Production).unwrap_err();
        assert_eq!(err.variable(), "STRIPE_PRICE_PRO");
    }

    #[test]
    fn bad_and_duplicate_prices_are_named() {
        let vars: HashMap<&str, &str> = [("STRIPE_PRICE_PRO", "prod_123")].into();
        assert_eq!(
            PlansConfig::from_env(&Env(&vars), AppEnv::Test).unwrap_err().variable(),
            "STRIPE_PRICE_PRO"
        );
        let vars: HashMap<&str, &str> = [("STRIPE_PRICE_PRO", "price_1"), ("STRIPE_PRICE_BUSINESS", "price_1")].into();
        assert_eq!(
            PlansConfig::from_env(&Env(&vars), AppEnv::Test).unwrap_err().variable(),
            "STRIPE_PRICE_BUSINESS"
        );
        let vars: HashMap<&str, &str> = [("PLAN_PRO_MONTHLY_LIMIT", "-3")].into();
        assert_eq!(
            PlansConfig::from_env(&Env(&vars), AppEnv::Test).unwrap_err().variable(),
            "PLAN_PRO_MONTHLY_LIMIT"
        );
    }
}

-- Webhook ordering for invoices, as subscriptions already have it: `created` of the newest Stripe
-- event applied to the row; an older event never overwrites newer state (docs/billing.md).
ALTER TABLE invoices ADD COLUMN stripe_event_created timestamptz;

-- Subscription state that only moves forward, and the webhook's cancellation of a second
-- subscription (docs/billing.md "Ordering" and "One subscription per user").

-- Where a status stands in a subscription's lifecycle. An event tied (same `created` second) with
-- the stored one applies only if it does not move the subscription backwards: Stripe does not
-- order deliveries, and `created` has one-second resolution, so a tie says nothing about which
-- change came last, while the lifecycle does (incomplete -> trialing/active -> past_due/paused
-- -> unpaid -> canceled). `incomplete` is where every subscription starts and is never re-entered.
CREATE FUNCTION subscription_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE status
        WHEN 'incomplete' THEN 0
        WHEN 'trialing' THEN 1
        WHEN 'active' THEN 1
        WHEN 'past_due' THEN 2
        WHEN 'paused' THEN 2
        WHEN 'unpaid' THEN 3
        WHEN 'canceled' THEN 4
        WHEN 'incomplete_expired' THEN 4
    END
$$;

-- When the subscription first became current (active or trialing), as the `created` of the event
-- that said so. Of two current subscriptions of one user, the one current first is kept.
ALTER TABLE subscriptions ADD COLUMN current_since timestamptz;
UPDATE subscriptions SET current_since = COALESCE(stripe_event_created, created_at)
    WHERE status IN ('active', 'trialing');

-- The webhook's cancellation of a duplicate subscription is written to the audit trail.
ALTER TABLE admin_audit_log DROP CONSTRAINT admin_audit_log_action_check;
ALTER TABLE admin_audit_log ADD CONSTRAINT admin_audit_log_action_check CHECK (action IN (
    'model.activate', 'model.config.update', 'setting.update', 'user.role.update',
    'billing.subscription.cancel_duplicate'));

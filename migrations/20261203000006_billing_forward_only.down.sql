-- Entries of the new action stay (the log is append-only), so the old check is not validated
-- against them.
ALTER TABLE admin_audit_log DROP CONSTRAINT admin_audit_log_action_check;
ALTER TABLE admin_audit_log ADD CONSTRAINT admin_audit_log_action_check CHECK (action IN (
    'model.activate', 'model.config.update', 'setting.update', 'user.role.update')) NOT VALID;
ALTER TABLE subscriptions DROP COLUMN IF EXISTS current_since;
DROP FUNCTION IF EXISTS subscription_status_rank(text);

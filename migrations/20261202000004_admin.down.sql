DELETE FROM settings WHERE key = 'staging_enabled';
DROP TABLE IF EXISTS admin_audit_log;
DROP FUNCTION IF EXISTS admin_audit_log_append_only();

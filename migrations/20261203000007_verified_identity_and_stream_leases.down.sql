DROP TABLE IF EXISTS event_stream_leases;
DROP INDEX IF EXISTS users_verified_email_idx;
ALTER TABLE users DROP COLUMN IF EXISTS verified_email;

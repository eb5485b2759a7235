DELETE FROM settings WHERE key = 'active_model' OR key LIKE 'model\_config.%';
DROP INDEX IF EXISTS jobs_open_created_idx;
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_no_lease_when_terminal;
ALTER TABLE jobs DROP COLUMN IF EXISTS lease_until;

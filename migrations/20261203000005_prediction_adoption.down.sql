ALTER TABLE jobs DROP COLUMN IF EXISTS operator_fault_at;
ALTER TABLE jobs DROP COLUMN IF EXISTS create_started_at;

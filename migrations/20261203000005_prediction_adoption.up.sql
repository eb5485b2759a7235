-- At most one paid prediction per job (docs/worker.md, "One paid prediction per job").
--
-- `create_started_at`: set just before the worker sends a create to Replicate and kept until the
-- prediction id is recorded. A job that has it but no `prediction_id` may own a prediction whose
-- answer was lost (5xx, dropped connection, unreadable body, crash before the id was stored): the
-- next attempt looks for it in Replicate's list before it may create again.
ALTER TABLE jobs ADD COLUMN create_started_at timestamptz;

-- When an operator fault (Replicate account out of credit, token rotated, model access lost) last
-- held the job back; NULL when none. The worker keeps such jobs queued without counting the
-- attempt and shows the user a generic "delayed" note; such a job may wait up to 24 hours from its
-- creation for the operator's fix instead of the usual 1 hour (shared/src/db/jobs.rs).
ALTER TABLE jobs ADD COLUMN operator_fault_at timestamptz;

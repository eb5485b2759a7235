-- The staging worker (issue 4): job leases and the operator settings the worker reads per job.

-- A worker holds a job while `lease_until` is in the future; no other delivery of its message and
-- no reconciler touches it meanwhile. The lease is sized from the Lambda's remaining time, so a
-- worker that dies mid-job releases the job on its own when the lease runs out.
ALTER TABLE jobs ADD COLUMN lease_until timestamptz;
ALTER TABLE jobs ADD CONSTRAINT jobs_no_lease_when_terminal CHECK (status IN ('queued', 'processing') OR lease_until IS NULL);
-- Not-finished jobs by age: the reconciler's "re-send what went missing" and "expire" passes.
CREATE INDEX jobs_open_created_idx ON jobs (created_at) WHERE status IN ('queued', 'processing');

-- Operator settings read by the worker for every job (the admin routes that change them come
-- later). `active_model` holds a model id of the registry (shared/src/models.rs); each
-- `model_config.<slug>` row holds that model's configuration in `model_settings`, checked against
-- the registry's schema whenever it is read. Secret values never live in these rows.
INSERT INTO settings (key, value, description) VALUES
    ('active_model', 'qwen/qwen-image-edit', 'The model new staging jobs use (a registry model id).')
ON CONFLICT (key) DO NOTHING;

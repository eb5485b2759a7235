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

-- Each model's configuration, seeded with the registry's defaults (tests/api/schema.rs keeps the
-- two equal). The OpenAI key gpt-image-1 needs is a secret and is not here: until an operator
-- stores one, that model cannot run (and a later issue refuses to activate it without one).
INSERT INTO settings (key, value, model_settings, description) VALUES
    ('model_config.qwen-image-edit', 'qwen/qwen-image-edit',
     '{"aspect_ratio": "match_input_image", "go_fast": true, "output_format": "jpg", "output_quality": 90, "seed": null}',
     'Qwen Image Edit configuration.'),
    ('model_config.flux-kontext-pro', 'black-forest-labs/flux-kontext-pro',
     '{"aspect_ratio": "match_input_image", "output_format": "jpg", "prompt_upsampling": false, "safety_tolerance": 2, "seed": null}',
     'FLUX.1 Kontext [pro] configuration.'),
    ('model_config.flux-kontext-max', 'black-forest-labs/flux-kontext-max',
     '{"aspect_ratio": "match_input_image", "output_format": "jpg", "prompt_upsampling": false, "safety_tolerance": 2, "seed": null}',
     'FLUX.1 Kontext [max] configuration.'),
    ('model_config.seedream-4', 'bytedance/seedream-4',
     '{"aspect_ratio": "match_input_image", "enhance_prompt": false, "size": "2K"}',
     'Seedream 4 configuration.'),
    ('model_config.gpt-image-1', 'openai/gpt-image-1',
     '{"aspect_ratio": "3:2", "background": "opaque", "input_fidelity": "high", "moderation": "auto", "output_compression": 90, "output_format": "jpeg", "quality": "auto"}',
     'GPT Image 1 configuration (the OpenAI key is stored separately, as a secret).')
ON CONFLICT (key) DO NOTHING;

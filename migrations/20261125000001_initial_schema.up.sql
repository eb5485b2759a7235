-- The whole data model of Real Staging AI.
--
-- Conventions: UUID keys (gen_random_uuid, built into PostgreSQL 13+); timestamps are timestamptz
-- in UTC; enumerations are TEXT with CHECK constraints (easy to extend, readable in psql);
-- object storage keys are stored, never URLs; nothing per-environment (Stripe price ids) lives in
-- a migration: the migrate function syncs plans from configuration on every deploy.

-- updated_at is maintained by the database so no code path can forget it.
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- users: one row per Auth0 subject, created race-free on the first authenticated call.
CREATE TABLE users (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    auth0_sub          text        NOT NULL CONSTRAINT users_auth0_sub_key UNIQUE
                                   CHECK (char_length(auth0_sub) BETWEEN 1 AND 255),
    role               text        NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    email              text        CHECK (char_length(email) <= 254),
    full_name          text        CHECK (char_length(full_name) <= 100),
    company_name       text        CHECK (char_length(company_name) <= 100),
    phone              text        CHECK (char_length(phone) <= 20),
    billing_address    jsonb       CHECK (billing_address IS NULL OR jsonb_typeof(billing_address) = 'object'),
    profile_photo_url  text        CHECK (char_length(profile_photo_url) <= 2048),
    preferences        jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(preferences) = 'object'),
    -- One Stripe customer per user and one user per Stripe customer.
    stripe_customer_id text        CONSTRAINT users_stripe_customer_id_key UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------------------------
-- projects: a listing or folder of photos. Deletion is soft so that nothing a project held
-- (images, their storage objects awaiting purge, usage history) disappears behind our back.
CREATE TABLE projects (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100 AND name = btrim(name)),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    -- Lets images reference (project, owner) so an image can never belong to a project of
    -- another user.
    CONSTRAINT projects_id_user_id_key UNIQUE (id, user_id)
);
CREATE TRIGGER projects_set_updated_at BEFORE UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- Own projects, newest first, with keyset pagination on (created_at, id).
CREATE INDEX projects_user_live_newest_idx ON projects (user_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- ---------------------------------------------------------------------------------------------
-- images: one staging request (an original photo + room type + style) and its result.
CREATE TABLE images (
    id                      uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id              uuid          NOT NULL,
    user_id                 uuid          NOT NULL,
    original_key            text          NOT NULL CHECK (char_length(original_key) BETWEEN 1 AND 1024),
    original_content_type   text          CHECK (original_content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    original_size_bytes     bigint        CHECK (original_size_bytes > 0),
    staged_key              text          CHECK (char_length(staged_key) BETWEEN 1 AND 1024),
    staged_content_type     text,
    room_type               text          NOT NULL CHECK (room_type IN ('living_room', 'bedroom', 'kitchen', 'bathroom', 'dining_room', 'office', 'entryway', 'outdoor')),
    style                   text          NOT NULL CHECK (style IN ('modern', 'contemporary', 'traditional', 'industrial', 'scandinavian')),
    seed                    bigint        CHECK (seed BETWEEN 1 AND 4294967295),
    prompt                  text          CHECK (char_length(prompt) BETWEEN 10 AND 2000),
    status                  text          NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'processing', 'ready', 'error')),
    error                   text,
    -- Model ids contain '/', e.g. qwen/qwen-image-edit.
    model_used              text          CHECK (model_used ~ '^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$'),
    replicate_prediction_id text,
    cost_usd                numeric(10,4) CHECK (cost_usd >= 0),
    processing_time_ms      integer       CHECK (processing_time_ms >= 0),
    created_at              timestamptz   NOT NULL DEFAULT now(),
    updated_at              timestamptz   NOT NULL DEFAULT now(),
    deleted_at              timestamptz,
    -- Set once the image's storage objects are gone (after a delete).
    purged_at               timestamptz,
    CONSTRAINT images_project_owner_fkey FOREIGN KEY (project_id, user_id)
        REFERENCES projects (id, user_id) ON DELETE CASCADE,
    CONSTRAINT images_ready_has_result CHECK (status <> 'ready' OR staged_key IS NOT NULL),
    CONSTRAINT images_purge_after_delete CHECK (purged_at IS NULL OR deleted_at IS NOT NULL)
);
CREATE TRIGGER images_set_updated_at BEFORE UPDATE ON images FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- A project's images newest first; grouping by original photo; the owner's images.
CREATE INDEX images_project_live_newest_idx ON images (project_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX images_project_original_idx ON images (project_id, original_key) WHERE deleted_at IS NULL;
CREATE INDEX images_user_newest_idx ON images (user_id, created_at DESC);
-- The reconciler: unfinished images by age, deleted images whose objects still need purging.
CREATE INDEX images_unfinished_idx ON images (updated_at) WHERE status IN ('queued', 'processing') AND deleted_at IS NULL;
CREATE INDEX images_purge_pending_idx ON images (deleted_at) WHERE deleted_at IS NOT NULL AND purged_at IS NULL;
CREATE UNIQUE INDEX images_prediction_key ON images (replicate_prediction_id) WHERE replicate_prediction_id IS NOT NULL;

-- ---------------------------------------------------------------------------------------------
-- jobs: the work item behind an image; the source of truth for the worker's state machine.
CREATE TABLE jobs (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    image_id       uuid        NOT NULL CONSTRAINT jobs_image_id_key UNIQUE REFERENCES images (id) ON DELETE CASCADE,
    type           text        NOT NULL DEFAULT 'stage:run' CHECK (type IN ('stage:run')),
    payload_json   jsonb       NOT NULL CHECK (jsonb_typeof(payload_json) = 'object'),
    status         text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
    attempts       integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts   integer     NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    -- Replicate's prediction id, stored the moment it exists so a retry resumes instead of paying twice.
    prediction_id  text        CONSTRAINT jobs_prediction_id_key UNIQUE,
    model_id       text,
    -- NULL until SQS accepted the message; the reconciler re-sends jobs left unsent.
    enqueued_at    timestamptz,
    deadline_at    timestamptz,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    CONSTRAINT jobs_finished_when_terminal CHECK ((status IN ('completed', 'failed')) = (finished_at IS NOT NULL))
);
CREATE TRIGGER jobs_set_updated_at BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX jobs_unsent_idx ON jobs (created_at) WHERE enqueued_at IS NULL AND status = 'queued';
CREATE INDEX jobs_open_deadline_idx ON jobs (deadline_at) WHERE status IN ('queued', 'processing');

-- ---------------------------------------------------------------------------------------------
-- plans: synced from configuration by the migrate function (never seeded with price ids here).
CREATE TABLE plans (
    code          text        PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{0,31}$'),
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- NULL when the plan has no Stripe price (e.g. free without a $0 price configured).
    -- Deferrable so one sync can swap prices between plans.
    price_id      text        CONSTRAINT plans_price_id_key UNIQUE DEFERRABLE INITIALLY DEFERRED,
    monthly_limit integer     NOT NULL CHECK (monthly_limit >= 0),
    sort_order    integer     NOT NULL DEFAULT 0,
    active        boolean     NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER plans_set_updated_at BEFORE UPDATE ON plans FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------------------------
-- subscriptions: mirror of Stripe subscriptions, written by the webhook.
CREATE TABLE subscriptions (
    id                     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stripe_subscription_id text        NOT NULL CONSTRAINT subscriptions_stripe_subscription_id_key UNIQUE,
    stripe_customer_id     text,
    status                 text        NOT NULL CHECK (status IN ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused')),
    price_id               text,
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean     NOT NULL DEFAULT false,
    cancel_at              timestamptz,
    canceled_at            timestamptz,
    -- `created` of the newest Stripe event applied; older events never overwrite newer state.
    stripe_event_created   timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subscriptions_period_order CHECK (current_period_end IS NULL OR current_period_start IS NULL OR current_period_end >= current_period_start)
);
CREATE TRIGGER subscriptions_set_updated_at BEFORE UPDATE ON subscriptions FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- The current subscription of a user (the quota check runs this on every image creation).
CREATE INDEX subscriptions_user_status_idx ON subscriptions (user_id, status, created_at DESC);

-- ---------------------------------------------------------------------------------------------
-- invoices: mirror of Stripe invoices, written by the webhook.
CREATE TABLE invoices (
    id                     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stripe_invoice_id      text        NOT NULL CONSTRAINT invoices_stripe_invoice_id_key UNIQUE,
    stripe_subscription_id text,
    status                 text        NOT NULL,
    amount_due             bigint      NOT NULL DEFAULT 0 CHECK (amount_due >= 0),
    amount_paid            bigint      NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    currency               text        CHECK (currency ~ '^[a-z]{3}$'),
    invoice_number         text,
    hosted_invoice_url     text,
    period_start           timestamptz,
    period_end             timestamptz,
    stripe_created_at      timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER invoices_set_updated_at BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX invoices_user_newest_idx ON invoices (user_id, created_at DESC);
CREATE INDEX invoices_subscription_idx ON invoices (stripe_subscription_id);

-- ---------------------------------------------------------------------------------------------
-- processed_events: webhook idempotency. The row is inserted in the same transaction as the
-- event's effect, so "processed" always means "applied".
CREATE TABLE processed_events (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    source      text        NOT NULL CHECK (source IN ('stripe', 'replicate')),
    event_id    text        NOT NULL CHECK (char_length(event_id) BETWEEN 1 AND 255),
    type        text,
    payload     jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT processed_events_source_event_id_key UNIQUE (source, event_id)
);
CREATE INDEX processed_events_received_idx ON processed_events (received_at DESC);

-- ---------------------------------------------------------------------------------------------
-- settings: operator settings (active model, per-model config). Secret values are write-only
-- through the API.
CREATE TABLE settings (
    key            text        PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_.-]{0,127}$'),
    value          text        NOT NULL,
    model_settings jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(model_settings) = 'object'),
    is_secret      boolean     NOT NULL DEFAULT false,
    description    text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     uuid        REFERENCES users (id) ON DELETE SET NULL
);
CREATE TRIGGER settings_set_updated_at BEFORE UPDATE ON settings FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------------------------
-- usage_ledger: append-only record of allowance use. Usage for a period is the sum of `units`
-- over entries whose `period_at` falls in it: +1 when an image is reserved, -1 when a permanent
-- failure gives it back (the refund carries the reservation's period_at). Deliberately no
-- foreign keys to images or projects: deleting either never lowers usage.
CREATE TABLE usage_ledger (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    image_id   uuid,
    kind       text        NOT NULL CHECK (kind IN ('reserve', 'refund')),
    units      integer     NOT NULL CHECK ((kind = 'reserve' AND units > 0) OR (kind = 'refund' AND units < 0)),
    period_at  timestamptz NOT NULL,
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- At most one reservation and one refund per image: a retried job cannot charge or refund twice.
CREATE UNIQUE INDEX usage_ledger_image_kind_key ON usage_ledger (image_id, kind) WHERE image_id IS NOT NULL;
-- Period usage: SUM(units) WHERE user_id = $1 AND period_at >= $2 AND period_at < $3.
CREATE INDEX usage_ledger_user_period_idx ON usage_ledger (user_id, period_at) INCLUDE (units);

-- Append-only: no UPDATE ever; DELETE only through the cascade of erasing a user (GDPR), which
-- runs inside the foreign-key trigger (trigger depth > 1).
CREATE FUNCTION usage_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' OR pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'usage_ledger is append-only (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER usage_ledger_append_only BEFORE UPDATE OR DELETE ON usage_ledger
    FOR EACH ROW EXECUTE FUNCTION usage_ledger_append_only();

-- Operators' controls (issue 6, docs/admin.md): the audit trail of admin changes and the
-- `staging_enabled` switch.

-- Who changed what. Written in the same transaction as the change; secret values never reach it
-- (secret fields appear as {"set": true|false}).
CREATE TABLE admin_audit_log (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    action        text        NOT NULL CHECK (action IN ('model.activate', 'model.config.update', 'setting.update', 'user.role.update')),
    target        text        NOT NULL CHECK (char_length(target) BETWEEN 1 AND 255),
    -- The admin's user id (kept as NULL if the user is erased) and a label that survives erasure:
    -- the admin's Auth0 sub, or `operator:<tool>` for changes made outside the API.
    actor_user_id uuid        REFERENCES users (id) ON DELETE SET NULL,
    actor         text        NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 255),
    before        jsonb,
    after         jsonb,
    request_id    text        CHECK (char_length(request_id) <= 255),
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Newest first, keyset-paginated on (created_at, id).
CREATE INDEX admin_audit_log_created_idx ON admin_audit_log (created_at DESC, id DESC);

-- Append-only: no UPDATE or DELETE, except what erasing a user does through its foreign key
-- (ON DELETE SET NULL runs inside the referential trigger, at trigger depth > 1).
CREATE FUNCTION admin_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'admin_audit_log is append-only (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
CREATE TRIGGER admin_audit_log_append_only BEFORE UPDATE OR DELETE ON admin_audit_log
    FOR EACH ROW EXECUTE FUNCTION admin_audit_log_append_only();

-- The operator's kill switch for new staging requests (shared/src/admin/settings.rs).
INSERT INTO settings (key, value, description) VALUES
    ('staging_enabled', 'true', 'Whether new staging requests are accepted (false pauses POST /images and /images/batch).')
ON CONFLICT (key) DO NOTHING;

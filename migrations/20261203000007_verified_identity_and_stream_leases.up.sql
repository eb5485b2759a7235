-- Issue 11, the API edge: roles from verified identity only, and a per-user cap on event streams.

-- The e-mail address the identity provider vouched for: written only from a verified token's
-- claims (`email` with `email_verified: true`) when the user signs in, cleared when a token says
-- the address is no longer verified, and never from the profile (users.email is whatever the user
-- typed). Granting a role by e-mail matches this column and nothing else (docs/admin.md).
ALTER TABLE users ADD COLUMN verified_email text CHECK (char_length(verified_email) BETWEEN 3 AND 254);
CREATE INDEX users_verified_email_idx ON users (lower(verified_email)) WHERE verified_email IS NOT NULL;

-- One row per /api/v1/events request in progress (docs/events.md): each holds a Lambda instance
-- for up to the long-poll wait, so a user may hold only a few at once. A row is deleted when its
-- request ends and expires on its own (an instance that died mid-wait never frees it).
CREATE TABLE event_stream_leases (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_stream_leases_user_idx ON event_stream_leases (user_id, expires_at);

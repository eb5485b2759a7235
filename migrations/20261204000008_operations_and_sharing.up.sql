-- Listing-ready photos (issue 14): what a job does to the photo, and public disclosure links.

-- images.operation: stage (what every existing image is), declutter, declutter_and_stage, twilight.
-- A style only where the operation furnishes the room; twilight only for exterior photos.
ALTER TABLE images
    ADD COLUMN operation text NOT NULL DEFAULT 'stage'
        CHECK (operation IN ('stage', 'declutter', 'declutter_and_stage', 'twilight'));
ALTER TABLE images ALTER COLUMN style DROP NOT NULL;
ALTER TABLE images
    ADD CONSTRAINT images_style_fits_operation
        CHECK ((operation IN ('stage', 'declutter_and_stage')) = (style IS NOT NULL)),
    ADD CONSTRAINT images_twilight_is_exterior
        CHECK (operation <> 'twilight' OR room_type = 'outdoor');

-- share_links: a public page (GET /s/{token}) showing a shared image, or a whole project, beside
-- its original (California AB 723 disclosure, docs/disclosure.md). The token is the only key to
-- the page: 128 random bits, URL-safe base64. A revoked link keeps its row so the page can answer
-- 410 Gone instead of 404; sharing again makes a new token.
CREATE TABLE share_links (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    token         text        NOT NULL UNIQUE CHECK (token ~ '^[A-Za-z0-9_-]{22,64}$'),
    user_id       uuid        NOT NULL,
    project_id    uuid        NOT NULL,
    -- NULL: the whole project is shared.
    image_id      uuid        REFERENCES images (id) ON DELETE CASCADE,
    -- The staged photo with its burned-in disclosure label, for an image link (server-chosen key).
    disclosed_key text        CHECK (char_length(disclosed_key) BETWEEN 1 AND 1024),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CONSTRAINT share_links_project_owner_fkey FOREIGN KEY (project_id, user_id)
        REFERENCES projects (id, user_id) ON DELETE CASCADE,
    CONSTRAINT share_links_disclosed_only_for_images CHECK (disclosed_key IS NULL OR image_id IS NOT NULL)
);
-- At most one live link per image and per project: sharing is idempotent.
CREATE UNIQUE INDEX share_links_live_image_key ON share_links (image_id)
    WHERE revoked_at IS NULL AND image_id IS NOT NULL;
CREATE UNIQUE INDEX share_links_live_project_key ON share_links (project_id)
    WHERE revoked_at IS NULL AND image_id IS NULL;
CREATE INDEX share_links_user_idx ON share_links (user_id);

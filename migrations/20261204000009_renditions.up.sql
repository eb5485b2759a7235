-- Renditions (issue 15): a preview (480 px) and a web size (1600 px) of each image's original and
-- result, under server-chosen keys (shared::staging::renditions). Set once all four exist.
ALTER TABLE images ADD COLUMN renditions_at timestamptz;
-- The reconciler's backfill: ready images staged before renditions existed, oldest first.
CREATE INDEX images_renditions_pending_idx ON images (updated_at)
    WHERE status = 'ready' AND renditions_at IS NULL AND deleted_at IS NULL;

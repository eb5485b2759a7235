DROP INDEX IF EXISTS images_renditions_pending_idx;
ALTER TABLE images DROP COLUMN IF EXISTS renditions_at;

DROP TABLE IF EXISTS share_links;
ALTER TABLE images DROP CONSTRAINT IF EXISTS images_twilight_is_exterior;
ALTER TABLE images DROP CONSTRAINT IF EXISTS images_style_fits_operation;
-- Images made by operations without a style cannot go back to a NOT NULL style.
DELETE FROM images WHERE style IS NULL;
ALTER TABLE images ALTER COLUMN style SET NOT NULL;
ALTER TABLE images DROP COLUMN IF EXISTS operation;

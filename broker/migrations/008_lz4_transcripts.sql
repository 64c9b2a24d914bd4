-- Transcripts and clean texts compressed with lz4 instead of pglz, the
-- default (issue 28): PostgreSQL compresses every value over about 2 KB
-- as it stores it, and a 5,000-video job stores two such texts a video.
-- Only new values are stored so; the old ones stay as they are until
-- rewritten. A server built without lz4 (PostgreSQL 14 and later
-- normally have it) keeps pglz, and says so.
DO $$
BEGIN
    ALTER TABLE nf_videos ALTER COLUMN transcript SET COMPRESSION lz4,
                          ALTER COLUMN clean_text SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: transcripts stay compressed with pglz';
END
$$;

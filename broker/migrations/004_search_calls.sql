-- Google's current Data API quota model (issue 21): search.list calls have
-- a daily bucket of their own (100 calls, 1 unit each) beside the 10,000
-- units of every other method. A job counts them apart from quota_units,
-- which from now on holds the list calls (videos.list, channels.list) only.
ALTER TABLE nf_jobs ADD COLUMN search_calls bigint NOT NULL DEFAULT 0;

-- Claims in index order (issue 9: claim latency flat as the table grows).
-- The claim orders due videos by their job's priority, then by when they
-- became due. With the priority only on nf_jobs, every claim joined and
-- sorted all videos of the state (3 ms at 3,000 rows, growing with the
-- table). A job's priority never changes after submission, so each video
-- carries a copy and one index serves the claim's WHERE and ORDER BY:
-- the scan stops after LIMIT due rows.
ALTER TABLE nf_videos ADD COLUMN priority smallint NOT NULL DEFAULT 1;
UPDATE nf_videos v SET priority = j.priority FROM nf_jobs j WHERE j.id = v.job_id AND j.priority <> 1;
DROP INDEX nf_videos_due;
CREATE INDEX nf_videos_due ON nf_videos (state, priority, next_attempt_at, job_id, video_id);

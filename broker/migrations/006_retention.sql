-- Retention (issue 24): a finished job keeps its transcripts, video history
-- and processing log for NF_RETAIN_DAYS, then the broker prunes them in
-- small batches (nf_sched.c, nf_store_prune). pruned_at is set when its
-- pruning starts (nf.retry and nf.resume refuse the job from then on: its
-- transcripts are going), pruned when nothing of it is left to prune. The
-- index finds the oldest finished job not yet pruned without a scan.
ALTER TABLE nf_jobs ADD COLUMN pruned_at timestamptz;
ALTER TABLE nf_jobs ADD COLUMN pruned boolean NOT NULL DEFAULT false;
CREATE INDEX nf_jobs_prune ON nf_jobs (finished_at) WHERE NOT pruned AND finished_at IS NOT NULL;
CREATE INDEX nf_processing_log_at ON nf_processing_log (at) WHERE job_id IS NULL;

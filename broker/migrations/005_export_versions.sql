-- Every export of a job is kept (issue 23). nf.retry and nf.resume run a
-- job's export again; it used to overwrite the workbook the creator had
-- downloaded. An export stage's reply now stores its files as the job's
-- next version, and nf.export serves the newest unless asked for one.
-- The files of earlier releases become version 1.
ALTER TABLE nf_exports ADD COLUMN version int NOT NULL DEFAULT 1;
ALTER TABLE nf_exports DROP CONSTRAINT nf_exports_pkey;
ALTER TABLE nf_exports ADD PRIMARY KEY (job_id, version, format);

-- Outliers against the channel's recent uploads (issue 25): discovery reads
-- each channel's uploads playlist and their statistics, two units a
-- channel. A job counts them apart (they are also in quota_units), so the
-- workbook and nf-submit status can say what the baseline cost.
ALTER TABLE nf_jobs ADD COLUMN baseline_units bigint NOT NULL DEFAULT 0;

-- nicheflow schema, version 1. Applied by nf-broker at start-up, once,
-- under an advisory lock (broker/nf_schema.c). Never edit a released
-- migration: add the next numbered file instead.

CREATE TABLE nf_jobs (
    id              bigserial PRIMARY KEY,
    niche           text NOT NULL,
    sub_niche       text NOT NULL DEFAULT '',
    options         jsonb NOT NULL DEFAULT '{}',
    priority        smallint NOT NULL DEFAULT 1,      -- 0 high, 1 standard, 2 bulk, 3 background
    status          text NOT NULL DEFAULT 'pending',
    status_reason   text,
    phase           text NOT NULL,                    -- next job-scope stage due, or 'done'
    target          int NOT NULL DEFAULT 10,          -- outliers wanted (top N)
    attempts        int NOT NULL DEFAULT 0,           -- of the current job-scope stage
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_token     uuid,
    lease_owner     text,
    lease_expires   timestamptz,
    last_error      text,
    quota_units     bigint NOT NULL DEFAULT 0,
    http_requests   bigint NOT NULL DEFAULT 0,
    tokens          bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX nf_jobs_status ON nf_jobs (status, priority, id);

CREATE TABLE nf_job_history (
    id          bigserial PRIMARY KEY,
    job_id      bigint NOT NULL REFERENCES nf_jobs (id) ON DELETE CASCADE,
    from_status text,
    to_status   text NOT NULL,
    reason      text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nf_job_history_job ON nf_job_history (job_id, id);

CREATE TABLE nf_channels (
    channel_id  text PRIMARY KEY,
    data        jsonb NOT NULL DEFAULT '{}',          -- title, country, subscribers, ...
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE nf_videos (
    job_id          bigint NOT NULL REFERENCES nf_jobs (id) ON DELETE CASCADE,
    video_id        text NOT NULL,
    state           text NOT NULL DEFAULT 'DISCOVERED',
    failed_from     text,                             -- state before FAILED (for nf.retry)
    rejected_reason text,
    tier1_validated smallint NOT NULL DEFAULT 0,
    channel_id      text,
    meta            jsonb NOT NULL DEFAULT '{}',      -- title, views, likes, published, ...
    transcript      text,
    clean_text      text,
    quality         real,
    scores          jsonb,
    composite       real,
    rank            int,
    ai              jsonb,
    attempts        int NOT NULL DEFAULT 0,           -- of the current stage
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_token     uuid,
    lease_owner     text,
    lease_expires   timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, video_id)
);
CREATE INDEX nf_videos_due ON nf_videos (state, next_attempt_at);
CREATE INDEX nf_videos_lease ON nf_videos (lease_token) WHERE lease_token IS NOT NULL;

CREATE TABLE nf_video_history (
    id         bigserial PRIMARY KEY,
    job_id     bigint NOT NULL,
    video_id   text NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    service    text NOT NULL,
    attempt    int NOT NULL,
    reason     text,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nf_video_history_video ON nf_video_history (job_id, video_id);

CREATE TABLE nf_processing_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    module   text NOT NULL,
    job_id   bigint,
    video_id text,
    level    text NOT NULL,
    message  text NOT NULL
);
CREATE INDEX nf_processing_log_job ON nf_processing_log (job_id, id);

CREATE TABLE nf_exports (
    job_id     bigint NOT NULL REFERENCES nf_jobs (id) ON DELETE CASCADE,
    format     text NOT NULL,
    content    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, format)
);

/*  nf_states: the pipeline, defined once as data.

    A stage row says which worker service performs a transition, whether it
    runs per video or once per job, the video state it consumes and the one
    it produces, what the broker sends the worker (READS, the arguments of a
    SQL json_build_object over the video row `v`) and which video columns
    the worker's reply may set (WRITES). The broker generates its claim and
    apply SQL from these rows at start-up; proto/README.md and the README
    document them. Adding a stage is one row here and one worker.

    Job-scope stages are barriers: a job's task for such a stage becomes due
    when none of the job's videos is still in a state consumed by a
    per-video stage that stands between the previous job-scope stage and
    this one (nf_stage_barrier). */
#ifndef NF_STATES_H
#define NF_STATES_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { NF_SCOPE_VIDEO, NF_SCOPE_JOB } nf_scope_t;

typedef struct {
    const char *service;   /* MDP worker service name */
    nf_scope_t scope;      /* per video, or once per job */
    const char *state_in;  /* video state consumed; NULL: the stage creates videos */
    const char *state_out; /* video state produced on success */
    const char *reads;     /* json_build_object(...) arguments over `v` */
    const char *writes;    /* comma-separated nf_columns a reply may set */
    bool needs_min_ready;  /* job fails instead when fewer than min-ready are in state_in */
    const char *note;      /* what else the stage does, for the README's table, or NULL */
    bool uploads;          /* job scope: its input's "channels" maps each candidate's channel
                              to its recent uploads (discover's "recent"; per-video "channel"
                              data leaves them out, they are long) */
    bool candidates;       /* job scope: its input's "candidates" lists every ranked video
                              of the job (id, title, views, outlier_x, rank): the workbook's
                              chart of all of them, not just the outliers */
    const char *text_in;   /* per video, or NULL: a text column handed to the worker beside
                              `reads`, under its own name, straight from PostgreSQL's answer
                              into the task's msgpack (a transcript is kilobytes: inside
                              json_build_object PostgreSQL would escape it into JSON and the
                              broker parse it back) */
} nf_stage_t;

/* Column kinds a reply may write; the broker type-checks replies against them. */
typedef enum { NF_COL_TEXT, NF_COL_JSON_MERGE, NF_COL_JSON, NF_COL_REAL, NF_COL_INT } nf_col_kind_t;

typedef struct {
    const char *name;   /* nf_videos column */
    nf_col_kind_t kind; /* msgpack type it needs and how it is stored */
} nf_column_t;

#define NF_STATE_FAILED   "FAILED"
#define NF_STATE_REJECTED "REJECTED"
#define NF_PHASE_DONE     "done"

/* Job statuses (the rows of the job status table in nf_states.c). */
#define NF_JOB_PENDING    "pending"
#define NF_JOB_QUEUED     "queued"
#define NF_JOB_RUNNING    "running"
#define NF_JOB_PROCESSING "processing"
#define NF_JOB_COMPLETED  "completed"
#define NF_JOB_PARTIAL    "partial"
#define NF_JOB_FAILED     "failed"
#define NF_JOB_CANCELLING "cancelling"
#define NF_JOB_CANCELLED  "cancelled"

/* All stages in pipeline order. */
const nf_stage_t *nf_stages (size_t *count);
/* The stage served by SERVICE, or NULL. */
const nf_stage_t *nf_stage_find (const char *service);
/* The first job-scope stage after AFTER (NULL: the first of all), or NULL. */
const nf_stage_t *nf_stage_next_job (const nf_stage_t *after);
/* Video states that hold back job-scope stage STAGE: the state_in of every
   per-video stage between the previous job-scope stage and STAGE. Writes up
   to MAX pointers to STATES; returns how many. */
size_t nf_stage_barrier (const nf_stage_t *stage, const char **states, size_t max);
/* The candidate set of job-scope stage STAGE: its state_in and every state
   a video reaches after it (the state_out of STAGE and of each later
   stage). A job stage reads, and its reply may move, the job's videos in
   these states, so a re-run (nf.retry, nf.resume) sees the videos that an
   earlier run moved on: analyze ranks the whole set again, export writes
   every outlier. Writes up to MAX pointers to STATES; returns how many
   (0 for a creating stage). */
size_t nf_stage_holds (const nf_stage_t *stage, const char **states, size_t max);

/* Video states in pipeline order (non-terminal, then FAILED, REJECTED). */
const char *const *nf_video_states (size_t *count);
bool nf_video_state_valid (const char *state);

/* The job status machine, one row a status. FLAGS say what the status
   means to the scheduler; the broker's statements take their status sets
   from them, and the database's CHECK constraint its list of names. */
#define NF_JOBS_FINAL       1u /* finished: finished_at is set, nothing runs */
#define NF_JOBS_ACTIVE      2u /* counts against NF_MAX_ACTIVE_JOBS */
#define NF_JOBS_CLAIM_JOB   4u /* its job stages may be claimed */
#define NF_JOBS_CLAIM_VIDEO 8u /* its per-video tasks may be claimed */

typedef struct {
    const char *name;  /* status */
    unsigned flags;    /* NF_JOBS_* */
    const char *to;    /* space-separated statuses it may move to */
    const char *about; /* one line for the README and nf-submit's help */
} nf_job_status_t;

const nf_job_status_t *nf_job_statuses (size_t *count);
const nf_job_status_t *nf_job_status_find (const char *status);
bool nf_job_status_valid (const char *status);
bool nf_job_status_final (const char *status);
bool nf_job_transition_ok (const char *from, const char *to);
/* The statuses that have every flag of FLAGS, as a text[] literal
   ("{running,processing}") into OUT; returns how many. */
size_t nf_job_status_set (unsigned flags, char *out, size_t outlen);

/* Writable columns. */
const nf_column_t *nf_column_find (const char *name);
/* True when STAGE's writes list names COLUMN. */
bool nf_stage_writes (const nf_stage_t *stage, const char *column);

/* Job priorities: "high" 0, "standard" 1, "bulk" 2, "background" 3; -1 if unknown. */
int nf_priority_parse (const char *name);
const char *nf_priority_name (int priority);

/* The README's tables of the pipeline and the job statuses (markdown),
   and the job statuses as plain lines for nf-submit's help. */
#include <stdio.h>
void nf_states_print_markdown (FILE *out);
void nf_job_statuses_print_help (FILE *out);

#endif

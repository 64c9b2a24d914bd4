/*  nf_states: the pipeline table and the job status machine. See nf_states.h. */
#include "nf_states.h"
#include "nf_util.h"

#include <stdio.h>
#include <string.h>

/* A video's channel: its row, without the recent uploads (a job stage that
   needs them gets them once per channel, nf_stage_t.uploads). */
#define CHANNEL_JSON                                                                    \
    "(SELECT json_build_object('channel_id', c.channel_id, 'data', c.data - 'recent', " \
    "'updated_at', c.updated_at) FROM nf_channels c WHERE c.channel_id = v.channel_id)"

static const nf_stage_t s_stages[] = {
    {"discover", NF_SCOPE_JOB, NULL, "DISCOVERED", "", "meta,channel_id", false},
    {"scrape", NF_SCOPE_VIDEO, "DISCOVERED", "RAW", "'meta', v.meta", "meta,transcript", false},
    {"sanitize", NF_SCOPE_VIDEO, "RAW", "CLEANED", "'meta', v.meta", "clean_text,quality,meta",
     false, NULL, false, false, "transcript"},
    {"geo", NF_SCOPE_VIDEO, "CLEANED", "VALIDATED", "'meta', v.meta, 'channel', " CHANNEL_JSON,
     "tier1_validated,meta", false},
#ifdef NF_EXTRA_STAGE
    /* The test build of tests/added_stage.sh: one more row and nothing
       else, to show that adding a stage is one row and one worker. */
    {"tag", NF_SCOPE_VIDEO, "VALIDATED", "TAGGED", "'meta', v.meta", "meta", false,
     "the test build's extra stage"},
#define S_ANALYZE_IN "TAGGED"
#else
#define S_ANALYZE_IN "VALIDATED"
#endif
    {"analyze", NF_SCOPE_JOB, S_ANALYZE_IN, "OUTLIER",
     "'video_id', v.video_id, 'meta', v.meta, 'quality', v.quality, 'channel', " CHANNEL_JSON,
     "scores,composite,rank", false, "the top N become OUTLIER; the others stay " S_ANALYZE_IN,
     true},
    {"architect", NF_SCOPE_VIDEO, "OUTLIER", "READY",
     "'meta', v.meta, 'quality', v.quality, 'scores', v.scores, 'composite', v.composite, "
     "'rank', v.rank, 'channel', " CHANNEL_JSON,
     "ai", false, NULL, false, false, "clean_text"},
    {"export", NF_SCOPE_JOB, "READY", "EXPORTED",
     "'video_id', v.video_id, 'meta', v.meta, 'quality', v.quality, 'scores', v.scores, "
     "'composite', v.composite, 'rank', v.rank, 'ai', v.ai, 'channel', " CHANNEL_JSON,
     "", true, "needs NF_MIN_READY READY videos, or the job fails", false, true},
};

static const nf_column_t s_columns[] = {
    {"meta", NF_COL_JSON_MERGE}, {"channel_id", NF_COL_TEXT}, {"transcript", NF_COL_TEXT},
    {"clean_text", NF_COL_TEXT}, {"quality", NF_COL_REAL},    {"tier1_validated", NF_COL_INT},
    {"scores", NF_COL_JSON},     {"composite", NF_COL_REAL},  {"rank", NF_COL_INT},
    {"ai", NF_COL_JSON},
};

static const char *const s_video_states[] = {"DISCOVERED", "RAW",   "CLEANED",  "VALIDATED",
#ifdef NF_EXTRA_STAGE
                                             "TAGGED",
#endif
                                             "OUTLIER",    "READY", "EXPORTED", "FAILED",
                                             "REJECTED"};

/* The job status machine: each status, what it means to the scheduler
   (NF_JOBS_* flags) and the statuses it may move to. The broker's SQL
   takes its status sets from here (nf_job_status_set). */
static const nf_job_status_t s_jobs[] = {
    {NF_JOB_PENDING, 0, NF_JOB_QUEUED " " NF_JOB_CANCELLING, "submitted, waiting for admission"},
    {NF_JOB_QUEUED, NF_JOBS_ACTIVE | NF_JOBS_CLAIM_JOB,
     NF_JOB_RUNNING " " NF_JOB_CANCELLING " " NF_JOB_FAILED, "admitted; its first stage is due"},
    {NF_JOB_RUNNING, NF_JOBS_ACTIVE | NF_JOBS_CLAIM_JOB | NF_JOBS_CLAIM_VIDEO,
     NF_JOB_PROCESSING " " NF_JOB_FAILED " " NF_JOB_CANCELLING, "its first stage is running"},
    {NF_JOB_PROCESSING, NF_JOBS_ACTIVE | NF_JOBS_CLAIM_JOB | NF_JOBS_CLAIM_VIDEO,
     NF_JOB_COMPLETED " " NF_JOB_PARTIAL " " NF_JOB_FAILED " " NF_JOB_CANCELLING,
     "its videos are moving through the stages"},
    /* nf.retry of its FAILED videos */
    {NF_JOB_COMPLETED, NF_JOBS_FINAL, NF_JOB_PROCESSING,
     "exported with the target number of outliers"},
    /* nf.retry; nf.resume */
    {NF_JOB_PARTIAL, NF_JOBS_FINAL, NF_JOB_PROCESSING " " NF_JOB_PENDING,
     "exported with fewer outliers than the target"},
    {NF_JOB_FAILED, NF_JOBS_FINAL, NF_JOB_PROCESSING " " NF_JOB_PENDING,
     "a job stage failed, or too few videos were READY to export"},
    {NF_JOB_CANCELLING, NF_JOBS_ACTIVE, NF_JOB_CANCELLED,
     "cancelled; in-flight work is dropped, but a running discovery's answer is awaited and its "
     "videos kept"},
    /* nf.resume */
    {NF_JOB_CANCELLED, NF_JOBS_FINAL, NF_JOB_PENDING, "cancelled"},
};

#define COUNT(a) (sizeof (a) / sizeof ((a)[0]))

const nf_stage_t *
nf_stages (size_t *count)
{
    *count = COUNT (s_stages);
    return s_stages;
}

const nf_stage_t *
nf_stage_find (const char *service)
{
    for (size_t i = 0; i < COUNT (s_stages); i++)
        if (service && strcmp (s_stages[i].service, service) == 0)
            return &s_stages[i];
    return NULL;
}

const nf_stage_t *
nf_stage_next_job (const nf_stage_t *after)
{
    size_t i = after ? (size_t) (after - s_stages) + 1 : 0;
    for (; i < COUNT (s_stages); i++)
        if (s_stages[i].scope == NF_SCOPE_JOB)
            return &s_stages[i];
    return NULL;
}

size_t
nf_stage_barrier (const nf_stage_t *stage, const char **states, size_t max)
{
    size_t n = 0;
    size_t at = (size_t) (stage - s_stages);
    for (size_t i = at; i-- > 0;) {
        if (s_stages[i].scope == NF_SCOPE_JOB)
            break;
        if (n < max)
            states[n++] = s_stages[i].state_in;
    }
    return n;
}

size_t
nf_stage_holds (const nf_stage_t *stage, const char **states, size_t max)
{
    if (!stage->state_in)
        return 0;
    size_t n = 0;
    if (n < max)
        states[n++] = stage->state_in;
    for (size_t i = (size_t) (stage - s_stages); i < COUNT (s_stages); i++)
        if (n < max && s_stages[i].state_out)
            states[n++] = s_stages[i].state_out;
    return n;
}

const char *const *
nf_video_states (size_t *count)
{
    *count = COUNT (s_video_states);
    return s_video_states;
}

bool
nf_video_state_valid (const char *state)
{
    for (size_t i = 0; i < COUNT (s_video_states); i++)
        if (state && strcmp (state, s_video_states[i]) == 0)
            return true;
    return false;
}

const nf_job_status_t *
nf_job_statuses (size_t *count)
{
    *count = COUNT (s_jobs);
    return s_jobs;
}

const nf_job_status_t *
nf_job_status_find (const char *status)
{
    for (size_t i = 0; i < COUNT (s_jobs); i++)
        if (status && strcmp (status, s_jobs[i].name) == 0)
            return &s_jobs[i];
    return NULL;
}

bool
nf_job_status_valid (const char *status)
{
    return nf_job_status_find (status) != NULL;
}

bool
nf_job_status_final (const char *status)
{
    const nf_job_status_t *j = nf_job_status_find (status);
    return j && (j->flags & NF_JOBS_FINAL);
}

bool
nf_job_transition_ok (const char *from, const char *to)
{
    const nf_job_status_t *j = nf_job_status_find (from);
    return j && to && nf_word_in (j->to, to, strlen (to));
}

size_t
nf_job_status_set (unsigned flags, char *out, size_t outlen)
{
    nf_buf_t b;
    nf_buf_init (&b);
    size_t n = 0;
    for (size_t i = 0; i < COUNT (s_jobs); i++)
        if ((s_jobs[i].flags & flags) == flags)
            nf_buf_printf (&b, "%s%s", n++ ? "," : "{", s_jobs[i].name);
    nf_buf_puts (&b, n ? "}" : "{}");
    snprintf (out, outlen, "%s", b.data);
    nf_buf_free (&b);
    return n;
}

const nf_column_t *
nf_column_find (const char *name)
{
    for (size_t i = 0; i < COUNT (s_columns); i++)
        if (name && strcmp (s_columns[i].name, name) == 0)
            return &s_columns[i];
    return NULL;
}

bool
nf_stage_writes (const nf_stage_t *stage, const char *column)
{
    char list[256];
    size_t n = strlen (stage->writes);
    if (n >= sizeof list)
        return false;
    memcpy (list, stage->writes, n + 1);
    for (char *p = list; *p; p++)
        if (*p == ',')
            *p = ' ';
    return nf_word_in (list, column, strlen (column));
}

static const char *const s_priorities[] = {"high", "standard", "bulk", "background"};

int
nf_priority_parse (const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp (name, s_priorities[i]) == 0)
            return i;
    return -1;
}

const char *
nf_priority_name (int priority)
{
    return priority >= 0 && priority < 4 ? s_priorities[priority] : "unknown";
}

void
nf_states_print_markdown (FILE *out)
{
    fprintf (out, "| service | scope | state in | state out | note |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < COUNT (s_stages); i++) {
        const nf_stage_t *st = &s_stages[i];
        fprintf (out, "| %s | %s | %s | %s | %s |\n", st->service,
                 st->scope == NF_SCOPE_VIDEO ? "video"
                 : st->state_in              ? "job (barrier)"
                                             : "job",
                 st->state_in ? st->state_in : "(creates videos)", st->state_out,
                 st->note ? st->note : "");
    }
    fprintf (out, "\n| job status | means | may move to |\n|---|---|---|\n");
    for (size_t i = 0; i < COUNT (s_jobs); i++) {
        fprintf (out, "| `%s` | %s | ", s_jobs[i].name, s_jobs[i].about);
        const char *to = s_jobs[i].to;
        while (*to) {
            size_t n = strcspn (to, " ");
            fprintf (out, "`%.*s`%s", (int) n, to, to[n] ? ", " : "");
            to += n + (to[n] ? 1 : 0);
        }
        fprintf (out, " |\n");
    }
}

void
nf_job_statuses_print_help (FILE *out)
{
    fprintf (out, "Job statuses:\n");
    for (size_t i = 0; i < COUNT (s_jobs); i++)
        fprintf (out, "  %-11s %s\n", s_jobs[i].name, s_jobs[i].about);
    fprintf (out, "\n");
}

/*  nf_states: the pipeline table and the job status machine. See nf_states.h. */
#include "nf_states.h"
#include "nf_util.h"

#include <string.h>

#define CHANNEL_JSON "(SELECT row_to_json(c) FROM nf_channels c WHERE c.channel_id = v.channel_id)"

static const nf_stage_t s_stages[] = {
    {"discover", NF_SCOPE_JOB, NULL, "DISCOVERED", "", "meta,channel_id", false},
    {"scrape", NF_SCOPE_VIDEO, "DISCOVERED", "RAW", "'meta', v.meta", "meta,transcript", false},
    {"sanitize", NF_SCOPE_VIDEO, "RAW", "CLEANED", "'meta', v.meta, 'transcript', v.transcript",
     "clean_text,quality,meta", false},
    {"geo", NF_SCOPE_VIDEO, "CLEANED", "VALIDATED", "'meta', v.meta, 'channel', " CHANNEL_JSON,
     "tier1_validated,meta", false},
    {"analyze", NF_SCOPE_JOB, "VALIDATED", "OUTLIER",
     "'video_id', v.video_id, 'meta', v.meta, 'quality', v.quality, 'channel', " CHANNEL_JSON,
     "scores,composite,rank", false},
    {"architect", NF_SCOPE_VIDEO, "OUTLIER", "READY",
     "'meta', v.meta, 'clean_text', v.clean_text, 'quality', v.quality, 'scores', v.scores, "
     "'composite', v.composite, 'rank', v.rank, 'channel', " CHANNEL_JSON,
     "ai", false},
    {"export", NF_SCOPE_JOB, "READY", "EXPORTED",
     "'video_id', v.video_id, 'meta', v.meta, 'quality', v.quality, 'scores', v.scores, "
     "'composite', v.composite, 'rank', v.rank, 'ai', v.ai, 'channel', " CHANNEL_JSON,
     "", true},
};

static const nf_column_t s_columns[] = {
    {"meta", NF_COL_JSON_MERGE}, {"channel_id", NF_COL_TEXT}, {"transcript", NF_COL_TEXT},
    {"clean_text", NF_COL_TEXT}, {"quality", NF_COL_REAL},    {"tier1_validated", NF_COL_INT},
    {"scores", NF_COL_JSON},     {"composite", NF_COL_REAL},  {"rank", NF_COL_INT},
    {"ai", NF_COL_JSON},
};

static const char *const s_video_states[] = {"DISCOVERED", "RAW",     "CLEANED",
                                             "VALIDATED",  "OUTLIER", "READY",
                                             "EXPORTED",   "FAILED",  "REJECTED"};

static const char *const s_job_statuses[] = {"pending",    "queued",     "running",
                                             "processing", "completed",  "partial",
                                             "failed",     "cancelling", "cancelled"};

/* Allowed job status changes: FROM -> any of TO (space separated). */
static const struct {
    const char *from;
    const char *to;
} s_job_moves[] = {
    {"pending", "queued cancelling"},
    {"queued", "running cancelling failed"},
    {"running", "processing failed cancelling"},
    {"processing", "completed partial failed cancelling"},
    {"completed", "processing"},       /* nf.retry of its FAILED videos */
    {"partial", "processing pending"}, /* nf.retry; nf.resume */
    {"failed", "processing pending"},  /* nf.retry; nf.resume */
    {"cancelling", "cancelled"},
    {"cancelled", "pending"}, /* nf.resume */
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

const char *const *
nf_job_statuses (size_t *count)
{
    *count = COUNT (s_job_statuses);
    return s_job_statuses;
}

bool
nf_job_status_valid (const char *status)
{
    for (size_t i = 0; i < COUNT (s_job_statuses); i++)
        if (status && strcmp (status, s_job_statuses[i]) == 0)
            return true;
    return false;
}

bool
nf_job_status_final (const char *status)
{
    return status
           && (strcmp (status, "completed") == 0 || strcmp (status, "partial") == 0
               || strcmp (status, "failed") == 0 || strcmp (status, "cancelled") == 0);
}

bool
nf_job_transition_ok (const char *from, const char *to)
{
    if (!from || !to)
        return false;
    for (size_t i = 0; i < COUNT (s_job_moves); i++)
        if (strcmp (s_job_moves[i].from, from) == 0)
            return nf_word_in (s_job_moves[i].to, to, strlen (to));
    return false;
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

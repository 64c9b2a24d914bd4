/*  nf_store: see nf_store.h. SQL text is built once per stage in
    nf_store_new from the stage table and the column catalog; every value
    from outside travels as a parameter (batches as one jsonb array). */
#include "nf_store.h"
#include "nf_jobopts.h"
#include "nf_log.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STAGES 16

/* Generated statements of one stage. */
typedef struct {
    const nf_stage_t *stage;
    char *claim;         /* claim a batch */
    char *ok;            /* video scope: apply a batch of successes */
    char *reject;        /* video scope: apply a batch of rejects */
    char *error;         /* video scope: apply a batch of errors */
    char *items;         /* job scope: apply the reply's items */
    char *sweep;         /* video scope: fail exhausted attempts */
    char *input;         /* job scope: the task input of one job */
    char input_name[64]; /* its prepared statement name */
    char *names[7];      /* prepared statement names for the above */
    char barrier[256];   /* job scope: text[] literal of the barrier states */
} s_sql_t;

struct nf_store_t {
    nf_db_t *db;             /* borrowed */
    nf_store_opts_t opts;    /* copy (owner duplicated) */
    char *owner;             /* lease owner */
    s_sql_t sql[MAX_STAGES]; /* per stage, in table order */
    size_t nstages;          /* rows used in sql */
    nf_event_fn *on_event;   /* progress sink */
    void *event_arg;         /* its argument */
    zlistx_t *events;        /* events of the open transaction */
    zlistx_t *claims;        /* s_pending_t of the open transaction */
    nf_store_stats_t stats;  /* counters */
    char lease_ms[24];       /* lease length as a parameter */
    char max_attempts[24];   /* max attempts as a parameter */
};

/* A claim held until its transaction commits, and whose it is. */
typedef struct {
    nf_claim_t claim;
    nf_want_t *want;
} s_pending_t;

static void
s_pending_free (void **item)
{
    s_pending_t *p = (s_pending_t *) *item;
    if (!p)
        return;
    free (p->claim.video_id);
    zframe_destroy (&p->claim.body);
    free (p);
    *item = NULL;
}

/* An event held until its transaction commits. */
typedef struct {
    int64_t job_id;
    char *video_id, *from, *to, *service, *reason;
} s_event_t;

static void
s_event_free (void **item)
{
    s_event_t *e = (s_event_t *) *item;
    if (!e)
        return;
    free (e->video_id);
    free (e->from);
    free (e->to);
    free (e->service);
    free (e->reason);
    free (e);
    *item = NULL;
}

static char *
s_dup (const char *s)
{
    return s ? strdup (s) : NULL;
}

static void
s_event (nf_store_t *self, int64_t job_id, const char *video_id, const char *from, const char *to,
         const char *service, const char *reason)
{
    s_event_t *e = calloc (1, sizeof *e);
    e->job_id = job_id;
    e->video_id = s_dup (video_id);
    e->from = s_dup (from);
    e->to = s_dup (to);
    e->service = s_dup (service);
    e->reason = s_dup (reason);
    zlistx_add_end (self->events, e);
}

static void
s_events_flush (nf_store_t *self, bool committed)
{
    if (committed && self->on_event) {
        for (s_event_t *e = zlistx_first (self->events); e; e = zlistx_next (self->events)) {
            nf_event_t ev = {e->job_id, e->video_id, e->from, e->to, e->service, e->reason};
            self->on_event (&ev, self->event_arg);
        }
    }
    zlistx_purge (self->events);
}

void
nf_outcome_destroy (nf_outcome_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_outcome_t *o = *self_p;
    free (o->video_id);
    free (o->text);
    nf_msg_destroy (&o->msg);
    free (o);
    *self_p = NULL;
}

/* ---- SQL generation ------------------------------------------------------ */

/* Append ", col = <value from jsonb SRC>" for each column STAGE writes. */
static void
s_gen_writes (nf_buf_t *b, const nf_stage_t *stage, const char *src)
{
    char list[256];
    snprintf (list, sizeof list, "%s", stage->writes);
    for (char *col = strtok (list, ","); col; col = strtok (NULL, ",")) {
        const nf_column_t *c = nf_column_find (col);
        if (!c)
            continue;
        switch (c->kind) {
        case NF_COL_TEXT:
            nf_buf_printf (b, ", %s = CASE WHEN %s ? '%s' THEN %s->>'%s' ELSE v.%s END", col, src,
                           col, src, col, col);
            break;
        case NF_COL_JSON_MERGE:
            nf_buf_printf (b,
                           ", %s = CASE WHEN jsonb_typeof(%s->'%s') = 'object' THEN v.%s || "
                           "(%s->'%s') ELSE v.%s END",
                           col, src, col, col, src, col, col);
            break;
        case NF_COL_JSON:
            nf_buf_printf (b, ", %s = CASE WHEN %s ? '%s' THEN %s->'%s' ELSE v.%s END", col, src,
                           col, src, col, col);
            break;
        case NF_COL_REAL:
            nf_buf_printf (b, ", %s = CASE WHEN %s ? '%s' THEN (%s->>'%s')::real ELSE v.%s END",
                           col, src, col, src, col, col);
            break;
        case NF_COL_INT:
            nf_buf_printf (b, ", %s = CASE WHEN %s ? '%s' THEN (%s->>'%s')::int ELSE v.%s END", col,
                           src, col, src, col, col);
            break;
        }
    }
}

#define LEASE_CLEAR "lease_token = NULL, lease_owner = NULL, lease_expires = NULL"
#define BATCH_ROWS                                                                     \
    "WITH r AS (SELECT (x->>'job_id')::bigint AS job_id, x->>'video_id' AS video_id, " \
    "(x->>'token')::uuid AS token, (x->>'attempt')::int AS attempt, x->'o' AS o, "     \
    "x->>'text' AS text, coalesce((x->>'perm')::boolean, false) AS perm, "             \
    "coalesce((x->>'delay_ms')::float8, 0) AS delay_ms FROM nf_batch($1::jsonb) x) "
/* The fence: one primary-key lookup per reply (r is a batch of replies:
   nf_batch, migration 003), its lease still the reply's and the video
   still in the stage's input state. The state test is written so that no
   index can serve it: as `v.state = $2` the planner could read every video
   of the state through nf_videos_due instead. */
#define FENCE                                                                                    \
    " FROM r WHERE v.job_id = r.job_id AND v.video_id = r.video_id AND v.lease_token = r.token " \
    "AND v.lease_expires >= now() AND v.state IS NOT DISTINCT FROM $2 "

static char *
s_gen_video_apply (const nf_stage_t *stage, nf_reply_status_t kind)
{
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_puts (&b, BATCH_ROWS ", u AS (UPDATE nf_videos v SET updated_at = now(), " LEASE_CLEAR);
    if (kind == NF_REPLY_OK) {
        nf_buf_puts (&b, ", state = $4, attempts = 0, last_error = NULL");
        s_gen_writes (&b, stage, "r.o");
    }
    else if (kind == NF_REPLY_REJECT) {
        nf_buf_puts (&b, ", state = 'REJECTED', rejected_reason = r.text, attempts = 0");
        s_gen_writes (&b, stage, "r.o");
    }
    else
        nf_buf_puts (&b, ", failed_from = CASE WHEN r.perm OR v.attempts >= $4::int THEN v.state "
                         "ELSE v.failed_from END, state = CASE WHEN r.perm OR v.attempts >= "
                         "$4::int THEN 'FAILED' ELSE v.state END, next_attempt_at = now() + "
                         "make_interval(secs => r.delay_ms / 1000), last_error = r.text");
    nf_buf_puts (&b, FENCE "RETURNING v.job_id, v.video_id, v.state, r.attempt, r.text), "
                           "h AS (INSERT INTO nf_video_history (job_id, video_id, from_state, "
                           "to_state, service, attempt, reason) SELECT job_id, video_id, $2, "
                           "state, $3, attempt, ");
    nf_buf_puts (&b, kind == NF_REPLY_OK ? "NULL" : "text");
    nf_buf_puts (&b, " FROM u WHERE state <> $2)");
    if (kind == NF_REPLY_ERROR)
        nf_buf_puts (&b, ", l AS (INSERT INTO nf_processing_log (module, job_id, video_id, level, "
                         "message) SELECT $3, job_id, video_id, CASE WHEN state = 'FAILED' THEN "
                         "'error' ELSE 'warn' END, text FROM u)");
    nf_buf_puts (&b, " SELECT job_id, video_id, state, text FROM u");
    return b.data;
}

/* The due videos of the stage's input state in the order of the index
   nf_videos_due, so the scan stops after LIMIT rows (bitmap scans are off
   in the cycle: they lose that order). The active jobs are an array
   computed once, not a join: joined, the planner put the jobs outside and
   read and sorted every due video of the job. */
static char *
s_gen_video_claim (const nf_stage_t *stage)
{
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_printf (
        &b,
        "WITH c AS (SELECT v.job_id, v.video_id FROM nf_videos v WHERE v.state = $1 AND "
        "v.job_id = ANY (ARRAY (SELECT id FROM nf_jobs WHERE status IN ('running', "
        "'processing'))) AND v.next_attempt_at <= now() AND v.attempts < $2::int AND "
        "(v.lease_token IS NULL OR v.lease_expires < now()) ORDER BY v.priority, "
        "v.next_attempt_at, v.job_id, v.video_id LIMIT $3::int FOR UPDATE OF v SKIP LOCKED) "
        "UPDATE nf_videos v SET lease_token = gen_random_uuid(), lease_owner = $4, lease_expires = "
        "now() + make_interval(secs => $5::float8 / 1000), attempts = v.attempts + 1 FROM c "
        "WHERE v.job_id = c.job_id AND v.video_id = c.video_id RETURNING v.lease_token::text, "
        "v.job_id, v.video_id, v.attempts, (SELECT niche FROM nf_jobs WHERE id = v.job_id), "
        "(SELECT sub_niche FROM nf_jobs WHERE id = v.job_id), (SELECT options::text FROM nf_jobs "
        "WHERE id = v.job_id), json_build_object(%s)::text",
        stage->reads);
    return b.data;
}

static char *
s_gen_job_claim (const nf_stage_t *stage)
{
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_puts (&b, "WITH c AS (SELECT j.id, j.status FROM nf_jobs j WHERE j.phase = $1 AND "
                     "j.status IN ('queued', 'running', 'processing') AND j.next_attempt_at <= "
                     "now() AND j.attempts < $2::int AND (j.lease_token IS NULL OR "
                     "j.lease_expires < now()) AND NOT EXISTS (SELECT 1 FROM nf_videos v WHERE "
                     "v.job_id = j.id AND v.state = ANY($3::text[]))");
    if (stage->needs_min_ready)
        nf_buf_puts (&b, " AND (SELECT count(*) FROM nf_videos v WHERE v.job_id = j.id AND "
                         "v.state = $7) >= $8::int");
    nf_buf_puts (&b, " ORDER BY j.priority, j.id LIMIT $4::int FOR UPDATE OF j SKIP LOCKED), "
                     "u AS (UPDATE nf_jobs j SET lease_token = gen_random_uuid(), lease_owner = "
                     "$5, lease_expires = now() + make_interval(secs => $6::float8 / 1000), "
                     "attempts = j.attempts + 1, status = CASE WHEN j.status = 'queued' THEN "
                     "'running' ELSE j.status END, updated_at = now() FROM c WHERE j.id = c.id "
                     "RETURNING j.id, j.lease_token, j.attempts, c.status AS old_status, "
                     "j.status, j.niche, j.sub_niche, j.options), h AS (INSERT INTO "
                     "nf_job_history (job_id, from_status, to_status, reason) SELECT id, "
                     "old_status, status, 'stage ' || $1 || ' dispatched' FROM u WHERE "
                     "old_status <> status) SELECT id, lease_token::text, attempts, old_status, "
                     "status, niche, sub_niche, options::text FROM u");
    return b.data;
}

static char *
s_gen_job_items (const nf_stage_t *stage)
{
    nf_buf_t b;
    nf_buf_init (&b);
    if (!stage->state_in) {
        /* A creating stage: insert new videos, skip known ones. */
        nf_buf_t cols, vals;
        nf_buf_init (&cols);
        nf_buf_init (&vals);
        char list[256];
        snprintf (list, sizeof list, "%s", stage->writes);
        for (char *col = strtok (list, ","); col; col = strtok (NULL, ",")) {
            const nf_column_t *c = nf_column_find (col);
            if (!c)
                continue;
            nf_buf_printf (&cols, ", %s", col);
            switch (c->kind) {
            case NF_COL_TEXT: nf_buf_printf (&vals, ", o->>'%s'", col); break;
            case NF_COL_JSON_MERGE:
                nf_buf_printf (&vals,
                               ", CASE WHEN jsonb_typeof(o->'%s') = 'object' THEN "
                               "o->'%s' ELSE '{}'::jsonb END",
                               col, col);
                break;
            case NF_COL_JSON: nf_buf_printf (&vals, ", o->'%s'", col); break;
            case NF_COL_REAL: nf_buf_printf (&vals, ", (o->>'%s')::real", col); break;
            case NF_COL_INT: nf_buf_printf (&vals, ", (o->>'%s')::int", col); break;
            }
        }
        nf_buf_printf (&b,
                       "WITH x AS (SELECT DISTINCT ON (x->>'video_id') x->>'video_id' AS "
                       "video_id, x AS o FROM jsonb_array_elements($2::jsonb) x), i AS (INSERT "
                       "INTO nf_videos (job_id, video_id, state, priority%s) SELECT $1::bigint, "
                       "video_id, $3, (SELECT priority FROM nf_jobs WHERE id = $1::bigint)%s "
                       "FROM x ON CONFLICT DO NOTHING RETURNING video_id, state), h AS "
                       "(INSERT INTO nf_video_history (job_id, video_id, from_state, to_state, "
                       "service, attempt) SELECT $1::bigint, video_id, NULL, state, $4, $5::int "
                       "FROM i) SELECT video_id, state FROM i",
                       cols.data ? cols.data : "", vals.data ? vals.data : "");
        nf_buf_free (&cols);
        nf_buf_free (&vals);
        return b.data;
    }
    nf_buf_puts (&b, "WITH r AS (SELECT x->>'video_id' AS video_id, x AS o, coalesce(x->>'status', "
                     "'ok') AS st, x->>'reason' AS reason FROM jsonb_array_elements($2::jsonb) x), "
                     "u AS (UPDATE nf_videos v SET updated_at = now(), state = CASE r.st WHEN "
                     "'ok' THEN $3 WHEN 'reject' THEN 'REJECTED' ELSE v.state END, "
                     "rejected_reason = CASE WHEN r.st = 'reject' THEN coalesce(r.reason, "
                     "'rejected') ELSE v.rejected_reason END");
    s_gen_writes (&b, stage, "r.o");
    nf_buf_puts (&b,
                 " FROM r WHERE v.job_id = $1::bigint AND v.video_id = r.video_id AND v.state = "
                 "$4 RETURNING v.video_id, v.state, r.reason), h AS (INSERT INTO "
                 "nf_video_history (job_id, video_id, from_state, to_state, service, attempt, "
                 "reason) SELECT $1::bigint, video_id, $4, state, $5, $6::int, CASE WHEN state "
                 "= 'REJECTED' THEN reason END FROM u WHERE state <> $4) SELECT video_id, "
                 "state FROM u");
    return b.data;
}

static char *
s_gen_sweep (void)
{
    return strdup (
        "WITH u AS (UPDATE nf_videos v SET failed_from = v.state, state = 'FAILED', last_error = "
        "coalesce(v.last_error, 'attempts exhausted'), " LEASE_CLEAR ", updated_at = now() "
        "WHERE v.state = $1 AND v.attempts >= $2::int AND (v.lease_token IS NULL OR "
        "v.lease_expires < now()) RETURNING v.job_id, v.video_id, v.failed_from, v.attempts, "
        "v.last_error), h AS (INSERT INTO nf_video_history (job_id, video_id, from_state, "
        "to_state, service, attempt, reason) SELECT job_id, video_id, failed_from, 'FAILED', $3, "
        "attempts, last_error FROM u), l AS (INSERT INTO nf_processing_log (module, job_id, "
        "video_id, level, message) SELECT $3, job_id, video_id, 'error', 'attempts exhausted: ' "
        "|| last_error FROM u) SELECT job_id, video_id, last_error FROM u");
}

/* The task input of one job for job-scope stage ST: its videos in state_in
   (or, for a creating stage, the ids it already has), the funnel so far and
   its counters. Parameters: job id, state_in. */
static char *
s_gen_job_input (const nf_stage_t *st)
{
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_printf (
        &b,
        "SELECT json_build_object('videos', (SELECT coalesce(json_agg(json_build_object(%s) "
        "ORDER BY v.video_id), '[]') FROM nf_videos v WHERE v.job_id = $1::bigint AND v.state = "
        "$2), 'known_ids', CASE WHEN $2 IS NULL THEN (SELECT coalesce(json_agg(video_id ORDER BY "
        "video_id), '[]') FROM nf_videos WHERE job_id = $1::bigint) END, 'funnel', "
        "json_build_object('states', (SELECT coalesce(json_object_agg(state, n), '{}') FROM "
        "(SELECT state, count(*) AS n FROM nf_videos WHERE job_id = $1::bigint GROUP BY state) s), "
        "'rejected', (SELECT coalesce(json_object_agg(r, n), '{}') FROM (SELECT rejected_reason AS "
        "r, count(*) AS n FROM nf_videos WHERE job_id = $1::bigint AND state = 'REJECTED' GROUP BY "
        "1) s), 'failed', (SELECT coalesce(json_agg(json_build_object('video_id', video_id, "
        "'failed_from', failed_from, 'error', last_error) ORDER BY video_id), '[]') FROM nf_videos "
        "WHERE job_id = $1::bigint AND state = 'FAILED')), 'reached', (SELECT "
        "coalesce(json_object_agg(to_state, n), '{}') FROM (SELECT to_state, count(DISTINCT "
        "video_id) AS n FROM nf_video_history WHERE job_id = $1::bigint GROUP BY 1) s), "
        "'timings', (SELECT coalesce(json_object_agg(service, json_build_object('first', f, "
        "'last', l, 'transitions', n)), '{}') FROM (SELECT service, min(at) AS f, max(at) AS l, "
        "count(*) AS n FROM nf_video_history WHERE job_id = $1::bigint GROUP BY 1) s), 'stats', "
        "(SELECT "
        "json_build_object('quota_units', quota_units, 'search_calls', search_calls, "
        "'http_requests', http_requests, 'tokens', tokens, 'target', target, 'priority', priority, "
        "'created_at', created_at) FROM nf_jobs "
        "WHERE id = $1::bigint))::text",
        st->reads[0] ? st->reads : "'video_id', v.video_id");
    return b.data;
}

nf_store_t *
nf_store_new (nf_db_t *db, const nf_store_opts_t *opts, nf_event_fn *on_event, void *event_arg)
{
    nf_store_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->db = db;
    self->opts = *opts;
    self->owner = strdup (opts->owner);
    self->opts.owner = self->owner;
    self->on_event = on_event;
    self->event_arg = event_arg;
    self->events = zlistx_new ();
    zlistx_set_destructor (self->events, s_event_free);
    self->claims = zlistx_new ();
    zlistx_set_destructor (self->claims, s_pending_free);
    snprintf (self->lease_ms, sizeof self->lease_ms, "%lld", (long long) opts->lease_ms);
    snprintf (self->max_attempts, sizeof self->max_attempts, "%lld",
              (long long) opts->max_attempts);
    size_t count;
    const nf_stage_t *stages = nf_stages (&count);
    assert (count <= MAX_STAGES);
    for (size_t i = 0; i < count; i++) {
        s_sql_t *q = &self->sql[i];
        const nf_stage_t *st = &stages[i];
        q->stage = st;
        const char *kinds[] = {"claim", "ok", "reject", "error", "items", "sweep", "spare"};
        for (int k = 0; k < 7; k++) {
            char name[64];
            snprintf (name, sizeof name, "%s_%s", st->service, kinds[k]);
            q->names[k] = strdup (name);
        }
        if (st->scope == NF_SCOPE_VIDEO) {
            q->claim = s_gen_video_claim (st);
            q->ok = s_gen_video_apply (st, NF_REPLY_OK);
            q->reject = s_gen_video_apply (st, NF_REPLY_REJECT);
            q->error = s_gen_video_apply (st, NF_REPLY_ERROR);
            q->sweep = s_gen_sweep ();
        }
        else {
            q->claim = s_gen_job_claim (st);
            q->items = s_gen_job_items (st);
            q->input = s_gen_job_input (st);
            snprintf (q->input_name, sizeof q->input_name, "%s_input", st->service);
            const char *states[16];
            size_t n = nf_stage_barrier (st, states, 16);
            nf_buf_t lit;
            nf_buf_init (&lit);
            nf_buf_puts (&lit, "{");
            for (size_t s = 0; s < n; s++)
                nf_buf_printf (&lit, "%s%s", s ? "," : "", states[s]);
            nf_buf_puts (&lit, "}");
            snprintf (q->barrier, sizeof q->barrier, "%s", lit.data);
            nf_buf_free (&lit);
        }
    }
    self->nstages = count;
    return self;
}

void
nf_store_destroy (nf_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_store_t *self = *self_p;
    for (size_t i = 0; i < self->nstages; i++) {
        s_sql_t *q = &self->sql[i];
        free (q->claim);
        free (q->ok);
        free (q->reject);
        free (q->error);
        free (q->items);
        free (q->sweep);
        free (q->input);
        for (int k = 0; k < 7; k++)
            free (q->names[k]);
    }
    zlistx_destroy (&self->events);
    zlistx_destroy (&self->claims);
    free (self->owner);
    free (self);
    *self_p = NULL;
}

static s_sql_t *
s_sql (nf_store_t *self, const nf_stage_t *stage)
{
    for (size_t i = 0; i < self->nstages; i++)
        if (self->sql[i].stage == stage)
            return &self->sql[i];
    return NULL;
}

const nf_store_stats_t *
nf_store_stats (nf_store_t *self)
{
    return &self->stats;
}

/* ---- job status ------------------------------------------------------------ */

/* Move job JOB_ID to status TO if its current status may move there (per
   the job status table). Emits the event. 1 moved, 0 not, -1 error. */
static int
s_job_status (nf_store_t *self, int64_t job_id, const char *to, const char *reason)
{
    size_t n;
    const char *const *statuses = nf_job_statuses (&n);
    nf_buf_t from;
    nf_buf_init (&from);
    nf_buf_puts (&from, "{");
    for (size_t i = 0; i < n; i++)
        if (nf_job_transition_ok (statuses[i], to))
            nf_buf_printf (&from, "%s%s", from.len > 1 ? "," : "", statuses[i]);
    nf_buf_puts (&from, "}");
    char id[24];
    snprintf (id, sizeof id, "%lld", (long long) job_id);
    const char *params[] = {id, to, reason, from.data};
    PGresult *res = nf_db_exec (
        self->db, "job_status",
        "WITH o AS (SELECT id, status FROM nf_jobs WHERE id = $1::bigint FOR UPDATE), u AS "
        "(UPDATE nf_jobs j SET status = $2, status_reason = coalesce($3, j.status_reason), "
        "updated_at = now(), finished_at = CASE WHEN $2 IN ('completed', 'partial', 'failed', "
        "'cancelled') THEN now() ELSE NULL END FROM o WHERE j.id = o.id AND o.status = "
        "ANY($4::text[]) RETURNING j.id, o.status AS old), h AS (INSERT INTO nf_job_history "
        "(job_id, from_status, to_status, reason) SELECT id, old, $2, $3 FROM u) SELECT old FROM u",
        4, params);
    nf_buf_free (&from);
    if (!res)
        return -1;
    int moved = PQntuples (res);
    if (moved)
        s_event (self, job_id, NULL, PQgetvalue (res, 0, 0), to, "job", reason);
    PQclear (res);
    return moved;
}

/* ---- claims ---------------------------------------------------------------- */

/* Encode a task body into B. JSON texts come from PostgreSQL. */
static void
s_encode_task (nf_buf_t *b, const nf_stage_t *stage, const char *token, int64_t job_id,
               const char *video_id, int attempt, const char *niche, const char *sub_niche,
               const char *options_json, const char *input_json, size_t input_len)
{
    msgpack_packer pk;
    nf_pk_init_buf (&pk, b);
    msgpack_pack_map (&pk, 8);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_str (&pk, "service", stage->service);
    nf_pk_kv_str (&pk, "token", token);
    nf_pk_kv_int (&pk, "job_id", job_id);
    nf_pk_kv_str (&pk, "video_id", video_id);
    nf_pk_kv_int (&pk, "attempt", attempt);
    nf_pk_str (&pk, "job");
    msgpack_pack_map (&pk, 3);
    nf_pk_kv_str (&pk, "niche", niche);
    nf_pk_kv_str (&pk, "sub_niche", sub_niche);
    nf_pk_str (&pk, "options");
    if (nf_json_to_mp (options_json, strlen (options_json), &pk) != 0)
        msgpack_pack_map (&pk, 0);
    nf_pk_str (&pk, "input");
    if (nf_json_to_mp (input_json, input_len, &pk) != 0)
        msgpack_pack_map (&pk, 0);
}

/* Hold a claimed task of W until the transaction commits. */
static void
s_pend (nf_store_t *self, nf_want_t *w, const nf_claim_t *claim)
{
    s_pending_t *p = calloc (1, sizeof *p);
    p->claim = *claim;
    p->want = w;
    zlistx_add_end (self->claims, p);
    w->got++;
}

static int
s_claim_video (nf_store_t *self, s_sql_t *q, nf_want_t *w)
{
    char lim[16];
    snprintf (lim, sizeof lim, "%d", w->want);
    const char *params[] = {q->stage->state_in, self->max_attempts, lim, self->owner,
                            self->lease_ms};
    PGresult *res = nf_db_exec (self->db, q->names[0], q->claim, 5, params);
    if (!res)
        return -1;
    int n = PQntuples (res);
    nf_buf_t b;
    nf_buf_init (&b);
    for (int i = 0; i < n; i++) {
        nf_claim_t claim = {.stage = q->stage};
        snprintf (claim.token, sizeof claim.token, "%s", PQgetvalue (res, i, 0));
        claim.job_id = strtoll (PQgetvalue (res, i, 1), NULL, 10);
        claim.video_id = strdup (PQgetvalue (res, i, 2));
        claim.attempt = atoi (PQgetvalue (res, i, 3));
        nf_buf_reset (&b);
        s_encode_task (&b, q->stage, claim.token, claim.job_id, claim.video_id, claim.attempt,
                       PQgetvalue (res, i, 4), PQgetvalue (res, i, 5), PQgetvalue (res, i, 6),
                       PQgetvalue (res, i, 7), (size_t) PQgetlength (res, i, 7));
        claim.body = zframe_new (b.data, b.len);
        s_pend (self, w, &claim);
    }
    nf_buf_free (&b);
    PQclear (res);
    return 0;
}

static int
s_claim_job (nf_store_t *self, s_sql_t *q, nf_want_t *w)
{
    char lim[16], min_ready[24];
    snprintf (lim, sizeof lim, "%d", w->want);
    snprintf (min_ready, sizeof min_ready, "%lld", (long long) self->opts.min_ready);
    const char *params[] = {q->stage->service, self->max_attempts, q->barrier,         lim,
                            self->owner,       self->lease_ms,     q->stage->state_in, min_ready};
    PGresult *res =
        nf_db_exec (self->db, q->names[0], q->claim, q->stage->needs_min_ready ? 8 : 6, params);
    if (!res)
        return -1;
    int n = PQntuples (res);
    nf_buf_t b;
    nf_buf_init (&b);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int64_t job_id = strtoll (PQgetvalue (res, i, 0), NULL, 10);
        if (strcmp (PQgetvalue (res, i, 3), PQgetvalue (res, i, 4)) != 0)
            s_event (self, job_id, NULL, PQgetvalue (res, i, 3), PQgetvalue (res, i, 4), "job",
                     "stage dispatched");
        nf_claim_t claim = {.stage = q->stage, .job_id = job_id};
        snprintf (claim.token, sizeof claim.token, "%s", PQgetvalue (res, i, 1));
        claim.attempt = atoi (PQgetvalue (res, i, 2));
        const char *iparams[] = {PQgetvalue (res, i, 0), q->stage->state_in};
        PGresult *in = nf_db_exec (self->db, q->input_name, q->input, 2, iparams);
        if (!in) {
            rc = -1; /* the transaction is aborted: nothing of it commits */
            break;
        }
        nf_buf_reset (&b);
        s_encode_task (&b, q->stage, claim.token, claim.job_id, NULL, claim.attempt,
                       PQgetvalue (res, i, 5), PQgetvalue (res, i, 6), PQgetvalue (res, i, 7),
                       PQgetvalue (in, 0, 0), (size_t) PQgetlength (in, 0, 0));
        PQclear (in);
        claim.body = zframe_new (b.data, b.len);
        s_pend (self, w, &claim);
    }
    nf_buf_free (&b);
    PQclear (res);
    return rc;
}

/* Claim what each of WANTS asks, in the open transaction. 0, or -1. */
static int
s_claim_all (nf_store_t *self, nf_want_t *wants, size_t nw)
{
    for (size_t i = 0; i < nw; i++) {
        nf_want_t *w = &wants[i];
        s_sql_t *q = s_sql (self, w->stage);
        if (!q || w->want <= 0)
            continue;
        int64_t t0 = nf_clock_us ();
        int rc = w->stage->scope == NF_SCOPE_VIDEO ? s_claim_video (self, q, w)
                                                   : s_claim_job (self, q, w);
        w->us += nf_clock_us () - t0;
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* After the transaction: hand the held claims to FN (COMMITTED) or drop them. */
static void
s_claims_flush (nf_store_t *self, bool committed, nf_claim_fn *fn)
{
    for (s_pending_t *p = zlistx_first (self->claims); committed && p;
         p = zlistx_next (self->claims)) {
        self->stats.claimed++;
        fn (&p->claim, p->want->arg);
        p->claim.video_id = NULL; /* now the callback's */
        p->claim.body = NULL;
    }
    zlistx_purge (self->claims);
}

int
nf_store_release_owned (nf_store_t *self)
{
    const char *params[] = {self->owner};
    PGresult *a =
        nf_db_exec (self->db, "release_owned_videos",
                    "UPDATE nf_videos SET " LEASE_CLEAR ", attempts = greatest(attempts - 1, 0) "
                    "WHERE lease_owner = $1",
                    1, params);
    PGresult *b =
        a ? nf_db_exec (self->db, "release_owned_jobs",
                        "UPDATE nf_jobs SET " LEASE_CLEAR ", attempts = greatest(attempts - 1, "
                        "0) WHERE lease_owner = $1",
                        1, params)
          : NULL;
    if (a && b && (atoi (PQcmdTuples (a)) || atoi (PQcmdTuples (b))))
        nf_info ("released %s video and %s job leases held by '%s' before a restart",
                 PQcmdTuples (a), PQcmdTuples (b), self->owner);
    int rc = a && b ? 0 : -1;
    PQclear (a);
    PQclear (b);
    return rc;
}

int
nf_store_release_orphans (nf_store_t *self, const char *held)
{
    const char *params[] = {self->owner, held};
    PGresult *res = nf_db_exec (
        self->db, "release_orphans",
        "WITH v AS (UPDATE nf_videos SET " LEASE_CLEAR ", attempts = greatest(attempts - 1, 0) "
        "WHERE lease_owner = $1 AND NOT (lease_token = ANY($2::uuid[])) RETURNING 1), j AS "
        "(UPDATE nf_jobs SET " LEASE_CLEAR ", attempts = greatest(attempts - 1, 0) WHERE "
        "lease_owner = $1 AND NOT (lease_token = ANY($2::uuid[])) RETURNING 1) SELECT (SELECT "
        "count(*) FROM v) + (SELECT count(*) FROM j)",
        2, params);
    if (!res)
        return -1;
    if (atoi (PQgetvalue (res, 0, 0)))
        nf_warn ("released %s leases claimed before the connection was lost",
                 PQgetvalue (res, 0, 0));
    PQclear (res);
    return 0;
}

/* ---- apply ----------------------------------------------------------------- */

/* Check that every column OUTPUT sets for STAGE has the catalog's type, so
   the generated SQL casts cannot fail. 0 or -1 with ERR. */
static int
s_check_fields (const nf_stage_t *stage, const msgpack_object *output, char *err, size_t errlen)
{
    if (!output)
        return 0;
    for (uint32_t i = 0; i < output->via.map.size; i++) {
        const msgpack_object *k = &output->via.map.ptr[i].key;
        const msgpack_object *v = &output->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size >= 64)
            continue;
        char key[64];
        memcpy (key, k->via.str.ptr, k->via.str.size);
        key[k->via.str.size] = 0;
        if (!nf_stage_writes (stage, key))
            continue;
        const nf_column_t *c = nf_column_find (key);
        bool ok = true;
        const char *want = "";
        if (v->type == MSGPACK_OBJECT_NIL)
            continue;
        switch (c->kind) {
        case NF_COL_TEXT:
            ok = v->type == MSGPACK_OBJECT_STR;
            want = "a string";
            break;
        case NF_COL_JSON_MERGE:
            ok = v->type == MSGPACK_OBJECT_MAP;
            want = "a map";
            break;
        case NF_COL_JSON:
            ok = v->type != MSGPACK_OBJECT_BIN && v->type != MSGPACK_OBJECT_EXT;
            want = "a JSON-like value";
            break;
        case NF_COL_REAL: {
            double d = v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64
                           ? v->via.f64
                       : v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double) v->via.u64
                       : v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double) v->via.i64
                                                                    : NAN;
            ok = isfinite (d) && fabs (d) < 1e30;
            want = "a finite number below 1e30";
            break;
        }
        case NF_COL_INT:
            ok = (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT32_MAX)
                 || (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && v->via.i64 >= INT32_MIN);
            want = "a 32-bit integer";
            break;
        }
        if (!ok) {
            snprintf (err, errlen, "invalid reply: field '%s' must be %s", key, want);
            return -1;
        }
    }
    return 0;
}

/* Turn O into a permanent error with MESSAGE (its output dropped). */
static void
s_make_error (nf_outcome_t *o, const char *message)
{
    free (o->text);
    o->text = strdup (message);
    o->status = NF_REPLY_ERROR;
    o->retryable = false;
    o->output = NULL;
}

/* Append one video outcome to the JSON batch B. */
static void
s_batch_row (nf_store_t *self, nf_buf_t *b, nf_outcome_t *o)
{
    char err[256];
    nf_buf_puts (b, b->len > 1 ? ",{" : "{");
    nf_buf_printf (b, "\"job_id\":%lld,\"video_id\":", (long long) o->job_id);
    nf_buf_json_str (b, o->video_id, strlen (o->video_id));
    nf_buf_printf (b, ",\"token\":\"%s\",\"attempt\":%d", o->token, o->attempt);
    if (o->text) {
        nf_buf_puts (b, ",\"text\":");
        nf_buf_json_str (b, o->text, strlen (o->text) > 4000 ? 4000 : strlen (o->text));
    }
    if (o->status == NF_REPLY_ERROR) {
        double r = (double) rand () / ((double) RAND_MAX + 1.0);
        nf_buf_printf (b, ",\"perm\":%s,\"delay_ms\":%lld", o->retryable ? "false" : "true",
                       (long long) nf_backoff_ms (o->attempt, self->opts.retry_base_ms,
                                                  self->opts.retry_max_ms, r));
    }
    if (o->output) {
        size_t mark = b->len;
        nf_buf_puts (b, ",\"o\":");
        if (nf_mp_to_json (o->output, b, err, sizeof err) != 0) {
            b->len = mark; /* drop the half-written output */
            b->data[mark] = 0;
        }
    }
    nf_buf_puts (b, "}");
}

/* Apply the video outcomes of STAGE with status KIND from LIST in one statement. */
static int
s_apply_video_kind (nf_store_t *self, s_sql_t *q, nf_reply_status_t kind, nf_outcome_t **list,
                    size_t n)
{
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_puts (&b, "[");
    size_t rows = 0;
    for (size_t i = 0; i < n; i++)
        if (list[i] && list[i]->stage == q->stage && list[i]->video_id && list[i]->status == kind) {
            s_batch_row (self, &b, list[i]);
            rows++;
        }
    nf_buf_puts (&b, "]");
    if (!rows) {
        nf_buf_free (&b);
        return 0;
    }
    const char *params[4] = {b.data, q->stage->state_in, q->stage->service,
                             kind == NF_REPLY_OK ? q->stage->state_out : self->max_attempts};
    int which = kind == NF_REPLY_OK ? 1 : kind == NF_REPLY_REJECT ? 2 : 3;
    const char *sql = kind == NF_REPLY_OK ? q->ok : kind == NF_REPLY_REJECT ? q->reject : q->error;
    PGresult *res =
        nf_db_exec (self->db, q->names[which], sql, kind == NF_REPLY_REJECT ? 3 : 4, params);
    nf_buf_free (&b);
    if (!res)
        return -1;
    int applied = PQntuples (res);
    for (int i = 0; i < applied; i++)
        s_event (self, strtoll (PQgetvalue (res, i, 0), NULL, 10), PQgetvalue (res, i, 1),
                 q->stage->state_in, PQgetvalue (res, i, 2), q->stage->service,
                 PQgetisnull (res, i, 3) ? NULL : PQgetvalue (res, i, 3));
    self->stats.applied += (uint64_t) applied;
    self->stats.fenced += rows - (size_t) applied;
    if (rows > (size_t) applied)
        nf_info ("%s: %zu of %zu replies fenced (lease expired or released)", q->stage->service,
                 rows - (size_t) applied, rows);
    PQclear (res);
    return 0;
}

/* Append O's usage counters to ARR ("[job,q,h,t,s],..."), if it has any. */
static void
s_usage_add (nf_buf_t *arr, const nf_outcome_t *o)
{
    if (!o->usage)
        return;
    static const char *const keys[] = {"quota_units", "http_requests", "tokens", "search_calls"};
    int64_t u[4] = {0, 0, 0, 0};
    bool any = false;
    for (int k = 0; k < 4; k++) {
        nf_mp_get_int (o->usage, keys[k], &u[k]);
        u[k] = u[k] > 0 && u[k] < INT32_MAX ? u[k] : 0;
        any |= u[k] != 0;
    }
    if (any)
        nf_buf_printf (arr, "%s[%lld,%lld,%lld,%lld,%lld]", arr->len ? "," : "",
                       (long long) o->job_id, (long long) u[0], (long long) u[1], (long long) u[2],
                       (long long) u[3]);
}

/* Add the usage counters gathered in ARR to their jobs: one statement per
   batch, not one per reply. */
static int
s_apply_usage (nf_store_t *self, nf_buf_t *arr)
{
    if (!arr->len)
        return 0;
    nf_buf_t doc;
    nf_buf_init (&doc);
    nf_buf_printf (&doc, "[%s]", arr->data);
    const char *params[] = {doc.data};
    PGresult *res = nf_db_exec (
        self->db, "job_usage",
        "UPDATE nf_jobs j SET quota_units = quota_units + x.q, http_requests = http_requests + "
        "x.h, tokens = tokens + x.t, search_calls = search_calls + x.s FROM (SELECT "
        "(e->>0)::bigint "
        "AS id, sum((e->>1)::bigint) AS q, sum((e->>2)::bigint) AS h, sum((e->>3)::bigint) AS t, "
        "sum(coalesce((e->>4)::bigint, 0)) AS s FROM jsonb_array_elements($1::jsonb) e GROUP BY 1) "
        "x WHERE j.id = x.id",
        1, params);
    nf_buf_free (&doc);
    PQclear (res);
    return res ? 0 : -1;
}

/* Validate the items of a job reply. */
static int
s_check_items (const nf_stage_t *stage, const msgpack_object *items, char *err, size_t errlen)
{
    if (!items)
        return 0;
    if (items->type != MSGPACK_OBJECT_ARRAY) {
        snprintf (err, errlen, "invalid reply: 'videos' must be an array");
        return -1;
    }
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        const msgpack_object *it = &items->via.array.ptr[i];
        const char *id;
        size_t len;
        if (it->type != MSGPACK_OBJECT_MAP || !nf_mp_get_str (it, "video_id", &id, &len) || len == 0
            || len > 128) {
            snprintf (err, errlen,
                      "invalid reply: videos[%u] needs a 'video_id' string of 1 to 128 bytes", i);
            return -1;
        }
        const msgpack_object *st = nf_mp_get (it, "status");
        if (st && !nf_mp_is_str (st, "ok") && !nf_mp_is_str (st, "keep")
            && !nf_mp_is_str (st, "reject")) {
            snprintf (err, errlen, "invalid reply: videos[%u].status must be ok, keep or reject",
                      i);
            return -1;
        }
        if (s_check_fields (stage, it, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int
s_apply_files (nf_store_t *self, nf_outcome_t *o, const msgpack_object *files)
{
    if (!files || files->type != MSGPACK_OBJECT_MAP)
        return 0;
    char id[24];
    snprintf (id, sizeof id, "%lld", (long long) o->job_id);
    for (uint32_t i = 0; i < files->via.map.size; i++) {
        const msgpack_object *k = &files->via.map.ptr[i].key;
        const msgpack_object *v = &files->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0 || k->via.str.size > 16)
            continue;
        const char *data = v->type == MSGPACK_OBJECT_BIN   ? v->via.bin.ptr
                           : v->type == MSGPACK_OBJECT_STR ? v->via.str.ptr
                                                           : NULL;
        size_t len = v->type == MSGPACK_OBJECT_BIN   ? v->via.bin.size
                     : v->type == MSGPACK_OBJECT_STR ? v->via.str.size
                                                     : 0;
        if (!data)
            continue;
        char format[17];
        memcpy (format, k->via.str.ptr, k->via.str.size);
        format[k->via.str.size] = 0;
        nf_buf_t hex;
        nf_buf_init (&hex);
        nf_buf_puts (&hex, "\\x");
        static const char digits[] = "0123456789abcdef";
        for (size_t j = 0; j < len; j++) {
            char pair[2] = {digits[(unsigned char) data[j] >> 4], digits[data[j] & 15]};
            nf_buf_append (&hex, pair, 2);
        }
        nf_buf_t fmt;
        nf_buf_init (&fmt);
        nf_buf_utf8_repair (&fmt, format, strlen (format));
        const char *params[] = {id, fmt.data, hex.data};
        PGresult *res = nf_db_exec (self->db, "export_store",
                                    "INSERT INTO nf_exports (job_id, format, content) VALUES "
                                    "($1::bigint, $2, $3::bytea) ON CONFLICT (job_id, format) DO "
                                    "UPDATE SET content = EXCLUDED.content, created_at = now()",
                                    3, params);
        nf_buf_free (&hex);
        nf_buf_free (&fmt);
        if (!res)
            return -1;
        PQclear (res);
    }
    return 0;
}

static int
s_apply_channels (nf_store_t *self, const msgpack_object *channels)
{
    if (!channels || channels->type != MSGPACK_OBJECT_ARRAY || channels->via.array.size == 0)
        return 0;
    nf_buf_t b;
    nf_buf_init (&b);
    char err[128];
    if (nf_mp_to_json (channels, &b, err, sizeof err) != 0) {
        nf_buf_free (&b);
        return 0;
    }
    const char *params[] = {b.data};
    PGresult *res = nf_db_exec (
        self->db, "channels_upsert",
        "INSERT INTO nf_channels (channel_id, data, updated_at) SELECT DISTINCT ON "
        "(x->>'channel_id') x->>'channel_id', x, now() FROM jsonb_array_elements($1::jsonb) x "
        "WHERE jsonb_typeof(x->'channel_id') = 'string' ON CONFLICT (channel_id) DO UPDATE SET "
        "data = EXCLUDED.data, updated_at = now()",
        1, params);
    nf_buf_free (&b);
    PQclear (res);
    return res ? 0 : -1;
}

/* Apply a job-scope outcome. */
static int
s_apply_job (nf_store_t *self, nf_outcome_t *o)
{
    s_sql_t *q = s_sql (self, o->stage);
    char id[24], attempt[16];
    snprintf (id, sizeof id, "%lld", (long long) o->job_id);
    snprintf (attempt, sizeof attempt, "%d", o->attempt);
    const nf_stage_t *next = nf_stage_next_job (o->stage);
    const char *next_phase = next ? next->service : NF_PHASE_DONE;
    char err[256];
    const msgpack_object *items = o->output ? nf_mp_get (o->output, "videos") : NULL;
    if (o->status == NF_REPLY_OK && s_check_items (o->stage, items, err, sizeof err) != 0)
        s_make_error (o, err);
    if (o->status != NF_REPLY_OK) {
        double r = (double) rand () / ((double) RAND_MAX + 1.0);
        char delay[24];
        snprintf (delay, sizeof delay, "%lld",
                  (long long) nf_backoff_ms (o->attempt, self->opts.retry_base_ms,
                                             self->opts.retry_max_ms, r));
        bool permanent = o->status == NF_REPLY_REJECT || !o->retryable;
        const char *params[] = {id,
                                o->token,
                                o->text ? o->text : "",
                                delay,
                                self->max_attempts,
                                permanent ? "true" : "false",
                                o->stage->service};
        PGresult *res = nf_db_exec (
            self->db, "job_error",
            "WITH o AS (SELECT id, attempts FROM nf_jobs WHERE id = $1::bigint AND lease_token = "
            "$2::uuid AND lease_expires >= now() FOR UPDATE), u AS (UPDATE nf_jobs j "
            "SET " LEASE_CLEAR
            ", last_error = $3, next_attempt_at = now() + make_interval(secs => $4::float8 / "
            "1000), updated_at = now() FROM o WHERE j.id = o.id RETURNING j.id, (o.attempts >= "
            "$5::int OR $6::boolean) AS exhausted), l AS (INSERT INTO nf_processing_log (module, "
            "job_id, level, message) SELECT $7, id, 'error', $3 FROM u) SELECT exhausted FROM u",
            7, params);
        if (!res)
            return -1;
        bool applied = PQntuples (res) == 1;
        bool exhausted = applied && PQgetvalue (res, 0, 0)[0] == 't';
        PQclear (res);
        if (!applied) {
            self->stats.fenced++;
            return 0;
        }
        self->stats.applied++;
        if (exhausted) {
            char reason[600];
            snprintf (reason, sizeof reason, "stage %s failed: %.500s", o->stage->service,
                      o->text ? o->text : "");
            if (s_job_status (self, o->job_id, "failed", reason) < 0)
                return -1;
        }
        return 0;
    }
    const char *params[] = {id, o->token, o->stage->service, next_phase};
    PGresult *res = nf_db_exec (
        self->db, "job_advance",
        "WITH o AS (SELECT id, status FROM nf_jobs WHERE id = $1::bigint AND lease_token = "
        "$2::uuid AND lease_expires >= now() AND phase = $3 FOR UPDATE), u AS (UPDATE nf_jobs j "
        "SET phase = $4, attempts = 0, last_error = NULL, " LEASE_CLEAR ", updated_at = now() "
        "FROM o WHERE j.id = o.id RETURNING j.id, j.status, j.target) SELECT status, target FROM u",
        4, params);
    if (!res)
        return -1;
    if (PQntuples (res) != 1) {
        PQclear (res);
        self->stats.fenced++;
        nf_info ("%s: reply for job %lld fenced (lease expired or released)", o->stage->service,
                 (long long) o->job_id);
        return 0;
    }
    char status[32];
    snprintf (status, sizeof status, "%s", PQgetvalue (res, 0, 0));
    int target = atoi (PQgetvalue (res, 0, 1));
    PQclear (res);
    self->stats.applied++;
    if (items && items->via.array.size > 0) {
        nf_buf_t b;
        nf_buf_init (&b);
        if (nf_mp_to_json (items, &b, err, sizeof err) != 0) {
            nf_buf_free (&b);
            return -2; /* isolated by the caller */
        }
        /* Creating stages take (job, items, state_out, service, attempt);
           the others (job, items, state_out, state_in, service, attempt). */
        const char *create[] = {id, b.data, o->stage->state_out, o->stage->service, attempt};
        const char *update[] = {
            id, b.data, o->stage->state_out, o->stage->state_in, o->stage->service, attempt};
        PGresult *ir = o->stage->state_in ? nf_db_exec (self->db, q->names[4], q->items, 6, update)
                                          : nf_db_exec (self->db, q->names[4], q->items, 5, create);
        nf_buf_free (&b);
        if (!ir)
            return -1;
        for (int i = 0; i < PQntuples (ir); i++)
            if (!o->stage->state_in || strcmp (PQgetvalue (ir, i, 1), o->stage->state_in) != 0)
                s_event (self, o->job_id, PQgetvalue (ir, i, 0), o->stage->state_in,
                         PQgetvalue (ir, i, 1), o->stage->service, NULL);
        PQclear (ir);
    }
    if (o->output
        && (s_apply_channels (self, nf_mp_get (o->output, "channels")) != 0
            || s_apply_files (self, o, nf_mp_get (o->output, "files")) != 0))
        return -1;
    /* A job stage may say why it did less than asked ("quotaExceeded: ..."):
       kept in processing_log and as the reason of the job's next status. */
    char note[512] = "";
    const char *nt = NULL;
    size_t nt_len = 0;
    if (o->output && nf_mp_get_str (o->output, "note", &nt, &nt_len) && nt_len > 0) {
        nf_buf_t b;
        nf_buf_init (&b);
        nf_buf_utf8_repair (&b, nt, nt_len < 500 ? nt_len : 500);
        snprintf (note, sizeof note, "%s", b.data ? b.data : "");
        nf_buf_free (&b);
        const char *lp[] = {o->stage->service, id, note};
        PGresult *lr = nf_db_exec (self->db, "job_note",
                                   "INSERT INTO nf_processing_log (module, job_id, level, message) "
                                   "VALUES ($1, $2::bigint, 'warn', $3)",
                                   3, lp);
        if (!lr)
            return -1;
        PQclear (lr);
    }
    if (strcmp (status, "running") == 0
        && s_job_status (self, o->job_id, "processing", note[0] ? note : "discovery done") < 0)
        return -1;
    if (!next) {
        /* The last job stage: completed when the target was reached. */
        const char *cp[] = {id, o->stage->state_out};
        PGresult *cr = nf_db_exec (self->db, "job_count_state",
                                   "SELECT count(*) FROM nf_videos WHERE job_id = $1::bigint AND "
                                   "state = $2",
                                   2, cp);
        if (!cr)
            return -1;
        int done = atoi (PQgetvalue (cr, 0, 0));
        PQclear (cr);
        char reason[128];
        snprintf (reason, sizeof reason, "%d of %d outliers delivered", done, target);
        if (s_job_status (self, o->job_id, done >= target ? "completed" : "partial", reason) < 0)
            return -1;
    }
    return 0;
}

/* The per-video statements of a cycle read a few rows each by an index.
   With bitmap scans, hash and merge joins off, the planner keeps them on
   those paths whatever the statistics say: a fresh or fast-growing table
   has none or stale ones, and a generic plan cannot see how many rows a
   batch or a LIMIT holds. A job stage's reply updates thousands of one
   job's videos at once: PLAN_DEFAULT for those statements. */
#define PLAN_LOOKUPS                                                                 \
    "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL " \
    "enable_mergejoin = off"
#define PLAN_DEFAULT                                                                           \
    "SET LOCAL enable_bitmapscan TO DEFAULT; SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL " \
    "enable_mergejoin TO DEFAULT"

/* Everything of one transaction; -1 transient, -2 a data error. */
static int
s_apply_all (nf_store_t *self, nf_outcome_t **list, size_t n, const nf_release_t *releases,
             size_t r)
{
    for (size_t i = 0; i < r; i++) {
        const char *params[] = {releases[i].token, releases[i].undelivered ? "true" : "false"};
        PGresult *res = nf_db_exec (
            self->db, "release",
            "WITH v AS (UPDATE nf_videos SET " LEASE_CLEAR ", attempts = CASE WHEN $2::boolean "
            "THEN greatest(attempts - 1, 0) ELSE attempts END, last_error = CASE WHEN "
            "$2::boolean THEN last_error ELSE 'worker lost while holding the task' END WHERE "
            "lease_token = $1::uuid RETURNING 1), j AS (UPDATE nf_jobs SET " LEASE_CLEAR
            ", attempts = CASE WHEN $2::boolean THEN greatest(attempts - 1, 0) ELSE attempts END, "
            "last_error = CASE WHEN $2::boolean THEN last_error ELSE 'worker lost while holding "
            "the task' END WHERE lease_token = $1::uuid RETURNING 1) SELECT (SELECT count(*) FROM "
            "v) + (SELECT count(*) FROM j)",
            2, params);
        if (!res)
            return nf_db_error_transient (self->db) ? -1 : -2;
        PQclear (res);
    }
    for (size_t i = 0; i < self->nstages; i++) {
        s_sql_t *q = &self->sql[i];
        if (q->stage->scope != NF_SCOPE_VIDEO)
            continue;
        for (int k = NF_REPLY_OK; k <= NF_REPLY_ERROR; k++)
            if (s_apply_video_kind (self, q, (nf_reply_status_t) k, list, n) != 0)
                return nf_db_error_transient (self->db) ? -1 : -2;
    }
    nf_buf_t usage;
    nf_buf_init (&usage);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!list[i])
            continue;
        if (!list[i]->video_id) {
            rc = nf_db_command (self->db, PLAN_DEFAULT) != 0 ? -1 : s_apply_job (self, list[i]);
            if (rc == 0 && nf_db_command (self->db, PLAN_LOOKUPS) != 0)
                rc = -1;
        }
        s_usage_add (&usage, list[i]);
    }
    if (rc == 0)
        rc = s_apply_usage (self, &usage);
    nf_buf_free (&usage);
    if (rc != 0)
        return rc == -2 || !nf_db_error_transient (self->db) ? -2 : -1;
    return 0;
}

/* One transaction: releases, outcomes, then claims (which see the
   transitions just applied). 0 committed, -1 transient, -2 a data error. */
static int
s_transaction (nf_store_t *self, nf_outcome_t **list, size_t n, const nf_release_t *releases,
               size_t r, nf_want_t *wants, size_t nw, nf_claim_fn *fn)
{
    for (size_t i = 0; i < nw; i++) {
        wants[i].got = 0;
        wants[i].us = 0;
    }
    if (nf_db_command (self->db, "BEGIN; " PLAN_LOOKUPS) != 0)
        return -1;
    int rc = s_apply_all (self, list, n, releases, r);
    if (rc == 0 && s_claim_all (self, wants, nw) != 0)
        rc = nf_db_error_transient (self->db) ? -1 : -2;
    if (rc == 0 && nf_db_commit (self->db) != 0)
        rc = nf_db_error_transient (self->db) ? -1 : -2;
    if (rc != 0)
        nf_db_rollback (self->db);
    else
        self->stats.transactions++;
    s_events_flush (self, rc == 0);
    s_claims_flush (self, rc == 0, fn);
    if (rc != 0)
        for (size_t i = 0; i < nw; i++)
            wants[i].got = -1;
    return rc;
}

int
nf_store_cycle (nf_store_t *self, nf_outcome_t **outcomes, size_t n, const nf_release_t *releases,
                size_t r, nf_want_t *wants, size_t nw, nf_claim_fn *fn)
{
    char err[256];
    /* Replies whose fields have the wrong type become permanent errors up
       front, so the generated casts in SQL cannot fail. */
    for (size_t i = 0; i < n; i++) {
        nf_outcome_t *o = outcomes[i];
        if (o->status != NF_REPLY_ERROR && o->video_id
            && s_check_fields (o->stage, o->output, err, sizeof err) != 0) {
            nf_warn ("%s job %lld video %s: %s", o->stage->service, (long long) o->job_id,
                     o->video_id, err);
            s_make_error (o, err);
        }
    }
    nf_store_stats_t before = self->stats;
    int rc = s_transaction (self, outcomes, n, releases, r, wants, nw, fn);
    if (rc != -2)
        return rc;
    /* A data error: isolate. Each outcome alone; one the database refuses
       is stored as a permanent error of its task instead. The claims come
       last, in a transaction of their own. */
    self->stats = before;
    nf_warn ("batch refused by the database (%s); applying %zu replies one by one",
             nf_db_error (self->db), n);
    if (r && s_transaction (self, NULL, 0, releases, r, NULL, 0, fn) == -1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        nf_outcome_t *one[1] = {outcomes[i]};
        rc = s_transaction (self, one, 1, NULL, 0, NULL, 0, fn);
        if (rc == -1)
            return -1;
        if (rc == -2) {
            snprintf (err, sizeof err, "result could not be stored: %.200s",
                      nf_db_error (self->db));
            nf_error ("%s job %lld video %s: %s", outcomes[i]->stage->service,
                      (long long) outcomes[i]->job_id,
                      outcomes[i]->video_id ? outcomes[i]->video_id : "-", err);
            s_make_error (outcomes[i], err);
            self->stats.isolated++;
            if (s_transaction (self, one, 1, NULL, 0, NULL, 0, fn) == -1)
                return -1;
        }
    }
    if (nw && s_transaction (self, NULL, 0, NULL, 0, wants, nw, fn) == -2)
        nf_warn ("claims refused by the database: %s", nf_db_error (self->db));
    return 0;
}

/* ---- scheduler tick ------------------------------------------------------- */

/* Run a statement whose rows are (job_id) moved FROM -> TO; emit events. */
static int
s_tick_moves (nf_store_t *self, const char *name, const char *sql, int nparams,
              const char *const *params, const char *from, const char *to, const char *reason)
{
    PGresult *res = nf_db_exec (self->db, name, sql, nparams, params);
    if (!res)
        return -1;
    for (int i = 0; i < PQntuples (res); i++)
        s_event (self, strtoll (PQgetvalue (res, i, 0), NULL, 10), NULL, from, to, "job", reason);
    PQclear (res);
    s_events_flush (self, true);
    return 0;
}

int
nf_store_tick (nf_store_t *self)
{
    if (s_tick_moves (self, "tick_cancelled",
                      "WITH u AS (UPDATE nf_jobs SET status = 'cancelled', finished_at = now(), "
                      "updated_at = now(), " LEASE_CLEAR " WHERE status = 'cancelling' RETURNING "
                      "id), h AS (INSERT INTO nf_job_history (job_id, from_status, to_status, "
                      "reason) SELECT id, 'cancelling', 'cancelled', 'in-flight work dropped' "
                      "FROM u) SELECT id FROM u",
                      0, NULL, "cancelling", "cancelled", "in-flight work dropped")
        != 0)
        return -1;
    char active[24];
    snprintf (active, sizeof active, "%lld", (long long) self->opts.max_active_jobs);
    const char *ap[] = {active};
    if (s_tick_moves (self, "tick_admit",
                      "WITH a AS (SELECT id FROM nf_jobs WHERE status = 'pending' ORDER BY "
                      "priority, id LIMIT greatest($1::int - (SELECT count(*) FROM nf_jobs WHERE "
                      "status IN ('queued', 'running', 'processing', 'cancelling')), 0) FOR "
                      "UPDATE SKIP LOCKED), u AS (UPDATE nf_jobs j SET status = 'queued', "
                      "updated_at = now() FROM a WHERE j.id = a.id RETURNING j.id), h AS (INSERT "
                      "INTO nf_job_history (job_id, from_status, to_status, reason) SELECT id, "
                      "'pending', 'queued', 'admitted' FROM u) SELECT id FROM u",
                      1, ap, "pending", "queued", "admitted")
        != 0)
        return -1;
    for (size_t i = 0; i < self->nstages; i++) {
        s_sql_t *q = &self->sql[i];
        if (q->stage->scope == NF_SCOPE_VIDEO) {
            /* Attempts exhausted without a reply (a worker crashing on it). */
            const char *params[] = {q->stage->state_in, self->max_attempts, q->stage->service};
            PGresult *res = nf_db_exec (self->db, q->names[5], q->sweep, 3, params);
            if (!res)
                return -1;
            for (int r = 0; r < PQntuples (res); r++)
                s_event (self, strtoll (PQgetvalue (res, r, 0), NULL, 10), PQgetvalue (res, r, 1),
                         q->stage->state_in, NF_STATE_FAILED, q->stage->service,
                         PQgetvalue (res, r, 2));
            PQclear (res);
            s_events_flush (self, true);
        }
        else if (q->stage->needs_min_ready) {
            char min_ready[24];
            snprintf (min_ready, sizeof min_ready, "%lld", (long long) self->opts.min_ready);
            const char *params[] = {q->stage->service, q->stage->state_in, q->barrier, min_ready};
            PGresult *res = nf_db_exec (
                self->db, "tick_too_few",
                "SELECT j.id, (SELECT count(*) FROM nf_videos v WHERE v.job_id = j.id AND v.state "
                "= $2) FROM nf_jobs j WHERE j.phase = $1 AND j.status IN ('queued', 'running', "
                "'processing') AND NOT EXISTS (SELECT 1 FROM nf_videos v WHERE v.job_id = j.id "
                "AND v.state = ANY($3::text[])) AND (SELECT count(*) FROM nf_videos v WHERE "
                "v.job_id = j.id AND v.state = $2) < $4::int",
                4, params);
            if (!res)
                return -1;
            for (int r = 0; r < PQntuples (res); r++) {
                char reason[200];
                snprintf (reason, sizeof reason,
                          "only %s videos %s, at least %lld needed; nf.retry re-runs its FAILED "
                          "videos",
                          PQgetvalue (res, r, 1), q->stage->state_in,
                          (long long) self->opts.min_ready);
                s_job_status (self, strtoll (PQgetvalue (res, r, 0), NULL, 10), "failed", reason);
            }
            PQclear (res);
            s_events_flush (self, true);
        }
    }
    /* Job stages whose attempts ran out without a reply. */
    const char *xp[] = {self->max_attempts};
    PGresult *res = nf_db_exec (self->db, "tick_job_exhausted",
                                "SELECT id, phase, coalesce(last_error, 'attempts exhausted') "
                                "FROM nf_jobs WHERE status IN ('queued', 'running', "
                                "'processing') AND attempts >= $1::int AND (lease_token IS NULL "
                                "OR lease_expires < now())",
                                1, xp);
    if (!res)
        return -1;
    for (int r = 0; r < PQntuples (res); r++) {
        char reason[600];
        snprintf (reason, sizeof reason, "stage %s failed: %.500s", PQgetvalue (res, r, 1),
                  PQgetvalue (res, r, 2));
        s_job_status (self, strtoll (PQgetvalue (res, r, 0), NULL, 10), "failed", reason);
    }
    PQclear (res);
    s_events_flush (self, true);
    return 0;
}

int
nf_store_waiting (nf_store_t *self, nf_waiting_fn *fn, void *arg)
{
    PGresult *res = nf_db_exec (
        self->db, "waiting",
        "SELECT 'v', v.state, count(*) FROM nf_videos v JOIN nf_jobs j ON j.id = v.job_id WHERE "
        "j.status IN ('running', 'processing') AND v.next_attempt_at <= now() AND "
        "(v.lease_token IS NULL OR v.lease_expires < now()) GROUP BY v.state UNION ALL SELECT "
        "'j', phase, count(*) FROM nf_jobs WHERE status IN ('queued', 'running', 'processing') "
        "AND next_attempt_at <= now() AND (lease_token IS NULL OR lease_expires < now()) GROUP "
        "BY phase",
        0, NULL);
    if (!res)
        return -1;
    size_t nst;
    const nf_stage_t *stages = nf_stages (&nst);
    for (int r = 0; r < PQntuples (res); r++) {
        const char *what = PQgetvalue (res, r, 1);
        int64_t n = strtoll (PQgetvalue (res, r, 2), NULL, 10);
        bool video = PQgetvalue (res, r, 0)[0] == 'v';
        for (size_t s = 0; s < nst; s++)
            if (video ? stages[s].scope == NF_SCOPE_VIDEO && stages[s].state_in
                            && strcmp (stages[s].state_in, what) == 0
                      : stages[s].scope == NF_SCOPE_JOB && strcmp (stages[s].service, what) == 0)
                fn (stages[s].service, n, arg);
    }
    PQclear (res);
    return 0;
}

/* ---- client services ------------------------------------------------------ */

/* Reply {v, ok: true, <key>: <json>} for each of N (key, json) pairs. */
static void
s_reply_json (nf_buf_t *reply, int n, const char *const *keys, const char *const *jsons)
{
    msgpack_packer pk;
    nf_pk_init_buf (&pk, reply);
    msgpack_pack_map (&pk, (size_t) n + 2);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_bool (&pk, "ok", true);
    for (int i = 0; i < n; i++) {
        nf_pk_str (&pk, keys[i]);
        if (nf_json_to_mp (jsons[i], strlen (jsons[i]), &pk) != 0)
            msgpack_pack_nil (&pk);
    }
}

/* Check one text field: present (when REQUIRED), a UTF-8 string of at most
   MAX bytes with no control characters. Appends to ERRORS on failure. */
static const char *
s_text_field (const msgpack_object *req, const char *key, bool required, size_t max,
              nf_buf_t *errors, size_t *len_out)
{
    const msgpack_object *o = nf_mp_get (req, key);
    *len_out = 0;
    if (!o || o->type == MSGPACK_OBJECT_NIL) {
        if (required)
            nf_buf_printf (errors, "%s%s: missing", errors->len ? "; " : "", key);
        return required ? NULL : "";
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        nf_buf_printf (errors, "%s%s: must be a string", errors->len ? "; " : "", key);
        return NULL;
    }
    const char *s = o->via.str.ptr;
    size_t n = o->via.str.size;
    while (n && isspace ((unsigned char) *s))
        s++, n--;
    while (n && isspace ((unsigned char) s[n - 1]))
        n--;
    if (required && n == 0) {
        nf_buf_printf (errors, "%s%s: empty", errors->len ? "; " : "", key);
        return NULL;
    }
    if (n > max) {
        nf_buf_printf (errors, "%s%s: %zu bytes long, at most %zu allowed", errors->len ? "; " : "",
                       key, n, max);
        return NULL;
    }
    if (!nf_utf8_valid (s, n)) {
        nf_buf_printf (errors, "%s%s: not valid UTF-8", errors->len ? "; " : "", key);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            nf_buf_printf (errors, "%s%s: contains control characters", errors->len ? "; " : "",
                           key);
            return NULL;
        }
    *len_out = n;
    return s;
}

static int
s_submit (nf_store_t *self, const msgpack_object *req, nf_buf_t *reply)
{
    nf_buf_t errors, options;
    nf_buf_init (&errors);
    nf_buf_init (&options);
    size_t niche_len, sub_len, prio_len;
    const char *niche = s_text_field (req, "niche", true, 200, &errors, &niche_len);
    const char *sub = s_text_field (req, "sub_niche", false, 200, &errors, &sub_len);
    const char *prio = s_text_field (req, "priority", false, 16, &errors, &prio_len);
    int priority = 1;
    if (prio && prio_len) {
        char name[17];
        memcpy (name, prio, prio_len);
        name[prio_len] = 0;
        priority = nf_priority_parse (name);
        if (priority < 0)
            nf_buf_printf (&errors,
                           "%spriority: '%s' is not one of high, standard, bulk, "
                           "background",
                           errors.len ? "; " : "", name);
    }
    int64_t count = 50, top_n = 10;
    nf_buf_puts (&options, "{");
    const msgpack_object *opts = nf_mp_get (req, "options");
    if (opts && opts->type != MSGPACK_OBJECT_MAP && opts->type != MSGPACK_OBJECT_NIL)
        nf_buf_printf (&errors, "%soptions: must be a map", errors.len ? "; " : "");
    for (uint32_t i = 0; opts && opts->type == MSGPACK_OBJECT_MAP && i < opts->via.map.size; i++) {
        const msgpack_object *k = &opts->via.map.ptr[i].key;
        const msgpack_object *v = &opts->via.map.ptr[i].val;
        const nf_jobopt_t *def =
            k->type == MSGPACK_OBJECT_STR ? nf_jobopt_find (k->via.str.ptr, k->via.str.size) : NULL;
        if (!def) {
            nf_buf_printf (&errors, "%soptions: unknown option ", errors.len ? "; " : "");
            if (k->type == MSGPACK_OBJECT_STR)
                nf_buf_json_str (&errors, k->via.str.ptr,
                                 k->via.str.size > 40 ? 40 : k->via.str.size);
            continue;
        }
        if (v->type == MSGPACK_OBJECT_NIL)
            continue;
        bool ok;
        if (def->is_int) {
            int64_t x = 0;
            ok = (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX
                  && (x = (int64_t) v->via.u64, true))
                 || (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && (x = v->via.i64, true));
            ok = ok && x >= def->min && x <= def->max;
            if (ok) {
                nf_buf_printf (&options, "%s\"%s\":%lld", options.len > 1 ? "," : "", def->key,
                               (long long) x);
                if (strcmp (def->key, "count") == 0)
                    count = x;
                if (strcmp (def->key, "top_n") == 0)
                    top_n = x;
            }
        }
        else {
            ok = v->type == MSGPACK_OBJECT_STR
                 && nf_jobopt_str_ok (def, v->via.str.ptr, v->via.str.size);
            if (ok) {
                nf_buf_printf (&options, "%s\"%s\":", options.len > 1 ? "," : "", def->key);
                nf_buf_json_str (&options, v->via.str.ptr, v->via.str.size);
            }
        }
        if (!ok)
            nf_buf_printf (&errors, "%soptions.%s: must be %s", errors.len ? "; " : "", def->key,
                           def->want);
    }
    const msgpack_object *src =
        opts && opts->type == MSGPACK_OBJECT_MAP ? nf_mp_get (opts, "source") : NULL;
    if (src && src->type == MSGPACK_OBJECT_STR
        && nf_jobopt_str_ok (nf_jobopt_find ("source", 6), src->via.str.ptr, src->via.str.size)
        && !nf_word_in (self->opts.sources, src->via.str.ptr, src->via.str.size))
        nf_buf_printf (&errors, "%soptions.source: unknown source '%.*s' (this broker accepts: %s)",
                       errors.len ? "; " : "", (int) src->via.str.size, src->via.str.ptr,
                       self->opts.sources);
    const msgpack_object *since =
        opts && opts->type == MSGPACK_OBJECT_MAP ? nf_mp_get (opts, "since") : NULL;
    const msgpack_object *until =
        opts && opts->type == MSGPACK_OBJECT_MAP ? nf_mp_get (opts, "until") : NULL;
    if (since && until && since->type == MSGPACK_OBJECT_STR && until->type == MSGPACK_OBJECT_STR
        && nf_date_ok (since->via.str.ptr, since->via.str.size)
        && nf_date_ok (until->via.str.ptr, until->via.str.size)
        && memcmp (since->via.str.ptr, until->via.str.ptr, 10) > 0)
        nf_buf_printf (&errors, "%soptions.since: %.10s is after until %.10s",
                       errors.len ? "; " : "", since->via.str.ptr, until->via.str.ptr);
    if (top_n > count)
        nf_buf_printf (&errors, "%soptions.top_n: %lld is more than count %lld",
                       errors.len ? "; " : "", (long long) top_n, (long long) count);
    /* One day's Data API budget (Google's quota model: search.list calls in a
       bucket of their own, at most 50 results a call; videos.list and
       channels.list a unit per call of up to 50 ids). */
    bool youtube = !src || src->type != MSGPACK_OBJECT_STR || nf_mp_is_str (src, "youtube");
    int64_t calls = (count + 49) / 50, units = 2 * calls;
    if (youtube && self->opts.search_calls_per_day > 0 && calls > self->opts.search_calls_per_day)
        nf_buf_printf (&errors,
                       "%soptions.count: %lld videos need at least %lld search.list calls (50 "
                       "results a call) and the daily budget NF_YOUTUBE_SEARCH_CALLS is %lld, "
                       "enough for %lld videos a day",
                       errors.len ? "; " : "", (long long) count, (long long) calls,
                       (long long) self->opts.search_calls_per_day,
                       (long long) self->opts.search_calls_per_day * 50);
    if (youtube && self->opts.units_per_day > 0 && units > self->opts.units_per_day)
        nf_buf_printf (
            &errors,
            "%soptions.count: %lld videos need up to %lld quota units (videos.list and "
            "channels.list, 50 ids a unit) and the daily budget NF_YOUTUBE_UNITS is %lld",
            errors.len ? "; " : "", (long long) count, (long long) units,
            (long long) self->opts.units_per_day);
    if (top_n < self->opts.min_ready)
        nf_buf_printf (&errors,
                       "%soptions.top_n: %lld is fewer than NF_MIN_READY %lld, the fewest READY "
                       "videos a job exports, so the job could never export",
                       errors.len ? "; " : "", (long long) top_n, (long long) self->opts.min_ready);
    if (!strstr (options.data, "\"count\""))
        nf_buf_printf (&options, "%s\"count\":%lld", options.len > 1 ? "," : "", (long long) count);
    if (!strstr (options.data, "\"top_n\""))
        nf_buf_printf (&options, ",\"top_n\":%lld", (long long) top_n);
    nf_buf_puts (&options, "}");
    int rc = 0;
    if (errors.len) {
        nf_buf_t msg;
        nf_buf_init (&msg);
        nf_buf_printf (&msg, "invalid submission: %s", errors.data);
        nf_client_error_encode (reply, msg.data);
        nf_buf_free (&msg);
        goto done;
    }
    char *n1 = strndup (niche, niche_len), *s1 = strndup (sub, sub_len);
    char prio_s[8], target[16];
    snprintf (prio_s, sizeof prio_s, "%d", priority);
    snprintf (target, sizeof target, "%lld", (long long) top_n);
    const nf_stage_t *first = nf_stage_next_job (NULL);
    const char *params[] = {n1, s1, options.data, prio_s, first->service, target};
    PGresult *res = nf_db_exec (
        self->db, "submit",
        "WITH j AS (INSERT INTO nf_jobs (niche, sub_niche, options, priority, phase, target) "
        "VALUES "
        "($1, $2, $3::jsonb, $4::smallint, $5, $6::int) RETURNING id), h AS (INSERT INTO "
        "nf_job_history (job_id, from_status, to_status, reason) SELECT id, NULL, 'pending', "
        "'submitted' FROM j) SELECT id FROM j",
        6, params);
    free (n1);
    free (s1);
    if (!res) {
        rc = -1;
        goto done;
    }
    int64_t job_id = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    s_event (self, job_id, NULL, NULL, "pending", "job", "submitted");
    s_events_flush (self, true);
    msgpack_packer pk;
    nf_pk_init_buf (&pk, reply);
    msgpack_pack_map (&pk, 3);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_bool (&pk, "ok", true);
    nf_pk_kv_int (&pk, "job_id", job_id);
done:
    nf_buf_free (&errors);
    nf_buf_free (&options);
    return rc;
}

/* Read the job_id of REQ into ID (text). -1 with an error reply when bad. */
static int
s_job_id (const msgpack_object *req, char *id, size_t idlen, nf_buf_t *reply)
{
    int64_t job_id;
    if (!nf_mp_get_int (req, "job_id", &job_id) || job_id <= 0) {
        nf_client_error_encode (reply, "job_id: missing or not a positive integer");
        return -1;
    }
    snprintf (id, idlen, "%lld", (long long) job_id);
    return 0;
}

static int
s_status (nf_store_t *self, const msgpack_object *req, nf_buf_t *reply)
{
    char id[24];
    if (s_job_id (req, id, sizeof id, reply) != 0)
        return 0;
    const char *params[] = {id};
    PGresult *res = nf_db_exec (
        self->db, "status",
        "SELECT json_build_object('id', j.id, 'niche', j.niche, 'sub_niche', j.sub_niche, "
        "'status', j.status, 'reason', j.status_reason, 'phase', j.phase, 'priority', j.priority, "
        "'target', j.target, 'options', j.options, 'quota_units', j.quota_units, 'search_calls', "
        "j.search_calls, 'http_requests', "
        "j.http_requests, 'tokens', j.tokens, 'last_error', j.last_error, 'created_at', "
        "j.created_at, 'updated_at', j.updated_at, 'finished_at', j.finished_at)::text, (SELECT "
        "coalesce(json_object_agg(state, n), '{}') FROM (SELECT state, count(*) AS n FROM "
        "nf_videos WHERE job_id = j.id GROUP BY state) s)::text, (SELECT "
        "coalesce(json_object_agg(r, n), '{}') FROM (SELECT rejected_reason AS r, count(*) AS n "
        "FROM nf_videos WHERE job_id = j.id AND state = 'REJECTED' GROUP BY 1) s)::text, (SELECT "
        "coalesce(json_agg(format ORDER BY format), '[]') FROM (SELECT format FROM nf_exports "
        "WHERE "
        "job_id = j.id ORDER BY format) e)::text FROM nf_jobs j WHERE j.id = $1::bigint",
        1, params);
    if (!res)
        return -1;
    if (PQntuples (res) == 0)
        nf_client_error_encode (reply, "no such job");
    else {
        const char *keys[] = {"job", "counts", "rejected", "exports"};
        const char *vals[] = {PQgetvalue (res, 0, 0), PQgetvalue (res, 0, 1),
                              PQgetvalue (res, 0, 2), PQgetvalue (res, 0, 3)};
        s_reply_json (reply, 4, keys, vals);
    }
    PQclear (res);
    return 0;
}

static int
s_list (nf_store_t *self, const msgpack_object *req, nf_buf_t *reply)
{
    int64_t limit = 20;
    nf_mp_get_int (req, "limit", &limit);
    if (limit < 1 || limit > 1000)
        limit = 20;
    char lim[16];
    snprintf (lim, sizeof lim, "%lld", (long long) limit);
    const char *params[] = {lim};
    PGresult *res = nf_db_exec (
        self->db, "list",
        "SELECT coalesce(json_agg(json_build_object('id', id, 'niche', niche, 'sub_niche', "
        "sub_niche, 'status', status, 'phase', phase, 'priority', priority, 'created_at', "
        "created_at) ORDER BY id DESC), '[]')::text FROM (SELECT * FROM nf_jobs ORDER BY id DESC "
        "LIMIT $1::int) j",
        1, params);
    if (!res)
        return -1;
    const char *keys[] = {"jobs"};
    const char *vals[] = {PQgetvalue (res, 0, 0)};
    s_reply_json (reply, 1, keys, vals);
    PQclear (res);
    return 0;
}

/* The current status of job ID into OUT; 0 found, 1 not found, -1 error. */
static int
s_job_current (nf_store_t *self, const char *id, char *out, size_t outlen, char *phase,
               size_t phaselen)
{
    const char *params[] = {id};
    PGresult *res =
        nf_db_exec (self->db, "job_current",
                    "SELECT status, phase FROM nf_jobs WHERE id = $1::bigint", 1, params);
    if (!res)
        return -1;
    int rc = PQntuples (res) ? 0 : 1;
    if (rc == 0) {
        snprintf (out, outlen, "%s", PQgetvalue (res, 0, 0));
        snprintf (phase, phaselen, "%s", PQgetvalue (res, 0, 1));
    }
    PQclear (res);
    return rc;
}

static void
s_reply_ok_status (nf_buf_t *reply, const char *status, int64_t restored)
{
    msgpack_packer pk;
    nf_pk_init_buf (&pk, reply);
    msgpack_pack_map (&pk, restored >= 0 ? 4 : 3);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_bool (&pk, "ok", true);
    nf_pk_kv_str (&pk, "status", status);
    if (restored >= 0)
        nf_pk_kv_int (&pk, "restored", restored);
}

static int
s_cancel (nf_store_t *self, const msgpack_object *req, nf_buf_t *reply)
{
    char id[24], status[32], phase[32];
    if (s_job_id (req, id, sizeof id, reply) != 0)
        return 0;
    if (nf_db_begin (self->db) != 0)
        return -1;
    int rc = s_job_current (self, id, status, sizeof status, phase, sizeof phase);
    int moved =
        rc == 0 ? s_job_status (self, strtoll (id, NULL, 10), "cancelling", "cancelled by request")
                : rc;
    const char *params[] = {id};
    PGresult *res = moved == 1 ? nf_db_exec (self->db, "cancel_leases",
                                             "WITH v AS (UPDATE nf_videos SET " LEASE_CLEAR
                                             " WHERE job_id = $1::bigint AND lease_token IS NOT "
                                             "NULL RETURNING 1) UPDATE nf_jobs SET " LEASE_CLEAR
                                             " WHERE id = $1::bigint",
                                             1, params)
                               : NULL;
    if (moved < 0 || (moved == 1 && !res) || nf_db_commit (self->db) != 0) {
        PQclear (res);
        nf_db_rollback (self->db);
        s_events_flush (self, false);
        return -1;
    }
    PQclear (res);
    s_events_flush (self, true);
    if (rc == 1)
        nf_client_error_encode (reply, "no such job");
    else if (moved == 0) {
        char msg[128];
        snprintf (msg, sizeof msg, "job %s is %s; only unfinished jobs can be cancelled", id,
                  status);
        nf_client_error_encode (reply, msg);
    }
    else
        s_reply_ok_status (reply, "cancelling", -1);
    return 0;
}

/* The start of nf.retry and nf.resume: read REQ's job id into ID (24
   bytes), begin a transaction and read the job's STATUS and PHASE (32
   bytes each). 1 when ALLOWED (status) says the request may go on; 0 when
   REPLY holds the refusal ("job N is S; " WHY, or no such job) and the
   transaction is rolled back; -1 on a database error. */
static int
s_job_begin (nf_store_t *self, const msgpack_object *req, bool (*allowed) (const char *),
             const char *why, char *id, char *status, char *phase, nf_buf_t *reply)
{
    if (s_job_id (req, id, 24, reply) != 0)
        return 0;
    if (nf_db_begin (self->db) != 0)
        return -1;
    int rc = s_job_current (self, id, status, 32, phase, 32);
    if (rc == 0 && allowed (status))
        return 1;
    nf_db_rollback (self->db);
    if (rc < 0)
        return -1;
    char msg[200];
    if (rc)
        snprintf (msg, sizeof msg, "no such job");
    else
        snprintf (msg, sizeof msg, "job %s is %s; %s", id, status, why);
    nf_client_error_encode (reply, msg);
    return 0;
}

static bool
s_retry_ok (const char *status)
{
    return nf_job_transition_ok (status, "processing") && strcmp (status, "cancelled") != 0;
}

static bool
s_resume_ok (const char *status)
{
    return nf_job_transition_ok (status, "pending");
}

static int
s_retry (nf_store_t *self, const msgpack_object *req, nf_buf_t *reply)
{
    char id[24], status[32], phase[32];
    int go =
        s_job_begin (self, req, s_retry_ok, "only failed, partial or completed jobs can be retried",
                     id, status, phase, reply);
    if (go <= 0)
        return go;
    const char *params[] = {id};
    PGresult *res = nf_db_exec (
        self->db, "retry_videos",
        "WITH u AS (UPDATE nf_videos SET state = failed_from, failed_from = NULL, attempts = 0, "
        "next_attempt_at = now(), last_error = NULL, updated_at = now() WHERE job_id = $1::bigint "
        "AND state = 'FAILED' AND failed_from IS NOT NULL RETURNING video_id, state), h AS "
        "(INSERT INTO nf_video_history (job_id, video_id, from_state, to_state, service, attempt, "
        "reason) SELECT $1::bigint, video_id, 'FAILED', state, 'retry', 0, 'nf.retry' FROM u) "
        "SELECT video_id, state FROM u",
        1, params);
    if (!res) {
        nf_db_rollback (self->db);
        return -1;
    }
    /* The job goes back to the first job stage that the restored videos
       must pass again (or stays at the job stage that failed). */
    size_t nst;
    const nf_stage_t *stages = nf_stages (&nst);
    const nf_stage_t *current = nf_stage_find (phase);
    size_t at = current ? (size_t) (current - stages) : nst;
    int restored = PQntuples (res);
    for (int i = 0; i < restored; i++) {
        const char *state = PQgetvalue (res, i, 1);
        s_event (self, strtoll (id, NULL, 10), PQgetvalue (res, i, 0), NF_STATE_FAILED, state,
                 "retry", "nf.retry");
        for (size_t s = 0; s < nst; s++)
            if (stages[s].state_in && strcmp (stages[s].state_in, state) == 0) {
                const nf_stage_t *next =
                    stages[s].scope == NF_SCOPE_JOB ? &stages[s] : nf_stage_next_job (&stages[s]);
                size_t idx = next ? (size_t) (next - stages) : nst;
                if (idx < at)
                    at = idx;
            }
    }
    PQclear (res);
    bool job_stage_failed = current != NULL;
    if (!restored && !job_stage_failed) {
        nf_db_rollback (self->db);
        s_events_flush (self, false);
        nf_client_error_encode (reply, "nothing to retry: the job has no FAILED videos");
        return 0;
    }
    const char *jp[] = {id, at < nst ? stages[at].service : NF_PHASE_DONE};
    res = nf_db_exec (self->db, "retry_job",
                      "UPDATE nf_jobs SET phase = $2, attempts = 0, next_attempt_at = now(), "
                      "last_error = NULL, status_reason = NULL, " LEASE_CLEAR
                      " WHERE id = $1::bigint",
                      2, jp);
    char reason[96];
    snprintf (reason, sizeof reason, "nf.retry: %d FAILED videos restored", restored);
    if (!res || s_job_status (self, strtoll (id, NULL, 10), "processing", reason) < 0
        || nf_db_commit (self->db) != 0) {
        PQclear (res);
        nf_db_rollback (self->db);
        s_events_flush (self, false);
        return -1;
    }
    PQclear (res);
    s_events_flush (self, true);
    s_reply_ok_status (reply, "processing", restored);
    return 0;
}

/* nf.resume: a cancelled, failed or partial job goes back to the queue at
   its first stage, keeping its videos; discovery then looks for what is
   missing to reach `count` (it skips the ids the job has). */
static int
s_resume (nf_store_t *self, const msgpack_object *req, nf_buf_t *reply)
{
    char id[24], status[32], phase[32];
    int go = s_job_begin (self, req, s_resume_ok,
                          "only cancelled, failed or partial jobs can be resumed", id, status,
                          phase, reply);
    if (go <= 0)
        return go;
    const char *jp[] = {id, nf_stage_next_job (NULL)->service};
    PGresult *res = nf_db_exec (self->db, "resume_job",
                                "UPDATE nf_jobs SET phase = $2, attempts = 0, next_attempt_at = "
                                "now(), last_error = NULL, " LEASE_CLEAR " WHERE id = $1::bigint",
                                2, jp);
    if (!res
        || s_job_status (self, strtoll (id, NULL, 10), "pending",
                         "nf.resume: discovering what is missing to reach the target")
               != 1
        || nf_db_commit (self->db) != 0) {
        PQclear (res);
        nf_db_rollback (self->db);
        s_events_flush (self, false);
        return -1;
    }
    PQclear (res);
    s_events_flush (self, true);
    s_reply_ok_status (reply, "pending", -1);
    return 0;
}

static int
s_export (nf_store_t *self, const msgpack_object *req, nf_buf_t *reply)
{
    char id[24];
    if (s_job_id (req, id, sizeof id, reply) != 0)
        return 0;
    char *format = nf_mp_dup_str (req, "format");
    if (!format)
        format = strdup ("xlsx");
    const char *params[] = {id, format};
    PGresult *res = nf_db_exec (self->db, "export_fetch",
                                "SELECT e.content FROM nf_jobs j LEFT JOIN nf_exports e ON "
                                "e.job_id = j.id AND e.format = $2 WHERE j.id = $1::bigint",
                                2, params);
    if (!res) {
        free (format);
        return -1;
    }
    if (PQntuples (res) == 0)
        nf_client_error_encode (reply, "no such job");
    else if (PQgetisnull (res, 0, 0)) {
        char msg[128];
        snprintf (msg, sizeof msg, "job %s has no %.16s export (yet)", id, format);
        nf_client_error_encode (reply, msg);
    }
    else {
        size_t len = 0;
        unsigned char *bytes =
            PQunescapeBytea ((const unsigned char *) PQgetvalue (res, 0, 0), &len);
        msgpack_packer pk;
        nf_pk_init_buf (&pk, reply);
        msgpack_pack_map (&pk, 4);
        nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
        nf_pk_kv_bool (&pk, "ok", true);
        nf_pk_kv_str (&pk, "format", format);
        nf_pk_str (&pk, "content");
        msgpack_pack_bin (&pk, len);
        msgpack_pack_bin_body (&pk, bytes, len);
        PQfreemem (bytes);
    }
    PQclear (res);
    free (format);
    return 0;
}

int
nf_store_service (nf_store_t *self, const char *service, const msgpack_object *request,
                  nf_buf_t *reply)
{
    if (strcmp (service, "nf.submit") == 0)
        return s_submit (self, request, reply);
    if (strcmp (service, "nf.status") == 0)
        return s_status (self, request, reply);
    if (strcmp (service, "nf.list") == 0)
        return s_list (self, request, reply);
    if (strcmp (service, "nf.cancel") == 0)
        return s_cancel (self, request, reply);
    if (strcmp (service, "nf.retry") == 0)
        return s_retry (self, request, reply);
    if (strcmp (service, "nf.resume") == 0)
        return s_resume (self, request, reply);
    if (strcmp (service, "nf.export") == 0)
        return s_export (self, request, reply);
    nf_client_error_encode (reply, "unknown service");
    return 0;
}

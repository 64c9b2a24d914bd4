/*  nf_sql: see nf_sql.h. Pure text generation from the stage table. */
#include "nf_sql.h"
#include "nf_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The job statuses with every flag of FLAGS as an SQL list for IN
   ("'running', 'processing'"): the names are the table's, never input. */
static void
s_status_list (unsigned flags, char *out, size_t outlen)
{
    size_t n;
    const nf_job_status_t *all = nf_job_statuses (&n);
    nf_buf_t b;
    nf_buf_init (&b);
    for (size_t i = 0; i < n; i++)
        if ((all[i].flags & flags) == flags)
            nf_buf_printf (&b, "%s'%s'", b.len ? ", " : "", all[i].name);
    snprintf (out, outlen, "%s", b.data ? b.data : "NULL");
    nf_buf_free (&b);
}

/* The catalog columns STAGE writes, in its order: up to MAX into COLS;
   how many. */
static size_t
s_writes (const nf_stage_t *stage, const nf_column_t **cols, size_t max)
{
    char list[256], *save = NULL;
    size_t n = 0;
    snprintf (list, sizeof list, "%s", stage->writes);
    for (char *col = strtok_r (list, ",", &save); col && n < max;
         col = strtok_r (NULL, ",", &save)) {
        const nf_column_t *c = nf_column_find (col);
        if (c)
            cols[n++] = c;
    }
    return n;
}

/* Append ", col = <value from jsonb SRC>" for each column STAGE writes. */
static void
s_gen_writes (nf_buf_t *b, const nf_stage_t *stage, const char *src)
{
    const nf_column_t *cols[16];
    size_t n = s_writes (stage, cols, 16);
    for (size_t i = 0; i < n; i++) {
        const char *col = cols[i]->name;
        switch (cols[i]->kind) {
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
s_gen_video_apply (const nf_stage_t *stage, nf_sql_kind_t kind)
{
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_puts (&b, BATCH_ROWS
                 ", u AS (UPDATE nf_videos v SET updated_at = now(), " NF_SQL_LEASE_CLEAR);
    if (kind == NF_SQL_OK) {
        nf_buf_puts (&b, ", state = $4, attempts = 0, last_error = NULL");
        s_gen_writes (&b, stage, "r.o");
    }
    else if (kind == NF_SQL_REJECT) {
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
    nf_buf_puts (&b, kind == NF_SQL_OK ? "NULL" : "text");
    nf_buf_puts (&b, " FROM u WHERE state <> $2)");
    if (kind == NF_SQL_ERROR)
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
    char active[256];
    s_status_list (NF_JOBS_CLAIM_VIDEO, active, sizeof active);
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_printf (
        &b,
        "WITH c AS (SELECT v.job_id, v.video_id FROM nf_videos v WHERE v.state = $1 AND "
        "v.job_id = ANY (ARRAY (SELECT id FROM nf_jobs WHERE status IN (%s))) AND"
        " v.next_attempt_at <= now() AND v.attempts < $2::int AND "
        "(v.lease_token IS NULL OR v.lease_expires < now()) ORDER BY v.priority, "
        "v.next_attempt_at, v.job_id, v.video_id LIMIT $3::int FOR UPDATE OF v SKIP LOCKED) "
        "UPDATE nf_videos v SET lease_token = gen_random_uuid(), lease_owner = $4, lease_expires = "
        "now() + make_interval(secs => $5::float8 / 1000), attempts = v.attempts + 1 FROM c "
        "WHERE v.job_id = c.job_id AND v.video_id = c.video_id RETURNING v.lease_token::text, "
        "v.job_id, v.video_id, v.attempts, (SELECT niche FROM nf_jobs WHERE id = v.job_id), "
        "(SELECT sub_niche FROM nf_jobs WHERE id = v.job_id), (SELECT options::text FROM nf_jobs "
        "WHERE id = v.job_id), json_build_object(%s)::text%s%s",
        active, stage->reads, stage->text_in ? ", v." : "", stage->text_in ? stage->text_in : "");
    return b.data;
}

static char *
s_gen_job_claim (const nf_stage_t *stage)
{
    char active[256];
    s_status_list (NF_JOBS_CLAIM_JOB, active, sizeof active);
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_printf (&b,
                   "WITH c AS (SELECT j.id, j.status FROM nf_jobs j WHERE j.phase = $1 AND "
                   "j.status IN (%s) AND j.next_attempt_at <= now() AND j.attempts < $2::int AND "
                   "(j.lease_token IS NULL OR j.lease_expires < now()) AND NOT EXISTS (SELECT 1 "
                   "FROM nf_videos v WHERE v.job_id = j.id AND v.state = ANY($3::text[]))",
                   active);
    if (stage->needs_min_ready)
        nf_buf_puts (&b, " AND (SELECT count(*) FROM nf_videos v WHERE v.job_id = j.id AND "
                         "v.state = ANY($7::text[])) >= $8::int");
    /* Dispatching a job's first stage moves it from queued to running. */
    nf_buf_puts (&b, " ORDER BY j.priority, j.id LIMIT $4::int FOR UPDATE OF j SKIP LOCKED), "
                     "u AS (UPDATE nf_jobs j SET lease_token = gen_random_uuid(), lease_owner = "
                     "$5, lease_expires = now() + make_interval(secs => $6::float8 / 1000), "
                     "attempts = j.attempts + 1, status = CASE WHEN j.status = '" NF_JOB_QUEUED
                     "' THEN '" NF_JOB_RUNNING "' ELSE j.status END, updated_at = now() FROM c "
                     "WHERE j.id = c.id RETURNING j.id, j.lease_token, j.attempts, c.status AS "
                     "old_status, j.status, j.niche, j.sub_niche, j.options), h AS (INSERT INTO "
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
        const nf_column_t *wr[16];
        size_t nwr = s_writes (stage, wr, 16);
        for (size_t i = 0; i < nwr; i++) {
            const char *col = wr[i]->name;
            nf_buf_printf (&cols, ", %s", col);
            switch (wr[i]->kind) {
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
    /* The others move the job's videos of the candidate set ($7, the
       stage's holds): "ok" takes a video in state_in ($4) to state_out
       ($3) and leaves one that is already further on where it is; "keep"
       puts it back into state_in (an outlier that a re-run ranks below the
       top N: its later columns stay, but it is no longer exported);
       "reject" makes it REJECTED. The history names the state it left. */
    nf_buf_puts (&b, "WITH r AS (SELECT x->>'video_id' AS video_id, x AS o, coalesce(x->>'status', "
                     "'ok') AS st, x->>'reason' AS reason FROM jsonb_array_elements($2::jsonb) x), "
                     "p AS (SELECT v.video_id, v.state AS old FROM nf_videos v JOIN r ON "
                     "r.video_id = v.video_id WHERE v.job_id = $1::bigint AND v.state = "
                     "ANY($7::text[]) FOR UPDATE OF v), u AS (UPDATE nf_videos v SET updated_at = "
                     "now(), state = CASE r.st WHEN 'ok' THEN CASE WHEN p.old = $4 THEN $3 ELSE "
                     "p.old END WHEN 'reject' THEN 'REJECTED' ELSE $4 END, rejected_reason = CASE "
                     "WHEN r.st = 'reject' THEN coalesce(r.reason, 'rejected') ELSE "
                     "v.rejected_reason END");
    s_gen_writes (&b, stage, "r.o");
    nf_buf_puts (&b, " FROM r JOIN p ON p.video_id = r.video_id WHERE v.job_id = $1::bigint AND "
                     "v.video_id = r.video_id RETURNING v.video_id, v.state, p.old, r.reason), h "
                     "AS (INSERT INTO nf_video_history (job_id, video_id, from_state, to_state, "
                     "service, attempt, reason) SELECT $1::bigint, video_id, old, state, $5, "
                     "$6::int, CASE WHEN state = 'REJECTED' THEN reason END FROM u WHERE state <> "
                     "old) SELECT video_id, state, old FROM u");
    return b.data;
}

static char *
s_gen_sweep (void)
{
    return strdup (
        "WITH u AS (UPDATE nf_videos v SET failed_from = v.state, state = 'FAILED', last_error = "
        "coalesce(v.last_error, 'attempts exhausted'), " NF_SQL_LEASE_CLEAR ", updated_at = now() "
        "WHERE v.state = $1 AND v.attempts >= $2::int AND (v.lease_token IS NULL OR "
        "v.lease_expires < now()) RETURNING v.job_id, v.video_id, v.failed_from, v.attempts, "
        "v.last_error), h AS (INSERT INTO nf_video_history (job_id, video_id, from_state, "
        "to_state, service, attempt, reason) SELECT job_id, video_id, failed_from, 'FAILED', $3, "
        "attempts, last_error FROM u), l AS (INSERT INTO nf_processing_log (module, job_id, "
        "video_id, level, message) SELECT $3, job_id, video_id, 'error', 'attempts exhausted: ' "
        "|| last_error FROM u) SELECT job_id, video_id, last_error FROM u");
}

/* The task input of one job for job-scope stage ST: its videos of the
   candidate set (nf_stage_holds; for a creating stage, the ids it already
   has), the funnel so far and its counters. Parameters: job id, the holds
   literal (NULL for a creating stage). */
static char *
s_gen_job_input (const nf_stage_t *st)
{
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_printf (
        &b,
        "SELECT json_build_object('videos', (SELECT coalesce(json_agg(json_build_object(%s) "
        "ORDER BY v.video_id), '[]') FROM nf_videos v WHERE v.job_id = $1::bigint AND v.state = "
        "ANY($2::text[])), 'known_ids', CASE WHEN $2::text[] IS NULL THEN (SELECT "
        "coalesce(json_agg(video_id ORDER BY "
        "video_id), '[]') FROM nf_videos WHERE job_id = $1::bigint) END, 'fresh_channels', CASE "
        "WHEN $2::text[] IS NULL THEN (SELECT coalesce(json_agg(channel_id), '[]') FROM (SELECT "
        "channel_id FROM nf_channels WHERE CASE WHEN jsonb_typeof(data->'recent_at') = 'number' "
        "THEN (data->>'recent_at')::float8 > extract(epoch FROM now()) - 86400 END ORDER BY "
        "updated_at DESC LIMIT 20000) f) END, %s%s'funnel', "
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
        "'baseline_units', baseline_units, "
        "'http_requests', http_requests, 'tokens', tokens, 'target', target, 'priority', priority, "
        "'created_at', created_at) FROM nf_jobs "
        "WHERE id = $1::bigint))::text",
        st->reads[0] ? st->reads : "'video_id', v.video_id",
        st->uploads ? "'channels', (SELECT coalesce(json_object_agg(c.channel_id, "
                      "json_build_object('recent', c.data->'recent', 'recent_at', "
                      "c.data->'recent_at')), '{}') FROM nf_channels c WHERE c.channel_id IN "
                      "(SELECT DISTINCT channel_id FROM nf_videos WHERE job_id = $1::bigint AND "
                      "state = ANY($2::text[]))), "
                    : "",
        st->candidates ? "'candidates', (SELECT coalesce(json_agg(json_build_object('video_id', "
                         "video_id, 'title', meta->'title', 'views', meta->'views', 'outlier_x', "
                         "scores->'outlier_x', 'rank', rank) ORDER BY rank), '[]') FROM nf_videos "
                         "WHERE job_id = $1::bigint AND rank IS NOT NULL AND state NOT IN "
                         "('REJECTED', 'FAILED')), "
                       : "");
    return b.data;
}

/* OUT (256 bytes): the text[] literal of the N STATES. */
static void
s_gen_literal (char *out, const char **states, size_t n)
{
    nf_buf_t lit;
    nf_buf_init (&lit);
    nf_buf_puts (&lit, "{");
    for (size_t s = 0; s < n; s++)
        nf_buf_printf (&lit, "%s%s", s ? "," : "", states[s]);
    nf_buf_puts (&lit, "}");
    snprintf (out, 256, "%s", lit.data);
    nf_buf_free (&lit);
}

int
nf_sql_build (nf_sql_t *q, const nf_stage_t *st)
{
    static const char *const kinds[NF_SQL_KINDS] = {"claim", "ok",    "reject", "error",
                                                    "items", "sweep", "input"};
    memset (q, 0, sizeof *q);
    q->stage = st;
    for (int k = 0; k < NF_SQL_KINDS; k++) {
        char name[64];
        snprintf (name, sizeof name, "%s_%s", st->service, kinds[k]);
        q->name[k] = strdup (name);
    }
    if (st->scope == NF_SCOPE_VIDEO) {
        q->text[NF_SQL_CLAIM] = s_gen_video_claim (st);
        q->text[NF_SQL_OK] = s_gen_video_apply (st, NF_SQL_OK);
        q->text[NF_SQL_REJECT] = s_gen_video_apply (st, NF_SQL_REJECT);
        q->text[NF_SQL_ERROR] = s_gen_video_apply (st, NF_SQL_ERROR);
        q->text[NF_SQL_SWEEP] = s_gen_sweep ();
    }
    else {
        q->text[NF_SQL_CLAIM] = s_gen_job_claim (st);
        q->text[NF_SQL_ITEMS] = s_gen_job_items (st);
        q->text[NF_SQL_INPUT] = s_gen_job_input (st);
        const char *states[16];
        s_gen_literal (q->barrier, states, nf_stage_barrier (st, states, 16));
        size_t nh = nf_stage_holds (st, states, 16);
        if (nh)
            s_gen_literal (q->holds, states, nh);
    }
    for (int k = 0; k < NF_SQL_KINDS; k++)
        if (!q->name[k]) {
            nf_sql_free (q);
            return -1;
        }
    return 0;
}

void
nf_sql_free (nf_sql_t *q)
{
    for (int k = 0; k < NF_SQL_KINDS; k++) {
        free (q->text[k]);
        free (q->name[k]);
        q->text[k] = q->name[k] = NULL;
    }
}

/*  nf_services: the client services (nf.submit, nf.status, nf.list,
    nf.cancel, nf.retry, nf.resume, nf.export), on the office thread's
    store and connection: nf_office.c decodes a client's request and calls
    nf_store_service, which answers into the reply buffer. Option checks
    are nf_jobopts.c's, shared with nf-submit. A service that changes
    state does it in one transaction with its history rows and events. */
#include "nf_client.h"
#include "nf_jobopts.h"
#include "nf_log.h"
#include "nf_store_int.h"
#include "nf_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Append one complaint to ERRORS, "; " between them. */
static void s_complain (nf_buf_t *errors, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
static void
s_complain (nf_buf_t *errors, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    nf_buf_printf (errors, "%s%s", errors->len ? "; " : "", text);
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
            s_complain (errors, "%s: missing", key);
        return required ? NULL : "";
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        s_complain (errors, "%s: must be a string", key);
        return NULL;
    }
    const char *s = o->via.str.ptr;
    size_t n = o->via.str.size;
    while (n && isspace ((unsigned char) *s))
        s++, n--;
    while (n && isspace ((unsigned char) s[n - 1]))
        n--;
    const char *bad = required && n == 0      ? "empty"
                      : n > max               ? "too long"
                      : !nf_utf8_valid (s, n) ? "not valid UTF-8"
                                              : NULL;
    for (size_t i = 0; !bad && i < n; i++)
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
            bad = "contains control characters";
    if (bad && n > max)
        s_complain (errors, "%s: %zu bytes long, at most %zu allowed", key, n, max);
    else if (bad)
        s_complain (errors, "%s: %s", key, bad);
    *len_out = bad ? 0 : n;
    return bad ? NULL : s;
}

/* A submission being checked: the fields, the options as a JSON object,
   and every complaint (all are reported at once). */
typedef struct {
    nf_buf_t errors;            /* "; "-separated complaints */
    nf_buf_t options;           /* the accepted options, JSON */
    const char *niche, *sub;    /* into the request; NULL when bad */
    size_t niche_len, sub_len;  /* their lengths */
    int priority;               /* 0..3 */
    int64_t count, top_n;       /* the options that other checks need */
    const msgpack_object *opts; /* the request's options map, or NULL */
} s_submission_t;

/* The top-level fields: niche, sub_niche, priority. */
static void
s_submit_fields (s_submission_t *sub, const msgpack_object *req)
{
    size_t prio_len;
    sub->niche = s_text_field (req, "niche", true, 200, &sub->errors, &sub->niche_len);
    sub->sub = s_text_field (req, "sub_niche", false, 200, &sub->errors, &sub->sub_len);
    const char *prio = s_text_field (req, "priority", false, 16, &sub->errors, &prio_len);
    sub->priority = 1;
    if (prio && prio_len) {
        char name[17];
        memcpy (name, prio, prio_len);
        name[prio_len] = 0;
        sub->priority = nf_priority_parse (name);
        if (sub->priority < 0)
            s_complain (&sub->errors,
                        "priority: '%s' is not one of high, standard, bulk, background", name);
    }
    const msgpack_object *opts = nf_mp_get (req, "options");
    if (opts && opts->type != MSGPACK_OBJECT_MAP && opts->type != MSGPACK_OBJECT_NIL)
        s_complain (&sub->errors, "options: must be a map");
    sub->opts = opts && opts->type == MSGPACK_OBJECT_MAP ? opts : NULL;
}

/* One option V of the table row DEF: kept in the options JSON, or a complaint. */
static void
s_submit_option (s_submission_t *sub, const nf_jobopt_t *def, const msgpack_object *v)
{
    bool ok;
    const char *sep = sub->options.len > 1 ? "," : "";
    if (def->is_int) {
        int64_t x = 0;
        ok = (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX
              && (x = (int64_t) v->via.u64, true))
             || (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && (x = v->via.i64, true));
        ok = ok && x >= def->min && x <= def->max;
        if (ok) {
            nf_buf_printf (&sub->options, "%s\"%s\":%lld", sep, def->key, (long long) x);
            if (strcmp (def->key, "count") == 0)
                sub->count = x;
            if (strcmp (def->key, "top_n") == 0)
                sub->top_n = x;
        }
    }
    else {
        ok = v->type == MSGPACK_OBJECT_STR
             && nf_jobopt_str_ok (def, v->via.str.ptr, v->via.str.size);
        if (ok) {
            nf_buf_printf (&sub->options, "%s\"%s\":", sep, def->key);
            nf_buf_json_str (&sub->options, v->via.str.ptr, v->via.str.size);
        }
    }
    if (!ok)
        s_complain (&sub->errors, "options.%s: must be %s", def->key, def->want);
}

/* The options map, each against the table of nf_jobopts.c. */
static void
s_submit_options (s_submission_t *sub)
{
    sub->count = 50;
    sub->top_n = 10;
    nf_buf_puts (&sub->options, "{");
    for (uint32_t i = 0; sub->opts && i < sub->opts->via.map.size; i++) {
        const msgpack_object *k = &sub->opts->via.map.ptr[i].key;
        const msgpack_object *v = &sub->opts->via.map.ptr[i].val;
        const nf_jobopt_t *def =
            k->type == MSGPACK_OBJECT_STR ? nf_jobopt_find (k->via.str.ptr, k->via.str.size) : NULL;
        if (!def) {
            s_complain (&sub->errors, "options: unknown option ");
            if (k->type == MSGPACK_OBJECT_STR)
                nf_buf_json_str (&sub->errors, k->via.str.ptr,
                                 k->via.str.size > 40 ? 40 : k->via.str.size);
        }
        else if (v->type != MSGPACK_OBJECT_NIL)
            s_submit_option (sub, def, v);
    }
    if (!strstr (sub->options.data, "\"count\""))
        nf_buf_printf (&sub->options, "%s\"count\":%lld", sub->options.len > 1 ? "," : "",
                       (long long) sub->count);
    if (!strstr (sub->options.data, "\"top_n\""))
        nf_buf_printf (&sub->options, ",\"top_n\":%lld", (long long) sub->top_n);
    nf_buf_puts (&sub->options, "}");
}

/* The option string KEY when it is a string, or NULL. */
static const msgpack_object *
s_opt_str (const s_submission_t *sub, const char *key)
{
    const msgpack_object *o = sub->opts ? nf_mp_get (sub->opts, key) : NULL;
    return o && o->type == MSGPACK_OBJECT_STR ? o : NULL;
}

/* Checks across options and against this broker: its sources, the date
   range, top_n against count. */
static void
s_submit_crosscheck (nf_store_t *self, s_submission_t *sub)
{
    const msgpack_object *src = s_opt_str (sub, "source");
    if (src && nf_jobopt_str_ok (nf_jobopt_find ("source", 6), src->via.str.ptr, src->via.str.size)
        && !nf_word_in (self->opts.sources, src->via.str.ptr, src->via.str.size))
        s_complain (&sub->errors, "options.source: unknown source '%.*s' (this broker accepts: %s)",
                    (int) src->via.str.size, src->via.str.ptr, self->opts.sources);
    const msgpack_object *since = s_opt_str (sub, "since"), *until = s_opt_str (sub, "until");
    if (since && until && nf_date_ok (since->via.str.ptr, since->via.str.size)
        && nf_date_ok (until->via.str.ptr, until->via.str.size)
        && memcmp (since->via.str.ptr, until->via.str.ptr, 10) > 0)
        s_complain (&sub->errors, "options.since: %.10s is after until %.10s", since->via.str.ptr,
                    until->via.str.ptr);
    if (sub->top_n > sub->count)
        s_complain (&sub->errors, "options.top_n: %lld is more than count %lld",
                    (long long) sub->top_n, (long long) sub->count);
}

/* What the job needs against what this broker has: one day's Data API
   budget (Google's quota model: search.list calls in a bucket of their
   own, at most 50 results a call; videos.list and channels.list a unit per
   call of up to 50 ids), and NF_MIN_READY READY videos to export. */
static void
s_submit_budget (nf_store_t *self, s_submission_t *sub)
{
    const msgpack_object *src = sub->opts ? nf_mp_get (sub->opts, "source") : NULL;
    bool youtube = !src || src->type != MSGPACK_OBJECT_STR || nf_mp_is_str (src, "youtube");
    int64_t count = sub->count, calls = (count + 49) / 50, units = 2 * calls;
    int64_t max_calls = self->opts.search_calls_per_day, max_units = self->opts.units_per_day;
    if (youtube && max_calls > 0 && calls > max_calls)
        s_complain (&sub->errors,
                    "options.count: %lld videos need at least %lld search.list calls (50 "
                    "results a call) and the daily budget NF_YOUTUBE_SEARCH_CALLS is %lld, "
                    "enough for %lld videos a day",
                    (long long) count, (long long) calls, (long long) max_calls,
                    (long long) max_calls * 50);
    if (youtube && max_units > 0 && units > max_units)
        s_complain (&sub->errors,
                    "options.count: %lld videos need up to %lld quota units (videos.list and "
                    "channels.list, 50 ids a unit) and the daily budget NF_YOUTUBE_UNITS is %lld",
                    (long long) count, (long long) units, (long long) max_units);
    if (sub->top_n < self->opts.min_ready)
        s_complain (&sub->errors,
                    "options.top_n: %lld is fewer than NF_MIN_READY %lld, the fewest READY "
                    "videos a job exports, so the job could never export",
                    (long long) sub->top_n, (long long) self->opts.min_ready);
}

/* Store the accepted submission: the job at its first stage, pending, with
   its history row. The job id, or -1 on a database error. */
static int64_t
s_submit_insert (nf_store_t *self, const s_submission_t *sub)
{
    char *n1 = strndup (sub->niche, sub->niche_len), *s1 = strndup (sub->sub, sub->sub_len);
    char prio_s[8], target[16];
    snprintf (prio_s, sizeof prio_s, "%d", sub->priority);
    snprintf (target, sizeof target, "%lld", (long long) sub->top_n);
    const nf_stage_t *first = nf_stage_next_job (NULL);
    const char *params[] = {n1, s1, sub->options.data, prio_s, first->service, target};
    PGresult *res = nf_db_exec (
        self->db, "submit",
        "WITH j AS (INSERT INTO nf_jobs (niche, sub_niche, options, priority, phase, target) "
        "VALUES ($1, $2, $3::jsonb, $4::smallint, $5, $6::int) RETURNING id), h AS (INSERT INTO "
        "nf_job_history (job_id, from_status, to_status, reason) SELECT id, NULL, '" NF_JOB_PENDING
        "', "
        "'submitted' FROM j) SELECT id FROM j",
        6, params);
    free (n1);
    free (s1);
    if (!res)
        return -1;
    int64_t job_id = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    nf_store_event (self, job_id, NULL, NULL, NF_JOB_PENDING, "job", "submitted");
    nf_store_events_flush (self, true);
    return job_id;
}

static nf_err_t
s_submit (nf_store_t *self, const char *id, const msgpack_object *req, nf_buf_t *reply)
{
    s_submission_t sub = {.priority = 1};
    nf_buf_init (&sub.errors);
    nf_buf_init (&sub.options);
    s_submit_fields (&sub, req);
    s_submit_options (&sub);
    s_submit_crosscheck (self, &sub);
    s_submit_budget (self, &sub);
    int rc = 0;
    if (sub.errors.len) {
        nf_buf_t msg;
        nf_buf_init (&msg);
        nf_buf_printf (&msg, "invalid submission: %s", sub.errors.data);
        nf_client_error_encode (reply, msg.data);
        nf_buf_free (&msg);
    }
    else {
        int64_t job_id = s_submit_insert (self, &sub);
        if (job_id < 0)
            rc = NF_ERR_DB;
        else {
            msgpack_packer pk;
            nf_pk_init_buf (&pk, reply);
            msgpack_pack_map (&pk, 3);
            nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
            nf_pk_kv_bool (&pk, "ok", true);
            nf_pk_kv_int (&pk, "job_id", job_id);
        }
    }
    nf_buf_free (&sub.errors);
    nf_buf_free (&sub.options);
    return rc;
}

/* Read the job_id of REQ into ID (text). NF_ERR_INVALID with an error
   reply when bad. */
static nf_err_t
s_job_id (const msgpack_object *req, char *id, size_t idlen, nf_buf_t *reply)
{
    int64_t job_id;
    if (!nf_mp_get_int (req, "job_id", &job_id) || job_id <= 0) {
        nf_client_error_encode (reply, "job_id: missing or not a positive integer");
        return NF_ERR_INVALID;
    }
    snprintf (id, idlen, "%lld", (long long) job_id);
    return 0;
}

static nf_err_t
s_status (nf_store_t *self, const char *id, const msgpack_object *req, nf_buf_t *reply)
{
    const char *params[] = {id};
    PGresult *res = nf_db_exec (
        self->db, "status",
        "SELECT json_build_object('id', j.id, 'niche', j.niche, 'sub_niche', j.sub_niche, "
        "'status', j.status, 'reason', j.status_reason, 'phase', j.phase, 'priority', j.priority, "
        "'target', j.target, 'options', j.options, 'quota_units', j.quota_units, 'search_calls', "
        "j.search_calls, 'baseline_units', j.baseline_units, 'http_requests', "
        "j.http_requests, 'tokens', j.tokens, 'last_error', j.last_error, 'created_at', "
        "j.created_at, 'updated_at', j.updated_at, 'finished_at', j.finished_at)::text, (SELECT "
        "coalesce(json_object_agg(state, n), '{}') FROM (SELECT state, count(*) AS n FROM "
        "nf_videos WHERE job_id = j.id GROUP BY state) s)::text, (SELECT "
        "coalesce(json_object_agg(r, n), '{}') FROM (SELECT rejected_reason AS r, count(*) AS n "
        "FROM nf_videos WHERE job_id = j.id AND state = 'REJECTED' GROUP BY 1) s)::text, (SELECT "
        "coalesce(json_agg(format ORDER BY format), '[]') FROM nf_exports WHERE job_id = j.id AND "
        "version = (SELECT max(version) FROM nf_exports WHERE job_id = j.id))::text, (SELECT "
        "coalesce(json_agg(json_build_object('version', version, 'format', format, 'bytes', "
        "length(content), 'created_at', created_at) ORDER BY version, format), '[]') FROM "
        "nf_exports WHERE job_id = j.id)::text, (SELECT "
        "coalesce(json_agg(json_build_object('from', "
        "from_status, 'to', to_status, 'reason', reason, 'at', at) ORDER BY id), '[]') FROM "
        "(SELECT "
        "* FROM nf_job_history WHERE job_id = j.id ORDER BY id DESC LIMIT 100) h)::text FROM "
        "nf_jobs j WHERE j.id = $1::bigint",
        1, params);
    if (!res)
        return NF_ERR_DB;
    if (PQntuples (res) == 0)
        nf_client_error_encode (reply, "no such job");
    else {
        const char *keys[] = {"job", "counts", "rejected", "exports", "export_versions", "history"};
        const char *vals[] = {PQgetvalue (res, 0, 0), PQgetvalue (res, 0, 1),
                              PQgetvalue (res, 0, 2), PQgetvalue (res, 0, 3),
                              PQgetvalue (res, 0, 4), PQgetvalue (res, 0, 5)};
        s_reply_json (reply, 6, keys, vals);
    }
    PQclear (res);
    return 0;
}

static nf_err_t
s_list (nf_store_t *self, const char *id, const msgpack_object *req, nf_buf_t *reply)
{
    int64_t limit = 20;
    nf_mp_get_int (req, "limit", &limit);
    if (limit < 1 || limit > 1000)
        limit = 20;
    char lim[16], status[24] = "";
    snprintf (lim, sizeof lim, "%lld", (long long) limit);
    const msgpack_object *want = nf_mp_get (req, "status");
    if (want && want->type != MSGPACK_OBJECT_NIL) {
        if (want->type == MSGPACK_OBJECT_STR && want->via.str.size < sizeof status)
            memcpy (status, want->via.str.ptr, want->via.str.size);
        if (!nf_job_status_valid (status)) {
            char all[256], msg[320];
            nf_job_status_set (0, all, sizeof all); /* every status */
            snprintf (msg, sizeof msg, "status: not a job status (one of %s)", all);
            nf_client_error_encode (reply, msg);
            return 0;
        }
    }
    /* Each job with its counts by video state: the web page's and the
       monitor's list show them, and one statement beats one nf.status a
       job. */
    const char *params[] = {lim, status[0] ? status : NULL};
    PGresult *res = nf_db_exec (
        self->db, "list",
        "SELECT coalesce(json_agg(json_build_object('id', id, 'niche', niche, 'sub_niche', "
        "sub_niche, 'status', status, 'reason', status_reason, 'phase', phase, 'priority', "
        "priority, 'target', target, 'created_at', created_at, 'updated_at', updated_at, "
        "'finished_at', finished_at, 'counts', (SELECT coalesce(json_object_agg(state, n), '{}') "
        "FROM (SELECT state, count(*) AS n FROM nf_videos v WHERE v.job_id = j.id GROUP BY state) "
        "s)) ORDER BY id DESC), '[]')::text FROM (SELECT * FROM nf_jobs WHERE $2::text IS NULL OR "
        "status = $2::text ORDER BY id DESC LIMIT $1::int) j",
        2, params);
    if (!res)
        return NF_ERR_DB;
    const char *keys[] = {"jobs"};
    const char *vals[] = {PQgetvalue (res, 0, 0)};
    s_reply_json (reply, 1, keys, vals);
    PQclear (res);
    return 0;
}

/* The current status of job ID into OUT, its phase and (PRUNED, when not
   NULL) whether its retention pruning has started; 0 found, 1 not found,
   NF_ERR_DB. */
static int
s_job_current (nf_store_t *self, const char *id, char *out, size_t outlen, char *phase,
               size_t phaselen, bool *pruned)
{
    const char *params[] = {id};
    PGresult *res = nf_db_exec (self->db, "job_current",
                                "SELECT status, phase, pruned_at IS NOT NULL FROM nf_jobs WHERE "
                                "id = $1::bigint",
                                1, params);
    if (!res)
        return NF_ERR_DB;
    int rc = PQntuples (res) ? 0 : 1;
    if (rc == 0) {
        snprintf (out, outlen, "%s", PQgetvalue (res, 0, 0));
        snprintf (phase, phaselen, "%s", PQgetvalue (res, 0, 1));
        if (pruned)
            *pruned = PQgetvalue (res, 0, 2)[0] == 't';
    }
    PQclear (res);
    return rc;
}

/* The end of a service's transaction, with RES its last result (freed):
   commit when OK, publishing its events; otherwise roll back and drop
   them. NF_OK, or NF_ERR_DB when it did not commit. */
static nf_err_t
s_finish (nf_store_t *self, PGresult *res, bool ok)
{
    PQclear (res);
    if (!ok || nf_db_commit (self->db) != 0) {
        nf_db_rollback (self->db);
        nf_store_events_flush (self, false);
        return NF_ERR_DB;
    }
    nf_store_events_flush (self, true);
    return NF_OK;
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

static nf_err_t
s_cancel (nf_store_t *self, const char *id, const msgpack_object *req, nf_buf_t *reply)
{
    char status[32], phase[32];
    if (nf_db_begin (self->db) != 0)
        return NF_ERR_DB;
    int rc = s_job_current (self, id, status, sizeof status, phase, sizeof phase, NULL);
    int moved = rc == 0 ? nf_store_job_status (self, strtoll (id, NULL, 10), NF_JOB_CANCELLING,
                                               "cancelled by request")
                        : rc;
    /* A discovery in flight keeps its lease: its answer (every video it
       found) is applied when it comes, and the job is cancelled after
       (nf_sched's tick waits for the lease). Other in-flight work is
       dropped: its replies are fenced. */
    const nf_stage_t *ph = rc == 0 ? nf_stage_find (phase) : NULL;
    bool keep = ph && ph->scope == NF_SCOPE_JOB && !ph->state_in;
    const char *params[] = {id, keep ? "true" : "false"};
    PGresult *res = moved == 1
                        ? nf_db_exec (self->db, "cancel_leases",
                                      "WITH v AS (UPDATE nf_videos SET " NF_SQL_LEASE_CLEAR
                                      " WHERE job_id = $1::bigint AND lease_token IS NOT "
                                      "NULL RETURNING 1) UPDATE nf_jobs SET " NF_SQL_LEASE_CLEAR
                                      " WHERE id = $1::bigint AND NOT $2::boolean",
                                      2, params)
                        : NULL;
    if (s_finish (self, res, moved >= 0 && (moved == 0 || res)) != NF_OK)
        return NF_ERR_DB;
    if (rc == 1)
        nf_client_error_encode (reply, "no such job");
    else if (moved == 0) {
        char msg[128];
        snprintf (msg, sizeof msg, "job %s is %s; only unfinished jobs can be cancelled", id,
                  status);
        nf_client_error_encode (reply, msg);
    }
    else
        s_reply_ok_status (reply, NF_JOB_CANCELLING, -1);
    return 0;
}

/* The start of nf.retry and nf.resume: begin a transaction and read job
   ID's STATUS and PHASE (32 bytes each). 1 when ALLOWED (status) says the request may go on; 0 when
   REPLY holds the refusal ("job N is S; " WHY, or no such job) and the
   transaction is rolled back; NF_ERR_DB on a database error. */
static int
s_job_begin (nf_store_t *self, const char *id, bool (*allowed) (const char *), const char *why,
             char *status, char *phase, nf_buf_t *reply)
{
    if (nf_db_begin (self->db) != 0)
        return NF_ERR_DB;
    bool pruned = false;
    int rc = s_job_current (self, id, status, 32, phase, 32, &pruned);
    if (rc == 0 && allowed (status) && !pruned)
        return 1;
    nf_db_rollback (self->db);
    if (rc < 0)
        return NF_ERR_DB;
    char msg[240];
    if (rc)
        snprintf (msg, sizeof msg, "no such job");
    else if (pruned)
        snprintf (msg, sizeof msg,
                  "job %s was pruned (it finished more than NF_RETAIN_DAYS ago): its transcripts "
                  "are gone, so it cannot run again; submit the niche anew",
                  id);
    else
        snprintf (msg, sizeof msg, "job %s is %s; %s", id, status, why);
    nf_client_error_encode (reply, msg);
    return 0;
}

/* Only a finished job may be retried or resumed: a running one holds a
   live lease (a retry would clear it and run the stage twice) and its
   ranking is not made yet. */
static bool
s_retry_ok (const char *status)
{
    return nf_job_status_final (status) && nf_job_transition_ok (status, NF_JOB_PROCESSING)
           && strcmp (status, NF_JOB_CANCELLED) != 0;
}

static bool
s_resume_ok (const char *status)
{
    return nf_job_status_final (status) && nf_job_transition_ok (status, NF_JOB_PENDING);
}

static nf_err_t
s_retry (nf_store_t *self, const char *id, const msgpack_object *req, nf_buf_t *reply)
{
    char status[32], phase[32];
    int go =
        s_job_begin (self, id, s_retry_ok, "only failed, partial or completed jobs can be retried",
                     status, phase, reply);
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
        return NF_ERR_DB;
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
        nf_store_event (self, strtoll (id, NULL, 10), PQgetvalue (res, i, 0), NF_STATE_FAILED,
                        state, "retry", "nf.retry");
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
        nf_store_events_flush (self, false);
        nf_client_error_encode (reply, "nothing to retry: the job has no FAILED videos");
        return 0;
    }
    const char *jp[] = {id, at < nst ? stages[at].service : NF_PHASE_DONE};
    res = nf_db_exec (self->db, "retry_job",
                      "UPDATE nf_jobs SET phase = $2, attempts = 0, next_attempt_at = now(), "
                      "last_error = NULL, status_reason = NULL, " NF_SQL_LEASE_CLEAR
                      " WHERE id = $1::bigint",
                      2, jp);
    char reason[96];
    snprintf (reason, sizeof reason, "nf.retry: %d FAILED videos restored", restored);
    bool ok =
        res && nf_store_job_status (self, strtoll (id, NULL, 10), NF_JOB_PROCESSING, reason) >= 0;
    if (s_finish (self, res, ok) != NF_OK)
        return NF_ERR_DB;
    s_reply_ok_status (reply, NF_JOB_PROCESSING, restored);
    return 0;
}

/* nf.resume: a cancelled, failed or partial job goes back to the queue at
   its first stage, keeping its videos; discovery then looks for what is
   missing to reach `count` (it skips the ids the job has). */
static nf_err_t
s_resume (nf_store_t *self, const char *id, const msgpack_object *req, nf_buf_t *reply)
{
    char status[32], phase[32];
    int go =
        s_job_begin (self, id, s_resume_ok, "only cancelled, failed or partial jobs can be resumed",
                     status, phase, reply);
    if (go <= 0)
        return go;
    const char *jp[] = {id, nf_stage_next_job (NULL)->service};
    PGresult *res =
        nf_db_exec (self->db, "resume_job",
                    "UPDATE nf_jobs SET phase = $2, attempts = 0, next_attempt_at = "
                    "now(), last_error = NULL, " NF_SQL_LEASE_CLEAR " WHERE id = $1::bigint",
                    2, jp);
    bool ok = res
              && nf_store_job_status (self, strtoll (id, NULL, 10), NF_JOB_PENDING,
                                      "nf.resume: discovering what is missing to reach the "
                                      "target")
                     == 1;
    if (s_finish (self, res, ok) != NF_OK)
        return NF_ERR_DB;
    s_reply_ok_status (reply, NF_JOB_PENDING, -1);
    return 0;
}

/* nf.purge: a finished job and everything of it: its videos, history,
   log lines and exports (issue 24). A job still running is refused. */
static nf_err_t
s_purge (nf_store_t *self, const char *id, const msgpack_object *req, nf_buf_t *reply)
{
    (void) req;
    if (nf_db_begin (self->db) != 0)
        return NF_ERR_DB;
    char status[32], phase[32];
    int rc = s_job_current (self, id, status, sizeof status, phase, sizeof phase, NULL);
    if (rc != 0 || !nf_job_status_final (status)) {
        nf_db_rollback (self->db);
        if (rc < 0)
            return NF_ERR_DB;
        char msg[200];
        if (rc)
            snprintf (msg, sizeof msg, "no such job");
        else
            snprintf (msg, sizeof msg, "job %s is %s; cancel it first (nf-submit cancel %s)", id,
                      status, id);
        nf_client_error_encode (reply, msg);
        return 0;
    }
    const char *params[] = {id};
    PGresult *res = nf_db_exec (
        self->db, "purge",
        "WITH h AS (DELETE FROM nf_video_history WHERE job_id = $1::bigint RETURNING 1), l AS "
        "(DELETE FROM nf_processing_log WHERE job_id = $1::bigint RETURNING 1), v AS (SELECT "
        "count(*) AS n FROM nf_videos WHERE job_id = $1::bigint), e AS (SELECT count(*) AS n FROM "
        "nf_exports WHERE job_id = $1::bigint), j AS (DELETE FROM nf_jobs WHERE id = $1::bigint "
        "RETURNING 1) SELECT (SELECT n FROM v), (SELECT n FROM e), (SELECT count(*) FROM h), "
        "(SELECT count(*) FROM l), (SELECT count(*) FROM j)",
        1, params);
    bool ok = res && PQntuples (res) == 1 && atoi (PQgetvalue (res, 0, 4)) == 1;
    int64_t n[4] = {0, 0, 0, 0};
    for (int k = 0; ok && k < 4; k++)
        n[k] = strtoll (PQgetvalue (res, 0, k), NULL, 10);
    if (s_finish (self, res, ok) != NF_OK)
        return NF_ERR_DB;
    nf_info ("nf.purge: job %s deleted: %lld videos, %lld export files, %lld history rows, %lld "
             "log lines",
             id, (long long) n[0], (long long) n[1], (long long) n[2], (long long) n[3]);
    msgpack_packer pk;
    nf_pk_init_buf (&pk, reply);
    msgpack_pack_map (&pk, 6);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_bool (&pk, "ok", true);
    nf_pk_kv_int (&pk, "videos", n[0]);
    nf_pk_kv_int (&pk, "exports", n[1]);
    nf_pk_kv_int (&pk, "history", n[2]);
    nf_pk_kv_int (&pk, "logs", n[3]);
    return 0;
}

/* nf.export: one file of the job's exports: FORMAT (default xlsx) of
   VERSION (default the newest). */
static nf_err_t
s_export (nf_store_t *self, const char *id, const msgpack_object *req, nf_buf_t *reply)
{
    char *format = nf_mp_dup_str (req, "format");
    if (!format)
        format = strdup ("xlsx");
    int64_t want = 0;
    char version[24] = "";
    if (nf_mp_get (req, "version")) {
        if (!nf_mp_get_int (req, "version", &want) || want < 1 || want > INT32_MAX) {
            free (format);
            nf_client_error_encode (reply, "version: must be a positive integer");
            return 0;
        }
        snprintf (version, sizeof version, "%lld", (long long) want);
    }
    const char *params[] = {id, format, version[0] ? version : NULL};
    PGresult *res = nf_db_exec (
        self->db, "export_fetch",
        "SELECT e.content, e.version, (SELECT max(version) FROM nf_exports WHERE job_id = j.id) "
        "FROM nf_jobs j LEFT JOIN LATERAL (SELECT content, version FROM nf_exports WHERE job_id = "
        "j.id AND format = $2 AND ($3::int IS NULL OR version = $3::int) ORDER BY version DESC "
        "LIMIT 1) e ON true WHERE j.id = $1::bigint",
        3, params);
    if (!res) {
        free (format);
        return NF_ERR_DB;
    }
    if (PQntuples (res) == 0)
        nf_client_error_encode (reply, "no such job");
    else if (PQgetisnull (res, 0, 0)) {
        char msg[160];
        if (version[0])
            snprintf (msg, sizeof msg, "job %s has no %.16s export of version %s (newest: %s)", id,
                      format, version, PQgetisnull (res, 0, 2) ? "none" : PQgetvalue (res, 0, 2));
        else
            snprintf (msg, sizeof msg, "job %s has no %.16s export (yet)", id, format);
        nf_client_error_encode (reply, msg);
    }
    else {
        size_t len = 0;
        unsigned char *bytes =
            PQunescapeBytea ((const unsigned char *) PQgetvalue (res, 0, 0), &len);
        msgpack_packer pk;
        nf_pk_init_buf (&pk, reply);
        msgpack_pack_map (&pk, 6);
        nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
        nf_pk_kv_bool (&pk, "ok", true);
        nf_pk_kv_str (&pk, "format", format);
        nf_pk_kv_int (&pk, "version", atoll (PQgetvalue (res, 0, 1)));
        nf_pk_kv_int (&pk, "versions", atoll (PQgetvalue (res, 0, 2)));
        nf_pk_str (&pk, "content");
        msgpack_pack_bin (&pk, len);
        msgpack_pack_bin_body (&pk, bytes, len);
        PQfreemem (bytes);
    }
    PQclear (res);
    free (format);
    return 0;
}

/* The client services; JOB: the request names a job (job_id), read
   before the service runs; VIEW: a viewer's key may use it (it changes
   nothing and spends nothing). */
static const struct {
    const char *name;
    bool job;
    bool view;
    nf_err_t (*fn) (nf_store_t *, const char *, const msgpack_object *, nf_buf_t *);
} s_services[] = {
    {"nf.submit", false, false, s_submit}, {"nf.status", true, true, s_status},
    {"nf.list", false, true, s_list},      {"nf.cancel", true, false, s_cancel},
    {"nf.retry", true, false, s_retry},    {"nf.resume", true, false, s_resume},
    {"nf.export", true, true, s_export},   {"nf.purge", true, false, s_purge},
};

bool
nf_store_service_known (const char *service, bool *viewable)
{
    for (size_t i = 0; i < sizeof s_services / sizeof s_services[0]; i++)
        if (strcmp (service, s_services[i].name) == 0) {
            *viewable = s_services[i].view;
            return true;
        }
    *viewable = false;
    return false;
}

nf_err_t
nf_store_service (nf_store_t *self, const char *service, const msgpack_object *request,
                  nf_buf_t *reply)
{
    for (size_t i = 0; i < sizeof s_services / sizeof s_services[0]; i++) {
        if (strcmp (service, s_services[i].name) != 0)
            continue;
        char id[24] = "";
        if (s_services[i].job && s_job_id (request, id, sizeof id, reply) != NF_OK)
            return NF_OK; /* the reply says why */
        return s_services[i].fn (self, s_services[i].job ? id : NULL, request, reply);
    }
    nf_client_error_encode (reply, "unknown service");
    return NF_OK;
}

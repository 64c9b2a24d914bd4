/*  nf_cycle: the cycle, the broker's database work of one loop turn in
    ONE transaction (nf_store_cycle in nf_store.h): lease releases, then
    the batch of worker outcomes (one statement per stage and outcome kind,
    fenced by the lease token), then the claims of due work.

    Runs on the cycle thread only, with the cycle thread's store and its
    connection (nf_broker.c, s_cycle_actor). What a transaction produces
    (events, claimed tasks) is held in the store until it commits and only
    then handed on. Cost: one commit per cycle, a few statements per stage,
    however many replies the batch holds. */
#include "nf_log.h"
#include "nf_store_int.h"
#include "nf_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The stage's text column beside its input (nf_stage_t.text_in): TEXT
   of LEN bytes, or NULL for SQL NULL. */
typedef struct {
    const char *text;
    size_t len;
} nf_text_in_t;

/* Encode a task body into B. JSON texts come from PostgreSQL; TEXT_IN,
   when the stage has one, joins the input as one more member. NF_OK, or
   NF_ERR_INVALID with ERR when the body cannot be built: a JSON text that
   does not parse, or a body over MAX bytes (the workers' NF_MAX_FRAME:
   sent anyway, it would cost the worker its connection). */
static nf_err_t
s_encode_task (nf_buf_t *b, const nf_stage_t *stage, const char *token, int64_t job_id,
               const char *video_id, int attempt, const char *niche, const char *sub_niche,
               const char *options_json, const char *input_json, size_t input_len,
               const nf_text_in_t *text_in, size_t max, char *err, size_t errlen)
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
    if (nf_json_to_mp (options_json, strlen (options_json), &pk) != 0) {
        snprintf (err, errlen, "task input cannot be built: the job's options are not JSON");
        return NF_ERR_INVALID;
    }
    nf_pk_str (&pk, "input");
    if ((text_in ? nf_json_to_mp_with (input_json, input_len, stage->text_in, text_in->text,
                                       text_in->len, &pk)
                 : nf_json_to_mp (input_json, input_len, &pk))
        != 0) {
        snprintf (err, errlen, "task input cannot be built: the stage's input is not JSON");
        return NF_ERR_INVALID;
    }
    if (max && b->len > max) {
        snprintf (err, errlen,
                  "task input cannot be built: its body of %zu bytes is over NF_MAX_FRAME (%zu)",
                  b->len, max);
        return NF_ERR_INVALID;
    }
    return NF_OK;
}

/* A claimed task whose body cannot be built (WHY) is not sent: a video
   goes FAILED with the reason, a job fails with it; in the open
   transaction. Never a silent {} or a body the worker must refuse. */
static nf_err_t
s_unbuildable (nf_store_t *self, const nf_claim_t *claim, const char *why)
{
    nf_warn ("%s job %lld video %s: %s", claim->stage->service, (long long) claim->job_id,
             claim->video_id ? claim->video_id : "-", why);
    const char *params[] = {claim->token, why, claim->stage->service};
    if (!claim->video_id) {
        PGresult *res = nf_db_exec (self->db, "unbuildable_job",
                                    "UPDATE nf_jobs SET " NF_SQL_LEASE_CLEAR
                                    ", last_error = $2 WHERE lease_token = $1::uuid",
                                    2, params);
        PQclear (res);
        if (!res)
            return NF_ERR_DB;
        char reason[600];
        snprintf (reason, sizeof reason, "stage %s failed: %.500s", claim->stage->service, why);
        return nf_store_job_status (self, claim->job_id, NF_JOB_FAILED, reason) < 0 ? NF_ERR_DB
                                                                                    : NF_OK;
    }
    char job[24];
    snprintf (job, sizeof job, "%lld", (long long) claim->job_id);
    const char *vparams[] = {claim->token, why, claim->stage->service, job, claim->video_id};
    PGresult *res = nf_db_exec (
        self->db, "unbuildable_video",
        "WITH u AS (UPDATE nf_videos v SET failed_from = v.state, state = 'FAILED', last_error = "
        "$2, " NF_SQL_LEASE_CLEAR ", updated_at = now() WHERE v.job_id = $4::bigint AND "
        "v.video_id = $5 AND v.lease_token = $1::uuid RETURNING v.job_id, v.video_id, "
        "v.failed_from, v.attempts), h AS (INSERT INTO nf_video_history (job_id, video_id, "
        "from_state, to_state, service, attempt, reason) SELECT job_id, video_id, failed_from, "
        "'FAILED', $3, attempts, $2 FROM u), l AS (INSERT INTO nf_processing_log (module, job_id, "
        "video_id, level, message) SELECT $3, job_id, video_id, 'error', $2 FROM u) SELECT "
        "job_id, video_id, failed_from FROM u",
        5, vparams);
    if (!res)
        return NF_ERR_DB;
    if (PQntuples (res) == 1)
        nf_store_event (self, claim->job_id, claim->video_id, PQgetvalue (res, 0, 2),
                        NF_STATE_FAILED, claim->stage->service, why);
    PQclear (res);
    return NF_OK;
}

/* Hold a claimed task of W until the transaction commits. */
static void
s_pend (nf_store_t *self, nf_want_t *w, const nf_claim_t *claim)
{
    nf_pending_t *p = calloc (1, sizeof *p);
    p->claim = *claim;
    p->want = w;
    zlistx_add_end (self->claims, p);
    w->got++;
}

static nf_err_t
s_claim_video (nf_store_t *self, nf_sql_t *q, nf_want_t *w)
{
    char lim[16];
    snprintf (lim, sizeof lim, "%d", w->want);
    const char *params[] = {q->stage->state_in, self->max_attempts, lim, self->owner,
                            self->lease_ms};
    PGresult *res = nf_db_exec (self->db, q->name[NF_SQL_CLAIM], q->text[NF_SQL_CLAIM], 5, params);
    if (!res)
        return NF_ERR_DB;
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
        char why[200];
        /* Column 8 exists only for a stage with a text column: libpq
           answers a column out of range, but prints a notice each time. */
        nf_text_in_t text = {NULL, 0};
        if (q->stage->text_in && !PQgetisnull (res, i, 8))
            text = (nf_text_in_t){PQgetvalue (res, i, 8), (size_t) PQgetlength (res, i, 8)};
        if (s_encode_task (&b, q->stage, claim.token, claim.job_id, claim.video_id, claim.attempt,
                           PQgetvalue (res, i, 4), PQgetvalue (res, i, 5), PQgetvalue (res, i, 6),
                           PQgetvalue (res, i, 7), (size_t) PQgetlength (res, i, 7),
                           q->stage->text_in ? &text : NULL, self->opts.max_frame, why, sizeof why)
            != NF_OK) {
            nf_err_t rc = s_unbuildable (self, &claim, why);
            free (claim.video_id);
            if (rc != NF_OK) {
                nf_buf_free (&b);
                PQclear (res);
                return rc;
            }
            continue;
        }
        claim.body = zframe_new (b.data, b.len);
        s_pend (self, w, &claim);
    }
    nf_buf_free (&b);
    PQclear (res);
    return 0;
}

static nf_err_t
s_claim_job (nf_store_t *self, nf_sql_t *q, nf_want_t *w)
{
    char lim[16], min_ready[24];
    snprintf (lim, sizeof lim, "%d", w->want);
    snprintf (min_ready, sizeof min_ready, "%lld", (long long) self->opts.min_ready);
    const char *params[] = {q->stage->service, self->max_attempts, q->barrier, lim,
                            self->owner,       self->lease_ms,     q->holds,   min_ready};
    PGresult *res = nf_db_exec (self->db, q->name[NF_SQL_CLAIM], q->text[NF_SQL_CLAIM],
                                q->stage->needs_min_ready ? 8 : 6, params);
    if (!res)
        return NF_ERR_DB;
    int n = PQntuples (res);
    nf_buf_t b;
    nf_buf_init (&b);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int64_t job_id = strtoll (PQgetvalue (res, i, 0), NULL, 10);
        if (strcmp (PQgetvalue (res, i, 3), PQgetvalue (res, i, 4)) != 0)
            nf_store_event (self, job_id, NULL, PQgetvalue (res, i, 3), PQgetvalue (res, i, 4),
                            "job", "stage dispatched");
        nf_claim_t claim = {.stage = q->stage, .job_id = job_id};
        snprintf (claim.token, sizeof claim.token, "%s", PQgetvalue (res, i, 1));
        claim.attempt = atoi (PQgetvalue (res, i, 2));
        const char *iparams[] = {PQgetvalue (res, i, 0), q->holds[0] ? q->holds : NULL};
        PGresult *in =
            nf_db_exec (self->db, q->name[NF_SQL_INPUT], q->text[NF_SQL_INPUT], 2, iparams);
        if (!in) {
            rc = NF_ERR_DB; /* the transaction is aborted: nothing of it commits */
            break;
        }
        nf_buf_reset (&b);
        char why[200];
        nf_err_t built = s_encode_task (
            &b, q->stage, claim.token, claim.job_id, NULL, claim.attempt, PQgetvalue (res, i, 5),
            PQgetvalue (res, i, 6), PQgetvalue (res, i, 7), PQgetvalue (in, 0, 0),
            (size_t) PQgetlength (in, 0, 0), NULL, self->opts.max_frame, why, sizeof why);
        PQclear (in);
        if (built != NF_OK) {
            if (s_unbuildable (self, &claim, why) != NF_OK)
                rc = NF_ERR_DB;
            continue;
        }
        claim.body = zframe_new (b.data, b.len);
        s_pend (self, w, &claim);
    }
    nf_buf_free (&b);
    PQclear (res);
    return rc;
}

/* Claim what each of WANTS asks, in the open transaction. NF_OK or NF_ERR_DB. */
static nf_err_t
s_claim_all (nf_store_t *self, nf_want_t *wants, size_t nw)
{
    for (size_t i = 0; i < nw; i++) {
        nf_want_t *w = &wants[i];
        nf_sql_t *q = nf_store_sql (self, w->stage);
        if (!q || w->want <= 0)
            continue;
        int64_t t0 = nf_clock_us ();
        int rc = w->stage->scope == NF_SCOPE_VIDEO ? s_claim_video (self, q, w)
                                                   : s_claim_job (self, q, w);
        w->us += nf_clock_us () - t0;
        if (rc != 0)
            return NF_ERR_DB;
    }
    return 0;
}

/* After the transaction: hand the held claims to FN (COMMITTED) or drop them. */
static void
s_claims_flush (nf_store_t *self, bool committed, nf_claim_fn *fn)
{
    for (nf_pending_t *p = zlistx_first (self->claims); committed && p;
         p = zlistx_next (self->claims)) {
        self->stats.claimed++;
        fn (&p->claim, p->want->arg);
        p->claim.video_id = NULL; /* now the callback's */
        p->claim.body = NULL;
    }
    zlistx_purge (self->claims);
}

/* Check that every column OUTPUT sets for STAGE has the catalog's type, so
   the generated SQL casts cannot fail. NF_OK, or NF_ERR_INVALID with ERR. */
static nf_err_t
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
            return NF_ERR_INVALID;
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

/* Mark the outcomes of LIST (STAGE, KIND) that the statement's rows RES
   (job_id, video_id, ...) say were applied; the others were fenced. */
static void
s_mark_applied (PGresult *res, const nf_stage_t *stage, nf_reply_status_t kind, nf_outcome_t **list,
                size_t n)
{
    zhashx_t *rows = zhashx_new ();
    for (int i = 0; i < PQntuples (res); i++) {
        char key[200];
        snprintf (key, sizeof key, "%s/%s", PQgetvalue (res, i, 0), PQgetvalue (res, i, 1));
        zhashx_insert (rows, key, (void *) "");
    }
    for (size_t i = 0; i < n; i++) {
        nf_outcome_t *o = list[i];
        if (!o || o->stage != stage || !o->video_id || o->status != kind)
            continue;
        char key[200];
        snprintf (key, sizeof key, "%lld/%s", (long long) o->job_id, o->video_id);
        o->applied = zhashx_lookup (rows, key) != NULL;
    }
    zhashx_destroy (&rows);
}

/* Apply the video outcomes of STAGE with status KIND from LIST in one statement. */
static nf_err_t
s_apply_video_kind (nf_store_t *self, nf_sql_t *q, nf_reply_status_t kind, nf_outcome_t **list,
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
    nf_sql_kind_t which = kind == NF_REPLY_OK       ? NF_SQL_OK
                          : kind == NF_REPLY_REJECT ? NF_SQL_REJECT
                                                    : NF_SQL_ERROR;
    PGresult *res = nf_db_exec (self->db, q->name[which], q->text[which],
                                kind == NF_REPLY_REJECT ? 3 : 4, params);
    nf_buf_free (&b);
    if (!res)
        return NF_ERR_DB;
    int applied = PQntuples (res);
    for (int i = 0; i < applied; i++)
        nf_store_event (self, strtoll (PQgetvalue (res, i, 0), NULL, 10), PQgetvalue (res, i, 1),
                        q->stage->state_in, PQgetvalue (res, i, 2), q->stage->service,
                        PQgetisnull (res, i, 3) ? NULL : PQgetvalue (res, i, 3));
    s_mark_applied (res, q->stage, kind, list, n);
    self->stats.applied += (uint64_t) applied;
    self->stats.fenced += rows - (size_t) applied;
    if (rows > (size_t) applied)
        nf_info ("%s: %zu of %zu replies fenced (lease expired or released)", q->stage->service,
                 rows - (size_t) applied, rows);
    PQclear (res);
    return 0;
}

/* Append O's usage counters to ARR ("[job,q,h,t,s,b],..."), if it has any. */
static void
s_usage_add (nf_buf_t *arr, const nf_outcome_t *o)
{
    if (!o->usage)
        return;
    static const char *const keys[] = {"quota_units", "http_requests", "tokens", "search_calls",
                                       "baseline_units"};
    int64_t u[5] = {0, 0, 0, 0, 0};
    bool any = false;
    for (int k = 0; k < 5; k++) {
        nf_mp_get_int (o->usage, keys[k], &u[k]);
        u[k] = u[k] > 0 && u[k] < INT32_MAX ? u[k] : 0;
        any |= u[k] != 0;
    }
    if (any)
        nf_buf_printf (arr, "%s[%lld,%lld,%lld,%lld,%lld,%lld]", arr->len ? "," : "",
                       (long long) o->job_id, (long long) u[0], (long long) u[1], (long long) u[2],
                       (long long) u[3], (long long) u[4]);
}

/* Run statement NAME (SQL, its one parameter the JSON document DOC, which
   is freed). NF_OK or NF_ERR_DB. */
static nf_err_t
s_exec_doc (nf_store_t *self, const char *name, const char *sql, nf_buf_t *doc)
{
    const char *params[] = {doc->data};
    PGresult *res = nf_db_exec (self->db, name, sql, 1, params);
    nf_buf_free (doc);
    PQclear (res);
    return res ? NF_OK : NF_ERR_DB;
}

/* Add the usage counters gathered in ARR to their jobs: one statement per
   batch, not one per reply. */
static nf_err_t
s_apply_usage (nf_store_t *self, nf_buf_t *arr)
{
    if (!arr->len)
        return 0;
    nf_buf_t doc;
    nf_buf_init (&doc);
    nf_buf_printf (&doc, "[%s]", arr->data);
    return s_exec_doc (
        self, "job_usage",
        "UPDATE nf_jobs j SET quota_units = quota_units + x.q, http_requests = http_requests + "
        "x.h, tokens = tokens + x.t, search_calls = search_calls + x.s, baseline_units = "
        "baseline_units + x.b FROM (SELECT (e->>0)::bigint AS id, sum((e->>1)::bigint) AS q, "
        "sum((e->>2)::bigint) AS h, sum((e->>3)::bigint) AS t, sum(coalesce((e->>4)::bigint, 0)) "
        "AS s, sum(coalesce((e->>5)::bigint, 0)) AS b FROM jsonb_array_elements($1::jsonb) e "
        "GROUP BY 1) x WHERE j.id = x.id",
        &doc);
}

/* Validate the items of a job reply. */
static nf_err_t
s_check_items (const nf_stage_t *stage, const msgpack_object *items, char *err, size_t errlen)
{
    if (!items)
        return 0;
    if (items->type != MSGPACK_OBJECT_ARRAY) {
        snprintf (err, errlen, "invalid reply: 'videos' must be an array");
        return NF_ERR_INVALID;
    }
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        const msgpack_object *it = &items->via.array.ptr[i];
        const char *id;
        size_t len;
        if (it->type != MSGPACK_OBJECT_MAP || !nf_mp_get_str (it, "video_id", &id, &len) || len == 0
            || len > 128) {
            snprintf (err, errlen,
                      "invalid reply: videos[%u] needs a 'video_id' string of 1 to 128 bytes", i);
            return NF_ERR_INVALID;
        }
        const msgpack_object *st = nf_mp_get (it, "status");
        if (st && !nf_mp_is_str (st, "ok") && !nf_mp_is_str (st, "keep")
            && !nf_mp_is_str (st, "reject")) {
            snprintf (err, errlen, "invalid reply: videos[%u].status must be ok, keep or reject",
                      i);
            return NF_ERR_INVALID;
        }
        if (s_check_fields (stage, it, err, errlen) != 0)
            return NF_ERR_INVALID;
    }
    return 0;
}

/* The job's next export version into OUT (16 bytes). NF_OK or NF_ERR_DB. */
static nf_err_t
s_export_version (nf_store_t *self, const char *id, char *out)
{
    const char *params[] = {id};
    PGresult *res = nf_db_exec (self->db, "export_version",
                                "SELECT coalesce(max(version), 0) + 1 FROM nf_exports WHERE "
                                "job_id = $1::bigint",
                                1, params);
    if (!res)
        return NF_ERR_DB;
    snprintf (out, 16, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);
    return NF_OK;
}

/* The export stage's files (format to bytes): stored together as the
   job's next version; earlier versions stay downloadable. */
static nf_err_t
s_apply_files (nf_store_t *self, nf_outcome_t *o, const msgpack_object *files)
{
    if (!files || files->type != MSGPACK_OBJECT_MAP)
        return 0;
    char id[24], version[16];
    snprintf (id, sizeof id, "%lld", (long long) o->job_id);
    if (s_export_version (self, id, version) != NF_OK)
        return NF_ERR_DB;
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
        nf_buf_t hex, fmt;
        nf_buf_init (&hex);
        nf_buf_init (&fmt);
        nf_buf_puts (&hex, "\\x");
        static const char digits[] = "0123456789abcdef";
        for (size_t j = 0; j < len; j++) {
            char pair[2] = {digits[(unsigned char) data[j] >> 4], digits[data[j] & 15]};
            nf_buf_append (&hex, pair, 2);
        }
        nf_buf_utf8_repair (&fmt, k->via.str.ptr, k->via.str.size);
        const char *params[] = {id, version, fmt.data, hex.data};
        PGresult *res = nf_db_exec (self->db, "export_store",
                                    "INSERT INTO nf_exports (job_id, version, format, content) "
                                    "VALUES ($1::bigint, $2::int, $3, $4::bytea) ON CONFLICT "
                                    "(job_id, version, format) DO UPDATE SET content = "
                                    "EXCLUDED.content, created_at = now()",
                                    4, params);
        nf_buf_free (&hex);
        nf_buf_free (&fmt);
        if (!res)
            return NF_ERR_DB;
        PQclear (res);
    }
    return 0;
}

static nf_err_t
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
    return s_exec_doc (
        self, "channels_upsert",
        "INSERT INTO nf_channels (channel_id, data, updated_at) SELECT DISTINCT ON "
        "(x->>'channel_id') x->>'channel_id', x, now() FROM jsonb_array_elements($1::jsonb) x "
        "WHERE jsonb_typeof(x->'channel_id') = 'string' ON CONFLICT (channel_id) DO UPDATE SET "
        "data = CASE WHEN EXCLUDED.data ? 'recent' THEN EXCLUDED.data ELSE EXCLUDED.data || "
        "jsonb_strip_nulls(jsonb_build_object('recent', nf_channels.data->'recent', 'recent_at', "
        "nf_channels.data->'recent_at')) END, updated_at = now()",
        &b);
}

/* A job stage's error or reject: back off, or fail the job when its
   attempts are spent or the error is permanent. */
static nf_err_t
s_apply_job_error (nf_store_t *self, nf_outcome_t *o, const char *id)
{
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
        "SET " NF_SQL_LEASE_CLEAR
        ", last_error = $3, next_attempt_at = now() + make_interval(secs => $4::float8 / "
        "1000), updated_at = now() FROM o WHERE j.id = o.id RETURNING j.id, (o.attempts >= "
        "$5::int OR $6::boolean) AS exhausted), l AS (INSERT INTO nf_processing_log (module, "
        "job_id, level, message) SELECT $7, id, 'error', $3 FROM u) SELECT exhausted FROM u",
        7, params);
    if (!res)
        return NF_ERR_DB;
    bool applied = PQntuples (res) == 1;
    bool exhausted = applied && PQgetvalue (res, 0, 0)[0] == 't';
    PQclear (res);
    if (!applied) {
        self->stats.fenced++;
        return 0;
    }
    self->stats.applied++;
    o->applied = true;
    if (!exhausted)
        return 0;
    char reason[600];
    snprintf (reason, sizeof reason, "stage %s failed: %.500s", o->stage->service,
              o->text ? o->text : "");
    return nf_store_job_status (self, o->job_id, NF_JOB_FAILED, reason) < 0 ? NF_ERR_DB : NF_OK;
}

/* Fence a job stage's success and move the job to its next phase. 1
   applied (STATUS, 32 bytes, and TARGET set), 0 fenced, NF_ERR_DB. */
static int
s_job_advance (nf_store_t *self, nf_outcome_t *o, const char *id, char *status, int *target)
{
    const nf_stage_t *next = nf_stage_next_job (o->stage);
    const char *params[] = {id, o->token, o->stage->service, next ? next->service : NF_PHASE_DONE};
    PGresult *res = nf_db_exec (
        self->db, "job_advance",
        "WITH o AS (SELECT id, status FROM nf_jobs WHERE id = $1::bigint AND lease_token = "
        "$2::uuid AND lease_expires >= now() AND phase = $3 FOR UPDATE), u AS (UPDATE nf_jobs j "
        "SET phase = $4, attempts = 0, last_error = NULL, " NF_SQL_LEASE_CLEAR ", updated_at = "
        "now() FROM o WHERE j.id = o.id RETURNING j.id, j.status, j.target) SELECT status, "
        "target FROM u",
        4, params);
    if (!res)
        return NF_ERR_DB;
    int applied = PQntuples (res) == 1;
    if (applied) {
        snprintf (status, 32, "%s", PQgetvalue (res, 0, 0));
        *target = atoi (PQgetvalue (res, 0, 1));
        self->stats.applied++;
        o->applied = true;
    }
    else {
        self->stats.fenced++;
        nf_info ("%s: reply for job %lld fenced (lease expired or released)", o->stage->service,
                 (long long) o->job_id);
    }
    PQclear (res);
    return applied;
}

/* The per-video items of a job stage's reply (new videos for a creating
   stage, state moves for the others). NF_OK, NF_ERR_DB, or NF_ERR_DB_DATA
   when the items cannot be stored. */
static nf_err_t
s_apply_job_items (nf_store_t *self, nf_outcome_t *o, const char *id, const msgpack_object *items)
{
    if (!items || items->via.array.size == 0)
        return 0;
    nf_sql_t *q = nf_store_sql (self, o->stage);
    char err[256], attempt[16];
    snprintf (attempt, sizeof attempt, "%d", o->attempt);
    nf_buf_t b;
    nf_buf_init (&b);
    if (nf_mp_to_json (items, &b, err, sizeof err) != 0) {
        nf_buf_free (&b);
        return NF_ERR_DB_DATA; /* isolated by the caller */
    }
    /* Creating stages take (job, items, state_out, service, attempt);
       the others (job, items, state_out, state_in, service, attempt,
       holds) and answer the state each video left. */
    const nf_stage_t *st = o->stage;
    const char *create[] = {id, b.data, st->state_out, st->service, attempt};
    const char *update[] = {id,          b.data,  st->state_out, st->state_in,
                            st->service, attempt, q->holds};
    PGresult *ir = nf_db_exec (self->db, q->name[NF_SQL_ITEMS], q->text[NF_SQL_ITEMS],
                               st->state_in ? 7 : 5, st->state_in ? update : create);
    nf_buf_free (&b);
    if (!ir)
        return NF_ERR_DB;
    for (int i = 0; i < PQntuples (ir); i++) {
        const char *from = st->state_in ? PQgetvalue (ir, i, 2) : NULL;
        if (!from || strcmp (PQgetvalue (ir, i, 1), from) != 0)
            nf_store_event (self, o->job_id, PQgetvalue (ir, i, 0), from, PQgetvalue (ir, i, 1),
                            st->service, NULL);
    }
    PQclear (ir);
    return 0;
}

/* A job stage may say why it did less than asked ("quotaExceeded: ..."):
   kept in processing_log, and into NOTE (512 bytes) as the reason of the
   job's next status. NF_OK or NF_ERR_DB. */
static nf_err_t
s_apply_job_note (nf_store_t *self, nf_outcome_t *o, const char *id, char *note)
{
    const char *nt = NULL;
    size_t nt_len = 0;
    note[0] = 0;
    if (!o->output || !nf_mp_get_str (o->output, "note", &nt, &nt_len) || nt_len == 0)
        return 0;
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_utf8_repair (&b, nt, nt_len < 500 ? nt_len : 500);
    snprintf (note, 512, "%s", b.data ? b.data : "");
    nf_buf_free (&b);
    const char *lp[] = {o->stage->service, id, note};
    PGresult *lr = nf_db_exec (self->db, "job_note",
                               "INSERT INTO nf_processing_log (module, job_id, level, message) "
                               "VALUES ($1, $2::bigint, 'warn', $3)",
                               3, lp);
    PQclear (lr);
    return lr ? NF_OK : NF_ERR_DB;
}

/* After the final job stage: completed when the target was reached,
   partial when not. NF_OK or NF_ERR_DB. */
static nf_err_t
s_job_finish (nf_store_t *self, nf_outcome_t *o, const char *id, int target)
{
    const char *cp[] = {id, o->stage->state_out};
    PGresult *cr = nf_db_exec (self->db, "job_count_state",
                               "SELECT count(*) FROM nf_videos WHERE job_id = $1::bigint AND "
                               "state = $2",
                               2, cp);
    if (!cr)
        return NF_ERR_DB;
    int done = atoi (PQgetvalue (cr, 0, 0));
    PQclear (cr);
    char reason[128];
    snprintf (reason, sizeof reason, "%d of %d outliers delivered", done, target);
    return nf_store_job_status (self, o->job_id, done >= target ? NF_JOB_COMPLETED : NF_JOB_PARTIAL,
                                reason)
                   < 0
               ? NF_ERR_DB
               : NF_OK;
}

/* Apply a job-scope outcome: NF_OK, NF_ERR_DB, or NF_ERR_DB_DATA (unstorable). */
static nf_err_t
s_apply_job (nf_store_t *self, nf_outcome_t *o)
{
    char id[24], err[256], status[32], note[512];
    snprintf (id, sizeof id, "%lld", (long long) o->job_id);
    const msgpack_object *items = o->output ? nf_mp_get (o->output, "videos") : NULL;
    if (o->status == NF_REPLY_OK && s_check_items (o->stage, items, err, sizeof err) != 0)
        s_make_error (o, err);
    if (o->status != NF_REPLY_OK)
        return s_apply_job_error (self, o, id);
    int target = 0;
    int rc = s_job_advance (self, o, id, status, &target);
    if (rc <= 0)
        return rc;
    if ((rc = s_apply_job_items (self, o, id, items)) != 0)
        return rc;
    if (o->output
        && (s_apply_channels (self, nf_mp_get (o->output, "channels")) != 0
            || s_apply_files (self, o, nf_mp_get (o->output, "files")) != 0))
        return NF_ERR_DB;
    if (s_apply_job_note (self, o, id, note) != 0)
        return NF_ERR_DB;
    /* The first job stage's success: the job is now processing. */
    if (strcmp (status, NF_JOB_RUNNING) == 0
        && nf_store_job_status (self, o->job_id, NF_JOB_PROCESSING,
                                note[0] ? note : "discovery done")
               < 0)
        return NF_ERR_DB;
    return nf_stage_next_job (o->stage) ? 0 : s_job_finish (self, o, id, target);
}

void
nf_releases_free (nf_release_t *releases, size_t r)
{
    for (size_t i = 0; i < r; i++)
        free (releases[i].video_id);
    free (releases);
}

/* The renewals among RELEASES in one statement: each unexpired lease
   extended by the lease length from now. A lease's row is found by its
   key (there is no index on the token: a claim, which sets it, stays a
   HOT update; migration 009). NF_OK or NF_ERR_DB. */
static nf_err_t
s_renew_leases (nf_store_t *self, const nf_release_t *releases, size_t r)
{
    nf_buf_t batch;
    nf_buf_init (&batch);
    size_t n = 0;
    for (size_t i = 0; i < r; i++) {
        const nf_release_t *l = &releases[i];
        if (!l->renew)
            continue;
        nf_buf_printf (&batch, "%s{\"t\":\"%s\",\"j\":%lld,\"v\":", n++ ? "," : "[", l->token,
                       (long long) l->job_id);
        if (l->video_id)
            nf_buf_json_str (&batch, l->video_id, strlen (l->video_id));
        else
            nf_buf_puts (&batch, "null");
        nf_buf_puts (&batch, "}");
    }
    if (!n)
        return NF_OK;
    nf_buf_puts (&batch, "]");
    const char *params[] = {batch.data, self->lease_ms};
    PGresult *res = nf_db_exec (
        self->db, "lease_renew",
        "WITH t AS (SELECT (x->>'t')::uuid AS token, (x->>'j')::bigint AS job_id, x->>'v' AS "
        "video_id FROM nf_batch($1::jsonb) x), v AS (UPDATE nf_videos v SET lease_expires = now() "
        "+ make_interval(secs => $2::float8 / 1000) FROM t WHERE v.job_id = t.job_id AND "
        "v.video_id = t.video_id AND v.lease_token = t.token AND v.lease_expires >= now() "
        "RETURNING 1), j AS (UPDATE nf_jobs j SET lease_expires = now() + make_interval(secs => "
        "$2::float8 / 1000) FROM t WHERE t.video_id IS NULL AND j.id = t.job_id AND "
        "j.lease_token = t.token AND j.lease_expires >= now() RETURNING 1) SELECT (SELECT "
        "count(*) FROM v) + (SELECT count(*) FROM j)",
        2, params);
    nf_buf_free (&batch);
    if (!res)
        return NF_ERR_DB;
    long renewed = atol (PQgetvalue (res, 0, 0));
    if (renewed < (long) n)
        nf_info ("renewed %ld of %zu leases (the others had run out)", renewed, n);
    self->stats.renewed += (uint64_t) renewed;
    PQclear (res);
    return NF_OK;
}

/* Everything of one transaction: NF_OK, NF_ERR_DB (transient) or
   NF_ERR_DB_DATA (the database refused the data). */
static nf_err_t
s_apply_all (nf_store_t *self, nf_outcome_t **list, size_t n, const nf_release_t *releases,
             size_t r)
{
    if (s_renew_leases (self, releases, r) != NF_OK)
        return nf_db_error_transient (self->db) ? NF_ERR_DB : NF_ERR_DB_DATA;
    for (size_t i = 0; i < r; i++) {
        if (releases[i].renew)
            continue;
        char job[24];
        snprintf (job, sizeof job, "%lld", (long long) releases[i].job_id);
        const char *params[] = {releases[i].token, releases[i].undelivered ? "true" : "false", job,
                                releases[i].video_id};
        PGresult *res = nf_db_exec (
            self->db, "release",
            "WITH v AS (UPDATE nf_videos SET " NF_SQL_LEASE_CLEAR
            ", attempts = CASE WHEN $2::boolean "
            "THEN greatest(attempts - 1, 0) ELSE attempts END, last_error = CASE WHEN "
            "$2::boolean THEN last_error ELSE 'worker lost while holding the task' END WHERE "
            "job_id = $3::bigint AND video_id = $4::text AND lease_token = $1::uuid RETURNING 1), "
            "j AS (UPDATE nf_jobs SET " NF_SQL_LEASE_CLEAR
            ", attempts = CASE WHEN $2::boolean THEN greatest(attempts - 1, 0) ELSE attempts END, "
            "last_error = CASE WHEN $2::boolean THEN last_error ELSE 'worker lost while holding "
            "the task' END WHERE $4::text IS NULL AND id = $3::bigint AND lease_token = $1::uuid "
            "RETURNING 1) SELECT (SELECT count(*) FROM v) + (SELECT count(*) FROM j)",
            4, params);
        if (!res)
            return nf_db_error_transient (self->db) ? NF_ERR_DB : NF_ERR_DB_DATA;
        PQclear (res);
    }
    for (size_t i = 0; i < self->nstages; i++) {
        nf_sql_t *q = &self->sql[i];
        if (q->stage->scope != NF_SCOPE_VIDEO)
            continue;
        for (int k = NF_REPLY_OK; k <= NF_REPLY_ERROR; k++)
            if (s_apply_video_kind (self, q, (nf_reply_status_t) k, list, n) != 0)
                return nf_db_error_transient (self->db) ? NF_ERR_DB : NF_ERR_DB_DATA;
    }
    nf_buf_t usage;
    nf_buf_init (&usage);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!list[i])
            continue;
        if (!list[i]->video_id) {
            rc = nf_db_command (self->db, NF_SQL_PLAN_DEFAULT) != 0 ? NF_ERR_DB
                                                                    : s_apply_job (self, list[i]);
            if (rc == 0 && nf_db_command (self->db, NF_SQL_PLAN_LOOKUPS) != 0)
                rc = NF_ERR_DB;
        }
        if (list[i]->applied) /* a fenced reply (late, or a replay) costs nothing twice */
            s_usage_add (&usage, list[i]);
    }
    if (rc == 0)
        rc = s_apply_usage (self, &usage);
    nf_buf_free (&usage);
    if (rc != 0)
        return rc == NF_ERR_DB_DATA || !nf_db_error_transient (self->db) ? NF_ERR_DB_DATA
                                                                         : NF_ERR_DB;
    return 0;
}

/* One transaction: releases, outcomes, then claims (which see the
   transitions just applied). NF_OK committed, NF_ERR_DB transient,
   NF_ERR_DB_DATA a data error. */
static nf_err_t
s_transaction (nf_store_t *self, nf_outcome_t **list, size_t n, const nf_release_t *releases,
               size_t r, nf_want_t *wants, size_t nw, nf_claim_fn *fn)
{
    for (size_t i = 0; i < nw; i++) {
        wants[i].got = 0;
        wants[i].us = 0;
    }
    for (size_t i = 0; i < n; i++) /* a batch rolled back and re-applied starts afresh */
        if (list[i])
            list[i]->applied = false;
    if (nf_db_command (self->db, "BEGIN; " NF_SQL_PLAN_LOOKUPS) != 0)
        return NF_ERR_DB;
    int rc = s_apply_all (self, list, n, releases, r);
    if (rc == 0 && s_claim_all (self, wants, nw) != 0)
        rc = nf_db_error_transient (self->db) ? NF_ERR_DB : NF_ERR_DB_DATA;
    if (rc == 0 && nf_db_commit (self->db) != 0)
        rc = nf_db_error_transient (self->db) ? NF_ERR_DB : NF_ERR_DB_DATA;
    if (rc != 0)
        nf_db_rollback (self->db);
    else
        self->stats.transactions++;
    nf_store_events_flush (self, rc == 0);
    s_claims_flush (self, rc == 0, fn);
    if (rc != 0)
        for (size_t i = 0; i < nw; i++)
            wants[i].got = -1;
    return rc;
}

nf_err_t
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
    if (rc != NF_ERR_DB_DATA) {
        if (rc == NF_OK && self->stats.systemic) {
            nf_info ("the database accepts the cycle's statements again");
            self->stats.systemic = false;
        }
        return rc;
    }
    /* Not the data's fault (a revoked grant, a missing table): every reply
       would fail alike. Store nothing as an error; keep the batch for the
       next cycle and say so, once. */
    if (nf_db_error_systemic (self->db)) {
        self->stats = before;
        if (!self->stats.systemic)
            nf_error ("the database refuses the cycle's statements (SQLSTATE %s: %s); no reply is "
                      "failed for it, the batch waits until an operator acts",
                      nf_db_sqlstate (self->db), nf_db_error (self->db));
        self->stats.systemic = true;
        return NF_ERR_DB;
    }
    /* A data error: isolate. Each outcome alone; one the database refuses
       is stored as a permanent error of its task instead. The claims come
       last, in a transaction of their own. */
    self->stats = before;
    nf_warn ("batch refused by the database (%s); applying %zu replies one by one",
             nf_db_error (self->db), n);
    if (r && s_transaction (self, NULL, 0, releases, r, NULL, 0, fn) == NF_ERR_DB)
        return NF_ERR_DB;
    for (size_t i = 0; i < n; i++) {
        nf_outcome_t *one[1] = {outcomes[i]};
        rc = s_transaction (self, one, 1, NULL, 0, NULL, 0, fn);
        if (rc == NF_ERR_DB)
            return NF_ERR_DB;
        if (rc == NF_ERR_DB_DATA) {
            snprintf (err, sizeof err, "result could not be stored: %.200s",
                      nf_db_error (self->db));
            nf_error ("%s job %lld video %s: %s", outcomes[i]->stage->service,
                      (long long) outcomes[i]->job_id,
                      outcomes[i]->video_id ? outcomes[i]->video_id : "-", err);
            s_make_error (outcomes[i], err);
            self->stats.isolated++;
            if (s_transaction (self, one, 1, NULL, 0, NULL, 0, fn) == NF_ERR_DB)
                return NF_ERR_DB;
        }
    }
    if (nw && s_transaction (self, NULL, 0, NULL, 0, wants, nw, fn) == NF_ERR_DB_DATA)
        nf_warn ("claims refused by the database: %s", nf_db_error (self->db));
    return 0;
}

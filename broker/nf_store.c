/*  nf_store: see nf_store.h; the files of the store and the thread each
    runs on are listed in nf_store_int.h. This one builds a store for one
    connection (the statements of every stage, once), holds the events and
    claims of the open transaction until it ends, and moves job statuses:
    called on both threads, each with its own store. */
#include "nf_store_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static void
s_pending_free (void **item)
{
    nf_pending_t *p = (nf_pending_t *) *item;
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

void
nf_store_event (nf_store_t *self, int64_t job_id, const char *video_id, const char *from,
                const char *to, const char *service, const char *reason)
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

void
nf_store_events_flush (nf_store_t *self, bool committed)
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
    assert (count <= NF_STORE_MAX_STAGES);
    self->nstages = count;
    for (size_t i = 0; i < count; i++)
        if (nf_sql_build (&self->sql[i], &stages[i]) != 0) {
            nf_store_destroy (&self);
            return NULL;
        }
    return self;
}

void
nf_store_destroy (nf_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_store_t *self = *self_p;
    for (size_t i = 0; i < self->nstages; i++)
        nf_sql_free (&self->sql[i]);
    zlistx_destroy (&self->events);
    zlistx_destroy (&self->claims);
    free (self->owner);
    free (self);
    *self_p = NULL;
}

nf_sql_t *
nf_store_sql (nf_store_t *self, const nf_stage_t *stage)
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

int
nf_store_job_status (nf_store_t *self, int64_t job_id, const char *to, const char *reason)
{
    size_t n;
    const nf_job_status_t *statuses = nf_job_statuses (&n);
    nf_buf_t from;
    nf_buf_init (&from);
    nf_buf_puts (&from, "{");
    for (size_t i = 0; i < n; i++)
        if (nf_job_transition_ok (statuses[i].name, to))
            nf_buf_printf (&from, "%s%s", from.len > 1 ? "," : "", statuses[i].name);
    nf_buf_puts (&from, "}");
    char id[24];
    snprintf (id, sizeof id, "%lld", (long long) job_id);
    const char *params[] = {id, to, reason, from.data, nf_job_status_final (to) ? "t" : "f"};
    PGresult *res = nf_db_exec (
        self->db, "job_status",
        "WITH o AS (SELECT id, status FROM nf_jobs WHERE id = $1::bigint FOR UPDATE), u AS "
        "(UPDATE nf_jobs j SET status = $2, status_reason = coalesce($3, j.status_reason), "
        "updated_at = now(), finished_at = CASE WHEN $5::boolean THEN now() ELSE NULL "
        "END FROM o WHERE j.id = o.id AND o.status = "
        "ANY($4::text[]) RETURNING j.id, o.status AS old), h AS (INSERT INTO nf_job_history "
        "(job_id, from_status, to_status, reason) SELECT id, old, $2, $3 FROM u) SELECT old FROM u",
        5, params);
    nf_buf_free (&from);
    if (!res)
        return NF_ERR_DB;
    int moved = PQntuples (res);
    if (moved)
        nf_store_event (self, job_id, NULL, PQgetvalue (res, 0, 0), to, "job", reason);
    PQclear (res);
    return moved;
}

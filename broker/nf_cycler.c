/*  nf_cycler: the cycle, from the main thread's side and the thread's.

    Main thread: nf_cycle_start picks the stages to claim for (those whose
    workers run low and whose pause is over, or that this batch feeds) and
    hands the waiting replies, releases and claims to the cycle thread as
    one nf_cycle_t; nf_cycle_done takes it back: queues the claimed tasks,
    publishes the events, re-arms the stages it fed.

    Cycle thread: nf_cycler_actor runs each cycle on the cycle connection
    (nf_store_cycle, nf_cycle.c) and sends it back through the pipe. It
    touches only the cycle, cycle_db, cycle_store and cycle_events.

    Cost: one allocation per cycle and one per claimed task; the events
    are copied once (five strings each) so that the main thread publishes
    them. */
#include "nf_broker_int.h"
#include "nf_log.h"
#include "nf_util.h"

/* ---- dispatch, flush, liveness ------------------------------------------------ */

/* How many tasks of SVC to hold claimed beyond its idle workers, so a
   worker that finishes gets its next task without a database round trip
   and claims come in batches (one commit for many tasks): about
   PREFETCH_MS of work per worker (at least one task, at most PREFETCH),
   and never more than a queue that drains within a quarter of a lease (a
   queued task's lease is running). None for job-scope stages, and none
   until a task's duration is known. */
static size_t
s_spare (const nf_broker_t *self, const nf_service_t *svc)
{
    if (svc->stage->scope != NF_SCOPE_VIDEO || svc->task_ms <= 0)
        return 0;
    double depth = fmax (1.0, PREFETCH_MS / svc->task_ms);
    depth = fmin (depth, fmin ((double) PREFETCH, (double) self->lease_ms / 4.0 / svc->task_ms));
    size_t spare = (size_t) depth * svc->workers;
    return spare > (size_t) self->claim_batch ? (size_t) self->claim_batch : spare;
}

/* Whether SVC needs a claim: a worker waits with nothing queued for it, or
   its spare tasks run low. Sets *WANT to how many to ask for. */
static bool
s_wants (const nf_broker_t *self, const nf_service_t *svc, int *want)
{
    size_t idle = zlistx_size (svc->idle), queued = zlistx_size (svc->queue);
    size_t spare = s_spare (self, svc);
    if (!(idle > queued || (spare && queued <= spare / 2)))
        return false;
    size_t n = idle + spare - queued;
    *want = n > (size_t) self->claim_batch ? self->claim_batch : (int) n;
    return *want > 0;
}

/* Whether outcome O gives SVC new work: a success whose stage produces
   the state SVC's stage consumes. */
static bool
s_feeds (const nf_outcome_t *o, const nf_service_t *svc)
{
    return o->status == NF_REPLY_OK && o->stage->state_out && svc->stage->state_in
           && strcmp (o->stage->state_out, svc->stage->state_in) == 0;
}

/* Whether this broker holds a per-video task of job JOB_ID (claimed or in
   a worker's hands): then none of the job's barriers can be clear. Its
   callers walk the services table: it walks service_list, since
   zhashx_first and zhashx_next would move the table's one cursor under
   them (before, a caller's walk ended early, or began again). */
static bool
s_holds_job (nf_broker_t *self, int64_t job_id)
{
    for (nf_claimed_t *t = zhashx_first (self->inflight); t; t = zhashx_next (self->inflight))
        if (t->claim.video_id && t->claim.job_id == job_id)
            return true;
    for (nf_service_t *svc = zlistx_first (self->service_list); svc;
         svc = zlistx_next (self->service_list))
        if (svc->stage->scope == NF_SCOPE_VIDEO)
            for (nf_claimed_t *t = zlistx_first (svc->queue); t; t = zlistx_next (svc->queue))
                if (t->claim.job_id == job_id)
                    return true;
    return false;
}

/* Whether the outcomes waiting may clear a job's barrier: a job stage
   finished, or a video of a job of which this broker holds no other
   per-video work moved. */
static bool
s_barrier_may_clear (nf_broker_t *self)
{
    int64_t seen = -1;
    for (nf_outcome_t *o = zlistx_first (self->outcomes); o; o = zlistx_next (self->outcomes)) {
        if (!o->video_id)
            return true;
        if (o->job_id == seen)
            continue;
        seen = o->job_id;
        if (!s_holds_job (self, seen))
            return true;
    }
    return false;
}

/* ---- the cycle thread ----------------------------------------------------------- */

/* The event sink of the stores of the cycle and office threads: a copy
   into the list *ARG points to (the cycle or errand in hand), for the main
   thread to publish once it is back. No list: dropped (start-up, before
   anyone can subscribe). */
void
nf_event_collect (const nf_event_t *ev, void *arg)
{
    zlistx_t *sink = *(zlistx_t **) arg;
    if (!sink)
        return;
    nf_event_t *e = calloc (1, sizeof *e);
    if (!e)
        abort ();
    e->job_id = ev->job_id;
    e->video_id = ev->video_id ? strdup (ev->video_id) : NULL;
    e->from = ev->from ? strdup (ev->from) : NULL;
    e->to = ev->to ? strdup (ev->to) : NULL;
    e->service = ev->service ? strdup (ev->service) : NULL;
    e->reason = ev->reason ? strdup (ev->reason) : NULL;
    zlistx_add_end (sink, e);
}

void
nf_event_destroy (void **item)
{
    nf_event_t *e = (nf_event_t *) *item;
    if (!e)
        return;
    free ((char *) e->video_id);
    free ((char *) e->from);
    free ((char *) e->to);
    free ((char *) e->service);
    free ((char *) e->reason);
    free (e);
    *item = NULL;
}

/* A committed claim: a task for the service of its slot. */
static void
s_collect_claim (nf_claim_t *claim, void *arg)
{
    nf_slot_t *slot = (nf_slot_t *) arg;
    nf_claimed_t *t = calloc (1, sizeof *t);
    if (!t)
        abort ();
    t->claim = *claim;
    t->service = slot->service;
    t->claimed_ms = nf_clock_ms ();
    zlistx_add_end (slot->cycle->claims, t);
}

/* The cycle thread: runs each cycle it is handed on its own connection
   and hands it back, so the main loop goes on dispatching and receiving
   while PostgreSQL works and commits. */
void
nf_cycler_actor (zsock_t *pipe, void *args)
{
    nf_broker_t *self = (nf_broker_t *) args;
    zsock_signal (pipe, 0);
    while (true) {
        char *cmd = NULL;
        void *ptr = NULL;
        if (zsock_recv (pipe, "sp", &cmd, &ptr) != 0) {
            if (zmq_errno () == EINTR) /* a signal: the main thread decides */
                continue;
            break;
        }
        bool term = !cmd || streq (cmd, "$TERM");
        zstr_free (&cmd);
        if (term)
            break;
        nf_cycle_t *c = (nf_cycle_t *) ptr;
        int64_t t0 = nf_clock_us ();
        self->cycle_events = c->events;
        c->rc = nf_db_connect (self->cycle_db) != 0 ? -1 : 0;
        if (c->rc == 0 && c->held) {
            /* Before any claim of this cycle: the leases it does not hold
               are claims whose answer was lost with the old connection. */
            c->reconciled = nf_store_release_orphans (self->cycle_store, c->held) == 0;
            c->held_generation = nf_db_generation (self->cycle_db);
        }
        if (c->rc == 0)
            c->rc = nf_store_cycle (self->cycle_store, c->list, c->n, c->releases, c->r, c->wants,
                                    c->nw, s_collect_claim);
        self->cycle_events = NULL;
        c->stats = *nf_store_stats (self->cycle_store);
        c->generation = nf_db_generation (self->cycle_db);
        c->us = nf_clock_us () - t0;
        zsock_send (pipe, "p", c);
    }
}

static void
s_cycle_destroy (nf_cycle_t **c_p)
{
    nf_cycle_t *c = *c_p;
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        nf_outcome_destroy (&c->list[i]);
    free (c->list);
    nf_releases_free (c->releases, c->r);
    free (c->held);
    for (nf_claimed_t *t = zlistx_first (c->claims); t; t = zlistx_next (c->claims))
        nf_claimed_destroy (&t);
    zlistx_destroy (&c->claims);
    zlistx_destroy (&c->events);
    free (c);
    *c_p = NULL;
}

/* The text[] literal of every lease this broker holds: in workers'
   hands, queued, and the replies of cycle C and those waiting. */
static char *
s_held (nf_broker_t *self, const nf_cycle_t *c)
{
    nf_buf_t held;
    nf_buf_init (&held);
    nf_buf_puts (&held, "{");
    for (nf_claimed_t *t = zhashx_first (self->inflight); t; t = zhashx_next (self->inflight))
        nf_buf_printf (&held, "%s%s", held.len > 1 ? "," : "", t->claim.token);
    for (nf_service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        for (nf_claimed_t *t = zlistx_first (svc->queue); t; t = zlistx_next (svc->queue))
            nf_buf_printf (&held, "%s%s", held.len > 1 ? "," : "", t->claim.token);
    for (size_t i = 0; i < c->n; i++)
        nf_buf_printf (&held, "%s%s", held.len > 1 ? "," : "", c->list[i]->token);
    for (nf_outcome_t *o = zlistx_first (self->outcomes); o; o = zlistx_next (self->outcomes))
        nf_buf_printf (&held, "%s%s", held.len > 1 ? "," : "", o->token);
    nf_buf_puts (&held, "}");
    return held.data;
}

/* Start a cycle: the replies and releases waiting, then a claim for every
   stage that needs work and may claim now: its pause after a short claim
   is over, this batch feeds its input state, or (job stages) this batch
   may clear a barrier. Runs when the batch is due (FLUSH) or a stage needs
   a claim, and no cycle is in flight (what arrives meanwhile makes the
   next batch); CLAIM false (draining) claims nothing. */
void
nf_cycle_start (nf_broker_t *self, bool flush, bool claim)
{
    int64_t now = nf_clock_ms ();
    if (self->cycling || now < self->cycle_retry_ms)
        return;
    nf_service_t *picked[MAX_WANTS];
    int wanted[MAX_WANTS];
    size_t nw = 0;
    int barrier = -1; /* not yet known */
    for (nf_service_t *svc = zhashx_first (self->services); svc && claim && nw < MAX_WANTS;
         svc = zhashx_next (self->services)) {
        int want;
        if (!s_wants (self, svc, &want))
            continue;
        bool armed = now >= svc->next_claim_ms;
        /* A job stage is not armed by the videos that feed its input
           state (each geo reply fed analyze: 464 empty claims a
           5,000-video job), only when its barrier may clear. */
        bool job = svc->stage->scope == NF_SCOPE_JOB;
        for (nf_outcome_t *o = zlistx_first (self->outcomes); o && !armed && !job;
             o = zlistx_next (self->outcomes))
            armed = s_feeds (o, svc);
        if (!armed && job && zlistx_size (self->outcomes)) {
            if (barrier < 0)
                barrier = s_barrier_may_clear (self);
            armed = barrier;
        }
        if (armed) {
            picked[nw] = svc;
            wanted[nw++] = want;
        }
    }
    size_t n = zlistx_size (self->outcomes);
    bool reconcile = self->cycle_generation != self->db_generation;
    if (!nw && !reconcile && (!flush || (!n && !self->nreleases)))
        return;
    /* The cycle owns them now; what arrives meanwhile waits for the next. */
    nf_cycle_t *c = calloc (1, sizeof *c);
    if (!c)
        abort ();
    c->list = calloc (n ? n : 1, sizeof *c->list);
    for (nf_outcome_t *o = zlistx_first (self->outcomes); o; o = zlistx_next (self->outcomes))
        c->list[c->n++] = o;
    zlistx_purge (self->outcomes);
    for (size_t k = 0; k < nw; k++) {
        c->slots[k] = (nf_slot_t){c, picked[k]};
        c->wants[k] =
            (nf_want_t){.stage = picked[k]->stage, .want = wanted[k], .arg = &c->slots[k]};
    }
    c->nw = nw;
    c->releases = self->releases;
    c->r = self->nreleases;
    self->releases = NULL;
    self->nreleases = self->capreleases = 0;
    c->oldest_ms = self->oldest_ms;
    c->started_ms = now;
    if (reconcile)
        c->held = s_held (self, c);
    c->claims = zlistx_new ();
    c->events = zlistx_new ();
    zlistx_set_destructor (c->events, nf_event_destroy);
    self->cycling = c;
    zsock_send (self->cycler, "sp", "CYCLE", c);
}

/* The task holding lease TOKEN: dispatched, or queued; NULL when gone. */
static nf_claimed_t *
s_find_claimed (nf_broker_t *self, const char *token)
{
    nf_claimed_t *t = zhashx_lookup (self->inflight, token);
    for (nf_service_t *svc = zhashx_first (self->services); svc && !t;
         svc = zhashx_next (self->services))
        for (nf_claimed_t *q = zlistx_first (svc->queue); q && !t; q = zlistx_next (svc->queue))
            if (strcmp (q->claim.token, token) == 0)
                t = q;
    return t;
}

/* The leases cycle C renewed now run a lease length from its start. */
static void
s_renewed (nf_broker_t *self, const nf_cycle_t *c)
{
    for (size_t i = 0; i < c->r; i++) {
        if (!c->releases[i].renew)
            continue;
        nf_claimed_t *t = s_find_claimed (self, c->releases[i].token);
        if (t) {
            t->lease_end_ms = c->started_ms + self->lease_ms;
            t->renewing = false;
        }
    }
}

/* A cycle came back: on commit, queue its claims, publish its events and
   re-arm the stages it fed; on failure, its replies and releases wait for
   the next. */
void
nf_cycle_done (nf_broker_t *self, nf_cycle_t *c)
{
    self->cycling = NULL;
    int64_t now = nf_clock_ms ();
    self->cycle_stats = c->stats;
    self->cycle_generation = c->generation;
    if (c->reconciled)
        self->db_generation = c->held_generation;
    nf_hist_add (&self->commit_hist, (double) c->us / 1e6);
    for (size_t i = 0; i < c->nw; i++) {
        nf_service_t *svc = c->slots[i].service;
        if (c->wants[i].got >= 0)
            nf_hist_add (&svc->claim_hist, (double) c->wants[i].us / 1e6);
        /* A short claim saw all that is due: pause; a full one: more may be. */
        svc->next_claim_ms = c->wants[i].got >= 0 && c->wants[i].got < c->wants[i].want
                                 ? now + IDLE_CLAIM_MS
                             : c->rc == 0 ? 0
                                          : svc->next_claim_ms;
    }
    if (c->rc != 0) {
        self->cycle_retry_ms = now + IDLE_CLAIM_MS;
        for (size_t i = c->n; i > 0; i--)
            zlistx_add_start (self->outcomes, c->list[i - 1]);
        if (c->n && (zlistx_size (self->outcomes) == c->n || c->oldest_ms < self->oldest_ms))
            self->oldest_ms = c->oldest_ms;
        c->n = 0;
        for (size_t i = 0; i < c->r; i++) {
            const nf_release_t *r = &c->releases[i];
            if (r->renew)
                nf_broker_add_renewal (self, r->token, r->job_id, r->video_id);
            else
                nf_broker_add_release (self, r->token, r->job_id, r->video_id, r->undelivered);
        }
        s_cycle_destroy (&c);
        return;
    }
    s_renewed (self, c);
    for (nf_claimed_t *t = zlistx_first (c->claims); t; t = zlistx_next (c->claims))
        zlistx_add_end (t->service->queue, t);
    zlistx_purge (c->claims);
    for (nf_event_t *e = zlistx_first (c->events); e; e = zlistx_next (c->events))
        nf_broker_publish_event (e, self);
    /* Stages this batch fed but did not claim for have new work; a release
       gives work back, a job stage's reply moves its job on. */
    for (nf_service_t *svc = zhashx_first (self->services); svc;
         svc = zhashx_next (self->services)) {
        bool claimed = false, fed = false;
        for (size_t i = 0; i < c->r && !fed; i++)
            fed = !c->releases[i].renew; /* a release gives work back */
        for (size_t k = 0; k < c->nw && !claimed; k++)
            claimed = c->slots[k].service == svc;
        bool job = svc->stage->scope == NF_SCOPE_JOB;
        int64_t held = -1; /* a job this broker still holds per-video work of */
        for (size_t i = 0; i < c->n && !fed; i++) {
            const nf_outcome_t *o = c->list[i];
            if (!o->video_id)
                fed = true; /* a job stage replied: its job moves on */
            else if (s_feeds (o, svc) && job && o->job_id != held) {
                fed = !s_holds_job (self, o->job_id); /* its barrier may clear */
                held = fed ? -1 : o->job_id;
            }
            else if (!job)
                fed = s_feeds (o, svc);
        }
        if (fed && !claimed)
            svc->next_claim_ms = 0;
    }
    s_cycle_destroy (&c);
}

/* Wait for the cycle in flight, if any (shutdown). */
void
nf_cycle_wait (nf_broker_t *self)
{
    while (self->cycling) {
        void *ptr = NULL;
        if (zsock_recv (self->cycler, "p", &ptr) == 0 && ptr)
            nf_cycle_done (self, (nf_cycle_t *) ptr);
        else if (zmq_errno () != EINTR)
            break;
    }
}

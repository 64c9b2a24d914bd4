/*  nf_office: the broker's database work that is not a cycle, on a
    thread of its own, so that the main loop never waits on PostgreSQL.

    Office thread: nf_office_actor owns the main connection (`self->db`,
    which holds the broker id's advisory lock) and its store. It runs the
    client services (nf.submit, nf.status, ... in nf_services.c) that the
    main thread hands it, the scheduler tick every TICK_MS (sooner after a
    request that changes a job), the queue-depth count every WAITING_MS,
    and the retention's pruning (NF_RETAIN_DAYS) in turns of about
    PRUNE_BUDGET_MS every PRUNE_MS, back to back while work is left. After
    a reconnect it takes the id lock again; if another broker took it
    meanwhile it says stop. It touches only db, store, office_events,
    id_lock_generation and prune_more, and the errand in its hands.

    Main thread: nf_office_request hands over a client request as an
    errand (at most OFFICE_MAX at a time, OFFICE_PER_CLIENT of one client;
    more are refused at once as "busy"), nf_office_done takes back what the
    office sends: a reply for the client, the events to publish, a tick
    that wants claims at once, the queue depth, what was pruned, the
    connection's state.

    Errands travel through the actor's pipe by pointer, as cycles do; the
    side that holds one owns it. */
#include "nf_broker_int.h"
#include "nf_log.h"
#include "nf_util.h"

/* ---- errands ------------------------------------------------------------------- */

static nf_errand_t *
s_errand_new (nf_errand_kind_t kind)
{
    nf_errand_t *e = calloc (1, sizeof *e);
    if (!e)
        abort ();
    e->kind = kind;
    nf_buf_init (&e->reply);
    e->events = zlistx_new ();
    zlistx_set_destructor (e->events, nf_event_destroy);
    return e;
}

static void
s_errand_destroy (nf_errand_t **e_p)
{
    nf_errand_t *e = *e_p;
    if (!e)
        return;
    zframe_destroy (&e->identity);
    zframe_destroy (&e->body);
    free (e->service);
    nf_buf_free (&e->reply);
    zlistx_destroy (&e->events);
    free (e);
    *e_p = NULL;
}

/* ---- the office thread ------------------------------------------------------------ */

nf_err_t
nf_office_lock_id (nf_broker_t *self)
{
    const char *params[] = {self->owner};
    PGresult *res = nf_db_exec (
        self->db, "broker_id_lock",
        "SELECT pg_try_advisory_lock(hashtextextended('nf-broker:' || $1, 0))", 1, params);
    if (!res)
        return NF_ERR_DB;
    bool got = PQgetvalue (res, 0, 0)[0] == 't';
    PQclear (res);
    if (!got) {
        nf_error ("another broker with NF_BROKER_ID '%s' is running on this database (it holds "
                  "the id's advisory lock); give each broker its own NF_BROKER_ID",
                  self->owner);
        return NF_ERR_INVALID;
    }
    self->id_lock_generation = nf_db_generation (self->db);
    return NF_OK;
}

/* Connect if need be (this may wait: it is the office's thread) and hold
   the id lock. true when the connection may be used; E says the state,
   and stop when another broker has this id now. */
static bool
s_ready (nf_broker_t *self, nf_errand_t *e)
{
    bool up = nf_db_connect (self->db) == NF_OK;
    if (up && nf_db_generation (self->db) != self->id_lock_generation) {
        nf_err_t rc = nf_office_lock_id (self); /* the lock went with the old connection */
        e->stop = rc == NF_ERR_INVALID;
        up = rc == NF_OK;
    }
    e->db_up = up && nf_db_connected (self->db);
    return up;
}

/* A client's request: decode it, run its service, leave the reply (or
   the error text) in E. */
static void
s_service (nf_broker_t *self, nf_errand_t *e)
{
    char err[256];
    nf_msg_t *req = nf_msg_decode (zframe_data (e->body), zframe_size (e->body), self->max_frame,
                                   err, sizeof err);
    if (!req) {
        e->failed = true;
        nf_buf_printf (&e->reply, "malformed request: %s", err);
        return;
    }
    s_ready (self, e);
    if (nf_store_service (self->store, e->service, nf_msg_root (req), &e->reply) != NF_OK) {
        nf_buf_reset (&e->reply);
        e->failed = true;
        nf_buf_printf (&e->reply, "%s: %.500s",
                       nf_db_error_transient (self->db) ? "database unavailable, try again"
                                                        : "internal error",
                       nf_db_error (self->db));
    }
    e->db_up = nf_db_connected (self->db);
    nf_msg_destroy (&req);
}

static void
s_waiting (const char *service, int64_t n, void *arg)
{
    nf_errand_t *e = (nf_errand_t *) arg;
    size_t nst;
    const nf_stage_t *base = nf_stages (&nst);
    const nf_stage_t *st = nf_stage_find (service);
    if (st && (size_t) (st - base) < NF_OFFICE_STAGES)
        e->waiting[st - base] += n;
}

/* Run errand E (its events collected into it) and send it to the main
   thread. */
static void
s_run (nf_broker_t *self, zsock_t *pipe, nf_errand_t *e)
{
    self->office_events = e->events;
    if (e->kind == NF_ERRAND_SERVICE)
        s_service (self, e);
    else if (e->kind == NF_ERRAND_TICK && s_ready (self, e))
        nf_store_tick (self->store);
    else if (e->kind == NF_ERRAND_WAITING && s_ready (self, e))
        e->waiting_ok = nf_store_waiting (self->store, s_waiting, e) == NF_OK;
    else if (e->kind == NF_ERRAND_PRUNE) {
        bool more = false;
        if (s_ready (self, e)
            && nf_store_prune (self->store, PRUNE_BUDGET_MS, &e->pruned, &more) != NF_OK)
            more = false; /* the database: try again in PRUNE_MS */
        self->prune_more = more;
    }
    self->office_events = NULL;
    if (zsock_send (pipe, "p", e) != 0)
        s_errand_destroy (&e);
}

/* Whether a request to SERVICE changes a job so that the tick should run
   now (admit or finish it), not in a quarter second. */
static bool
s_moves_job (const char *service)
{
    return streq (service, "nf.submit") || streq (service, "nf.cancel")
           || streq (service, "nf.retry") || streq (service, "nf.resume");
}

void
nf_office_actor (zsock_t *pipe, void *args)
{
    nf_broker_t *self = (nf_broker_t *) args;
    zsock_signal (pipe, 0);
    int64_t now = nf_clock_ms ();
    int64_t tick_at = now, ticked_ms = 0, waiting_at = now, prune_at = now + PRUNE_BUDGET_MS;
    bool ticking = true, soon = false;
    while (true) {
        now = nf_clock_ms ();
        int64_t next = tick_at < waiting_at ? tick_at : waiting_at;
        next = prune_at < next ? prune_at : next;
        zmq_pollitem_t item = {zsock_resolve (pipe), 0, ZMQ_POLLIN, 0};
        long timeout = !ticking ? -1 : next > now ? (long) (next - now) : 0;
        if (zmq_poll (&item, 1, timeout) < 0 && zmq_errno () != EINTR)
            break;
        if (item.revents & ZMQ_POLLIN) {
            char *cmd = NULL;
            void *ptr = NULL;
            if (zsock_recv (pipe, "sp", &cmd, &ptr) != 0) {
                if (zmq_errno () == EINTR) /* a signal: the main thread decides */
                    continue;
                break;
            }
            bool term = !cmd || streq (cmd, "$TERM");
            if (cmd && streq (cmd, "SERVICE") && ptr) {
                nf_errand_t *e = (nf_errand_t *) ptr;
                bool moves = s_moves_job (e->service);
                s_run (self, pipe, e);
                if (moves && tick_at > ticked_ms + TICK_SOON_MS) {
                    tick_at = ticked_ms + TICK_SOON_MS;
                    soon = true;
                }
            }
            else if (cmd && streq (cmd, "DRAIN")) /* shutting down: no more ticks */
                ticking = false;
            else if (cmd && streq (cmd, "STOP")) { /* the broker goes: nothing more */
                ticking = false;
                s_run (self, pipe, s_errand_new (NF_ERRAND_STOPPED));
            }
            zstr_free (&cmd);
            if (term)
                break;
        }
        now = nf_clock_ms ();
        if (ticking && now >= tick_at) {
            nf_errand_t *e = s_errand_new (NF_ERRAND_TICK);
            e->soon = soon;
            s_run (self, pipe, e);
            ticked_ms = nf_clock_ms ();
            tick_at = ticked_ms + TICK_MS;
            soon = false;
        }
        if (ticking && now >= waiting_at) {
            s_run (self, pipe, s_errand_new (NF_ERRAND_WAITING));
            waiting_at = nf_clock_ms () + WAITING_MS;
        }
        if (ticking && now >= prune_at) {
            /* A turn of about PRUNE_BUDGET_MS, then the requests waiting;
               again at once while work is left. */
            s_run (self, pipe, s_errand_new (NF_ERRAND_PRUNE));
            prune_at = nf_clock_ms () + (self->prune_more ? 0 : PRUNE_MS);
        }
    }
}

/* ---- the main thread's side --------------------------------------------------------- */

/* Count one more (DELTA 1) or one fewer (-1) request of client IDENTITY
   at the office. */
static void
s_client_count (nf_broker_t *self, zframe_t *identity, int delta)
{
    char *hex = zframe_strhex (identity);
    if (!hex)
        abort ();
    size_t n = (size_t) (uintptr_t) zhashx_lookup (self->office_clients, hex);
    n = delta > 0 ? n + 1 : n ? n - 1 : 0;
    if (n)
        zhashx_update (self->office_clients, hex, (void *) (uintptr_t) n);
    else
        zhashx_delete (self->office_clients, hex);
    free (hex);
}

bool
nf_office_request (nf_broker_t *self, zframe_t *identity, const char *service, zframe_t **body)
{
    if (self->errands >= OFFICE_MAX || self->office_stopped)
        return false;
    char *hex = zframe_strhex (identity);
    size_t mine = hex ? (size_t) (uintptr_t) zhashx_lookup (self->office_clients, hex) : 0;
    free (hex);
    if (mine >= OFFICE_PER_CLIENT) /* one client cannot take the office from the others */
        return false;
    nf_errand_t *e = s_errand_new (NF_ERRAND_SERVICE);
    e->identity = zframe_dup (identity);
    e->service = strdup (service);
    e->body = *body;
    *body = NULL;
    if (zsock_send (self->office, "sp", "SERVICE", e) != 0) {
        *body = e->body; /* the caller still answers */
        e->body = NULL;
        s_errand_destroy (&e);
        return false;
    }
    self->errands++;
    s_client_count (self, identity, 1);
    return true;
}

void
nf_office_done (nf_broker_t *self, nf_errand_t *e)
{
    self->office_db_up = e->db_up;
    if (e->stop && !zsys_interrupted) {
        nf_error ("stopping: another broker holds NF_BROKER_ID '%s' now", self->owner);
        zsys_interrupted = 1; /* drain and stop */
    }
    for (nf_event_t *ev = zlistx_first (e->events); ev; ev = zlistx_next (e->events))
        nf_broker_publish_event (ev, self);
    size_t nst;
    const nf_stage_t *base = nf_stages (&nst);
    switch (e->kind) {
    case NF_ERRAND_SERVICE:
        self->errands--;
        s_client_count (self, e->identity, -1);
        if (e->failed)
            nf_broker_client_error (self, e->identity, e->service, e->reply.data);
        else
            nf_broker_client_reply (self, e->identity, e->service, e->reply.data, e->reply.len);
        break;
    case NF_ERRAND_TICK:
        if (e->soon) /* a request brought the tick forward: claim its work at once */
            for (nf_service_t *svc = zhashx_first (self->services); svc;
                 svc = zhashx_next (self->services))
                svc->next_claim_ms = 0;
        break;
    case NF_ERRAND_WAITING:
        if (e->waiting_ok)
            for (nf_service_t *svc = zhashx_first (self->services); svc;
                 svc = zhashx_next (self->services)) {
                size_t i = (size_t) (svc->stage - base);
                svc->waiting = i < NF_OFFICE_STAGES ? e->waiting[i] : 0;
            }
        break;
    case NF_ERRAND_PRUNE:
        self->pruned.texts += e->pruned.texts;
        self->pruned.history += e->pruned.history;
        self->pruned.logs += e->pruned.logs;
        self->pruned.jobs += e->pruned.jobs;
        break;
    case NF_ERRAND_STOPPED: self->office_stopped = true; break;
    }
    s_errand_destroy (&e);
}

void
nf_office_drain (nf_broker_t *self)
{
    if (self->office)
        zsock_send (self->office, "sp", "DRAIN", NULL);
}

void
nf_office_stop (nf_broker_t *self)
{
    if (!self->office || self->office_stopped)
        return;
    if (zsock_send (self->office, "sp", "STOP", NULL) != 0)
        return;
    /* The errands handed over before STOP come back first. */
    while (!self->office_stopped) {
        void *ptr = NULL;
        if (zsock_recv (self->office, "p", &ptr) == 0 && ptr)
            nf_office_done (self, (nf_errand_t *) ptr);
        else if (zmq_errno () != EINTR)
            break;
    }
}

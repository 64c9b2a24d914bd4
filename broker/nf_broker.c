/*  nf_broker: see nf_broker.h. One loop polls both ROUTERs and, between
    polls, checks heartbeats, ticks the scheduler, answers clients (on its
    own database connection) and hands the replies and claims of each turn
    to the cycle thread as one cycle (s_cycle_start). The thread applies
    and claims in one transaction on a second connection while the loop
    goes on dispatching claimed tasks and receiving replies; one cycle is
    in flight at a time, so what arrives meanwhile makes the next batch. */
#include "nf_broker.h"
#include "nf_curve.h"
#include "nf_log.h"
#include "nf_metrics.h"
#include "nf_schema.h"
#include "nf_store.h"
#include "nf_version.h"

#include <czmq.h>
#include <unistd.h>

#define IDLE_CLAIM_MS 100   /* pause between claims that found nothing */
#define TICK_MS       250   /* scheduler tick */
#define TICK_SOON_MS  20    /* shortest gap between ticks brought forward by a request */
#define STATS_MS      1000  /* global stats publication */
#define DRAIN_MS      30000 /* longest wait for work in flight at shutdown */
#define WAITING_MS    5000  /* database queue depth for the metrics */
#define BURST         1000  /* messages read per socket per loop turn */
#define RECENT        1024  /* tokens of the last replies received, to spot resends */
#define PREFETCH      64    /* most tasks claimed ahead per worker of a per-video stage */
#define PREFETCH_MS   50.0  /* work claimed ahead per worker, in its tasks' average time */
#define SUBSCRIBE_MAX 1024  /* bytes of one subscription message to the PUB socket */

typedef struct s_worker_t s_worker_t;

typedef struct {
    char *name;              /* service name */
    const nf_stage_t *stage; /* its stage */
    zlistx_t *idle;          /* idle workers (s_worker_t *) */
    zlistx_t *queue;         /* claimed, undelivered tasks (s_task_t *) */
    size_t workers;          /* workers registered */
    int64_t next_claim_ms;   /* no claim before this time */
    uint64_t dispatched;     /* tasks sent */
    uint64_t replies;        /* replies received */
    uint64_t completed;      /* transitions committed (events) */
    uint64_t failed;         /* videos moved to FAILED */
    uint64_t retried;        /* retries scheduled */
    uint64_t rejected;       /* videos moved to REJECTED */
    uint64_t lease_expired;  /* dispatched tasks whose lease ran out before a reply */
    int64_t waiting;         /* claimable in the database (metrics only) */
    size_t in_flight;        /* dispatched, no reply yet (metrics only) */
    nf_hist_t claim_hist;    /* claim statement latency */
    double task_ms;          /* moving average, dispatch to reply; 0 until known */
} s_service_t;

typedef struct {
    nf_claim_t claim;     /* token, stage, job, video, attempt, body */
    s_service_t *service; /* its service */
    s_worker_t *worker;   /* holding it, or NULL while queued */
    int64_t claimed_ms;   /* when it was claimed (its lease started) */
    int64_t sent_ms;      /* when it was dispatched */
    int64_t lease_end_ms; /* when its lease runs out (once dispatched) */
    bool expired;         /* counted as a lease expiry */
} s_task_t;

struct s_worker_t {
    char *id;             /* hex routing id */
    zframe_t *identity;   /* routing id frame */
    s_service_t *service; /* what it serves */
    int64_t expiry;       /* declared dead after this */
    s_task_t *task;       /* in hand, or NULL */
    void *idle_handle;    /* its place in service->idle, or NULL */
};

#define MAX_WANTS 32 /* stages claimed for in one cycle */

typedef struct s_cycle_t s_cycle_t;

/* Where a claimed task goes: the cycle and the service it was claimed for. */
typedef struct {
    s_cycle_t *cycle;
    s_service_t *service;
} s_slot_t;

/* One cycle, handed to the cycle thread and back. While it is in flight
   the thread owns its outcomes and releases; the main thread touches
   nothing of it. */
struct s_cycle_t {
    nf_outcome_t **list; /* replies to apply (owned) */
    size_t n;
    nf_release_t *releases; /* leases to release (owned) */
    size_t r;
    nf_want_t wants[MAX_WANTS]; /* claims; wants[i].arg is &slots[i] */
    s_slot_t slots[MAX_WANTS];
    size_t nw;
    int64_t oldest_ms;      /* arrival of the oldest reply */
    int rc;                 /* out: nf_store_cycle's */
    zlistx_t *claims;       /* out: s_task_t *, committed */
    zlistx_t *events;       /* out: nf_event_t * (owned strings), committed */
    nf_store_stats_t stats; /* out: the cycle store's counters after it */
    unsigned generation;    /* out: the cycle connection's generation after it */
    int64_t us;             /* out: how long it took */
};

struct nf_broker_t {
    nf_config_t *config;     /* borrowed */
    nf_db_t *db;             /* database handle */
    nf_store_t *store;       /* pipeline SQL */
    zsock_t *workers;        /* ROUTER for workers */
    zsock_t *clients;        /* ROUTER for clients */
    zsock_t *pub;            /* progress events */
    nf_curve_t *curve;       /* CURVE keys and ZAP handler, or NULL */
    zhashx_t *services;      /* name -> s_service_t */
    zhashx_t *peers;         /* hex id -> s_worker_t */
    zhashx_t *inflight;      /* token -> s_task_t (dispatched) */
    zhashx_t *recent;        /* token -> "" of the last RECENT replies received */
    char (*recent_ring)[40]; /* the same tokens, oldest evicted first */
    size_t recent_next;      /* next slot of the ring */
    zlistx_t *outcomes;      /* nf_outcome_t * waiting for the next flush */
    nf_release_t *releases;  /* leases to release at the next flush */
    size_t nreleases, capreleases;
    int64_t oldest_ms;    /* arrival of the oldest waiting outcome */
    int64_t heartbeat_ms; /* heartbeat interval */
    int64_t expiry_ms;    /* liveness x heartbeat */
    int64_t flush_ms;     /* flush deadline */
    int claim_batch;      /* most tasks per claim */
    size_t max_frame;     /* body limit */
    int64_t heartbeat_at, tick_at, stats_at;
    int64_t ticked_ms;            /* when the scheduler last ran */
    bool tick_soon;               /* the next tick was brought forward by a request */
    uint64_t dropped;             /* malformed messages dropped */
    uint64_t late_fenced;         /* replies whose lease this broker had already released */
    uint64_t dead_workers;        /* workers declared dead */
    nf_metrics_t *metrics;        /* Prometheus endpoint, or NULL */
    nf_hist_t commit_hist;        /* nf_store_cycle latency */
    int64_t lease_ms;             /* lease length, for expiry counting */
    int64_t waiting_at;           /* next queue-depth query */
    int64_t started_ms;           /* process start, for uptime */
    unsigned db_generation;       /* cycle_generation when leases were last reconciled */
    nf_db_t *cycle_db;            /* the cycle thread's connection */
    nf_store_t *cycle_store;      /* and its store: only that thread uses them */
    zactor_t *cycler;             /* the cycle thread */
    s_cycle_t *cycling;           /* the cycle in flight, or NULL */
    int64_t cycle_retry_ms;       /* no cycle before this after a failed one */
    nf_store_stats_t cycle_stats; /* the cycle store's counters after the last cycle */
    unsigned cycle_generation;    /* the cycle connection's generation after it */
    s_cycle_t *cycle_in_hand;     /* the cycle thread's: the cycle it runs */
};

/* ---- small helpers ------------------------------------------------------ */

static void
s_task_destroy (s_task_t **task_p)
{
    if (!*task_p)
        return;
    s_task_t *t = *task_p;
    free (t->claim.video_id);
    zframe_destroy (&t->claim.body);
    free (t);
    *task_p = NULL;
}

static void
s_add_release (nf_broker_t *self, const char *token, bool undelivered)
{
    if (self->nreleases == self->capreleases) {
        self->capreleases = self->capreleases ? self->capreleases * 2 : 16;
        self->releases = realloc (self->releases, self->capreleases * sizeof (nf_release_t));
        if (!self->releases)
            abort ();
    }
    nf_release_t *r = &self->releases[self->nreleases++];
    snprintf (r->token, sizeof r->token, "%s", token);
    r->undelivered = undelivered;
}

static void
s_publish_event (const nf_event_t *ev, void *arg)
{
    nf_broker_t *self = (nf_broker_t *) arg;
    s_service_t *svc =
        ev->video_id && ev->service ? zhashx_lookup (self->services, ev->service) : NULL;
    if (svc) {
        bool same = ev->from && ev->to && strcmp (ev->from, ev->to) == 0;
        if (same)
            svc->retried++;
        else if (ev->to && strcmp (ev->to, NF_STATE_FAILED) == 0)
            svc->failed++;
        else if (ev->to && strcmp (ev->to, "REJECTED") == 0)
            svc->rejected++;
        else
            svc->completed++;
    }
    msgpack_packer pk;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 8);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_str (&pk, "type", ev->video_id ? "video" : "job");
    nf_pk_kv_int (&pk, "job_id", ev->job_id);
    nf_pk_kv_str (&pk, "video_id", ev->video_id);
    nf_pk_kv_str (&pk, "from", ev->from);
    nf_pk_kv_str (&pk, "to", ev->to);
    nf_pk_kv_str (&pk, "service", ev->service);
    nf_pk_kv_str (&pk, "reason", ev->reason);
    char topic[48];
    snprintf (topic, sizeof topic, "nf.job.%lld.", (long long) ev->job_id);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, topic);
    zmsg_addmem (msg, sb.data, sb.size);
    zmsg_send (&msg, self->pub);
    msgpack_sbuffer_destroy (&sb);
}

/* ---- workers ---------------------------------------------------------------- */

static void
s_worker_send (nf_broker_t *self, s_worker_t *w, int command, s_task_t *task)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *){zframe_dup (w->identity)});
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, NF_MDPW);
    uint8_t cmd = (uint8_t) command;
    zmsg_addmem (msg, &cmd, 1);
    if (task) {
        zmsg_addstr (msg, task->claim.token);
        zmsg_addstr (msg, "");
        zmsg_append (msg, &(zframe_t *){zframe_dup (task->claim.body)});
    }
    if (zmsg_send (&msg, self->workers) != 0)
        zmsg_destroy (&msg);
}

/* Forget worker W. Its task's lease is released at the next flush. */
static void
s_worker_delete (nf_broker_t *self, s_worker_t *w, bool disconnect)
{
    if (disconnect)
        s_worker_send (self, w, NF_MDPW_DISCONNECT, NULL);
    if (w->service) {
        if (w->idle_handle)
            zlistx_delete (w->service->idle, w->idle_handle);
        w->service->workers--;
    }
    if (w->task) {
        nf_warn ("worker %s (%s) lost while holding task %s (job %lld, video %s)", w->id,
                 w->service ? w->service->name : "?", w->task->claim.token,
                 (long long) w->task->claim.job_id,
                 w->task->claim.video_id ? w->task->claim.video_id : "-");
        s_add_release (self, w->task->claim.token, false);
        s_task_t *t = w->task;
        zhashx_delete (self->inflight, t->claim.token);
        s_task_destroy (&t);
    }
    char *id = w->id;
    zframe_destroy (&w->identity);
    zhashx_delete (self->peers, id);
    free (id);
    free (w);
}

static void
s_worker_idle (nf_broker_t *self, s_worker_t *w)
{
    (void) self;
    w->idle_handle = zlistx_add_end (w->service->idle, w);
}

static void
s_on_worker_ready (nf_broker_t *self, zframe_t *identity, zframe_t *wire, const char *id,
                   zmsg_t *msg)
{
    char *name = zmsg_popstr (msg);
    const nf_stage_t *stage = name ? nf_stage_find (name) : NULL;
    if (!stage) {
        nf_warn ("worker %s: READY for unknown service '%.64s'; disconnecting", id,
                 name ? name : "");
        s_worker_t tmp = {.id = (char *) id, .identity = identity};
        s_worker_send (self, &tmp, NF_MDPW_DISCONNECT, NULL);
        zstr_free (&name);
        return;
    }
    s_service_t *svc = zhashx_lookup (self->services, name);
    s_worker_t *w = calloc (1, sizeof *w);
    w->id = strdup (id);
    w->identity = zframe_dup (identity);
    w->service = svc;
    w->expiry = nf_clock_ms () + self->expiry_ms;
    svc->workers++;
    zhashx_insert (self->peers, id, w);
    s_worker_idle (self, w);
    /* Where it connects from and, with CURVE, the name of its certificate
       (the ZAP handler's user id): which host a worker is, in the log. The
       properties ride on frames read from the wire (WIRE), not on the
       identity frame the ROUTER adds. */
    const char *peer = zframe_meta (wire, "Peer-Address");
    const char *user = zframe_meta (wire, "User-Id");
    nf_info ("worker %s ready for '%s' (%zu serving) from %s%s%s%s", id, name, svc->workers,
             peer ? peer : "?", user && *user ? " as '" : "", user && *user ? user : "",
             user && *user ? "'" : "");
    zstr_free (&name);
}

static void
s_on_worker_reply (nf_broker_t *self, s_worker_t *w, zmsg_t *msg)
{
    zframe_t *address = zmsg_pop (msg);
    zframe_t *empty = zmsg_pop (msg);
    zframe_t *body = zmsg_pop (msg);
    char token[40] = "";
    if (address && zframe_size (address) < sizeof token) {
        memcpy (token, zframe_data (address), zframe_size (address));
        token[zframe_size (address)] = 0;
    }
    /* The task is found by its token, not by the worker: a worker that
       reconnected (new routing id) resends the reply it could not confirm,
       and that reply still counts while its lease is in flight. */
    s_task_t *task = *token ? zhashx_lookup (self->inflight, token) : NULL;
    if (!body || !empty || zframe_size (empty) != 0 || !*token) {
        nf_warn ("worker %s: malformed reply; dropped", w->id);
        self->dropped++;
    }
    else if (!task && zhashx_lookup (self->recent, token))
        /* A resend of a reply that did arrive: the worker could not know. */
        nf_debug ("worker %s: task %s: a resent reply already received; ignored", w->id, token);
    else if (!task || !task->worker) {
        /* Released (its worker was declared dead, or the lease ran out and
           another worker has the video now): fenced. */
        nf_info ("worker %s (%s): late reply for task %s: its lease was released; fenced", w->id,
                 w->service->name, token);
        self->late_fenced++;
    }
    else {
        s_worker_t *holder = task->worker;
        if (holder != w)
            nf_info ("worker %s (%s): reply for task %s, dispatched to %s before it reconnected; "
                     "accepted",
                     w->id, w->service->name, token, holder->id);
        nf_outcome_t *o = calloc (1, sizeof *o);
        o->stage = task->claim.stage;
        memcpy (o->token, task->claim.token, sizeof o->token);
        o->job_id = task->claim.job_id;
        o->video_id = task->claim.video_id ? strdup (task->claim.video_id) : NULL;
        o->attempt = task->claim.attempt;
        char err[256];
        nf_reply_t reply;
        o->msg = nf_msg_decode (zframe_data (body), zframe_size (body), self->max_frame, err,
                                sizeof err);
        if (!o->msg || nf_reply_decode (o->msg, &reply, err, sizeof err) != 0) {
            nf_warn ("worker %s: malformed reply for %s: %s", w->id, token, err);
            o->status = NF_REPLY_ERROR;
            o->retryable = true;
            char text[320];
            snprintf (text, sizeof text, "malformed reply: %s", err);
            o->text = strdup (text);
            nf_msg_destroy (&o->msg);
        }
        else {
            o->status = reply.status;
            o->retryable = reply.retryable;
            o->output = reply.output;
            o->usage = reply.usage;
            const char *text = reply.status == NF_REPLY_REJECT ? reply.reason : reply.error;
            if (text) {
                nf_buf_t t;
                nf_buf_init (&t);
                nf_buf_utf8_repair (&t, text, strlen (text) > 2000 ? 2000 : strlen (text));
                o->text = t.data ? t.data : strdup ("");
            }
        }
        int64_t now = nf_clock_ms ();
        s_service_t *svc = w->service;
        double took = (double) (now - task->sent_ms);
        svc->task_ms = svc->task_ms > 0 ? 0.8 * svc->task_ms + 0.2 * took : took < 1 ? 1 : took;
        if (zlistx_size (self->outcomes) == 0)
            self->oldest_ms = now;
        zlistx_add_end (self->outcomes, o);
        w->service->replies++;
        char *slot = self->recent_ring[self->recent_next];
        if (*slot)
            zhashx_delete (self->recent, slot);
        memcpy (slot, task->claim.token, 40);
        zhashx_insert (self->recent, slot, (void *) "");
        self->recent_next = (self->recent_next + 1) % RECENT;
        zhashx_delete (self->inflight, task->claim.token);
        s_task_destroy (&task);
        holder->task = NULL;
        if (holder == w)
            s_worker_idle (self, w);
    }
    zframe_destroy (&address);
    zframe_destroy (&empty);
    zframe_destroy (&body);
}

static void
s_on_worker_message (nf_broker_t *self, zmsg_t *msg)
{
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *empty = zmsg_pop (msg);
    zframe_t *proto = zmsg_pop (msg);
    zframe_t *command = zmsg_pop (msg);
    if (!identity || !empty || zframe_size (empty) != 0 || !proto || !zframe_streq (proto, NF_MDPW)
        || !command || zframe_size (command) != 1) {
        self->dropped++;
        nf_warn ("worker socket: malformed message (%zu frames) dropped",
                 zmsg_size (msg) + (identity ? 1 : 0) + (empty ? 1 : 0) + (proto ? 1 : 0)
                     + (command ? 1 : 0));
        goto done;
    }
    char *id = zframe_strhex (identity);
    int cmd = zframe_data (command)[0];
    s_worker_t *w = zhashx_lookup (self->peers, id);
    if (w)
        w->expiry = nf_clock_ms () + self->expiry_ms;
    if (cmd == NF_MDPW_READY) {
        if (w) {
            nf_warn ("worker %s: second READY; dropping it", id);
            s_worker_delete (self, w, true);
        }
        else
            s_on_worker_ready (self, identity, proto, id, msg); /* PROTO came over the wire */
    }
    else if (!w) {
        if (cmd == NF_MDPW_REPLY) /* it resends after the READY this DISCONNECT asks for */
            nf_info ("worker %s: reply from an unregistered worker; asking it to reconnect", id);
        if (cmd != NF_MDPW_DISCONNECT) {
            s_worker_t tmp = {.id = id, .identity = identity};
            s_worker_send (self, &tmp, NF_MDPW_DISCONNECT, NULL);
        }
    }
    else if (cmd == NF_MDPW_REPLY)
        s_on_worker_reply (self, w, msg);
    else if (cmd == NF_MDPW_DISCONNECT) {
        nf_info ("worker %s (%s) disconnected", id, w->service->name);
        s_worker_delete (self, w, false);
    }
    else if (cmd != NF_MDPW_HEARTBEAT) {
        nf_warn ("worker %s: unknown command %d; dropped", id, cmd);
        self->dropped++;
    }
    free (id);
done:
    zframe_destroy (&identity);
    zframe_destroy (&empty);
    zframe_destroy (&proto);
    zframe_destroy (&command);
}

/* ---- clients ---------------------------------------------------------------- */

static void
s_client_reply (nf_broker_t *self, zframe_t *identity, const char *service, const void *body,
                size_t len)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *){zframe_dup (identity)});
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, NF_MDPC);
    zmsg_addstr (msg, service);
    zmsg_addmem (msg, body, len);
    if (zmsg_send (&msg, self->clients) != 0)
        zmsg_destroy (&msg);
}

static void
s_client_error (nf_broker_t *self, zframe_t *identity, const char *service, const char *text)
{
    nf_buf_t body;
    nf_buf_init (&body);
    nf_client_error_encode (&body, text);
    s_client_reply (self, identity, service, body.data, body.len);
    nf_buf_free (&body);
}

static void
s_on_client_message (nf_broker_t *self, zmsg_t *msg)
{
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *empty = zmsg_pop (msg);
    zframe_t *proto = zmsg_pop (msg);
    char *service = zmsg_popstr (msg);
    zframe_t *body = zmsg_pop (msg);
    if (!identity || !empty || zframe_size (empty) != 0 || !proto || !zframe_streq (proto, NF_MDPC)
        || !service || strlen (service) > 64 || !body || zmsg_size (msg) != 0) {
        self->dropped++;
        nf_warn ("client socket: malformed message dropped");
        goto done;
    }
    if (strcmp (service, "mmi.service") == 0) {
        char name[65] = "";
        size_t n = zframe_size (body) < 64 ? zframe_size (body) : 64;
        memcpy (name, zframe_data (body), n);
        s_service_t *svc = zhashx_lookup (self->services, name);
        bool internal = strncmp (name, "nf.", 3) == 0;
        const char *code = (svc && svc->workers > 0) || internal ? "200" : "404";
        s_client_reply (self, identity, service, code, 3);
    }
    else if (strncmp (service, "mmi.", 4) == 0)
        s_client_reply (self, identity, service, "501", 3);
    else {
        char err[256];
        nf_msg_t *req = nf_msg_decode (zframe_data (body), zframe_size (body), self->max_frame, err,
                                       sizeof err);
        if (!req) {
            char text[300];
            snprintf (text, sizeof text, "malformed request: %s", err);
            s_client_error (self, identity, service, text);
        }
        else {
            nf_buf_t reply;
            nf_buf_init (&reply);
            if (nf_store_service (self->store, service, nf_msg_root (req), &reply) != 0) {
                char text[600];
                snprintf (text, sizeof text, "%s: %.500s",
                          nf_db_error_transient (self->db) ? "database unavailable, try again"
                                                           : "internal error",
                          nf_db_error (self->db));
                s_client_error (self, identity, service, text);
            }
            else {
                s_client_reply (self, identity, service, reply.data, reply.len);
                /* A job submitted, cancelled, retried or resumed: admit or
                   finish it now, not at the next tick (a quarter second). */
                if ((streq (service, "nf.submit") || streq (service, "nf.cancel")
                     || streq (service, "nf.retry") || streq (service, "nf.resume"))
                    && self->tick_at > self->ticked_ms + TICK_SOON_MS) {
                    self->tick_at = self->ticked_ms + TICK_SOON_MS;
                    self->tick_soon = true;
                }
            }
            nf_buf_free (&reply);
            nf_msg_destroy (&req);
        }
    }
done:
    zstr_free (&service);
    zframe_destroy (&identity);
    zframe_destroy (&empty);
    zframe_destroy (&proto);
    zframe_destroy (&body);
}

/* ---- dispatch, flush, liveness ------------------------------------------------ */

/* How many tasks of SVC to hold claimed beyond its idle workers, so a
   worker that finishes gets its next task without a database round trip
   and claims come in batches (one commit for many tasks): about
   PREFETCH_MS of work per worker (at least one task, at most PREFETCH),
   and never more than a queue that drains within a quarter of a lease (a
   queued task's lease is running). None for job-scope stages, and none
   until a task's duration is known. */
static size_t
s_spare (const nf_broker_t *self, const s_service_t *svc)
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
s_wants (const nf_broker_t *self, const s_service_t *svc, int *want)
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
s_feeds (const nf_outcome_t *o, const s_service_t *svc)
{
    return o->status == NF_REPLY_OK && o->stage->state_out && svc->stage->state_in
           && strcmp (o->stage->state_out, svc->stage->state_in) == 0;
}

/* Whether this broker holds a per-video task of job JOB_ID (claimed or in
   a worker's hands): then none of the job's barriers can be clear. */
static bool
s_holds_job (nf_broker_t *self, int64_t job_id)
{
    for (s_task_t *t = zhashx_first (self->inflight); t; t = zhashx_next (self->inflight))
        if (t->claim.video_id && t->claim.job_id == job_id)
            return true;
    for (s_service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        if (svc->stage->scope == NF_SCOPE_VIDEO)
            for (s_task_t *t = zlistx_first (svc->queue); t; t = zlistx_next (svc->queue))
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

/* The cycle store's event sink: a copy into the cycle in hand, for the
   main thread to publish once the cycle is back. */
static void
s_collect_event (const nf_event_t *ev, void *arg)
{
    s_cycle_t **current = (s_cycle_t **) arg;
    nf_event_t *e = calloc (1, sizeof *e);
    if (!e)
        abort ();
    e->job_id = ev->job_id;
    e->video_id = ev->video_id ? strdup (ev->video_id) : NULL;
    e->from = ev->from ? strdup (ev->from) : NULL;
    e->to = ev->to ? strdup (ev->to) : NULL;
    e->service = ev->service ? strdup (ev->service) : NULL;
    e->reason = ev->reason ? strdup (ev->reason) : NULL;
    zlistx_add_end ((*current)->events, e);
}

static void
s_event_destroy (void **item)
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
    s_slot_t *slot = (s_slot_t *) arg;
    s_task_t *t = calloc (1, sizeof *t);
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
static void
s_cycler_actor (zsock_t *pipe, void *args)
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
        s_cycle_t *c = (s_cycle_t *) ptr;
        int64_t t0 = nf_clock_us ();
        self->cycle_in_hand = c;
        c->rc = nf_db_connect (self->cycle_db) != 0
                    ? -1
                    : nf_store_cycle (self->cycle_store, c->list, c->n, c->releases, c->r, c->wants,
                                      c->nw, s_collect_claim);
        self->cycle_in_hand = NULL;
        c->stats = *nf_store_stats (self->cycle_store);
        c->generation = nf_db_generation (self->cycle_db);
        c->us = nf_clock_us () - t0;
        zsock_send (pipe, "p", c);
    }
}

static void
s_cycle_destroy (s_cycle_t **c_p)
{
    s_cycle_t *c = *c_p;
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        nf_outcome_destroy (&c->list[i]);
    free (c->list);
    free (c->releases);
    for (s_task_t *t = zlistx_first (c->claims); t; t = zlistx_next (c->claims))
        s_task_destroy (&t);
    zlistx_destroy (&c->claims);
    zlistx_destroy (&c->events);
    free (c);
    *c_p = NULL;
}

/* Start a cycle: the replies and releases waiting, then a claim for every
   stage that needs work and may claim now: its pause after a short claim
   is over, this batch feeds its input state, or (job stages) this batch
   may clear a barrier. Runs when the batch is due (FLUSH) or a stage needs
   a claim, and no cycle is in flight (what arrives meanwhile makes the
   next batch); CLAIM false (draining) claims nothing. */
static void
s_cycle_start (nf_broker_t *self, bool flush, bool claim)
{
    int64_t now = nf_clock_ms ();
    if (self->cycling || now < self->cycle_retry_ms)
        return;
    s_service_t *picked[MAX_WANTS];
    int wanted[MAX_WANTS];
    size_t nw = 0;
    int barrier = -1; /* not yet known */
    for (s_service_t *svc = zhashx_first (self->services); svc && claim && nw < MAX_WANTS;
         svc = zhashx_next (self->services)) {
        int want;
        if (!s_wants (self, svc, &want))
            continue;
        bool armed = now >= svc->next_claim_ms;
        for (nf_outcome_t *o = zlistx_first (self->outcomes); o && !armed;
             o = zlistx_next (self->outcomes))
            armed = s_feeds (o, svc);
        if (!armed && svc->stage->scope == NF_SCOPE_JOB && zlistx_size (self->outcomes)) {
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
    if (!nw && (!flush || (!n && !self->nreleases)))
        return;
    /* The cycle owns them now; what arrives meanwhile waits for the next. */
    s_cycle_t *c = calloc (1, sizeof *c);
    if (!c)
        abort ();
    c->list = calloc (n ? n : 1, sizeof *c->list);
    for (nf_outcome_t *o = zlistx_first (self->outcomes); o; o = zlistx_next (self->outcomes))
        c->list[c->n++] = o;
    zlistx_purge (self->outcomes);
    for (size_t k = 0; k < nw; k++) {
        c->slots[k] = (s_slot_t){c, picked[k]};
        c->wants[k] =
            (nf_want_t){.stage = picked[k]->stage, .want = wanted[k], .arg = &c->slots[k]};
    }
    c->nw = nw;
    c->releases = self->releases;
    c->r = self->nreleases;
    self->releases = NULL;
    self->nreleases = self->capreleases = 0;
    c->oldest_ms = self->oldest_ms;
    c->claims = zlistx_new ();
    c->events = zlistx_new ();
    zlistx_set_destructor (c->events, s_event_destroy);
    self->cycling = c;
    zsock_send (self->cycler, "sp", "CYCLE", c);
}

/* A cycle came back: on commit, queue its claims, publish its events and
   re-arm the stages it fed; on failure, its replies and releases wait for
   the next. */
static void
s_cycle_done (nf_broker_t *self, s_cycle_t *c)
{
    self->cycling = NULL;
    int64_t now = nf_clock_ms ();
    self->cycle_stats = c->stats;
    self->cycle_generation = c->generation;
    nf_hist_add (&self->commit_hist, (double) c->us / 1e6);
    for (size_t i = 0; i < c->nw; i++) {
        s_service_t *svc = c->slots[i].service;
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
        for (size_t i = 0; i < c->r; i++)
            s_add_release (self, c->releases[i].token, c->releases[i].undelivered);
        s_cycle_destroy (&c);
        return;
    }
    for (s_task_t *t = zlistx_first (c->claims); t; t = zlistx_next (c->claims))
        zlistx_add_end (t->service->queue, t);
    zlistx_purge (c->claims);
    for (nf_event_t *e = zlistx_first (c->events); e; e = zlistx_next (c->events))
        s_publish_event (e, self);
    /* Stages this batch fed but did not claim for have new work; a release
       gives work back, a job stage's reply moves its job on. */
    for (s_service_t *svc = zhashx_first (self->services); svc;
         svc = zhashx_next (self->services)) {
        bool claimed = false, fed = c->r > 0;
        for (size_t k = 0; k < c->nw && !claimed; k++)
            claimed = c->slots[k].service == svc;
        for (size_t i = 0; i < c->n && !fed; i++)
            fed = !c->list[i]->video_id || s_feeds (c->list[i], svc);
        if (fed && !claimed)
            svc->next_claim_ms = 0;
    }
    s_cycle_destroy (&c);
}

/* Wait for the cycle in flight, if any (shutdown). */
static void
s_cycle_wait (nf_broker_t *self)
{
    while (self->cycling) {
        void *ptr = NULL;
        if (zsock_recv (self->cycler, "p", &ptr) == 0 && ptr)
            s_cycle_done (self, (s_cycle_t *) ptr);
        else if (zmq_errno () != EINTR)
            break;
    }
}

/* Hand claimed tasks to idle workers. */
static void
s_deliver (nf_broker_t *self)
{
    int64_t now = nf_clock_ms ();
    for (s_service_t *svc = zhashx_first (self->services); svc;
         svc = zhashx_next (self->services)) {
        while (zlistx_size (svc->idle) && zlistx_size (svc->queue)) {
            s_task_t *t = zlistx_first (svc->queue);
            zlistx_delete (svc->queue, zlistx_cursor (svc->queue));
            s_worker_t *w = zlistx_first (svc->idle);
            zlistx_delete (svc->idle, zlistx_cursor (svc->idle));
            w->idle_handle = NULL;
            w->task = t;
            t->worker = w;
            zhashx_insert (self->inflight, t->claim.token, t);
            t->sent_ms = now;
            t->lease_end_ms = t->claimed_ms + self->lease_ms;
            s_worker_send (self, w, NF_MDPW_REQUEST, t);
            svc->dispatched++;
        }
    }
}

/* After the cycle connection reconnected, release leases this broker does
   not hold: a claim whose commit succeeded but whose answer was lost with
   the connection. Only between cycles, when every lease it holds is in
   memory. */
static void
s_reconcile_leases (nf_broker_t *self)
{
    if (self->cycling || self->cycle_generation == self->db_generation)
        return;
    nf_buf_t held;
    nf_buf_init (&held);
    nf_buf_puts (&held, "{");
    for (s_task_t *t = zhashx_first (self->inflight); t; t = zhashx_next (self->inflight))
        nf_buf_printf (&held, "%s%s", held.len > 1 ? "," : "", t->claim.token);
    for (s_service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        for (s_task_t *t = zlistx_first (svc->queue); t; t = zlistx_next (svc->queue))
            nf_buf_printf (&held, "%s%s", held.len > 1 ? "," : "", t->claim.token);
    for (nf_outcome_t *o = zlistx_first (self->outcomes); o; o = zlistx_next (self->outcomes))
        nf_buf_printf (&held, "%s%s", held.len > 1 ? "," : "", o->token);
    nf_buf_puts (&held, "}");
    if (nf_store_release_orphans (self->store, held.data) == 0)
        self->db_generation = self->cycle_generation;
    nf_buf_free (&held);
}

static void
s_purge_dead (nf_broker_t *self)
{
    int64_t now = nf_clock_ms ();
    zlistx_t *dead = zlistx_new ();
    for (s_worker_t *w = zhashx_first (self->peers); w; w = zhashx_next (self->peers))
        if (w->expiry < now)
            zlistx_add_end (dead, w);
    for (s_task_t *t = zhashx_first (self->inflight); t; t = zhashx_next (self->inflight))
        if (!t->expired && now > t->lease_end_ms) {
            t->expired = true;
            s_service_t *svc = zhashx_lookup (self->services, t->claim.stage->service);
            if (svc)
                svc->lease_expired++;
        }
    for (s_worker_t *w = zlistx_first (dead); w; w = zlistx_next (dead)) {
        nf_warn ("worker %s (%s) missed its heartbeats; declared dead", w->id, w->service->name);
        self->dead_workers++;
        s_worker_delete (self, w, false);
    }
    zlistx_destroy (&dead);
}

static void
s_heartbeat (nf_broker_t *self)
{
    for (s_worker_t *w = zhashx_first (self->peers); w; w = zhashx_next (self->peers))
        s_worker_send (self, w, NF_MDPW_HEARTBEAT, NULL);
}

static void
s_publish_stats (nf_broker_t *self)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    const nf_store_stats_t *st = &self->cycle_stats;
    msgpack_pack_map (&pk, 9);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_str (&pk, "type", "stats");
    nf_pk_kv_int (&pk, "claimed", (int64_t) st->claimed);
    nf_pk_kv_int (&pk, "applied", (int64_t) st->applied);
    nf_pk_kv_int (&pk, "fenced", (int64_t) (st->fenced + self->late_fenced));
    nf_pk_kv_int (&pk, "dropped", (int64_t) self->dropped);
    nf_pk_kv_int (&pk, "dead_workers", (int64_t) self->dead_workers);
    nf_pk_kv_bool (&pk, "database", nf_db_connected (self->db));
    nf_pk_str (&pk, "services");
    msgpack_pack_map (&pk, zhashx_size (self->services));
    for (s_service_t *svc = zhashx_first (self->services); svc;
         svc = zhashx_next (self->services)) {
        nf_pk_str (&pk, svc->name);
        msgpack_pack_map (&pk, 5);
        nf_pk_kv_int (&pk, "workers", (int64_t) svc->workers);
        nf_pk_kv_int (&pk, "idle", (int64_t) zlistx_size (svc->idle));
        nf_pk_kv_int (&pk, "queued", (int64_t) zlistx_size (svc->queue));
        nf_pk_kv_int (&pk, "dispatched", (int64_t) svc->dispatched);
        nf_pk_kv_int (&pk, "replies", (int64_t) svc->replies);
    }
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "nf.stats.");
    zmsg_addmem (msg, sb.data, sb.size);
    zmsg_send (&msg, self->pub);
    msgpack_sbuffer_destroy (&sb);
}

static void
s_waiting (const char *service, int64_t n, void *arg)
{
    nf_broker_t *self = (nf_broker_t *) arg;
    s_service_t *svc = zhashx_lookup (self->services, service);
    if (svc)
        svc->waiting += n;
}

/* One family: HELP and TYPE, then a line per service of FIELD. */
#define S_PER_SERVICE(m_name, m_type, m_help, m_expr)                                       \
    do {                                                                                    \
        nf_buf_printf (&b, "# HELP %s %s\n# TYPE %s %s\n", m_name, m_help, m_name, m_type); \
        for (s_service_t *svc = zhashx_first (self->services); svc;                         \
             svc = zhashx_next (self->services))                                            \
            nf_buf_printf (&b, "%s{service=\"%s\"} %lld\n", m_name, svc->name,              \
                           (long long) (m_expr));                                           \
    } while (0)

static void
s_render_metrics (nf_broker_t *self, int64_t now)
{
    if (now >= self->waiting_at && nf_db_connected (self->db)) {
        for (s_service_t *svc = zhashx_first (self->services); svc;
             svc = zhashx_next (self->services))
            svc->waiting = 0;
        nf_store_waiting (self->store, s_waiting, self);
        self->waiting_at = now + WAITING_MS;
    }
    const nf_store_stats_t *st = &self->cycle_stats;
    nf_buf_t b;
    nf_buf_init (&b);
    S_PER_SERVICE ("nf_tasks_dispatched_total", "counter", "Tasks sent to workers.",
                   svc->dispatched);
    S_PER_SERVICE ("nf_tasks_replies_total", "counter", "Replies received from workers.",
                   svc->replies);
    S_PER_SERVICE ("nf_tasks_completed_total", "counter",
                   "Video transitions committed to the next state.", svc->completed);
    S_PER_SERVICE ("nf_tasks_failed_total", "counter", "Videos moved to FAILED.", svc->failed);
    S_PER_SERVICE ("nf_tasks_retried_total", "counter", "Retries scheduled with backoff.",
                   svc->retried);
    S_PER_SERVICE ("nf_tasks_rejected_total", "counter", "Videos moved to REJECTED.",
                   svc->rejected);
    S_PER_SERVICE ("nf_lease_expiries_total", "counter",
                   "Dispatched tasks whose lease ran out before their reply.", svc->lease_expired);
    S_PER_SERVICE ("nf_queue_depth", "gauge",
                   "Tasks claimable now in the database (refreshed every 5 s).", svc->waiting);
    S_PER_SERVICE ("nf_queue_claimed", "gauge", "Tasks claimed and waiting for an idle worker.",
                   zlistx_size (svc->queue));
    for (s_service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        svc->in_flight = 0;
    for (s_task_t *t = zhashx_first (self->inflight); t; t = zhashx_next (self->inflight)) {
        s_service_t *svc = zhashx_lookup (self->services, t->claim.stage->service);
        if (svc)
            svc->in_flight++;
    }
    S_PER_SERVICE ("nf_tasks_in_flight", "gauge", "Tasks held by workers now.", svc->in_flight);
    S_PER_SERVICE ("nf_workers", "gauge", "Workers registered (alive).", svc->workers);
    S_PER_SERVICE ("nf_workers_idle", "gauge", "Workers waiting for a task.",
                   zlistx_size (svc->idle));
    nf_buf_printf (&b, "# HELP nf_claim_seconds Latency of one claim statement.\n"
                       "# TYPE nf_claim_seconds histogram\n");
    for (s_service_t *svc = zhashx_first (self->services); svc;
         svc = zhashx_next (self->services)) {
        char labels[96];
        snprintf (labels, sizeof labels, "service=\"%s\"", svc->name);
        nf_hist_render (&svc->claim_hist, &b, "nf_claim_seconds", labels);
    }
    nf_buf_printf (&b, "# HELP nf_commit_seconds Latency of one cycle: replies applied and work "
                       "claimed in one transaction.\n"
                       "# TYPE nf_commit_seconds histogram\n");
    nf_hist_render (&self->commit_hist, &b, "nf_commit_seconds", "");
    nf_buf_printf (&b,
                   "# HELP nf_claimed_total Tasks claimed.\n# TYPE nf_claimed_total counter\n"
                   "nf_claimed_total %llu\n"
                   "# HELP nf_applied_total Replies applied.\n# TYPE nf_applied_total counter\n"
                   "nf_applied_total %llu\n"
                   "# HELP nf_fenced_total Replies refused: their lease was no longer theirs.\n"
                   "# TYPE nf_fenced_total counter\nnf_fenced_total %llu\n"
                   "# HELP nf_dropped_total Malformed messages dropped.\n"
                   "# TYPE nf_dropped_total counter\nnf_dropped_total %llu\n"
                   "# HELP nf_dead_workers_total Workers declared dead (missed heartbeats).\n"
                   "# TYPE nf_dead_workers_total counter\nnf_dead_workers_total %llu\n"
                   "# HELP nf_database_up 1 when the broker is connected to PostgreSQL.\n"
                   "# TYPE nf_database_up gauge\nnf_database_up %d\n"
                   "# HELP nf_curve_admitted_total CURVE handshakes admitted (0: CURVE off).\n"
                   "# TYPE nf_curve_admitted_total counter\nnf_curve_admitted_total %llu\n"
                   "# HELP nf_curve_refused_total CURVE handshakes refused: key not allowed.\n"
                   "# TYPE nf_curve_refused_total counter\nnf_curve_refused_total %llu\n"
                   "# HELP nf_uptime_seconds Seconds since the broker started.\n"
                   "# TYPE nf_uptime_seconds gauge\nnf_uptime_seconds %.1f\n",
                   (unsigned long long) st->claimed, (unsigned long long) st->applied,
                   (unsigned long long) (st->fenced + self->late_fenced),
                   (unsigned long long) self->dropped, (unsigned long long) self->dead_workers,
                   nf_db_connected (self->db) ? 1 : 0,
                   (unsigned long long) nf_curve_admitted (self->curve),
                   (unsigned long long) nf_curve_refused (self->curve),
                   (double) (now - self->started_ms) / 1000.0);
    nf_metrics_set (self->metrics, b.data, b.len);
    nf_buf_free (&b);
}

/* ---- life cycle --------------------------------------------------------------- */

static void
s_service_free (void **item)
{
    s_service_t *svc = (s_service_t *) *item;
    if (!svc)
        return;
    for (s_task_t *t = zlistx_first (svc->queue); t; t = zlistx_next (svc->queue))
        s_task_destroy (&t);
    zlistx_destroy (&svc->queue);
    zlistx_destroy (&svc->idle);
    free (svc->name);
    free (svc);
    *item = NULL;
}

static zsock_t *
s_bind (nf_broker_t *self, int type, const char *endpoint)
{
    zsock_t *sock = zsock_new (type);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, 0);
    nf_curve_server (self->curve, sock);
    if (type == ZMQ_ROUTER) {
        zsock_set_router_mandatory (sock, 1);
        zsock_set_maxmsgsize (sock, (int64_t) self->max_frame + 4096);
    }
    else /* PUB reads only subscriptions; libzmq keeps each in a trie of a node per
            byte, so one 100 MB subscription cost the broker 1.4 GB of memory. */
        zsock_set_maxmsgsize (sock, SUBSCRIBE_MAX);
    if (zsock_bind (sock, "%s", endpoint) < 0) {
        nf_error ("cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
    }
    return sock;
}

nf_broker_t *
nf_broker_new (nf_config_t *config)
{
    nf_broker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->heartbeat_ms = nf_config_int (config, NF_CFG_HEARTBEAT_MS);
    self->expiry_ms = self->heartbeat_ms * nf_config_int (config, NF_CFG_LIVENESS);
    self->flush_ms = nf_config_int (config, NF_CFG_FLUSH_MS);
    self->claim_batch = (int) nf_config_int (config, NF_CFG_CLAIM_BATCH);
    self->max_frame = (size_t) nf_config_int (config, NF_CFG_MAX_FRAME);
    self->lease_ms = nf_config_int (config, NF_CFG_LEASE_MS);
    self->started_ms = nf_clock_ms ();
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, s_service_free);
    self->peers = zhashx_new ();
    self->inflight = zhashx_new ();
    self->recent = zhashx_new ();
    self->recent_ring = calloc (RECENT, sizeof *self->recent_ring);
    self->outcomes = zlistx_new ();
    size_t count;
    const nf_stage_t *stages = nf_stages (&count);
    for (size_t i = 0; i < count; i++) {
        s_service_t *svc = calloc (1, sizeof *svc);
        svc->name = strdup (stages[i].service);
        svc->stage = &stages[i];
        svc->idle = zlistx_new ();
        svc->queue = zlistx_new ();
        zhashx_insert (self->services, svc->name, svc);
    }
    char host[256] = "broker";
    gethostname (host, sizeof host - 1);
    const char *owner = nf_config_str (config, NF_CFG_BROKER_ID);
    if (!*owner)
        owner = host;
    self->db = nf_db_new (nf_config_str (config, NF_CFG_DATABASE_URL), "nf-broker");
    nf_store_opts_t opts = {
        .owner = owner,
        .lease_ms = nf_config_int (config, NF_CFG_LEASE_MS),
        .max_attempts = nf_config_int (config, NF_CFG_MAX_ATTEMPTS),
        .retry_base_ms = nf_config_int (config, NF_CFG_RETRY_BASE_MS),
        .retry_max_ms = nf_config_int (config, NF_CFG_RETRY_MAX_MS),
        .min_ready = nf_config_int (config, NF_CFG_MIN_READY),
        .max_active_jobs = nf_config_int (config, NF_CFG_MAX_ACTIVE_JOBS),
        .sources = nf_config_str (config, NF_CFG_SOURCES),
        .search_calls_per_day = nf_config_int (config, NF_CFG_YOUTUBE_SEARCH_CALLS),
        .units_per_day = nf_config_int (config, NF_CFG_YOUTUBE_UNITS),
        .max_frame = self->max_frame,
    };
    self->store = nf_store_new (self->db, &opts, s_publish_event, self);
    /* Replies and claims go through a second connection, on a thread of
       their own (s_cycler_actor); everything else through the first. */
    self->cycle_db = nf_db_new (nf_config_str (config, NF_CFG_DATABASE_URL), "nf-broker-cycle");
    self->cycle_store = nf_store_new (self->cycle_db, &opts, s_collect_event, &self->cycle_in_hand);
    /* The database must be reachable at start: retry for a while (a
       compose start-up races Postgres), then give up with a clear error. */
    int64_t give_up = nf_clock_ms () + 30000;
    while (nf_db_connect (self->db) != 0 && nf_clock_ms () < give_up && !zsys_interrupted)
        zclock_sleep (200);
    if (!nf_db_connected (self->db) || nf_schema_migrate (self->db) != 0
        || nf_store_release_owned (self->store) != 0 || nf_db_connect (self->cycle_db) != 0) {
        nf_error ("cannot start: database %s",
                  nf_db_error (nf_db_connected (self->db) ? self->cycle_db : self->db));
        nf_broker_destroy (&self);
        return NULL;
    }
    self->db_generation = self->cycle_generation = nf_db_generation (self->cycle_db);
    self->cycler = zactor_new (s_cycler_actor, self);
    if (!self->cycler) {
        nf_broker_destroy (&self);
        return NULL;
    }
    /* The ZAP handler is bound before the first CURVE server socket exists
       (see nf_curve.h). */
    char err[512];
    if (nf_curve_new (config, NF_PROG_BROKER, &self->curve, err, sizeof err) != 0) {
        nf_error ("cannot start: %s", err);
        nf_broker_destroy (&self);
        return NULL;
    }
    self->workers = s_bind (self, ZMQ_ROUTER, nf_config_str (config, NF_CFG_WORKERS_BIND));
    self->clients = s_bind (self, ZMQ_ROUTER, nf_config_str (config, NF_CFG_CLIENTS_BIND));
    self->pub = s_bind (self, ZMQ_PUB, nf_config_str (config, NF_CFG_PUB_BIND));
    if (!self->workers || !self->clients || !self->pub) {
        nf_broker_destroy (&self);
        return NULL;
    }
    const char *metrics = nf_config_str (config, NF_CFG_METRICS_BIND);
    if (*metrics) {
        self->metrics = nf_metrics_new (metrics, err, sizeof err);
        if (!self->metrics) {
            nf_error ("%s", err);
            nf_broker_destroy (&self);
            return NULL;
        }
        s_render_metrics (self, nf_clock_ms ());
        nf_info ("metrics on port %d (GET /metrics)", nf_metrics_port (self->metrics));
    }
    nf_info ("nf-broker %s up: workers %s, clients %s, events %s, owner '%s', schema v%d, %s",
             NF_VERSION, nf_config_str (config, NF_CFG_WORKERS_BIND),
             nf_config_str (config, NF_CFG_CLIENTS_BIND), nf_config_str (config, NF_CFG_PUB_BIND),
             owner, nf_schema_latest (), self->curve ? "CURVE on" : "CURVE off (plain TCP)");
    if (self->curve)
        nf_info ("CURVE: broker key %s, admitting the certificates in %s",
                 nf_curve_public (self->curve), nf_config_str (config, NF_CFG_CURVE_ALLOW));
    return self;
}

void
nf_broker_destroy (nf_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_broker_t *self = *self_p;
    nf_metrics_destroy (&self->metrics);
    if (self->cycler)
        s_cycle_wait (self);
    zactor_destroy (&self->cycler);
    nf_store_destroy (&self->cycle_store);
    nf_db_destroy (&self->cycle_db);
    while (zhashx_size (self->peers))
        s_worker_delete (self, zhashx_first (self->peers), false);
    for (nf_outcome_t *o = zlistx_first (self->outcomes); o; o = zlistx_next (self->outcomes))
        nf_outcome_destroy (&o);
    zlistx_destroy (&self->outcomes);
    zhashx_destroy (&self->inflight);
    zhashx_destroy (&self->recent);
    free (self->recent_ring);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->services);
    free (self->releases);
    nf_store_destroy (&self->store);
    nf_db_destroy (&self->db);
    zsock_destroy (&self->workers);
    zsock_destroy (&self->clients);
    zsock_destroy (&self->pub);
    nf_curve_destroy (&self->curve);
    free (self);
    *self_p = NULL;
}

/* Read up to BURST messages from SOCK. */
static void
s_drain_socket (nf_broker_t *self, zsock_t *sock, bool workers)
{
    for (int i = 0; i < BURST; i++) {
        if (!(zsock_events (sock) & ZMQ_POLLIN))
            break;
        zmsg_t *msg = zmsg_recv (sock);
        if (!msg)
            break;
        if (workers)
            s_on_worker_message (self, msg);
        else
            s_on_client_message (self, msg);
        zmsg_destroy (&msg);
    }
}

int
nf_broker_run (nf_broker_t *self)
{
    int64_t now = nf_clock_ms ();
    self->heartbeat_at = now + self->heartbeat_ms;
    self->tick_at = now;
    self->stats_at = now + STATS_MS;
    int64_t drain_until = 0;
    while (true) {
        if (zsys_interrupted && !drain_until) {
            drain_until = nf_clock_ms () + DRAIN_MS;
            nf_info ("SIGTERM: draining %zu tasks in flight", zhashx_size (self->inflight));
        }
        if (drain_until && (zhashx_size (self->inflight) == 0 || nf_clock_ms () > drain_until))
            break;
        zsock_t *zap = nf_curve_zap_socket (self->curve);
        zmq_pollitem_t items[] = {
            {zsock_resolve (self->workers), 0, ZMQ_POLLIN, 0},
            {zsock_resolve (self->clients), 0, ZMQ_POLLIN, 0},
            {zsock_resolve (self->cycler), 0, ZMQ_POLLIN, 0},
            {zap ? zsock_resolve (zap) : NULL, 0, ZMQ_POLLIN, 0},
        };
        long timeout = 50;
        if (zlistx_size (self->outcomes) && !self->cycling) {
            int64_t left = self->oldest_ms + self->flush_ms - nf_clock_ms ();
            timeout = left < 0 ? 0 : left < timeout ? (long) left : timeout;
        }
        if (zmq_poll (items, zap ? 4 : 3, timeout) < 0 && errno != EINTR)
            break;
        if (items[2].revents & ZMQ_POLLIN) {
            void *ptr = NULL;
            if (zsock_recv (self->cycler, "p", &ptr) == 0 && ptr)
                s_cycle_done (self, (s_cycle_t *) ptr);
        }
        if (zap && (items[3].revents & ZMQ_POLLIN))
            nf_curve_zap_handle (self->curve);
        if (items[0].revents & ZMQ_POLLIN)
            s_drain_socket (self, self->workers, true);
        if (items[1].revents & ZMQ_POLLIN)
            s_drain_socket (self, self->clients, false);
        now = nf_clock_ms ();
        if (now >= self->heartbeat_at) {
            s_purge_dead (self);
            s_heartbeat (self);
            self->heartbeat_at = now + self->heartbeat_ms;
        }
        if (nf_db_connect (self->db) != 0)
            continue;
        s_reconcile_leases (self);
        bool due = self->nreleases
                   || (zlistx_size (self->outcomes)
                       && (zlistx_size (self->outcomes) >= (size_t) self->claim_batch
                           || now - self->oldest_ms >= self->flush_ms || drain_until));
        if (now >= self->tick_at && !drain_until) {
            nf_store_tick (self->store);
            self->ticked_ms = now;
            self->tick_at = now + TICK_MS;
            if (self->tick_soon) /* and claim its work at once */
                for (s_service_t *svc = zhashx_first (self->services); svc;
                     svc = zhashx_next (self->services))
                    svc->next_claim_ms = 0;
            self->tick_soon = false;
        }
        s_cycle_start (self, due, !drain_until);
        s_deliver (self);
        if (now >= self->stats_at) {
            s_publish_stats (self);
            if (self->metrics)
                s_render_metrics (self, now);
            self->stats_at = now + STATS_MS;
        }
    }
    /* Give back what was claimed but never delivered, keep what came back. */
    s_cycle_wait (self);
    for (s_service_t *svc = zhashx_first (self->services); svc;
         svc = zhashx_next (self->services)) {
        for (s_task_t *t = zlistx_first (svc->queue); t; t = zlistx_next (svc->queue)) {
            s_add_release (self, t->claim.token, true);
            s_task_destroy (&t);
        }
        zlistx_purge (svc->queue);
    }
    self->cycle_retry_ms = 0;
    s_cycle_start (self, true, false);
    s_cycle_wait (self);
    for (s_worker_t *w = zhashx_first (self->peers); w; w = zhashx_next (self->peers))
        s_worker_send (self, w, NF_MDPW_DISCONNECT, NULL);
    size_t lost = zlistx_size (self->outcomes) + self->nreleases;
    const nf_store_stats_t *st = &self->cycle_stats;
    nf_info ("stopped: %llu claimed, %llu applied, %llu fenced, %zu unflushed (their leases "
             "expire and the work is redone)",
             (unsigned long long) st->claimed, (unsigned long long) st->applied,
             (unsigned long long) (st->fenced + self->late_fenced), lost);
    return lost ? 1 : 0;
}

/*  nf_broker: see nf_broker.h; the broker's files are listed in
    nf_broker_int.h. This one is sockets and dispatch, on the main thread:
    one loop polls both ROUTERs and, between polls, checks heartbeats,
    ticks the scheduler, answers clients (on its own database connection)
    and starts a cycle (nf_cycler.c) with the replies and claims of each
    turn. The cycle thread applies and claims in one transaction on a
    second connection while the loop goes on dispatching claimed tasks and
    receiving replies; one cycle is in flight at a time, so what arrives
    meanwhile makes the next batch. */
#include "nf_broker_int.h"
#include "nf_curve.h"
#include "nf_log.h"
#include "nf_schema.h"
#include "nf_util.h"
#include "nf_version.h"

#include <unistd.h>

/* ---- small helpers ------------------------------------------------------ */

void
nf_claimed_destroy (nf_claimed_t **task_p)
{
    if (!*task_p)
        return;
    nf_claimed_t *t = *task_p;
    free (t->claim.video_id);
    zframe_destroy (&t->claim.body);
    free (t);
    *task_p = NULL;
}

void
nf_broker_add_release (nf_broker_t *self, const char *token, int64_t job_id, const char *video_id,
                       bool undelivered)
{
    if (self->nreleases == self->capreleases) {
        self->capreleases = self->capreleases ? self->capreleases * 2 : 16;
        self->releases = realloc (self->releases, self->capreleases * sizeof (nf_release_t));
        if (!self->releases)
            abort ();
    }
    nf_release_t *r = &self->releases[self->nreleases++];
    snprintf (r->token, sizeof r->token, "%s", token);
    r->job_id = job_id;
    r->video_id = video_id ? strdup (video_id) : NULL;
    if (video_id && !r->video_id)
        abort ();
    r->undelivered = undelivered;
    r->renew = false;
}

void
nf_broker_add_renewal (nf_broker_t *self, const char *token, int64_t job_id, const char *video_id)
{
    nf_broker_add_release (self, token, job_id, video_id, false);
    self->releases[self->nreleases - 1].renew = true;
}

void
nf_broker_publish_event (const nf_event_t *ev, void *arg)
{
    nf_broker_t *self = (nf_broker_t *) arg;
    nf_service_t *svc =
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

/* A routing id in hex, for log lines (at most 32 bytes of it). */
typedef struct {
    char text[72];
} s_hex_t;

static s_hex_t
s_hex_id (zframe_t *identity)
{
    s_hex_t h = {""};
    static const char digits[] = "0123456789abcdef";
    size_t n = identity ? zframe_size (identity) : 0;
    const unsigned char *p = identity ? zframe_data (identity) : NULL;
    for (size_t i = 0; i < n && i < 32; i++) {
        h.text[2 * i] = digits[p[i] >> 4];
        h.text[2 * i + 1] = digits[p[i] & 15];
        h.text[2 * i + 2] = 0;
    }
    return h;
}

/* ---- workers ---------------------------------------------------------------- */

static bool
s_worker_send (nf_broker_t *self, nf_peer_t *w, int command, nf_claimed_t *task)
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
    /* Never blocks (send timeout 0 on the ROUTER): a worker whose queue is
       full (PEER_HWM) or that is gone fails the send. */
    if (zmsg_send (&msg, self->workers) == 0)
        return true;
    self->send_errno = zmq_errno ();
    zmsg_destroy (&msg);
    return false;
}

/* Forget worker W. Its task's lease is released at the next flush. */
static void
s_worker_delete (nf_broker_t *self, nf_peer_t *w, bool disconnect)
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
        nf_broker_add_release (self, w->task->claim.token, w->task->claim.job_id,
                               w->task->claim.video_id, false);
        nf_claimed_t *t = w->task;
        zhashx_delete (self->inflight, t->claim.token);
        nf_claimed_destroy (&t);
    }
    char *id = w->id;
    zframe_destroy (&w->identity);
    zhashx_delete (self->peers, id);
    free (id);
    free (w);
}

/* Forget worker W, whose last send failed (WHAT was sent): its connection
   is gone (ZeroMQ knows at once; declared dead) or it stopped reading (its
   queue is full). No DISCONNECT: it would not arrive either. Its task's
   lease is released. */
static void
s_worker_forget (nf_broker_t *self, nf_peer_t *w, const char *what)
{
    const char *name = w->service ? w->service->name : "?";
    if (self->send_errno == EHOSTUNREACH) {
        nf_warn ("worker %s (%s): its connection is gone (%s not delivered); declared dead", w->id,
                 name, what);
        self->dead_workers++;
    }
    else {
        nf_warn ("worker %s (%s): it stopped reading (%s not delivered: %s); forgotten", w->id,
                 name, what, zmq_strerror (self->send_errno));
        self->worker_drops++;
    }
    s_worker_delete (self, w, false);
}

/* A protocol error of worker W (WHAT): as RFC 7 asks, DISCONNECT, and the
   peer is gone; the task it held goes back to its queue at once, its
   lease still the broker's, for another worker. */
static void
s_worker_protocol_error (nf_broker_t *self, nf_peer_t *w, const char *what)
{
    nf_warn ("worker %s (%s): %s; disconnecting it", w->id, w->service->name, what);
    self->dropped++;
    nf_claimed_t *t = w->task;
    if (t) {
        zhashx_delete (self->inflight, t->claim.token);
        t->worker = NULL;
        w->task = NULL;
        zlistx_add_start (t->service->queue, t);
    }
    s_worker_delete (self, w, true);
}

static void
s_worker_idle (nf_broker_t *self, nf_peer_t *w)
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
        nf_peer_t tmp = {.id = (char *) id, .identity = identity};
        s_worker_send (self, &tmp, NF_MDPW_DISCONNECT, NULL);
        zstr_free (&name);
        return;
    }
    nf_service_t *svc = zhashx_lookup (self->services, name);
    nf_peer_t *w = calloc (1, sizeof *w);
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

/* The outcome of TASK from the reply BODY: decoded, or a retryable
   error when the body is malformed. */
static nf_outcome_t *
s_outcome_new (nf_broker_t *self, nf_claimed_t *task, zframe_t *body, const nf_peer_t *w)
{
    nf_outcome_t *o = calloc (1, sizeof *o);
    if (!o)
        abort ();
    o->stage = task->claim.stage;
    memcpy (o->token, task->claim.token, sizeof o->token);
    o->job_id = task->claim.job_id;
    o->video_id = task->claim.video_id ? strdup (task->claim.video_id) : NULL;
    o->attempt = task->claim.attempt;
    char err[256];
    nf_reply_t reply;
    o->msg =
        nf_msg_decode (zframe_data (body), zframe_size (body), self->max_frame, err, sizeof err);
    if (!o->msg || nf_reply_decode (o->msg, &reply, err, sizeof err) != 0) {
        nf_warn ("worker %s: malformed reply for %s: %s", w->id, task->claim.token, err);
        o->status = NF_REPLY_ERROR;
        o->retryable = true;
        char text[320];
        snprintf (text, sizeof text, "malformed reply: %s", err);
        o->text = strdup (text);
        nf_msg_destroy (&o->msg);
        return o;
    }
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
    return o;
}

/* Remember TOKEN among the last RECENT replies received (to spot resends). */
static void
s_remember (nf_broker_t *self, const char *token)
{
    char *slot = self->recent_ring[self->recent_next];
    if (*slot)
        zhashx_delete (self->recent, slot);
    memcpy (slot, token, 40);
    zhashx_insert (self->recent, slot, (void *) "");
    self->recent_next = (self->recent_next + 1) % RECENT;
}

/* A reply of worker W for TASK, which its holder had in hand: queue the
   outcome for the next cycle, forget the task, and W is idle again. */
static void
s_reply_accept (nf_broker_t *self, nf_peer_t *w, nf_claimed_t *task, zframe_t *body)
{
    nf_peer_t *holder = task->worker;
    if (holder != w)
        nf_info ("worker %s (%s): reply for task %s, dispatched to %s before it reconnected; "
                 "accepted",
                 w->id, w->service->name, task->claim.token, holder->id);
    nf_outcome_t *o = s_outcome_new (self, task, body, w);
    int64_t now = nf_clock_ms ();
    nf_service_t *svc = w->service;
    double took = (double) (now - task->sent_ms);
    svc->task_ms = svc->task_ms > 0 ? 0.8 * svc->task_ms + 0.2 * took : took < 1 ? 1 : took;
    if (zlistx_size (self->outcomes) == 0)
        self->oldest_ms = now;
    zlistx_add_end (self->outcomes, o);
    w->service->replies++;
    s_remember (self, task->claim.token);
    zhashx_delete (self->inflight, task->claim.token);
    nf_claimed_destroy (&task);
    holder->task = NULL;
    if (holder == w)
        s_worker_idle (self, w);
}

static void
s_on_worker_reply (nf_broker_t *self, nf_peer_t *w, zmsg_t *msg)
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
    nf_claimed_t *task = *token ? zhashx_lookup (self->inflight, token) : NULL;
    if (!body || !empty || zframe_size (empty) != 0 || !*token)
        s_worker_protocol_error (self, w, "malformed REPLY envelope");
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
    else
        s_reply_accept (self, w, task, body);
    zframe_destroy (&address);
    zframe_destroy (&empty);
    zframe_destroy (&body);
}

/* The frames every message on a ROUTER starts with: the peer's routing
   id, an empty delimiter and the MDP protocol header. */
typedef struct {
    zframe_t *identity, *empty, *header;
} s_envelope_t;

/* Pop the envelope of MSG into E; true when it is well formed for
   protocol PROTO (NF_MDPW, NF_MDPC). s_envelope_free frees it either way. */
static bool
s_envelope_pop (s_envelope_t *e, zmsg_t *msg, const char *proto)
{
    e->identity = zmsg_pop (msg);
    e->empty = zmsg_pop (msg);
    e->header = zmsg_pop (msg);
    return e->identity && e->empty && zframe_size (e->empty) == 0 && e->header
           && zframe_streq (e->header, proto);
}

static void
s_envelope_free (s_envelope_t *e)
{
    zframe_destroy (&e->identity);
    zframe_destroy (&e->empty);
    zframe_destroy (&e->header);
}

static void
s_on_worker_message (nf_broker_t *self, zmsg_t *msg)
{
    s_envelope_t env;
    bool ok = s_envelope_pop (&env, msg, NF_MDPW);
    zframe_t *identity = env.identity, *proto = env.header;
    zframe_t *command = zmsg_pop (msg);
    if (!ok || !command || zframe_size (command) != 1) {
        /* RFC 7: an invalid message is dropped and its peer treated as
           disconnected: told so, and its task (if any) served by another. */
        char *hex = identity ? zframe_strhex (identity) : NULL;
        nf_peer_t *w = hex ? zhashx_lookup (self->peers, hex) : NULL;
        if (w)
            s_worker_protocol_error (self, w, "invalid message (not MDP/0.1 worker framing)");
        else {
            self->dropped++;
            nf_warn ("worker socket: invalid message (%zu frames) from %s dropped; disconnecting "
                     "it",
                     zmsg_size (msg) + (identity ? 1 : 0) + (env.empty ? 1 : 0) + (proto ? 1 : 0)
                         + (command ? 1 : 0),
                     hex ? hex : "an unknown peer");
            if (hex) {
                nf_peer_t tmp = {.id = hex, .identity = identity};
                s_worker_send (self, &tmp, NF_MDPW_DISCONNECT, NULL);
            }
        }
        free (hex);
        goto done;
    }
    char *id = zframe_strhex (identity);
    int cmd = zframe_data (command)[0];
    nf_peer_t *w = zhashx_lookup (self->peers, id);
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
            nf_peer_t tmp = {.id = id, .identity = identity};
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
    s_envelope_free (&env);
    zframe_destroy (&command);
}

/* ---- clients ---------------------------------------------------------------- */

void
nf_broker_client_reply (nf_broker_t *self, zframe_t *identity, const char *service,
                        const void *body, size_t len)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *){zframe_dup (identity)});
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, NF_MDPC);
    zmsg_addstr (msg, service);
    zmsg_addmem (msg, body, len);
    /* Never blocks: a client that stopped reading (its queue at PEER_HWM)
       or that is gone loses the reply, counted; the broker goes on. */
    if (zmsg_send (&msg, self->clients) != 0) {
        int err = zmq_errno ();
        zmsg_destroy (&msg);
        if (self->client_drops++ % 1000 == 0) /* the first, then every thousandth */
            nf_warn ("client %s: reply to %s not delivered (%s); %llu dropped so far",
                     s_hex_id (identity).text, service, zmq_strerror (err),
                     (unsigned long long) self->client_drops);
    }
}

void
nf_broker_client_error (nf_broker_t *self, zframe_t *identity, const char *service,
                        const char *text)
{
    nf_buf_t body;
    nf_buf_init (&body);
    nf_client_error_encode (&body, text);
    nf_broker_client_reply (self, identity, service, body.data, body.len);
    nf_buf_free (&body);
}

static void
s_on_client_message (nf_broker_t *self, zmsg_t *msg)
{
    bool viewable = false;
    s_envelope_t env;
    bool ok = s_envelope_pop (&env, msg, NF_MDPC);
    zframe_t *identity = env.identity;
    char *service = zmsg_popstr (msg);
    zframe_t *body = zmsg_pop (msg);
    if (!ok || !service || strlen (service) > 64 || !body || zmsg_size (msg) != 0) {
        self->dropped++;
        nf_warn ("client socket: malformed message dropped");
        goto done;
    }
    if (strcmp (service, "mmi.service") == 0) {
        char name[65] = "";
        size_t n = zframe_size (body) < 64 ? zframe_size (body) : 64;
        memcpy (name, zframe_data (body), n);
        nf_service_t *svc = zhashx_lookup (self->services, name);
        bool internal = strncmp (name, "nf.", 3) == 0;
        const char *code = (svc && svc->workers > 0) || internal ? "200" : "404";
        nf_broker_client_reply (self, identity, service, code, 3);
    }
    else if (strncmp (service, "mmi.", 4) == 0)
        nf_broker_client_reply (self, identity, service, "501", 3);
    else if (!nf_store_service_known (service, &viewable))
        nf_broker_client_error (self, identity, service, "unknown service");
    else if (self->curve && !viewable
             && nf_curve_role (zframe_meta (body, "User-Id")) != NF_ROLE_OPERATOR) {
        /* The client socket admits operators and viewers (nf_curve.c); a
           viewer reads, it does not spend or change. */
        char text[200];
        snprintf (text, sizeof text,
                  "%s needs an operator's key; this key is a viewer's (it is in "
                  "NF_CURVE_ALLOW/viewers)",
                  service);
        nf_broker_client_error (self, identity, service, text);
    }
    else if (!nf_office_request (self, identity, service, &body))
        /* The office thread runs the services on its own connection, so
           this loop never waits on PostgreSQL; it takes OFFICE_MAX at
           once, OFFICE_PER_CLIENT of one client. */
        nf_broker_client_error (self, identity, service,
                                "broker busy: too many requests in progress, try again");
done:
    zstr_free (&service);
    s_envelope_free (&env);
    zframe_destroy (&body);
}

/* Hand claimed tasks to idle workers. */
static void
s_deliver (nf_broker_t *self)
{
    int64_t now = nf_clock_ms ();
    for (nf_service_t *svc = zhashx_first (self->services); svc;
         svc = zhashx_next (self->services)) {
        while (zlistx_size (svc->idle) && zlistx_size (svc->queue)) {
            nf_claimed_t *t = zlistx_first (svc->queue);
            zlistx_delete (svc->queue, zlistx_cursor (svc->queue));
            nf_peer_t *w = zlistx_first (svc->idle);
            zlistx_delete (svc->idle, zlistx_cursor (svc->idle));
            w->idle_handle = NULL;
            w->task = t;
            t->worker = w;
            zhashx_insert (self->inflight, t->claim.token, t);
            t->sent_ms = now;
            if (!t->lease_end_ms)
                t->lease_end_ms = t->claimed_ms + self->lease_ms;
            t->deadline_ms = now + svc->timeout_ms;
            if (!s_worker_send (self, w, NF_MDPW_REQUEST, t)) {
                /* It does not read: the task goes back to the queue at once
                   and the worker is forgotten. */
                zhashx_delete (self->inflight, t->claim.token);
                t->worker = NULL;
                w->task = NULL;
                zlistx_add_start (svc->queue, t);
                s_worker_forget (self, w, "a task");
                continue;
            }
            svc->dispatched++;
        }
    }
}

/* Leases of tasks this broker holds that are more than half gone are
   renewed in the next cycle: queued ones (the broker's own), and
   dispatched ones whose worker was heard from within NF_LIVENESS
   heartbeats and whose deadline has not passed. A worker silent while it
   works (the zguide's) keeps its task until the lease ends, not longer:
   silence cannot tell a busy worker from a cut-off one.
   A task past its deadline keeps its lease until it runs out; then the
   task is claimed again and its late reply fenced. */
static void
s_renew_leases (nf_broker_t *self, int64_t now)
{
    int64_t due = now + self->lease_ms / RENEW_SHARE;
    for (nf_claimed_t *t = zhashx_first (self->inflight); t; t = zhashx_next (self->inflight))
        if (!t->renewing && t->worker && t->worker->expiry >= now && t->lease_end_ms < due
            && now < t->deadline_ms && now < t->lease_end_ms) {
            t->renewing = true;
            nf_broker_add_renewal (self, t->claim.token, t->claim.job_id, t->claim.video_id);
        }
    for (nf_service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        for (nf_claimed_t *t = zlistx_first (svc->queue); t; t = zlistx_next (svc->queue)) {
            int64_t end = t->lease_end_ms ? t->lease_end_ms : t->claimed_ms + self->lease_ms;
            if (!t->renewing && end < due && now < end) {
                t->lease_end_ms = end;
                t->renewing = true;
                nf_broker_add_renewal (self, t->claim.token, t->claim.job_id, t->claim.video_id);
            }
        }
}

static void
s_purge_dead (nf_broker_t *self)
{
    int64_t now = nf_clock_ms ();
    zlistx_t *dead = zlistx_new ();
    /* A worker that holds a task is not dead for silence while the task is
       within its deadline (its lease): a single-threaded worker, such as
       the zguide's, sends nothing while it works. If its connection
       closes, the next send to it says so (s_worker_forget). */
    for (nf_peer_t *w = zhashx_first (self->peers); w; w = zhashx_next (self->peers))
        if (w->expiry < now && !(w->task && now <= w->task->lease_end_ms))
            zlistx_add_end (dead, w);
    for (nf_claimed_t *t = zhashx_first (self->inflight); t; t = zhashx_next (self->inflight))
        if (!t->expired && now > t->lease_end_ms) {
            t->expired = true;
            nf_service_t *svc = zhashx_lookup (self->services, t->claim.stage->service);
            if (svc)
                svc->lease_expired++;
        }
    for (nf_peer_t *w = zlistx_first (dead); w; w = zlistx_next (dead)) {
        nf_warn ("worker %s (%s) missed its heartbeats; declared dead", w->id, w->service->name);
        self->dead_workers++;
        s_worker_delete (self, w, false);
    }
    zlistx_destroy (&dead);
}

static void
s_heartbeat (nf_broker_t *self)
{
    zlistx_t *deaf = zlistx_new ();
    for (nf_peer_t *w = zhashx_first (self->peers); w; w = zhashx_next (self->peers))
        if (!s_worker_send (self, w, NF_MDPW_HEARTBEAT, NULL))
            zlistx_add_end (deaf, w);
    for (nf_peer_t *w = zlistx_first (deaf); w; w = zlistx_next (deaf))
        s_worker_forget (self, w, "a heartbeat");
    zlistx_destroy (&deaf);
}

/* ---- life cycle --------------------------------------------------------------- */

static void
s_service_free (void **item)
{
    nf_service_t *svc = (nf_service_t *) *item;
    if (!svc)
        return;
    for (nf_claimed_t *t = zlistx_first (svc->queue); t; t = zlistx_next (svc->queue))
        nf_claimed_destroy (&t);
    zlistx_destroy (&svc->queue);
    zlistx_destroy (&svc->idle);
    free (svc->name);
    free (svc);
    *item = NULL;
}

static zsock_t *
s_bind (nf_broker_t *self, nf_socket_kind_t kind, const char *endpoint)
{
    int type = kind == NF_SOCKET_EVENTS ? ZMQ_PUB : ZMQ_ROUTER;
    zsock_t *sock = zsock_new (type);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, 0);
    nf_curve_server (self->curve, sock, kind); /* its ZAP domain admits its roles */
    if (type == ZMQ_ROUTER) {
        /* Sends never wait: a peer that stops reading fails its own sends
           (after PEER_HWM queued messages) and nobody else's. */
        zsock_set_router_mandatory (sock, 1);
        zsock_set_sndtimeo (sock, 0);
        zsock_set_sndhwm (sock, PEER_HWM);
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

/* NF_TASK_TIMEOUTS ("stage=ms ..."): each stage's deadline into its
   service record (600000 when not named). NF_OK, or NF_ERR_INVALID with
   the reason logged. */
static nf_err_t
s_timeouts_parse (nf_broker_t *self)
{
    const char *list = nf_config_str (self->config, NF_CFG_TASK_TIMEOUTS);
    char copy[1024], *save = NULL;
    snprintf (copy, sizeof copy, "%s", list);
    for (char *item = strtok_r (copy, " ,", &save); item; item = strtok_r (NULL, " ,", &save)) {
        char *eq = strchr (item, '='), *end = NULL;
        long long ms = eq ? strtoll (eq + 1, &end, 10) : 0;
        if (eq)
            *eq = 0;
        nf_service_t *svc = eq ? zhashx_lookup (self->services, item) : NULL;
        if (!svc || !end || *end || ms < 100 || ms > 86400000) {
            nf_error ("NF_TASK_TIMEOUTS: '%s' is not stage=ms with a stage of the table and 100 "
                      "to 86400000 ms",
                      item);
            return NF_ERR_INVALID;
        }
        svc->timeout_ms = ms;
    }
    return NF_OK;
}

/* A service record for each stage of the table. */
static void
s_services_new (nf_broker_t *self)
{
    self->services = zhashx_new ();
    self->service_list = zlistx_new ();
    zhashx_set_destructor (self->services, s_service_free);
    size_t count;
    const nf_stage_t *stages = nf_stages (&count);
    for (size_t i = 0; i < count; i++) {
        nf_service_t *svc = calloc (1, sizeof *svc);
        svc->name = strdup (stages[i].service);
        svc->stage = &stages[i];
        svc->idle = zlistx_new ();
        svc->queue = zlistx_new ();
        svc->timeout_ms = 600000;
        zhashx_insert (self->services, svc->name, svc);
        zlistx_add_end (self->service_list, svc);
    }
}

/* Two connections, each with its store: the main thread's (clients, the
   tick) and the cycle thread's (replies and claims, s_cycler_actor). */
static void
s_stores_new (nf_broker_t *self, const char *owner)
{
    nf_config_t *config = self->config;
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
        .retain_days = nf_config_int (config, NF_CFG_RETAIN_DAYS),
    };
    const char *url = nf_config_str (config, NF_CFG_DATABASE_URL);
    self->db = nf_db_new (url, "nf-broker");
    self->store = nf_store_new (self->db, &opts, nf_event_collect, &self->office_events);
    self->cycle_db = nf_db_new (url, "nf-broker-cycle");
    self->cycle_store = nf_store_new (self->cycle_db, &opts, nf_event_collect, &self->cycle_events);
}

/* The database must be reachable at start: retry for a while (a compose
   start-up races Postgres), then give up with a clear error. Migrates and
   releases the leases a previous run of this owner held. */
static nf_err_t
s_db_start (nf_broker_t *self)
{
    int64_t give_up = nf_clock_ms () + 30000;
    while (nf_db_connect (self->db) != 0 && nf_clock_ms () < give_up && !zsys_interrupted)
        zclock_sleep (200);
    if (nf_db_connected (self->db) && nf_schema_migrate (self->db) == 0
        && nf_office_lock_id (self) != NF_OK)
        return NF_ERR_INVALID; /* said why */
    if (!nf_db_connected (self->db) || nf_store_release_owned (self->store) != 0
        || nf_db_connect (self->cycle_db) != 0) {
        nf_error ("cannot start: database %s",
                  nf_db_error (nf_db_connected (self->db) ? self->cycle_db : self->db));
        return NF_ERR_DB;
    }
    self->db_generation = self->cycle_generation = nf_db_generation (self->cycle_db);
    self->office_db_up = true; /* the office says so from now on */
    return NF_OK;
}

/* CURVE's keys and allow folder, checked before anything else starts. The
   ZAP handler is bound before the first CURVE server socket exists (see
   nf_curve.h). */
static nf_err_t
s_curve_new (nf_broker_t *self)
{
    char err[512];
    if (nf_curve_new (self->config, NF_PROG_BROKER, &self->curve, err, sizeof err) != 0) {
        nf_error ("cannot start: %s", err);
        return NF_ERR_INVALID;
    }
    return NF_OK;
}

/* True when ENDPOINT can be reached from this machine only. */
static bool
s_local_endpoint (const char *endpoint)
{
    static const char *const local[] = {"ipc://", "inproc://", "tcp://127.",
                                        "tcp://localhost:", "tcp://[::1]:"};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (strncmp (endpoint, local[i], strlen (local[i])) == 0)
            return true;
    return false;
}

/* Secure by default: a socket on an address other than loopback needs
   CURVE, or the operator's NF_INSECURE=1 (warned at every start). */
static nf_err_t
s_check_exposure (nf_broker_t *self)
{
    static const struct {
        nf_cfg_key_t key;
        const char *name;
    } binds[] = {{NF_CFG_WORKERS_BIND, "NF_WORKERS_BIND"},
                 {NF_CFG_CLIENTS_BIND, "NF_CLIENTS_BIND"},
                 {NF_CFG_PUB_BIND, "NF_PUB_BIND"}};
    bool insecure = nf_config_bool (self->config, NF_CFG_INSECURE);
    for (size_t i = 0; i < sizeof binds / sizeof binds[0]; i++) {
        const char *ep = nf_config_str (self->config, binds[i].key);
        if (self->curve || s_local_endpoint (ep))
            continue;
        if (!insecure) {
            nf_error ("cannot start: %s is %s, an address other than loopback, and CURVE is off: "
                      "anyone who reaches it could submit, cancel, download exports and serve "
                      "as a worker. Turn CURVE on (NF_CURVE_CERT and NF_CURVE_ALLOW, "
                      "deploy/README.md), bind 127.0.0.1, or set NF_INSECURE=1 on a network you "
                      "trust",
                      binds[i].name, ep);
            return NF_ERR_INVALID;
        }
        nf_warn ("NF_INSECURE=1: %s is %s without CURVE; anyone who reaches it may use it",
                 binds[i].name, ep);
    }
    const char *metrics = nf_config_str (self->config, NF_CFG_METRICS_BIND);
    if (*metrics && strncmp (metrics, "127.", 4) != 0 && strncmp (metrics, "localhost:", 10) != 0)
        nf_warn ("NF_METRICS_BIND is %s: the metrics (job counts, queue depths) are readable by "
                 "anyone who reaches it",
                 metrics);
    return NF_OK;
}

/* The three sockets and the metrics endpoint. */
static nf_err_t
s_sockets_new (nf_broker_t *self)
{
    nf_config_t *config = self->config;
    char err[512];
    self->workers = s_bind (self, NF_SOCKET_WORKERS, nf_config_str (config, NF_CFG_WORKERS_BIND));
    self->clients = s_bind (self, NF_SOCKET_CLIENTS, nf_config_str (config, NF_CFG_CLIENTS_BIND));
    self->pub = s_bind (self, NF_SOCKET_EVENTS, nf_config_str (config, NF_CFG_PUB_BIND));
    if (!self->workers || !self->clients || !self->pub)
        return NF_ERR_IO;
    const char *metrics = nf_config_str (config, NF_CFG_METRICS_BIND);
    if (*metrics) {
        self->metrics = nf_metrics_new (metrics, err, sizeof err);
        if (!self->metrics) {
            nf_error ("%s", err);
            return NF_ERR_IO;
        }
        nf_broker_render_metrics (self, nf_clock_ms ());
        nf_info ("metrics on port %d (GET /metrics)", nf_metrics_port (self->metrics));
    }
    return NF_OK;
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
    /* Retry jitter (nf_backoff_ms) draws from rand (): seeded per process,
       so that brokers restarted together do not retry in step. */
    srand ((unsigned) ((uint64_t) nf_clock_us () ^ ((uint64_t) getpid () << 16)));
    self->peers = zhashx_new ();
    self->office_clients = zhashx_new ();
    self->inflight = zhashx_new ();
    self->recent = zhashx_new ();
    self->recent_ring = calloc (RECENT, sizeof *self->recent_ring);
    self->outcomes = zlistx_new ();
    s_services_new (self);
    char host[256] = "broker";
    gethostname (host, sizeof host - 1);
    const char *owner = nf_config_str (config, NF_CFG_BROKER_ID);
    if (!*owner)
        owner = host;
    self->owner = strdup (owner);
    s_stores_new (self, owner);
    if (s_timeouts_parse (self) != NF_OK || s_curve_new (self) != NF_OK
        || s_check_exposure (self) != NF_OK || s_db_start (self) != NF_OK
        || !(self->cycler = zactor_new (nf_cycler_actor, self)) || s_sockets_new (self) != NF_OK
        || !(self->office = zactor_new (nf_office_actor, self))) {
        nf_broker_destroy (&self);
        return NULL;
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
        nf_cycle_wait (self);
    zactor_destroy (&self->cycler);
    nf_office_stop (self);
    zactor_destroy (&self->office);
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
    zhashx_destroy (&self->office_clients);
    zlistx_destroy (&self->service_list);
    zhashx_destroy (&self->services);
    nf_releases_free (self->releases, self->nreleases);
    nf_store_destroy (&self->store);
    nf_db_destroy (&self->db);
    zsock_destroy (&self->workers);
    zsock_destroy (&self->clients);
    zsock_destroy (&self->pub);
    nf_curve_destroy (&self->curve);
    free (self->owner);
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

/* Poll the sockets and the cycle pipe for up to 50 ms (less when a batch
   is due sooner) and handle what came. false when polling failed. */
static bool
s_poll (nf_broker_t *self)
{
    zsock_t *zap = nf_curve_zap_socket (self->curve);
    zmq_pollitem_t items[] = {
        {zsock_resolve (self->workers), 0, ZMQ_POLLIN, 0},
        {zsock_resolve (self->clients), 0, ZMQ_POLLIN, 0},
        {zsock_resolve (self->cycler), 0, ZMQ_POLLIN, 0},
        {zsock_resolve (self->office), 0, ZMQ_POLLIN, 0},
        {zap ? zsock_resolve (zap) : NULL, 0, ZMQ_POLLIN, 0},
    };
    long timeout = 50;
    if (zlistx_size (self->outcomes) && !self->cycling) {
        int64_t left = self->oldest_ms + self->flush_ms - nf_clock_ms ();
        timeout = left < 0 ? 0 : left < timeout ? (long) left : timeout;
    }
    if (zmq_poll (items, zap ? 5 : 4, timeout) < 0 && errno != EINTR)
        return false;
    if (items[2].revents & ZMQ_POLLIN) {
        void *ptr = NULL;
        if (zsock_recv (self->cycler, "p", &ptr) == 0 && ptr)
            nf_cycle_done (self, (nf_cycle_t *) ptr);
    }
    for (int i = 0; i < BURST && (zsock_events (self->office) & ZMQ_POLLIN); i++) {
        void *ptr = NULL;
        if (zsock_recv (self->office, "p", &ptr) != 0 || !ptr)
            break;
        nf_office_done (self, (nf_errand_t *) ptr);
    }
    if (zap && (items[4].revents & ZMQ_POLLIN))
        nf_curve_zap_handle (self->curve);
    if (items[0].revents & ZMQ_POLLIN)
        s_drain_socket (self, self->workers, true);
    if (items[1].revents & ZMQ_POLLIN)
        s_drain_socket (self, self->clients, false);
    return true;
}

/* One loop turn after the poll: heartbeats, the tick, the next cycle,
   dispatch, the stats. DRAINING: shutting down (no tick, no claims). */
static void
s_turn (nf_broker_t *self, bool draining)
{
    int64_t now = nf_clock_ms ();
    if (now >= self->heartbeat_at) {
        s_purge_dead (self);
        s_heartbeat (self);
        s_renew_leases (self, now);
        self->heartbeat_at = now + self->heartbeat_ms;
    }
    size_t waiting = zlistx_size (self->outcomes);
    bool due = self->nreleases
               || (waiting
                   && (waiting >= (size_t) self->claim_batch
                       || now - self->oldest_ms >= self->flush_ms || draining));
    nf_cycle_start (self, due, !draining);
    if (!draining) /* a drain waits for the tasks in flight; the queued ones are given back */
        s_deliver (self);
    if (now >= self->stats_at) {
        nf_broker_publish_stats (self);
        if (self->metrics)
            nf_broker_render_metrics (self, now);
        self->stats_at = now + STATS_MS;
    }
}

/* After the loop: give back what was claimed but never delivered, keep
   what came back, tell the workers. Returns what is left unflushed. */
static size_t
s_shutdown (nf_broker_t *self)
{
    nf_cycle_wait (self);
    for (nf_service_t *svc = zhashx_first (self->services); svc;
         svc = zhashx_next (self->services)) {
        for (nf_claimed_t *t = zlistx_first (svc->queue); t; t = zlistx_next (svc->queue)) {
            nf_broker_add_release (self, t->claim.token, t->claim.job_id, t->claim.video_id, true);
            nf_claimed_destroy (&t);
        }
        zlistx_purge (svc->queue);
    }
    self->cycle_retry_ms = 0;
    nf_cycle_start (self, true, false);
    nf_cycle_wait (self);
    for (nf_peer_t *w = zhashx_first (self->peers); w; w = zhashx_next (self->peers))
        s_worker_send (self, w, NF_MDPW_DISCONNECT, NULL);
    return zlistx_size (self->outcomes) + self->nreleases;
}

int
nf_broker_run (nf_broker_t *self)
{
    int64_t now = nf_clock_ms ();
    self->heartbeat_at = now + self->heartbeat_ms;
    self->stats_at = now + STATS_MS;
    int64_t drain_until = 0;
    while (true) {
        if (zsys_interrupted && !drain_until) {
            drain_until = nf_clock_ms () + DRAIN_MS;
            nf_info ("SIGTERM: draining %zu tasks in flight", zhashx_size (self->inflight));
            nf_office_drain (self);
        }
        if (drain_until && (zhashx_size (self->inflight) == 0 || nf_clock_ms () > drain_until))
            break;
        if (!s_poll (self))
            break;
        s_turn (self, drain_until != 0);
    }
    size_t lost = s_shutdown (self);
    const nf_store_stats_t *st = &self->cycle_stats;
    nf_info ("stopped: %llu claimed, %llu applied, %llu fenced, %zu unflushed (their leases "
             "expire and the work is redone)",
             (unsigned long long) st->claimed, (unsigned long long) st->applied,
             (unsigned long long) (st->fenced + self->late_fenced), lost);
    return lost ? 1 : 0;
}

/*  nf_worker: see nf_worker.h. */
#define _GNU_SOURCE /* memmem */
#include "nf_worker.h"
#include "nf_client.h"
#include "nf_curve.h"
#include "nf_log.h"
#include "nf_util.h"
#include "nf_version.h"

#include <czmq.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

/* A task handed to the executor thread and back. */
typedef struct {
    zframe_t *address;  /* MDP client address (the lease token) */
    zframe_t *body;     /* the task body */
    nf_result_t result; /* filled by the executor */
} s_work_t;

struct nf_worker_t {
    nf_config_t *config;        /* borrowed */
    char *service;              /* service name we serve */
    char *endpoint;             /* broker endpoint */
    nf_stage_fn *fn;            /* the stage */
    void *arg;                  /* the stage's argument */
    zsock_t *socket;            /* DEALER to the broker */
    nf_curve_t *curve;          /* CURVE keys, or NULL */
    zsock_t *watch;             /* CURVE handshake failures, or NULL */
    zframe_t *unconfirmed;      /* copy of the last reply's address ... */
    zframe_t *unconfirmed_body; /* ... and body, until the broker is heard again */
    zactor_t *executor;         /* runs fn on its own thread */
    s_work_t *busy;             /* task in hand, or NULL */
    int64_t heartbeat_ms;       /* heartbeat interval */
    int liveness_max;           /* heartbeats missed before reconnecting */
    int liveness;               /* heartbeats left before reconnecting */
    int64_t reconnect_ms;       /* current reconnect backoff */
    int64_t reconnect_max;      /* cap of the backoff */
    int64_t heartbeat_at;       /* when to send the next heartbeat */
    size_t max_frame;           /* body size limit */
    uint64_t tasks_done;        /* counter for the exit log */
    const char *health;         /* NF_HEALTH_FILE, or "" */
    const char *crash_on;       /* NF_CRASH_ON (fault injection), or NULL */
    int64_t health_at;          /* when it was last renewed */
};

static void
s_result_reset (nf_result_t *r)
{
    r->status = NF_REPLY_OK;
    r->message[0] = 0;
    r->retryable = true;
    nf_buf_init (&r->output);
    nf_buf_init (&r->usage);
}

static void
s_work_destroy (s_work_t **work_p)
{
    if (!*work_p)
        return;
    s_work_t *w = *work_p;
    zframe_destroy (&w->address);
    zframe_destroy (&w->body);
    nf_buf_free (&w->result.output);
    nf_buf_free (&w->result.usage);
    free (w);
    *work_p = NULL;
}

/* Decode, run the stage, keep the result. Runs on the executor thread. */
static void
s_execute (nf_worker_t *self, s_work_t *w)
{
    char err[512];
    nf_msg_t *msg = nf_msg_decode (zframe_data (w->body), zframe_size (w->body), self->max_frame,
                                   err, sizeof err);
    nf_task_t task;
    if (!msg || nf_task_decode (msg, &task, err, sizeof err) != 0) {
        nf_warn ("bad task body: %s", err);
        nf_result_error (&w->result, false, "bad task body: %s", err);
    }
    else if (strcmp (task.service, self->service) != 0)
        nf_result_error (&w->result, true, "task for service '%s' sent to '%s'", task.service,
                         self->service);
    else {
        if (self->crash_on
            && memmem (zframe_data (w->body), zframe_size (w->body), self->crash_on,
                       strlen (self->crash_on)))
            abort (); /* the reliability suite's poison task: a real crash, every time */
        self->fn (&task, &w->result, self->arg);
    }
    nf_msg_destroy (&msg);
}

static void
s_executor_actor (zsock_t *pipe, void *args)
{
    nf_worker_t *self = (nf_worker_t *) args;
    zsock_signal (pipe, 0);
    while (true) {
        char *cmd = NULL;
        void *ptr = NULL;
        if (zsock_recv (pipe, "sp", &cmd, &ptr) != 0)
            break;
        bool term = cmd && streq (cmd, "$TERM");
        zstr_free (&cmd);
        if (term)
            break;
        s_execute (self, (s_work_t *) ptr);
        zsock_send (pipe, "p", ptr);
    }
}

nf_worker_t *
nf_worker_new (nf_config_t *config, const char *service, nf_stage_fn *fn, void *arg)
{
    nf_worker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->service = strdup (service);
    self->endpoint = strdup (nf_config_str (config, NF_CFG_BROKER));
    self->fn = fn;
    self->arg = arg;
    self->heartbeat_ms = nf_config_int (config, NF_CFG_HEARTBEAT_MS);
    self->liveness_max = (int) nf_config_int (config, NF_CFG_LIVENESS);
    self->reconnect_max = nf_config_int (config, NF_CFG_RECONNECT_MAX_MS);
    self->reconnect_ms = self->heartbeat_ms;
    self->max_frame = (size_t) nf_config_int (config, NF_CFG_MAX_FRAME);
    self->health = nf_config_str (config, NF_CFG_HEALTH_FILE);
    const char *crash_on = getenv ("NF_CRASH_ON");
    self->crash_on = crash_on && *crash_on ? crash_on : NULL;
    char err[512];
    if (nf_curve_new (config, NF_PROG_WORKER, &self->curve, err, sizeof err) != 0) {
        nf_error ("%s", err);
        nf_worker_destroy (&self);
        return NULL;
    }
    self->executor = zactor_new (s_executor_actor, self);
    if (!self->executor) {
        nf_worker_destroy (&self);
        return NULL;
    }
    return self;
}

void
nf_worker_destroy (nf_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_worker_t *self = *self_p;
    zactor_destroy (&self->executor);
    nf_dealer_close (&self->socket, &self->watch);
    nf_curve_destroy (&self->curve);
    zframe_destroy (&self->unconfirmed);
    zframe_destroy (&self->unconfirmed_body);
    s_work_destroy (&self->busy);
    free (self->service);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

/* Send an MDP worker command with optional address and body frames. */
static void
s_send (nf_worker_t *self, int command, zframe_t **address, zframe_t **body)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, NF_MDPW);
    uint8_t cmd = (uint8_t) command;
    zmsg_addmem (msg, &cmd, 1);
    if (command == NF_MDPW_READY)
        zmsg_addstr (msg, self->service);
    if (address) {
        zmsg_append (msg, address);
        zmsg_addstr (msg, "");
    }
    if (body)
        zmsg_append (msg, body);
    /* Never block on a send: a socket whose connection was refused (CURVE)
       has no pipe, and a blocked send would hang the drain at SIGTERM. A
       message that cannot be queued is lost like one on a dead link (a
       reply's lease then expires and the task is redone). */
    if (self->socket && (zsock_events (self->socket) & ZMQ_POLLOUT))
        zmsg_send (&msg, self->socket);
    zmsg_destroy (&msg);
}

static int
s_connect (nf_worker_t *self)
{
    if (nf_dealer_open (&self->socket, &self->watch, self->endpoint, self->max_frame, self->curve)
        != 0) {
        nf_error ("cannot connect to broker at %s", self->endpoint);
        return -1;
    }
    s_send (self, NF_MDPW_READY, NULL, NULL);
    if (self->unconfirmed) {
        /* Sent on a link that then went silent: it may never have arrived.
           The broker applies it if the lease is still this task's, and
           fences it if not, so sending it twice is harmless. */
        nf_info (
            "resending the reply for task %.*s: the broker went silent after it was sent",
            (int) (zframe_size (self->unconfirmed) < 64 ? zframe_size (self->unconfirmed) : 64),
            (const char *) zframe_data (self->unconfirmed));
        zframe_t *address = zframe_dup (self->unconfirmed);
        zframe_t *body = zframe_dup (self->unconfirmed_body);
        s_send (self, NF_MDPW_REPLY, &address, &body);
    }
    self->liveness = self->liveness_max;
    self->heartbeat_at = nf_clock_ms () + self->heartbeat_ms;
    nf_info ("serving '%s' via broker %s", self->service, self->endpoint);
    return 0;
}

static void
s_send_reply (nf_worker_t *self, s_work_t *w)
{
    char token[256] = "";
    size_t n =
        zframe_size (w->address) < sizeof token - 1 ? zframe_size (w->address) : sizeof token - 1;
    memcpy (token, zframe_data (w->address), n);
    nf_result_t *r = &w->result;
    nf_buf_t body;
    nf_buf_init (&body);
    nf_reply_encode (&body, token, r->status, r->message, r->retryable,
                     r->output.len ? r->output.data : NULL, r->output.len,
                     r->usage.len ? r->usage.data : NULL, r->usage.len);
    if (r->status != NF_REPLY_OK)
        nf_info ("task %s: %s %s", token, nf_reply_status_name (r->status), r->message);
    zframe_t *frame = zframe_new (body.data, body.len);
    nf_buf_free (&body);
    zframe_t *address = w->address;
    w->address = NULL;
    zframe_destroy (&self->unconfirmed);
    zframe_destroy (&self->unconfirmed_body);
    self->unconfirmed = zframe_dup (address);
    self->unconfirmed_body = zframe_dup (frame);
    s_send (self, NF_MDPW_REPLY, &address, &frame);
    self->tasks_done++;
}

/* The broker is heard: renew the health file (a container health check
   compares its age with a few heartbeats). */
static void
s_health (nf_worker_t *self)
{
    int64_t now = nf_clock_ms ();
    if (!*self->health || now - self->health_at < 1000)
        return;
    self->health_at = now;
    int fd = open (self->health, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || futimens (fd, NULL) != 0)
        nf_warn ("cannot renew NF_HEALTH_FILE %s: %s", self->health, strerror (errno));
    if (fd >= 0)
        close (fd);
}

/* Handle one message from the broker. */
static void
s_on_broker (nf_worker_t *self, zmsg_t *msg)
{
    self->liveness = self->liveness_max;
    self->reconnect_ms = self->heartbeat_ms;
    zframe_t *empty = zmsg_pop (msg);
    zframe_t *proto = zmsg_pop (msg);
    zframe_t *command = zmsg_pop (msg);
    bool valid = empty && zframe_size (empty) == 0 && proto && zframe_streq (proto, NF_MDPW)
                 && command && zframe_size (command) == 1;
    int cmd = valid ? zframe_data (command)[0] : -1;
    if (valid && cmd != NF_MDPW_DISCONNECT) { /* the link carried our last reply */
        zframe_destroy (&self->unconfirmed);
        zframe_destroy (&self->unconfirmed_body);
        s_health (self);
    }
    if (cmd == NF_MDPW_REQUEST && zmsg_size (msg) == 3) {
        zframe_t *address = zmsg_pop (msg);
        zframe_t *sep = zmsg_pop (msg);
        zframe_t *body = zmsg_pop (msg);
        zframe_destroy (&sep);
        s_work_t *w = calloc (1, sizeof *w);
        w->address = address;
        w->body = body;
        s_result_reset (&w->result);
        if (self->busy) {
            nf_result_error (&w->result, true, "worker busy");
            s_send_reply (self, w);
            s_work_destroy (&w);
        }
        else {
            self->busy = w;
            zsock_send (self->executor, "sp", "RUN", w);
        }
    }
    else if (cmd == NF_MDPW_DISCONNECT) {
        nf_warn ("broker sent DISCONNECT; reconnecting");
        self->liveness = 0;
    }
    else if (cmd != NF_MDPW_HEARTBEAT)
        nf_warn ("ignoring malformed message from broker");
    zframe_destroy (&empty);
    zframe_destroy (&proto);
    zframe_destroy (&command);
}

int
nf_worker_run (nf_worker_t *self)
{
    if (s_connect (self) != 0)
        return -1;
    bool draining = false;
    int64_t reconnect_at = 0; /* while the socket is closed: when to open it again */
    while (true) {
        if (zsys_interrupted && !draining) {
            draining = true;
            nf_info ("SIGTERM: %s", self->busy ? "finishing the task in hand" : "stopping");
        }
        if (draining && !self->busy)
            break;
        zmq_pollitem_t items[] = {
            {zsock_resolve (self->executor), 0, ZMQ_POLLIN, 0},
            {self->socket ? zsock_resolve (self->socket) : NULL, 0, ZMQ_POLLIN, 0},
        };
        int64_t wait = (self->socket ? self->heartbeat_at : reconnect_at) - nf_clock_ms ();
        if (wait < 0)
            wait = 0;
        if (wait > 100)
            wait = 100; /* notice SIGTERM promptly */
        int rc = zmq_poll (items, self->socket ? 2 : 1, (long) wait);
        if (rc < 0 && errno != EINTR)
            break;
        if (self->socket && (items[1].revents & ZMQ_POLLIN)) {
            zmsg_t *msg = zmsg_recv (self->socket);
            if (msg)
                s_on_broker (self, msg);
            zmsg_destroy (&msg);
        }
        if (items[0].revents & ZMQ_POLLIN) {
            void *ptr = NULL;
            if (zsock_recv (self->executor, "p", &ptr) == 0 && ptr == self->busy) {
                s_send_reply (self, self->busy);
                s_work_destroy (&self->busy);
            }
        }
        int64_t now = nf_clock_ms ();
        if (!self->socket) {
            /* Not while a task runs: a new READY would bring a second task
               that could only be refused ("worker busy"), costing its video
               an attempt. The reply waits as unconfirmed and goes out with
               the READY once the task is done. */
            if (now >= reconnect_at && !draining && !self->busy && s_connect (self) != 0)
                return -1;
            continue;
        }
        if (now >= self->heartbeat_at) {
            if (--self->liveness <= 0) {
                /* Close now, open again after the backoff (zguide's Paranoid
                   Pirate, without its blocking sleep): a socket left open
                   while we wait would connect when the link returns, and
                   the broker would dispatch to a worker that is not
                   listening. The task in hand goes on meanwhile. */
                const char *refused = nf_curve_failure (self->watch);
                nf_warn ("%s; reconnecting in %lld ms", refused ? refused : "broker silent",
                         (long long) self->reconnect_ms);
                nf_dealer_close (&self->socket, &self->watch);
                reconnect_at = now + self->reconnect_ms;
                self->reconnect_ms *= 2;
                if (self->reconnect_ms > self->reconnect_max)
                    self->reconnect_ms = self->reconnect_max;
                continue;
            }
            else
                s_send (self, NF_MDPW_HEARTBEAT, NULL, NULL);
            self->heartbeat_at = nf_clock_ms () + self->heartbeat_ms;
        }
    }
    if (self->socket)
        s_send (self, NF_MDPW_DISCONNECT, NULL, NULL);
    nf_info ("stopped after %llu tasks", (unsigned long long) self->tasks_done);
    return 0;
}

void
nf_result_reject (nf_result_t *result, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (result->message, sizeof result->message, fmt, ap);
    va_end (ap);
    result->status = NF_REPLY_REJECT;
}

void
nf_result_error (nf_result_t *result, bool retryable, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (result->message, sizeof result->message, fmt, ap);
    va_end (ap);
    result->status = NF_REPLY_ERROR;
    result->retryable = retryable;
}

void
nf_result_output_packer (nf_result_t *result, msgpack_packer *pk)
{
    nf_pk_init_buf (pk, &result->output);
}

void
nf_result_usage_packer (nf_result_t *result, msgpack_packer *pk)
{
    nf_pk_init_buf (pk, &result->usage);
}

int
nf_worker_main (int argc, char **argv, const char *program, const char *service,
                nf_stage_init_fn *init, nf_stage_fn *fn, void *arg)
{
    nf_config_t *config = nf_config_new (program, NF_PROG_WORKER);
    if (config)
        nf_config_set_service (config, service);
    if (!config || nf_config_load (config, argc, argv) != 0) {
        nf_config_destroy (&config);
        return 2;
    }
    if (nf_config_wants_version (config)) {
        printf ("%s %s\n", program, NF_VERSION);
        nf_config_destroy (&config);
        return 0;
    }
    if (nf_config_wants_help (config)) {
        printf ("Usage: %s [settings]\nServes the '%s' stage of nicheflow over MDP/0.1.\n\n",
                program, service);
        nf_config_print_help (config, stdout);
        nf_config_destroy (&config);
        return 0;
    }
    if (nf_config_argc (config) > 0) {
        fprintf (stderr, "%s: unknown argument '%s' (see --help)\n", program,
                 nf_config_arg (config, 0));
        nf_config_destroy (&config);
        return 2;
    }
    if (init && init (config, arg) != 0) {
        nf_config_destroy (&config);
        return 2;
    }
    nf_config_apply_logging (config);
    nf_worker_t *worker = nf_worker_new (config, service, fn, arg);
    int rc = worker ? nf_worker_run (worker) : -1;
    nf_worker_destroy (&worker);
    nf_config_destroy (&config);
    return rc == 0 ? 0 : 1;
}

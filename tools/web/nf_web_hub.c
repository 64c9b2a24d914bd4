/*  nf_web_hub: see nf_web_hub.h. */
#include "nf_web_hub.h"
#include "nf_feed.h"
#include "nf_log.h"
#include "nf_util.h"

#include <czmq.h>
#include <pthread.h>

#define POOL_KEEP 8    /* idle clients kept; more are made when busy, then closed */
#define JOB_SLOTS 1024 /* event counters, by job id modulo (a collision: one extra look) */

struct nf_web_hub_t {
    char *clients;                /* broker client endpoint */
    int64_t timeout_ms;           /* per request */
    size_t max_frame;             /* reply size limit */
    const nf_curve_t *curve;      /* borrowed, or NULL */
    zsock_t *sub;                 /* the subscriber thread's */
    pthread_t thread;             /* the subscriber */
    bool started;                 /* thread running */
    pthread_mutex_t lock;         /* everything below */
    pthread_cond_t changed;       /* broadcast on every job event */
    bool stop;                    /* the thread ends */
    nf_client_t *idle[POOL_KEEP]; /* the pool */
    size_t nidle;
    uint64_t seq[JOB_SLOTS]; /* events per job slot */
    uint64_t all;            /* events of any job */
    nf_feed_t feed;          /* failures, retries, classes, the last two stats */
};

/* ---- the subscriber ---------------------------------------------------------- */

/* One message of the PUB: topic, msgpack body. */
static void
s_on_message (nf_web_hub_t *self, zmsg_t *msg)
{
    char *topic = NULL;
    json_t *ev = nf_event_decode (msg, self->max_frame, &topic);
    int64_t now = nf_clock_ms ();
    if (json_is_object (ev)) {
        pthread_mutex_lock (&self->lock);
        if (strcmp (topic, "nf.stats.") == 0) {
            nf_feed_stats (&self->feed, ev, now);
        }
        else if (strncmp (topic, "nf.job.", 7) == 0) {
            long long job = strtoll (topic + 7, NULL, 10);
            if (job > 0)
                self->seq[job % JOB_SLOTS]++;
            self->all++;
            nf_feed_event (&self->feed, ev, now);
            pthread_cond_broadcast (&self->changed);
        }
        pthread_mutex_unlock (&self->lock);
    }
    json_decref (ev);
    zstr_free (&topic);
}

static void *
s_subscriber (void *arg)
{
    nf_web_hub_t *self = arg;
    for (;;) {
        pthread_mutex_lock (&self->lock);
        bool stop = self->stop;
        pthread_mutex_unlock (&self->lock);
        if (stop)
            break;
        zmq_pollitem_t item = {zsock_resolve (self->sub), 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 200) <= 0)
            continue;
        while (zsock_events (self->sub) & ZMQ_POLLIN) {
            zmsg_t *m = zmsg_recv (self->sub);
            if (!m)
                break;
            s_on_message (self, m);
            zmsg_destroy (&m);
        }
    }
    return NULL;
}

/* ---- life ------------------------------------------------------------------- */

nf_web_hub_t *
nf_web_hub_new (const char *clients, const char *pub, int64_t timeout_ms, size_t max_frame,
                const nf_curve_t *curve)
{
    nf_web_hub_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->clients = strdup (clients);
    self->timeout_ms = timeout_ms;
    self->max_frame = max_frame;
    self->curve = curve;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init (&ca);
    pthread_condattr_setclock (&ca, CLOCK_MONOTONIC);
    pthread_cond_init (&self->changed, &ca);
    pthread_condattr_destroy (&ca);
    self->sub = zsock_new (ZMQ_SUB);
    if (self->sub) {
        nf_curve_client (curve, self->sub);
        zsock_set_rcvhwm (self->sub, 100000);
        zsock_set_subscribe (self->sub, "nf.job.");
        zsock_set_subscribe (self->sub, "nf.stats.");
    }
    if (!self->clients || !self->sub || zsock_connect (self->sub, "%s", pub) != 0
        || pthread_create (&self->thread, NULL, s_subscriber, self) != 0) {
        nf_error ("web: cannot subscribe to %s", pub);
        nf_web_hub_destroy (&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void
nf_web_hub_destroy (nf_web_hub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_web_hub_t *self = *self_p;
    if (self->started) {
        pthread_mutex_lock (&self->lock);
        self->stop = true;
        pthread_mutex_unlock (&self->lock);
        pthread_join (self->thread, NULL);
    }
    zsock_destroy (&self->sub);
    for (size_t i = 0; i < self->nidle; i++)
        nf_client_destroy (&self->idle[i]);
    nf_feed_clear (&self->feed);
    pthread_cond_destroy (&self->changed);
    pthread_mutex_destroy (&self->lock);
    free (self->clients);
    free (self);
    *self_p = NULL;
}

/* ---- requests ----------------------------------------------------------------- */

nf_err_t
nf_web_hub_call (nf_web_hub_t *self, const char *service, const json_t *request, nf_msg_t **reply,
                 char *err, size_t errlen)
{
    *reply = NULL;
    pthread_mutex_lock (&self->lock);
    nf_client_t *c = self->nidle ? self->idle[--self->nidle] : NULL;
    pthread_mutex_unlock (&self->lock);
    if (!c)
        c = nf_client_new (self->clients, self->timeout_ms, self->max_frame, self->curve);
    if (!c) {
        snprintf (err, errlen, "cannot create a client socket");
        return NF_ERR_NOMEM;
    }
    json_t *body = json_is_object (request) ? json_copy ((json_t *) request) : json_object ();
    json_object_set_new (body, "v", json_integer (NF_PROTO_VERSION));
    nf_buf_t b;
    nf_buf_init (&b);
    msgpack_packer pk;
    nf_pk_init_buf (&pk, &b);
    nf_pk_json (&pk, body);
    json_decref (body);
    nf_err_t rc = nf_client_request (c, service, b.data, b.len, reply, err, errlen);
    nf_buf_free (&b);
    pthread_mutex_lock (&self->lock);
    if (self->nidle < POOL_KEEP)
        self->idle[self->nidle++] = c;
    else
        nf_client_destroy (&c);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

/* ---- waiting ---------------------------------------------------------------- */

static uint64_t
s_seq (const nf_web_hub_t *self, int64_t job)
{
    return job > 0 ? self->seq[job % JOB_SLOTS] : self->all;
}

uint64_t
nf_web_hub_seq (nf_web_hub_t *self, int64_t job)
{
    pthread_mutex_lock (&self->lock);
    uint64_t n = s_seq (self, job);
    pthread_mutex_unlock (&self->lock);
    return n;
}

uint64_t
nf_web_hub_wait (nf_web_hub_t *self, int64_t job, uint64_t seen, int ms)
{
    struct timespec until;
    clock_gettime (CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->lock);
    while (s_seq (self, job) == seen && !self->stop)
        if (pthread_cond_timedwait (&self->changed, &self->lock, &until) != 0)
            break;
    uint64_t n = s_seq (self, job);
    pthread_mutex_unlock (&self->lock);
    return n;
}

/* ---- operations ------------------------------------------------------------- */

json_t *
nf_web_hub_ops (nf_web_hub_t *self)
{
    int64_t now = nf_clock_ms ();
    json_t *out = json_object ();
    pthread_mutex_lock (&self->lock);
    json_object_set_new (out, "stats",
                         self->feed.stats ? json_deep_copy (self->feed.stats) : json_null ());
    json_object_set_new (out, "stats_age_ms",
                         self->feed.stats_at ? json_integer (now - self->feed.stats_at)
                                             : json_null ());
    json_t *rates = nf_feed_rates (&self->feed);
    json_object_set_new (out, "rates", rates);
    json_object_set_new (out, "failures",
                         json_integer ((json_int_t) nf_feed_failures (&self->feed, now)));
    json_object_set_new (out, "retries",
                         json_integer ((json_int_t) nf_feed_retries (&self->feed, now)));
    size_t which[16], counts[16];
    size_t n = nf_feed_top (&self->feed, now, which, counts, 16);
    json_t *classes = json_array ();
    for (size_t k = 0; k < n; k++)
        json_array_append_new (classes,
                               json_pack ("{s:s, s:I}", "class", self->feed.classes[which[k]].text,
                                          "count", (json_int_t) counts[k]));
    json_object_set_new (out, "classes", classes);
    pthread_mutex_unlock (&self->lock);
    return out;
}

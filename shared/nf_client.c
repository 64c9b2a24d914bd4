/*  nf_client: see nf_client.h. */
#include "nf_client.h"

#include <czmq.h>

struct nf_client_t {
    char *endpoint;          /* broker client endpoint */
    int64_t timeout_ms;      /* per request */
    size_t max_frame;        /* reply size limit */
    zsock_t *socket;         /* DEALER, rebuilt after a timeout */
    const nf_curve_t *curve; /* borrowed, or NULL */
    zsock_t *watch;          /* CURVE handshake failures, or NULL */
};

void
nf_dealer_close (zsock_t **sock_p, zsock_t **watch_p)
{
    nf_curve_unwatch (*sock_p, watch_p);
    zsock_destroy (sock_p);
}

nf_err_t
nf_dealer_open (zsock_t **sock_p, zsock_t **watch_p, const char *endpoint, size_t max_frame,
                const nf_curve_t *curve)
{
    nf_dealer_close (sock_p, watch_p);
    zsock_t *sock = *sock_p = zsock_new (ZMQ_DEALER);
    if (!sock)
        return NF_ERR_NOMEM;
    zsock_set_linger (sock, 0);
    zsock_set_maxmsgsize (sock, (int64_t) max_frame + 4096);
    nf_curve_client (curve, sock);
    *watch_p = nf_curve_watch (curve, sock);
    return zsock_connect (sock, "%s", endpoint) == 0 ? NF_OK : NF_ERR_INVALID;
}

static int
s_connect (nf_client_t *self)
{
    return nf_dealer_open (&self->socket, &self->watch, self->endpoint, self->max_frame,
                           self->curve);
}

nf_client_t *
nf_client_new (const char *endpoint, int64_t timeout_ms, size_t max_frame, const nf_curve_t *curve)
{
    nf_client_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->endpoint = strdup (endpoint);
    self->timeout_ms = timeout_ms;
    self->max_frame = max_frame;
    self->curve = curve;
    if (s_connect (self) != 0)
        nf_client_destroy (&self);
    return self;
}

void
nf_client_destroy (nf_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_client_t *self = *self_p;
    nf_dealer_close (&self->socket, &self->watch);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

/* Send and wait; returns the body frame of the reply or NULL. */
static zframe_t *
s_exchange (nf_client_t *self, const char *service, const void *body, size_t len, char *err,
            size_t errlen)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, NF_MDPC);
    zmsg_addstr (msg, service);
    zmsg_addmem (msg, body, len);
    if (!(zsock_events (self->socket) & ZMQ_POLLOUT) || zmsg_send (&msg, self->socket) != 0) {
        zmsg_destroy (&msg);
        snprintf (err, errlen, "cannot send to broker at %s", self->endpoint);
        return NULL;
    }
    zpoller_t *poller = zpoller_new (self->socket, NULL);
    zsock_t *ready = zpoller_wait (poller, (int) self->timeout_ms);
    bool interrupted = zpoller_terminated (poller);
    zpoller_destroy (&poller);
    if (!ready) {
        const char *refused = nf_curve_failure (self->watch);
        if (refused && !interrupted)
            snprintf (err, errlen, "broker at %s: %s", self->endpoint, refused);
        else
            snprintf (err, errlen,
                      interrupted ? "interrupted" : "broker at %s did not answer within %lld ms",
                      self->endpoint, (long long) self->timeout_ms);
        s_connect (self);
        return NULL;
    }
    zmsg_t *reply = zmsg_recv (self->socket);
    if (!reply || zmsg_size (reply) != 4) {
        zmsg_destroy (&reply);
        snprintf (err, errlen, "malformed reply from broker");
        return NULL;
    }
    zframe_t *empty = zmsg_pop (reply);
    zframe_t *proto = zmsg_pop (reply);
    char *svc = zmsg_popstr (reply);
    zframe_t *frame = zmsg_pop (reply);
    bool ok = zframe_size (empty) == 0 && zframe_streq (proto, NF_MDPC) && svc
              && strcmp (svc, service) == 0;
    zframe_destroy (&empty);
    zframe_destroy (&proto);
    zstr_free (&svc);
    zmsg_destroy (&reply);
    if (!ok) {
        zframe_destroy (&frame);
        snprintf (err, errlen, "malformed reply from broker");
    }
    return frame;
}

nf_err_t
nf_client_request (nf_client_t *self, const char *service, const void *body, size_t len,
                   nf_msg_t **reply, char *err, size_t errlen)
{
    zframe_t *frame = s_exchange (self, service, body, len, err, errlen);
    if (!frame)
        return NF_ERR_TIMEOUT;
    *reply = nf_msg_decode (zframe_data (frame), zframe_size (frame), self->max_frame, err, errlen);
    zframe_destroy (&frame);
    return *reply ? NF_OK : NF_ERR_PROTO;
}

int
nf_client_mmi (nf_client_t *self, const char *service)
{
    char err[256];
    zframe_t *frame = s_exchange (self, "mmi.service", service, strlen (service), err, sizeof err);
    if (!frame)
        return -1;
    int code = zframe_size (frame) == 3 ? atoi ((char *) zframe_data (frame)) : -1;
    zframe_destroy (&frame);
    return code;
}

json_t *
nf_event_decode (zmsg_t *msg, size_t max, char **topic)
{
    *topic = msg ? zmsg_popstr (msg) : NULL;
    zframe_t *body = msg ? zmsg_pop (msg) : NULL;
    char err[128];
    nf_msg_t *dec = *topic && body ? nf_msg_decode (zframe_data (body), zframe_size (body), max,
                                                    err, sizeof err)
                                   : NULL;
    nf_buf_t b;
    nf_buf_init (&b);
    json_t *ev = NULL;
    if (dec && nf_mp_to_json (nf_msg_root (dec), &b, err, sizeof err) == 0)
        ev = json_loadb (b.data, b.len, 0, NULL);
    if (ev && !json_is_object (ev)) {
        json_decref (ev);
        ev = NULL;
    }
    nf_buf_free (&b);
    nf_msg_destroy (&dec);
    zframe_destroy (&body);
    return ev;
}

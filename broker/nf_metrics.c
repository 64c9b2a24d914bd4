/*  nf_metrics: see nf_metrics.h. */
#include "nf_metrics.h"
#include "nf_log.h"
#include "nf_util.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Connections one address may hold: a slow-loris peer cannot take all 64. */
#define METRICS_PER_IP 8

struct nf_metrics_t {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    char *text; /* what GET /metrics answers */
    size_t len;
    int port;
};

static const double s_bounds[NF_HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05,   0.1,   0.25,   0.5,   1,    2.5};

/* libmicrohttpd's own messages are about a peer: one that closed mid-request,
   sent a malformed one, or went silent. One debug line each, in nf_log's
   format, so a hostile peer cannot fill the broker's log at the usual level. */
static void s_mhd_log (void *cls, const char *fmt, va_list ap)
    __attribute__ ((format (printf, 2, 0)));

static void
s_mhd_log (void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    if (!nf_log_enabled (NF_LOG_DEBUG))
        return;
    char line[512];
    vsnprintf (line, sizeof line, fmt, ap);
    size_t n = strlen (line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    nf_debug ("metrics http: %s", line);
}

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload, size_t *upload_size, void **state)
{
    nf_metrics_t *self = cls;
    int code = MHD_HTTP_OK;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    char *body = NULL;
    size_t len = 0;
    if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0) {
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        body = strdup ("only GET\n");
    }
    else if (strcmp (url, "/metrics") != 0) {
        code = MHD_HTTP_NOT_FOUND;
        body = strdup ("not found: the metrics are at /metrics\n");
    }
    else {
        pthread_mutex_lock (&self->lock);
        body = malloc (self->len + 1);
        memcpy (body, self->text ? self->text : "", self->len);
        body[self->len] = 0;
        len = self->len;
        pthread_mutex_unlock (&self->lock);
    }
    if (code != MHD_HTTP_OK)
        len = strlen (body);
    struct MHD_Response *r = MHD_create_response_from_buffer (len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response (conn, code, r);
    MHD_destroy_response (r);
    return rc;
}

nf_metrics_t *
nf_metrics_new (const char *bind, char *err, size_t errlen)
{
    struct sockaddr_in addr;
    char why[160];
    if (nf_inet_parse (bind, &addr, why, sizeof why) != NF_OK) {
        snprintf (err, errlen, "metrics bind %s", why);
        return NULL;
    }
    nf_metrics_t *self = calloc (1, sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    self->daemon = MHD_start_daemon (
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, s_answer, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *) &addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned) 64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned) METRICS_PER_IP, MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (err, errlen, "metrics: cannot listen on %s", bind);
        pthread_mutex_destroy (&self->lock);
        free (self);
        return NULL;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : ntohs (addr.sin_port);
    return self;
}

void
nf_metrics_destroy (nf_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_metrics_t *self = *self_p;
    MHD_stop_daemon (self->daemon);
    pthread_mutex_destroy (&self->lock);
    free (self->text);
    free (self);
    *self_p = NULL;
}

int
nf_metrics_port (const nf_metrics_t *self)
{
    return self->port;
}

void
nf_metrics_set (nf_metrics_t *self, const char *text, size_t len)
{
    char *copy = malloc (len + 1);
    memcpy (copy, text, len);
    copy[len] = 0;
    pthread_mutex_lock (&self->lock);
    char *old = self->text;
    self->text = copy;
    self->len = len;
    pthread_mutex_unlock (&self->lock);
    free (old);
}

void
nf_hist_add (nf_hist_t *h, double seconds)
{
    for (int i = 0; i < NF_HIST_BUCKETS; i++)
        if (seconds <= s_bounds[i])
            h->counts[i]++;
    h->n++;
    h->sum += seconds;
}

void
nf_hist_render (const nf_hist_t *h, nf_buf_t *out, const char *name, const char *labels)
{
    const char *sep = *labels ? "," : "";
    for (int i = 0; i < NF_HIST_BUCKETS; i++)
        nf_buf_printf (out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, s_bounds[i],
                       (unsigned long long) h->counts[i]);
    nf_buf_printf (out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                   (unsigned long long) h->n);
    if (*labels)
        nf_buf_printf (out, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, h->sum, name,
                       labels, (unsigned long long) h->n);
    else
        nf_buf_printf (out, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
                       (unsigned long long) h->n);
}

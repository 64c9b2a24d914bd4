/*  nf_metrics: the broker's Prometheus endpoint. libmicrohttpd serves
    GET /metrics from its own thread; the broker's loop renders the text
    (text exposition format 0.0.4) and hands it over with nf_metrics_set,
    so the HTTP thread never touches broker state. Also a histogram of
    latencies in seconds for the claim and commit figures. */
#ifndef NF_METRICS_H
#define NF_METRICS_H

#include "nf_util.h"

#include <stddef.h>
#include <stdint.h>

typedef struct nf_metrics_t nf_metrics_t;

/* Serve on BIND ("ADDRESS:PORT"). NULL with ERR when it cannot listen. */
nf_metrics_t *nf_metrics_new (const char *bind, char *err, size_t errlen);
void nf_metrics_destroy (nf_metrics_t **self_p);
/* The port it listens on (useful with port 0). */
int nf_metrics_port (const nf_metrics_t *self);
/* Replace the text served (copied). */
void nf_metrics_set (nf_metrics_t *self, const char *text, size_t len);

#define NF_HIST_BUCKETS 12
typedef struct {
    uint64_t counts[NF_HIST_BUCKETS]; /* observations <= each bound */
    uint64_t n;                       /* all observations */
    double sum;                       /* their total, seconds */
} nf_hist_t;

void nf_hist_add (nf_hist_t *h, double seconds);
/* Append NAME_bucket/_sum/_count lines; LABELS is "" or `service="x"`. */
void nf_hist_render (const nf_hist_t *h, nf_buf_t *out, const char *name, const char *labels);

#endif

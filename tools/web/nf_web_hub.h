/*  nf_web_hub: nf-web's side towards the broker. Two things, both shared by
    every HTTP connection thread:

    * a pool of MDP clients (nf_client, one socket each; a connection thread
      borrows one for a request and gives it back), so a page that asks
      for five things at once never waits on another page's request;
    * the subscriber thread: one SUB socket on the broker's PUB, every
      job's events and the stats of each second. It counts each job's
      events (a connection waiting for job N's next change sleeps on a
      condition variable until job N's count moves), keeps the last two
      stats (for rates) and the error feed (nf_feed, as nf-monitor shows
      it).

    Events only say "look again": the pages' data always comes from the
    client services (nf.status, nf.list), so a lost event (PUB is lossy)
    or a broker restart never leaves a page wrong. */
#ifndef NF_WEB_HUB_H
#define NF_WEB_HUB_H

#include "nf_client.h"
#include "nf_curve.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct nf_web_hub_t nf_web_hub_t;

/* Connect to the broker's client endpoint CLIENTS and PUB endpoint PUB
   (CURVE borrowed, may be NULL; it must outlive the hub) and start the
   subscriber thread. NULL when a socket or the thread cannot be made. */
nf_web_hub_t *nf_web_hub_new (const char *clients, const char *pub, int64_t timeout_ms,
                              size_t max_frame, const nf_curve_t *curve);
/* Stop the thread (within 200 ms) and close every socket. */
void nf_web_hub_destroy (nf_web_hub_t **self_p);

/* Ask SERVICE with REQUEST (a JSON object, borrowed; "v" is added) and wait
   for the answer. NF_OK with *REPLY the decoded body (the caller's);
   NF_ERR_TIMEOUT or NF_ERR_PROTO with ERR when the broker did not answer
   or answered nonsense. Thread-safe. */
nf_err_t nf_web_hub_call (nf_web_hub_t *self, const char *service, const json_t *request,
                          nf_msg_t **reply, char *err, size_t errlen);

/* How many events job JOB (0: any job) has had; changes only. */
uint64_t nf_web_hub_seq (nf_web_hub_t *self, int64_t job);
/* Wait until nf_web_hub_seq (JOB) differs from SEEN, or MS have passed;
   the count then. */
uint64_t nf_web_hub_wait (nf_web_hub_t *self, int64_t job, uint64_t seen, int ms);

/* The operations figures (new reference): {stats, stats_age_ms, rates
   {service: replies per second}, failures, retries, classes [{class,
   count}]}; stats null until the broker's first arrives. */
json_t *nf_web_hub_ops (nf_web_hub_t *self);

#endif

/*  nf_client: a synchronous MDP/0.1 client of the broker (nf-submit,
    nf-monitor, tests). Each request waits up to the timeout; on a timeout
    the socket is rebuilt (zguide's Lazy Pirate) so a late reply can never be
    mistaken for the answer to the next request. */
#ifndef NF_CLIENT_H
#define NF_CLIENT_H

#include "nf_curve.h"
#include "nf_err.h"
#include "nf_proto.h"

typedef struct nf_client_t nf_client_t;

/* The DEALER every worker and client talks to the broker with: closes
   *SOCK_P and its CURVE watch *WATCH_P if open, then opens a new one to
   ENDPOINT with linger 0, a message limit of MAX_FRAME plus the envelope,
   and CURVE's client keys and handshake watch when CURVE is not NULL.
   NF_OK, NF_ERR_NOMEM or NF_ERR_INVALID (a bad endpoint; *SOCK_P may then
   be NULL). */
nf_err_t nf_dealer_open (zsock_t **sock_p, zsock_t **watch_p, const char *endpoint,
                         size_t max_frame, const nf_curve_t *curve);
/* Close *SOCK_P and its watch (either may be NULL). */
void nf_dealer_close (zsock_t **sock_p, zsock_t **watch_p);

/* A client of the broker's client endpoint; CURVE (borrowed, may be NULL)
   must outlive it. */
nf_client_t *nf_client_new (const char *endpoint, int64_t timeout_ms, size_t max_frame,
                            const nf_curve_t *curve);
void nf_client_destroy (nf_client_t **self_p);

/* Send BODY (LEN bytes) to SERVICE and wait for the reply. On success *REPLY
   is the decoded body (the caller's to destroy) and NF_OK is returned;
   NF_ERR_TIMEOUT with ERR when the broker did not answer in time (or CURVE
   refused us), NF_ERR_PROTO when the reply was malformed. */
nf_err_t nf_client_request (nf_client_t *self, const char *service, const void *body, size_t len,
                            nf_msg_t **reply, char *err, size_t errlen);
/* mmi.service: 200 when SERVICE has workers, 404 when not; -1 on timeout. */
int nf_client_mmi (nf_client_t *self, const char *service);

/* A message of the broker's PUB socket (topic, msgpack body): *TOPIC the
   topic (the caller's to free, or NULL) and the body as a JSON object (new
   reference), or NULL when it is not one (no body, over MAX bytes, not
   msgpack, not a map). Pops the frames it reads off MSG. */
json_t *nf_event_decode (zmsg_t *msg, size_t max, char **topic);

#endif

/*  nf_curve: CURVE security for every ZeroMQ socket (czmq zcert, RFC 26/27).

    Off unless NF_CURVE_CERT names a certificate. Then:
    - workers and clients (DEALER, SUB) use their own key pair and the
      broker's public key (NF_CURVE_BROKER_CERT);
    - the broker's three sockets are CURVE servers, and a ZAP handler in the
      broker admits only clients whose public key has a certificate in the
      folder NF_CURVE_ALLOW (re-read when the folder changes). Refusals are
      logged (once a minute per key) and counted.

    The ZAP handler is bound before any CURVE server socket exists: libzmq
    admits every CURVE client when no handler is bound, so the order is the
    security. It runs on the broker's own loop: ZAP requests come only at
    handshakes. Certificates are the files nf-keygen writes (zcert format:
    NAME.cert public, NAME.cert_secret both keys). */
#ifndef NF_CURVE_H
#define NF_CURVE_H

#include "nf_config.h"
#include "nf_err.h"

#include <czmq.h>

typedef struct nf_curve_t nf_curve_t;

/* The CURVE settings of a program of kind PROGRAM (NF_PROG_BROKER, _WORKER
   or _CLIENT) read from CONFIG. Returns NF_OK with *CURVE_P NULL when
   CURVE is off, NF_OK with a new object when it is on, NF_ERR_INVALID with
   ERR naming the setting or file that is wrong (incomplete settings, unreadable certificate, no
   secret key, no CURVE in libzmq, allow folder missing). */
nf_err_t nf_curve_new (nf_config_t *config, int program, nf_curve_t **curve_p, char *err,
                       size_t errlen);
void nf_curve_destroy (nf_curve_t **self_p);

/* Make SOCK a CURVE client of the broker. Does nothing when SELF is NULL. */
void nf_curve_client (const nf_curve_t *self, zsock_t *sock);
/* Make SOCK a CURVE server (broker). Does nothing when SELF is NULL. */
void nf_curve_server (const nf_curve_t *self, zsock_t *sock);

/* Watch the handshakes of client socket SOCK so a refusal can be told
   from a silent broker. Returns the watch (a PAIR socket receiving SOCK's
   handshake-failure events), or NULL when SELF is NULL. Stop it with
   nf_curve_unwatch before SOCK is destroyed. */
zsock_t *nf_curve_watch (const nf_curve_t *self, zsock_t *sock);
void nf_curve_unwatch (zsock_t *sock, zsock_t **watch_p);
/* Why the last handshake on WATCH failed, as a sentence, or NULL when none
   failed since the last call. Never blocks. */
const char *nf_curve_failure (zsock_t *watch);

/* This program's public key (Z85, 40 characters). */
const char *nf_curve_public (const nf_curve_t *self);

/* Broker: the ZAP handler's socket (poll it for input) and one request's
   handling. NULL / no-op for workers and clients. */
zsock_t *nf_curve_zap_socket (nf_curve_t *self);
void nf_curve_zap_handle (nf_curve_t *self);
/* Handshakes admitted and refused so far. */
uint64_t nf_curve_admitted (const nf_curve_t *self);
uint64_t nf_curve_refused (const nf_curve_t *self);

#endif

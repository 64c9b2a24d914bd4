/*  nf_curve: CURVE security for every ZeroMQ socket (czmq zcert, RFC 26/27).

    Off unless NF_CURVE_CERT names a certificate. Then:
    - workers and clients (DEALER, SUB) use their own key pair and the
      broker's public key (NF_CURVE_BROKER_CERT);
    - the broker's three sockets are CURVE servers, each in a ZAP domain of
      its own, and a ZAP handler in the broker admits a peer by ROLE: the
      folder NF_CURVE_ALLOW holds workers/, operators/ and viewers/, and a
      key's role is the folder its certificate is in. The worker socket
      admits workers; the client socket operators and viewers (the broker
      then refuses a viewer every service that changes something); the
      event socket operators and viewers. The folders are re-read when
      they change. Refusals are logged (once a minute per key) and
      counted.

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

/* The roles, and the broker sockets (ZAP domains) they may use. */
typedef enum { NF_ROLE_NONE = 0, NF_ROLE_WORKER, NF_ROLE_OPERATOR, NF_ROLE_VIEWER } nf_role_t;
typedef enum { NF_SOCKET_WORKERS, NF_SOCKET_CLIENTS, NF_SOCKET_EVENTS } nf_socket_kind_t;

/* The role a ZAP handler of ours gave a peer, from the User-Id of one of
   its message's frames ("operator:NAME"); NF_ROLE_NONE when there is none
   (CURVE off). */
nf_role_t nf_curve_role (const char *user_id);
const char *nf_role_name (nf_role_t role);

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
/* Make SOCK, the broker's socket of KIND, a CURVE server in that kind's
   ZAP domain. Does nothing when SELF is NULL. */
void nf_curve_server (const nf_curve_t *self, zsock_t *sock, nf_socket_kind_t kind);

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

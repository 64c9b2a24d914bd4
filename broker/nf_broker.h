/*  nf_broker: the Majordomo broker that owns the pipeline state.

    Three sockets: a ROUTER for workers (MDP/0.1 worker protocol, with
    heartbeats and ZMQ_ROUTER_MANDATORY), a ROUTER for clients (MDP/0.1
    client protocol: nf.submit, nf.status, nf.list, nf.cancel, nf.retry,
    nf.export and mmi.service), and a PUB for progress events. Work is
    claimed from PostgreSQL in batches when the workers of that stage run
    low, so the broker holds in memory nothing but work in flight and a
    few tasks ahead per worker; replies are applied in batched, fenced
    transactions (nf_store), on a thread of their own so that dispatch
    never waits for the database. */
#ifndef NF_BROKER_H
#define NF_BROKER_H

#include "nf_config.h"

typedef struct nf_broker_t nf_broker_t;

/* A broker configured by CONFIG (borrowed). Binds its sockets, connects to
   the database and applies the schema migrations. NULL on failure (logged). */
nf_broker_t *nf_broker_new (nf_config_t *config);
void nf_broker_destroy (nf_broker_t **self_p);
/* Serve until SIGTERM/SIGINT, then drain. Returns 0 after a clean drain. */
int nf_broker_run (nf_broker_t *self);

#endif

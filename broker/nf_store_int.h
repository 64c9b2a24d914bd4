/*  nf_store_int: what the files of the store share, and nobody else.

    The store is one object per database connection, and each connection
    belongs to one thread (see broker/README.md):

        nf_store.c      construction, events and claims held until commit,
                        job status moves (either thread)
        nf_cycle.c      apply replies and claim work: the cycle thread's
                        store, on the cycle connection
        nf_sched.c      the scheduler tick, sweeps, admission, lease
                        releases: the office thread's store
        nf_services.c   the client services: the office thread's store
        nf_sql.c        the generated statement texts (pure)

    Nothing here locks: a store is only ever used by the thread that owns
    its connection. */
#ifndef NF_STORE_INT_H
#define NF_STORE_INT_H

#include "nf_err.h"
#include "nf_sql.h"
#include "nf_store.h"

#define NF_STORE_MAX_STAGES 16

struct nf_store_t {
    nf_db_t *db;                       /* borrowed; this thread's connection */
    nf_store_opts_t opts;              /* copy (owner duplicated) */
    char *owner;                       /* lease owner */
    nf_sql_t sql[NF_STORE_MAX_STAGES]; /* per stage, in table order */
    size_t nstages;                    /* rows used in sql */
    nf_event_fn *on_event;             /* progress sink */
    void *event_arg;                   /* its argument */
    zlistx_t *events;                  /* events of the open transaction */
    zlistx_t *claims;                  /* nf_pending_t of the open transaction */
    nf_store_stats_t stats;            /* counters */
    char lease_ms[24];                 /* lease length as a parameter */
    char max_attempts[24];             /* max attempts as a parameter */
};

/* A claim held until its transaction commits, and whose it is. */
typedef struct {
    nf_claim_t claim;
    nf_want_t *want;
} nf_pending_t;

/* The statements of STAGE, or NULL. */
nf_sql_t *nf_store_sql (nf_store_t *self, const nf_stage_t *stage);

/* Hold an event until the transaction ends; nf_store_events_flush
   publishes them (COMMITTED) or drops them. */
void nf_store_event (nf_store_t *self, int64_t job_id, const char *video_id, const char *from,
                     const char *to, const char *service, const char *reason);
void nf_store_events_flush (nf_store_t *self, bool committed);

/* Move job JOB_ID to status TO if its current status may move there (the
   job status table of nf_states.c), with an event. 1 moved, 0 not,
   NF_ERR_DB. */
int nf_store_job_status (nf_store_t *self, int64_t job_id, const char *to, const char *reason);

#endif

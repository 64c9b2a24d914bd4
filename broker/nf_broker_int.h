/*  nf_broker_int: what the broker's files share, and nobody else: its
    settings, the services, workers and claimed tasks it tracks, the cycle
    it hands to the cycle thread, and the broker itself. The files:

        nf_broker.c   sockets and dispatch: the main loop, workers (MDP/0.1
                      worker side), clients, heartbeats, leases in flight
        nf_cycler.c   the cycle: which stages to claim for, the hand-off to
                      the cycle thread, and that thread (s_cycler_actor
                      runs there; everything else here on the main thread)
        nf_office.c   the office thread: client services, the scheduler
                      tick and the queue depth on the main connection, and
                      the hand-off of errands to it and back
        nf_report.c   what the broker says about itself: the stats events
                      on the PUB socket and the Prometheus text (main thread)

    Everything in nf_broker_t is the main thread's, except cycle_db,
    cycle_store and cycle_events, which only the cycle thread touches
    while it runs, and db, store, office_events and id_lock_generation,
    which only the office thread touches once it runs; a cycle in flight
    (cycling) or an errand belongs to the thread that holds it until it
    comes back through the actor's pipe. */
#ifndef NF_BROKER_INT_H
#define NF_BROKER_INT_H

#include "nf_broker.h"
#include "nf_curve.h"
#include "nf_metrics.h"
#include "nf_store.h"

#include <czmq.h>

#define IDLE_CLAIM_MS     100   /* pause between claims that found nothing */
#define TICK_MS           250   /* scheduler tick */
#define TICK_SOON_MS      20    /* shortest gap between ticks brought forward by a request */
#define STATS_MS          1000  /* global stats publication */
#define DRAIN_MS          30000 /* longest wait for work in flight at shutdown */
#define WAITING_MS        5000  /* database queue depth for the metrics */
#define PRUNE_MS          10000 /* retention: look for a job past NF_RETAIN_DAYS */
#define PRUNE_BUDGET_MS   100   /* retention: the longest turn before the office serves again */
#define BURST             1000  /* messages read per socket per loop turn */
#define RECENT            1024  /* tokens of the last replies received, to spot resends */
#define PREFETCH          64    /* most tasks claimed ahead per worker of a per-video stage */
#define PREFETCH_MS       50.0  /* work claimed ahead per worker, in its tasks' average time */
#define SUBSCRIBE_MAX     1024  /* bytes of one subscription message to the PUB socket */
#define PEER_HWM          1000  /* messages queued for one peer before a send to it fails */
#define RENEW_SHARE       2 /* a live task's lease is renewed when less than 1/RENEW_SHARE is left */
#define OFFICE_MAX        256 /* client requests handed to the office thread and not yet answered */
#define OFFICE_PER_CLIENT 16  /* of them from one client (one routing id) */
#define NF_OFFICE_STAGES  32  /* stages the queue-depth errand counts */

typedef struct nf_peer_t nf_peer_t;

typedef struct {
    char *name;              /* service name */
    const nf_stage_t *stage; /* its stage */
    zlistx_t *idle;          /* idle workers (nf_peer_t *) */
    zlistx_t *queue;         /* claimed, undelivered tasks (nf_claimed_t *) */
    size_t workers;          /* workers registered */
    int64_t next_claim_ms;   /* no claim before this time */
    uint64_t dispatched;     /* tasks sent */
    uint64_t replies;        /* replies received */
    uint64_t completed;      /* transitions committed (events) */
    uint64_t failed;         /* videos moved to FAILED */
    uint64_t retried;        /* retries scheduled */
    uint64_t rejected;       /* videos moved to REJECTED */
    uint64_t lease_expired;  /* dispatched tasks whose lease ran out before a reply */
    int64_t waiting;         /* claimable in the database (metrics only) */
    size_t in_flight;        /* dispatched, no reply yet (metrics only) */
    nf_hist_t claim_hist;    /* claim statement latency */
    double task_ms;          /* moving average, dispatch to reply; 0 until known */
    int64_t timeout_ms;      /* its tasks' deadline (NF_TASK_TIMEOUTS) */
} nf_service_t;

typedef struct {
    nf_claim_t claim;      /* token, stage, job, video, attempt, body */
    nf_service_t *service; /* its service */
    nf_peer_t *worker;     /* holding it, or NULL while queued */
    int64_t claimed_ms;    /* when it was claimed (its lease started) */
    int64_t sent_ms;       /* when it was dispatched */
    int64_t lease_end_ms;  /* when its lease runs out (renewed while its holder lives) */
    int64_t deadline_ms;   /* when it must be done (dispatch + the stage's task timeout) */
    bool renewing;         /* a renewal of its lease is on its way */
    bool expired;          /* counted as a lease expiry */
} nf_claimed_t;

struct nf_peer_t {
    char *id;              /* hex routing id */
    zframe_t *identity;    /* routing id frame */
    nf_service_t *service; /* what it serves */
    int64_t expiry;        /* declared dead after this */
    nf_claimed_t *task;    /* in hand, or NULL */
    void *idle_handle;     /* its place in service->idle, or NULL */
};

#define MAX_WANTS 32 /* stages claimed for in one cycle */

typedef struct nf_cycle_t nf_cycle_t;

/* Where a claimed task goes: the cycle and the service it was claimed for. */
typedef struct {
    nf_cycle_t *cycle;
    nf_service_t *service;
} nf_slot_t;

/* One cycle, handed to the cycle thread and back. While it is in flight
   the thread owns its outcomes and releases; the main thread touches
   nothing of it. */
struct nf_cycle_t {
    nf_outcome_t **list; /* replies to apply (owned) */
    size_t n;
    nf_release_t *releases; /* leases to release (owned) */
    size_t r;
    nf_want_t wants[MAX_WANTS]; /* claims; wants[i].arg is &slots[i] */
    nf_slot_t slots[MAX_WANTS];
    size_t nw;
    char *held;               /* after a reconnect: text[] of every lease this broker holds;
                               the thread releases the others first (owned) */
    bool reconciled;          /* out: HELD was applied */
    unsigned held_generation; /* out: the connection's generation when it was */
    int64_t oldest_ms;        /* arrival of the oldest reply */
    int64_t started_ms;       /* when it was handed over (renewed leases run from then) */
    int rc;                   /* out: nf_store_cycle's */
    zlistx_t *claims;         /* out: nf_claimed_t *, committed */
    zlistx_t *events;         /* out: nf_event_t * (owned strings), committed */
    nf_store_stats_t stats;   /* out: the cycle store's counters after it */
    unsigned generation;      /* out: the cycle connection's generation after it */
    int64_t us;               /* out: how long it took */
};

/* An errand of the office thread (nf_office.c). */
typedef enum {
    NF_ERRAND_SERVICE, /* a client's request: main -> office -> main */
    NF_ERRAND_TICK,    /* the office ran the scheduler tick */
    NF_ERRAND_WAITING, /* the office counted the queue depth */
    NF_ERRAND_PRUNE,   /* the office pruned past the retention */
    NF_ERRAND_STOPPED  /* the office took STOP: nothing more comes */
} nf_errand_kind_t;

typedef struct {
    nf_errand_kind_t kind;
    zframe_t *identity;                /* SERVICE: the client's routing id */
    char *service;                     /* SERVICE: its name */
    zframe_t *body;                    /* SERVICE: the request as received */
    nf_buf_t reply;                    /* SERVICE out: the reply body, or an error text */
    bool failed;                       /* SERVICE out: REPLY is an error text */
    bool soon;                         /* TICK: brought forward by a request: claim at once */
    int64_t waiting[NF_OFFICE_STAGES]; /* WAITING out: due tasks by stage index */
    bool waiting_ok;                   /* WAITING out: the count succeeded */
    nf_prune_stats_t pruned;           /* PRUNE out: what went */
    zlistx_t *events;                  /* out: nf_event_t * to publish (committed) */
    bool db_up;                        /* out: the office connection's state */
    bool stop;                         /* out: another broker took this id: stop */
} nf_errand_t;

struct nf_broker_t {
    nf_config_t *config;     /* borrowed */
    nf_db_t *db;             /* database handle */
    nf_store_t *store;       /* pipeline SQL */
    zsock_t *workers;        /* ROUTER for workers */
    zsock_t *clients;        /* ROUTER for clients */
    zsock_t *pub;            /* progress events */
    nf_curve_t *curve;       /* CURVE keys and ZAP handler, or NULL */
    zhashx_t *services;      /* name -> nf_service_t */
    zlistx_t *service_list;  /* the same, borrowed: a walk with a cursor of its own */
    zhashx_t *peers;         /* hex id -> nf_peer_t */
    zhashx_t *inflight;      /* token -> nf_claimed_t (dispatched) */
    zhashx_t *recent;        /* token -> "" of the last RECENT replies received */
    char (*recent_ring)[40]; /* the same tokens, oldest evicted first */
    size_t recent_next;      /* next slot of the ring */
    zlistx_t *outcomes;      /* nf_outcome_t * waiting for the next flush */
    nf_release_t *releases;  /* leases to release at the next flush */
    size_t nreleases, capreleases;
    int64_t oldest_ms;    /* arrival of the oldest waiting outcome */
    int64_t heartbeat_ms; /* heartbeat interval */
    int64_t expiry_ms;    /* liveness x heartbeat */
    int64_t flush_ms;     /* flush deadline */
    int claim_batch;      /* most tasks per claim */
    size_t max_frame;     /* body limit */
    int64_t heartbeat_at, stats_at;
    uint64_t dropped;             /* malformed messages dropped */
    uint64_t client_drops;        /* client replies a peer that stopped reading never got */
    uint64_t worker_drops;        /* workers forgotten because they stopped reading */
    int send_errno;               /* zmq_errno of the last failed send to a worker */
    uint64_t late_fenced;         /* replies whose lease this broker had already released */
    uint64_t dead_workers;        /* workers declared dead */
    nf_metrics_t *metrics;        /* Prometheus endpoint, or NULL */
    nf_hist_t commit_hist;        /* nf_store_cycle latency */
    int64_t lease_ms;             /* lease length, for expiry counting */
    int64_t started_ms;           /* process start, for uptime */
    unsigned db_generation;       /* cycle_generation when leases were last reconciled */
    unsigned id_lock_generation;  /* the main connection's generation when it took the id lock */
    zactor_t *office;             /* the office thread (it owns db and store once it runs) */
    zlistx_t *office_events;      /* the office thread's: the events of its errand in hand */
    size_t errands;               /* client requests at the office, not yet answered */
    zhashx_t *office_clients;     /* hex routing id -> its requests at the office (as a pointer) */
    bool office_db_up;            /* the main connection's state, from the office's last word */
    bool office_stopped;          /* the office took STOP */
    nf_prune_stats_t pruned;      /* what retention pruned, from the office's errands */
    bool prune_more;              /* the office thread's: its last prune left work */
    char *owner;                  /* NF_BROKER_ID (or the host name): the lease owner */
    nf_db_t *cycle_db;            /* the cycle thread's connection */
    nf_store_t *cycle_store;      /* and its store: only that thread uses them */
    zactor_t *cycler;             /* the cycle thread */
    nf_cycle_t *cycling;          /* the cycle in flight, or NULL */
    int64_t cycle_retry_ms;       /* no cycle before this after a failed one */
    nf_store_stats_t cycle_stats; /* the cycle store's counters after the last cycle */
    unsigned cycle_generation;    /* the cycle connection's generation after it */
    zlistx_t *cycle_events;       /* the cycle thread's: the events of the cycle it runs */
};

/* nf_broker.c */
void nf_claimed_destroy (nf_claimed_t **task_p);
/* Queue the release of lease TOKEN, held on JOB_ID's VIDEO_ID (NULL: the
   job's own task), for the next cycle (UNDELIVERED: the attempt is given
   back). The row is found by its key, the token fences it. */
void nf_broker_add_release (nf_broker_t *self, const char *token, int64_t job_id,
                            const char *video_id, bool undelivered);
/* Queue the renewal of lease TOKEN on JOB_ID's VIDEO_ID for the next cycle. */
void nf_broker_add_renewal (nf_broker_t *self, const char *token, int64_t job_id,
                            const char *video_id);
/* Publish a progress event (ARG is the broker). */
void nf_broker_publish_event (const nf_event_t *ev, void *arg);

/* nf_cycler.c */
/* The cycle thread (zactor; ARGS is the broker). */
void nf_cycler_actor (zsock_t *pipe, void *args);
/* The event sink of the cycle's and the office's stores: ARG points to
   the zlistx_t * of nf_event_t * that receives a copy (NULL: dropped). */
void nf_event_collect (const nf_event_t *ev, void *arg);
/* zlistx destructor of those copies. */
void nf_event_destroy (void **item);
/* Start a cycle if one is due and none is in flight (see nf_cycler.c). */
void nf_cycle_start (nf_broker_t *self, bool flush, bool claim);
/* A cycle came back from the thread. */
void nf_cycle_done (nf_broker_t *self, nf_cycle_t *c);
/* Wait for the cycle in flight, if any. */
void nf_cycle_wait (nf_broker_t *self);

/* nf_office.c */
/* The office thread (zactor; ARGS is the broker). */
void nf_office_actor (zsock_t *pipe, void *args);
/* Take the broker id's advisory lock on the main connection (start-up,
   then the office thread after a reconnect). NF_OK, NF_ERR_INVALID
   (another broker holds it; logged) or NF_ERR_DB. */
nf_err_t nf_office_lock_id (nf_broker_t *self);
/* Hand the request BODY (taken; left when refused) of IDENTITY for SERVICE
   to the office. false when OFFICE_MAX are at the office already, or
   OFFICE_PER_CLIENT of this client (or it
   stopped): the caller answers "busy". */
bool nf_office_request (nf_broker_t *self, zframe_t *identity, const char *service,
                        zframe_t **body);
/* An errand came back from the office. */
void nf_office_done (nf_broker_t *self, nf_errand_t *e);
/* SIGTERM: the office runs no more ticks (it still serves clients). */
void nf_office_drain (nf_broker_t *self);
/* Before the broker goes: take back every errand at the office. */
void nf_office_stop (nf_broker_t *self);

/* nf_broker.c, for the office's replies */
void nf_broker_client_reply (nf_broker_t *self, zframe_t *identity, const char *service,
                             const void *body, size_t len);
void nf_broker_client_error (nf_broker_t *self, zframe_t *identity, const char *service,
                             const char *text);

/* nf_report.c */
void nf_broker_publish_stats (nf_broker_t *self);
void nf_broker_render_metrics (nf_broker_t *self, int64_t now);

#endif

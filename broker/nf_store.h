/*  nf_store: the broker's view of PostgreSQL. All pipeline SQL lives in
    the store's files (one per role and thread: nf_store_int.h lists them),
    the stage statements generated once from the stage table
    (shared/nf_states.c) by nf_sql.c:

    * the cycle (nf_cycle.c, cycle thread), ONE transaction per cycle:
      - apply: a batch of worker outcomes, one statement per (stage,
        outcome kind), each fenced by compare-and-set on the lease token of
        an unexpired lease, with a history row per applied transition;
      - claims: a batch of due work per stage that needs it, FOR UPDATE SKIP
        LOCKED, stamped with a lease (token, owner, expiry) and an attempt;
        returned as encoded task bodies;
    * the scheduler tick and the lease releases (nf_sched.c, office thread):
      admissions by priority, attempts exhausted, barrier failures (too few
      READY), cancellations;
    * the client services (nf_services.c, office thread) nf.submit,
      nf.status, nf.list, nf.cancel, nf.retry, nf.resume, nf.export.

    A store belongs to one connection and so to one thread; the broker has
    two (the office's and the cycle's). Nothing here blocks on anything but the database; a transient
    database failure returns NF_ERR_DB (nf_err.h) and leaves the caller's
    input untouched for a retry. */
#ifndef NF_STORE_H
#define NF_STORE_H

#include "nf_db.h"
#include "nf_err.h"
#include "nf_proto.h"
#include "nf_states.h"

#include <czmq.h>

typedef struct nf_store_t nf_store_t;

typedef struct {
    const char *owner;            /* lease owner name (the broker id) */
    int64_t lease_ms;             /* lease length */
    int64_t max_attempts;         /* attempts per stage */
    int64_t retry_base_ms;        /* first retry delay */
    int64_t retry_max_ms;         /* retry delay cap */
    int64_t min_ready;            /* READY videos needed to export */
    int64_t max_active_jobs;      /* admission limit */
    const char *sources;          /* space list of the sources nf.submit accepts */
    int64_t search_calls_per_day; /* Data API search.list calls a day (0: unchecked) */
    int64_t units_per_day;        /* Data API units a day for the list calls (0: unchecked) */
    size_t max_frame;             /* largest task body to build */
    int64_t retain_days;          /* NF_RETAIN_DAYS (0: no pruning) */
} nf_store_opts_t;

/* A claimed task (ownership of video_id and body passes to the callback). */
typedef struct {
    const nf_stage_t *stage; /* stage it belongs to */
    char token[40];          /* lease token */
    int64_t job_id;          /* job */
    char *video_id;          /* NULL for job-scope tasks */
    int attempt;             /* 1-based */
    zframe_t *body;          /* encoded task */
} nf_claim_t;

/* A worker's outcome waiting to be applied. */
typedef struct {
    const nf_stage_t *stage;      /* from the broker's in-flight record */
    char token[40];               /* lease token */
    int64_t job_id;               /* job */
    char *video_id;               /* NULL for job scope; owned */
    int attempt;                  /* attempt that produced it */
    nf_reply_status_t status;     /* ok, reject, error */
    char *text;                   /* reason or error, owned */
    bool retryable;               /* for errors */
    nf_msg_t *msg;                /* decoded reply body, owned (or NULL) */
    const msgpack_object *output; /* into msg */
    const msgpack_object *usage;  /* into msg */
    bool applied;                 /* out: the cycle applied it (not fenced): its usage counts */
} nf_outcome_t;

void nf_outcome_destroy (nf_outcome_t **self_p);

/* A progress event: a video transition (video_id set) or a job status change. */
typedef struct {
    int64_t job_id;
    const char *video_id; /* NULL for job events */
    const char *from;     /* state or status */
    const char *to;
    const char *service; /* stage, or what moved a job */
    const char *reason;  /* may be NULL */
} nf_event_t;
typedef void (nf_event_fn) (const nf_event_t *event, void *arg);

nf_store_t *nf_store_new (nf_db_t *db, const nf_store_opts_t *opts, nf_event_fn *on_event,
                          void *event_arg);
void nf_store_destroy (nf_store_t **self_p);

/* Release every lease this owner holds (a restarted broker's start-up) and
   give back the attempt each claim counted: the broker's end, not the
   task, stopped them, and with prefetched claims most were never
   delivered. A task that kills its worker is still counted, by a running
   broker. */
nf_err_t nf_store_release_owned (nf_store_t *self);

/* After a reconnect: release this owner's leases except HELD (a text[]
   literal of the tokens the broker still has in memory). A claim whose
   commit succeeded but whose answer was lost with the connection leaves a
   lease nobody holds; its attempt is given back. NF_OK or NF_ERR_DB. */
nf_err_t nf_store_release_orphans (nf_store_t *self, const char *held);

typedef void (nf_claim_fn) (nf_claim_t *claim, void *arg);

/* What to do with a lease before a cycle's replies: release it (a worker
   died, "worker lost while holding the task" kept as the last error; or
   the task was never delivered, UNDELIVERED: the attempt is given back),
   or, RENEW, extend it by the lease length (its holder is alive and the
   task within its deadline). Renewals go in one statement; a lease already
   expired is not renewed (its task may be someone else's now). */
typedef struct {
    char token[40];
    int64_t job_id;
    char *video_id; /* NULL for job scope; owned (nf_releases_free) */
    bool undelivered;
    bool renew;
} nf_release_t;

/* Free the video ids of R releases, then the array. */
void nf_releases_free (nf_release_t *releases, size_t r);

/* A claim of one cycle: up to WANT due tasks of STAGE. */
typedef struct {
    const nf_stage_t *stage; /* stage to claim for */
    int want;                /* most tasks */
    void *arg;               /* passed to the claim callback with each task */
    int got;                 /* out: tasks claimed; -1 when the claim failed */
    int64_t us;              /* out: microseconds its statements took */
} nf_want_t;

/* The broker's database work of one loop turn, in ONE transaction (one
   commit, one WAL flush): release R leases, apply N outcomes, then claim
   what each of the NW WANTS asks, in order. A claim sees the transitions
   applied before it, so a video that just reached a stage's input state
   can be claimed by that stage in the same commit. After the commit, FN is
   called for each claimed task (ownership of its video_id and body passes
   to FN) and the events are published.
   Returns NF_OK on commit (the outcomes were consumed or, when fenced, dropped:
   the caller frees them); NF_ERR_DB on a transient failure (nothing applied,
   nothing claimed; try again later). A reply the database refuses for its
   data is isolated and stored as a permanent error of its task, so no
   batch can poison the broker; the claims then run in a transaction of
   their own. */
nf_err_t nf_store_cycle (nf_store_t *self, nf_outcome_t **outcomes, size_t n,
                         const nf_release_t *releases, size_t r, nf_want_t *wants, size_t nw,
                         nf_claim_fn *fn);

/* Scheduler work: admissions, exhausted attempts, barrier failures,
   cancellations. NF_OK or NF_ERR_DB. */
nf_err_t nf_store_tick (nf_store_t *self);

/* Retention (nf_sched.c): prune the oldest finished job past
   retain_days, in batches, for about BUDGET_MS: its transcripts and clean
   texts, its video history and its processing log (its videos' results and
   its exports stay); a job is marked pruned when it starts (nf.retry and
   nf.resume refuse it from then on) and done when nothing is left; then
   the log lines of no job past the retention. Every batch re-checks that
   the job is still finished. *MORE: work is left. NF_OK or NF_ERR_DB. */
typedef struct {
    uint64_t texts;   /* videos whose transcript and clean text were dropped */
    uint64_t history; /* nf_video_history rows deleted */
    uint64_t logs;    /* nf_processing_log rows deleted */
    uint64_t jobs;    /* jobs whose pruning finished */
} nf_prune_stats_t;
nf_err_t nf_store_prune (nf_store_t *self, int64_t budget_ms, nf_prune_stats_t *st, bool *more);

/* Client services: REQUEST is the decoded body; the msgpack reply is
   appended to REPLY. Returns NF_OK when a reply was produced (which may carry
   ok=false and errors), NF_ERR_DB when the database was unavailable. */
nf_err_t nf_store_service (nf_store_t *self, const char *service, const msgpack_object *request,
                           nf_buf_t *reply);
/* Whether SERVICE is a client service, and (*VIEWABLE) whether a viewer's
   key may use it (it reads only). Pure; any thread. */
bool nf_store_service_known (const char *service, bool *viewable);

/* Counters for logs and metrics. */
typedef struct {
    uint64_t claimed;      /* tasks claimed */
    uint64_t applied;      /* outcomes applied */
    uint64_t fenced;       /* outcomes dropped by the lease fence */
    uint64_t isolated;     /* outcomes refused by the database, stored as errors */
    uint64_t transactions; /* apply transactions committed */
    uint64_t renewed;      /* leases renewed */
    bool systemic;         /* the last cycle was refused for the database's state, not its data */
} nf_store_stats_t;
const nf_store_stats_t *nf_store_stats (nf_store_t *self);

/* Tasks claimable now (due, unleased, of an active job), per stage: FN is
   called with each stage's service and count. NF_OK or NF_ERR_DB. */
typedef void (nf_waiting_fn) (const char *service, int64_t n, void *arg);
nf_err_t nf_store_waiting (nf_store_t *self, nf_waiting_fn *fn, void *arg);

#endif

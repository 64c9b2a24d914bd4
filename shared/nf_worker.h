/*  nf_worker: the runtime every worker executable is a thin main() around.

    Speaks MDP/0.1 as a worker (READY, heartbeats, REPLY, DISCONNECT) to the
    broker at NF_BROKER. The stage function runs on an executor thread so the
    runtime keeps heartbeating while a long task (an LLM call, a slow page)
    is in hand. When the broker goes silent for liveness x heartbeat the
    runtime reconnects with capped exponential backoff (zguide's Paranoid
    Pirate). SIGTERM/SIGINT: finish the task in hand, reply, DISCONNECT, exit.

    A stage function never touches the database: it reads the task and fills
    the result: OK with an output map, REJECT with a reason, or ERROR with a
    message and whether a later attempt may succeed.

    Fault injection (the reliability suite's poison task): with NF_CRASH_ON
    set in its environment, a worker abort()s on every task whose body holds
    those bytes, before the stage runs. Never set it in production. */
#ifndef NF_WORKER_H
#define NF_WORKER_H

#include "nf_config.h"
#include "nf_proto.h"

typedef struct {
    nf_reply_status_t status; /* outcome; NF_REPLY_OK unless set */
    char message[1024];       /* reject reason or error text */
    bool retryable;           /* for NF_REPLY_ERROR */
    nf_buf_t output;          /* msgpack bytes of one map, or empty */
    nf_buf_t usage;           /* msgpack bytes of one map, or empty */
} nf_result_t;

/* Computes TASK into RESULT. Runs on the executor thread; ARG is the
   caller's, shared by every call (one task at a time per worker). */
typedef void (nf_stage_fn) (const nf_task_t *task, nf_result_t *result, void *arg);

typedef struct nf_worker_t nf_worker_t;

/* A worker for SERVICE using CONFIG (borrowed; must outlive the worker). */
nf_worker_t *nf_worker_new (nf_config_t *config, const char *service, nf_stage_fn *fn, void *arg);
void nf_worker_destroy (nf_worker_t **self_p);
/* Serve until SIGTERM/SIGINT. Returns 0 after a clean drain. */
int nf_worker_run (nf_worker_t *self);

/* Result helpers. */
void nf_result_reject (nf_result_t *result, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
void nf_result_error (nf_result_t *result, bool retryable, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* A packer that appends to RESULT's output buffer. */
void nf_result_output_packer (nf_result_t *result, msgpack_packer *pk);
void nf_result_usage_packer (nf_result_t *result, msgpack_packer *pk);

/* Reads the stage's settings from CONFIG into ARG before the worker starts.
   Returns 0, or -1 after printing what is wrong (the program exits 2). */
typedef int (nf_stage_init_fn) (nf_config_t *config, void *arg);

/* The common main() of a worker executable: configuration, INIT (may be
   NULL), logging, run. Returns the process exit code: 0 after a clean
   drain, 1 on a runtime failure, 2 on bad settings. */
int nf_worker_main (int argc, char **argv, const char *program, const char *service,
                    nf_stage_init_fn *init, nf_stage_fn *fn, void *arg);

#endif

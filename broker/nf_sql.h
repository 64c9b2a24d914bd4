/*  nf_sql: the statements of one stage, generated from its row of the
    stage table (shared/nf_states.c) and the column catalog.

    Pure: no database, no I/O, no shared state; nf_store_new calls it once
    per stage at start-up, on whichever thread builds the store, and the
    texts are then read-only. Every value from outside travels as a
    parameter ($1...), never in the text: batches as one jsonb array.

    Which statements a stage has depends on its scope:

        video scope   CLAIM, OK, REJECT, ERROR, SWEEP
        job scope     CLAIM, ITEMS, INPUT (and the BARRIER literal)

    Each statement is prepared once per connection under NAME[kind]
    ("<service>_<kind>"); nf_db_exec prepares on first use. */
#ifndef NF_SQL_H
#define NF_SQL_H

#include "nf_states.h"

/* The statements of a stage, by kind. Never renumbered: the index is
   only a name. */
typedef enum {
    NF_SQL_CLAIM = 0,  /* claim a batch of due tasks, stamped with leases */
    NF_SQL_OK = 1,     /* video scope: apply a batch of successes */
    NF_SQL_REJECT = 2, /* video scope: apply a batch of rejects */
    NF_SQL_ERROR = 3,  /* video scope: apply a batch of errors (retry or FAILED) */
    NF_SQL_ITEMS = 4,  /* job scope: apply the reply's per-video items */
    NF_SQL_SWEEP = 5,  /* video scope: FAILED for exhausted attempts */
    NF_SQL_INPUT = 6,  /* job scope: the task input of one job */
    NF_SQL_KINDS = 7
} nf_sql_kind_t;

typedef struct {
    const nf_stage_t *stage;  /* its row */
    char *text[NF_SQL_KINDS]; /* statements; NULL where the scope has none */
    char *name[NF_SQL_KINDS]; /* prepared statement names */
    char barrier[256];        /* job scope: text[] literal of the states that hold it back */
    char holds[256];          /* job scope: text[] literal of its candidate set
                                 (nf_stage_holds); "" for a creating stage */
} nf_sql_t;

/* Fill Q with the statements of STAGE. 0, or -1 (out of memory; Q is
   then freed). */
int nf_sql_build (nf_sql_t *q, const nf_stage_t *stage);
void nf_sql_free (nf_sql_t *q);

/* Pieces the hand-written statements share with the generated ones. */
#define NF_SQL_LEASE_CLEAR "lease_token = NULL, lease_owner = NULL, lease_expires = NULL"

/* The per-video statements of a cycle read a few rows each by an index.
   With bitmap scans, hash and merge joins off, the planner keeps them on
   those paths whatever the statistics say: a fresh or fast-growing table
   has none or stale ones, and a generic plan cannot see how many rows a
   batch or a LIMIT holds. A job stage's reply updates thousands of one
   job's videos at once: NF_SQL_PLAN_DEFAULT for those statements. */
#define NF_SQL_PLAN_LOOKUPS                                                          \
    "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL " \
    "enable_mergejoin = off"
#define NF_SQL_PLAN_DEFAULT                                                                    \
    "SET LOCAL enable_bitmapscan TO DEFAULT; SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL " \
    "enable_mergejoin TO DEFAULT"

#endif

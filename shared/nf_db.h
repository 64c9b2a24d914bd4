/*  nf_db: PostgreSQL access for the broker (the only process with database
    credentials). Every statement is prepared once per connection under a
    name and executed with text parameters; nothing is ever interpolated
    into SQL. A lost connection is reconnected with capped exponential
    backoff: nf_db_connect is cheap to call on every loop turn and only
    tries again when the backoff allows it. */
#ifndef NF_DB_H
#define NF_DB_H

#include "nf_err.h"

#include <libpq-fe.h>
#include <stdbool.h>

typedef struct nf_db_t nf_db_t;

/* A handle for CONNINFO (libpq keyword string or URI); does not connect. */
nf_db_t *nf_db_new (const char *conninfo, const char *application_name);
void nf_db_destroy (nf_db_t **self_p);

/* Connect if not connected and the backoff allows. NF_OK when connected,
   NF_ERR_DB when not (yet). */
nf_err_t nf_db_connect (nf_db_t *self);
bool nf_db_connected (nf_db_t *self);

/* Execute statement NAME (prepared from SQL on first use on this
   connection) with NPARAMS text PARAMS (NULL entries are SQL NULL).
   Returns the result (the caller's to PQclear) on success, NULL on failure:
   the error is kept for nf_db_error and the connection dropped if lost. */
PGresult *nf_db_exec (nf_db_t *self, const char *name, const char *sql, int nparams,
                      const char *const *params);
/* Execute SQL without parameters (BEGIN, COMMIT, DDL). NF_OK, NF_ERR_DB
   (the connection, or a transient condition: try again) or NF_ERR_DB_DATA
   (the statement or its data was refused). */
nf_err_t nf_db_command (nf_db_t *self, const char *sql);
nf_err_t nf_db_begin (nf_db_t *self);
nf_err_t nf_db_commit (nf_db_t *self);
/* Roll back if a transaction is open; never fails. */
void nf_db_rollback (nf_db_t *self);

/* How many times a connection was made (1 after the first): a change means
   the work of an unknown number of statements may have committed unseen. */
unsigned nf_db_generation (nf_db_t *self);

/* The last error message (borrowed; "" when none). */
const char *nf_db_error (nf_db_t *self);
/* True when the last failure was the connection or a transient condition
   (SQLSTATE classes 08, 40, 53, 57): the same work may succeed later.
   False: the data or statement was at fault. */
bool nf_db_error_transient (nf_db_t *self);
/* True when the last failure was not transient and not the data's either
   (not SQLSTATE classes 22 or 23): a revoked grant, a missing table, a
   schema that drifted. Every statement will fail alike until an operator
   acts; no single reply is to blame. */
bool nf_db_error_systemic (nf_db_t *self);
/* The last failure's SQLSTATE ("42501"), or "". */
const char *nf_db_sqlstate (nf_db_t *self);

#endif

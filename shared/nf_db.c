/*  nf_db: see nf_db.h. */
#include "nf_db.h"
#include "nf_log.h"
#include "nf_util.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

struct nf_db_t {
    char *conninfo;      /* connection string, owned */
    char *appname;       /* application_name reported to the server */
    PGconn *conn;        /* NULL while disconnected */
    zhashx_t *prepared;  /* names prepared on this connection (values unused) */
    int64_t next_try_ms; /* earliest monotonic time of the next connect */
    int64_t backoff_ms;  /* current reconnect backoff */
    char error[1024];    /* last error message */
    bool transient;      /* last error was transient */
    char sqlstate[6];    /* its SQLSTATE, or "" */
    bool was_connected;  /* for logging "reconnected" */
    unsigned generation; /* successful connects so far */
};

nf_db_t *
nf_db_new (const char *conninfo, const char *application_name)
{
    nf_db_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->conninfo = strdup (conninfo);
    self->appname = strdup (application_name ? application_name : "nicheflow");
    self->prepared = zhashx_new ();
    self->backoff_ms = 100;
    return self;
}

static void
s_disconnect (nf_db_t *self)
{
    if (self->conn) {
        PQfinish (self->conn);
        self->conn = NULL;
    }
    zhashx_purge (self->prepared);
}

void
nf_db_destroy (nf_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_db_t *self = *self_p;
    s_disconnect (self);
    zhashx_destroy (&self->prepared);
    free (self->conninfo);
    free (self->appname);
    free (self);
    *self_p = NULL;
}

static void
s_set_error (nf_db_t *self, const char *msg, bool transient)
{
    self->sqlstate[0] = 0;
    snprintf (self->error, sizeof self->error, "%s", msg ? msg : "unknown error");
    size_t n = strlen (self->error);
    while (n > 0 && (self->error[n - 1] == '\n' || self->error[n - 1] == ' '))
        self->error[--n] = 0;
    self->transient = transient;
}

static void
s_lost (nf_db_t *self)
{
    nf_warn ("database connection lost: %s", self->error);
    s_disconnect (self);
    self->transient = true;
    self->next_try_ms = nf_clock_ms ();
}

nf_err_t
nf_db_connect (nf_db_t *self)
{
    if (self->conn && PQstatus (self->conn) == CONNECTION_OK)
        return NF_OK;
    if (self->conn)
        s_lost (self);
    int64_t now = nf_clock_ms ();
    if (now < self->next_try_ms)
        return NF_ERR_DB;
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {self->conninfo, "3", self->appname, NULL};
    self->conn = PQconnectdbParams (keys, vals, 1);
    if (!self->conn || PQstatus (self->conn) != CONNECTION_OK) {
        s_set_error (self, self->conn ? PQerrorMessage (self->conn) : "out of memory", true);
        nf_warn ("database connect failed (next try in %lld ms): %s", (long long) self->backoff_ms,
                 self->error);
        s_disconnect (self);
        self->next_try_ms = now + self->backoff_ms;
        self->backoff_ms = self->backoff_ms * 2 > 5000 ? 5000 : self->backoff_ms * 2;
        return NF_ERR_DB;
    }
    PQsetNoticeProcessor (self->conn, NULL, NULL);
    PQclear (PQexec (self->conn, "SET client_min_messages = warning"));
    if (self->was_connected)
        nf_info ("database reconnected");
    self->was_connected = true;
    self->generation++;
    self->backoff_ms = 100;
    return NF_OK;
}

bool
nf_db_connected (nf_db_t *self)
{
    return self->conn && PQstatus (self->conn) == CONNECTION_OK;
}

/* Record the failure of RES (may be NULL) and drop the connection if lost. */
static void
s_failed (nf_db_t *self, PGresult *res)
{
    const char *state = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
    bool transient = !state || strncmp (state, "08", 2) == 0 || strncmp (state, "40", 2) == 0
                     || strncmp (state, "53", 2) == 0 || strncmp (state, "57", 2) == 0;
    s_set_error (self, res ? PQresultErrorMessage (res) : PQerrorMessage (self->conn), transient);
    snprintf (self->sqlstate, sizeof self->sqlstate, "%s", state ? state : "");
    if (PQstatus (self->conn) != CONNECTION_OK)
        s_lost (self);
}

PGresult *
nf_db_exec (nf_db_t *self, const char *name, const char *sql, int nparams,
            const char *const *params)
{
    if (nf_db_connect (self) != 0)
        return NULL;
    if (!zhashx_lookup (self->prepared, name)) {
        PGresult *res = PQprepare (self->conn, name, sql, nparams, NULL);
        if (!res || PQresultStatus (res) != PGRES_COMMAND_OK) {
            s_failed (self, res);
            nf_error ("prepare %s failed: %s", name, self->error);
            PQclear (res);
            return NULL;
        }
        PQclear (res);
        zhashx_insert (self->prepared, name, (void *) 1);
    }
    PGresult *res = PQexecPrepared (self->conn, name, nparams, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus (res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        s_failed (self, res);
        PQclear (res);
        return NULL;
    }
    return res;
}

nf_err_t
nf_db_command (nf_db_t *self, const char *sql)
{
    if (nf_db_connect (self) != NF_OK)
        return NF_ERR_DB;
    PGresult *res = PQexec (self->conn, sql);
    ExecStatusType st = res ? PQresultStatus (res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        s_failed (self, res);
        PQclear (res);
        return self->transient ? NF_ERR_DB : NF_ERR_DB_DATA;
    }
    PQclear (res);
    return NF_OK;
}

nf_err_t
nf_db_begin (nf_db_t *self)
{
    return nf_db_command (self, "BEGIN");
}

nf_err_t
nf_db_commit (nf_db_t *self)
{
    return nf_db_command (self, "COMMIT");
}

void
nf_db_rollback (nf_db_t *self)
{
    if (self->conn && PQstatus (self->conn) == CONNECTION_OK
        && PQtransactionStatus (self->conn) != PQTRANS_IDLE)
        PQclear (PQexec (self->conn, "ROLLBACK"));
}

unsigned
nf_db_generation (nf_db_t *self)
{
    return self->generation;
}

const char *
nf_db_error (nf_db_t *self)
{
    return self->error;
}

bool
nf_db_error_transient (nf_db_t *self)
{
    return self->transient;
}

bool
nf_db_error_systemic (nf_db_t *self)
{
    /* Class 22 (data exception) and 23 (integrity constraint violation) are
       the data's; 42 (privileges, undefined objects), 3F (schema), 28
       (authorization), 2B, 0A and the like are the database's state. */
    const char *st = self->sqlstate;
    return !self->transient && *st && strncmp (st, "22", 2) != 0 && strncmp (st, "23", 2) != 0;
}

const char *
nf_db_sqlstate (nf_db_t *self)
{
    return self->sqlstate;
}

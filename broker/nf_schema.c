/*  nf_schema: see nf_schema.h. The migration texts come from the generated
    nf_migrations.c (one string per file, in order). */
#include "nf_schema.h"
#include "nf_log.h"
#include "nf_states.h"
#include "nf_util.h"

#include <stdio.h>
#include <stdlib.h>

extern const char *const nf_migrations[];
extern const int nf_migrations_count;

#define NF_SCHEMA_LOCK "7245081" /* advisory lock key: arbitrary, fixed */

int
nf_schema_latest (void)
{
    return nf_migrations_count;
}

/* One CHECK constraint NAME on TABLE: COLUMN is one of the N names of
   NAMES (or NULL when NULLABLE). The list is kept as the constraint's
   comment; when the table of nf_states.c says otherwise (a stage or a
   status was added) the constraint is replaced, in one transaction, and
   the rows are checked against the new list. 0 or -1. */
static int
s_check_names (nf_db_t *db, const char *table, const char *column, bool nullable, const char *name,
               const char *const *names, size_t n)
{
    nf_buf_t list, sql;
    nf_buf_init (&list);
    nf_buf_init (&sql);
    nf_buf_puts (&list, "{");
    for (size_t i = 0; i < n; i++)
        nf_buf_printf (&list, "%s%s", i ? "," : "", names[i]);
    nf_buf_puts (&list, "}");
    const char *params[] = {name, list.data};
    PGresult *res = nf_db_exec (db, "schema_check",
                                "SELECT 1 FROM pg_constraint WHERE conname = $1 AND "
                                "obj_description(oid, 'pg_constraint') = $2",
                                2, params);
    int rc = res ? 0 : -1;
    if (res && PQntuples (res) == 0) {
        /* The names are the table's constants, never input. */
        nf_buf_printf (&sql,
                       "BEGIN; ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s; ALTER TABLE %s ADD "
                       "CONSTRAINT %s CHECK (%s%s%s = ANY ('%s'::text[])); COMMENT ON "
                       "CONSTRAINT %s ON %s IS '%s'; COMMIT",
                       table, name, table, name, nullable ? column : "",
                       nullable ? " IS NULL OR " : "", column, list.data, name, table, list.data);
        if (nf_db_command (db, sql.data) != 0) {
            nf_error ("schema: constraint %s: %s", name, nf_db_error (db));
            nf_db_rollback (db);
            rc = -1;
        }
        else
            nf_info ("schema: %s.%s must be one of %s", table, column, list.data);
    }
    PQclear (res);
    nf_buf_free (&list);
    nf_buf_free (&sql);
    return rc;
}

/* The state machine of nf_states.c as CHECK constraints: video states
   (and the state a FAILED video came from), job statuses, job phases. */
static int
s_check_states (nf_db_t *db)
{
    size_t nv, nj, ns;
    const char *const *states = nf_video_states (&nv);
    const nf_job_status_t *jobs = nf_job_statuses (&nj);
    const nf_stage_t *stages = nf_stages (&ns);
    const char *statuses[32], *phases[32];
    size_t np = 0;
    for (size_t i = 0; i < nj && i < 32; i++)
        statuses[i] = jobs[i].name;
    for (size_t i = 0; i < ns && np < 31; i++)
        if (stages[i].scope == NF_SCOPE_JOB)
            phases[np++] = stages[i].service;
    phases[np++] = NF_PHASE_DONE;
    return s_check_names (db, "nf_videos", "state", false, "nf_videos_state_known", states, nv)
                   || s_check_names (db, "nf_videos", "failed_from", true,
                                     "nf_videos_failed_from_known", states, nv)
                   || s_check_names (db, "nf_jobs", "status", false, "nf_jobs_status_known",
                                     statuses, nj < 32 ? nj : 32)
                   || s_check_names (db, "nf_jobs", "phase", false, "nf_jobs_phase_known", phases,
                                     np)
               ? -1
               : 0;
}

int
nf_schema_migrate (nf_db_t *db)
{
    if (nf_db_command (db, "SELECT pg_advisory_lock(" NF_SCHEMA_LOCK ")") != 0) {
        nf_error ("schema: cannot take the migration lock: %s", nf_db_error (db));
        return -1;
    }
    int rc = -1;
    if (nf_db_command (db, "CREATE TABLE IF NOT EXISTS nf_schema_version ("
                           "version int PRIMARY KEY, applied_at timestamptz NOT NULL "
                           "DEFAULT now())")
        != 0)
        goto done;
    PGresult *res = nf_db_exec (db, "schema_version",
                                "SELECT coalesce(max(version), 0) FROM nf_schema_version", 0, NULL);
    if (!res)
        goto done;
    int have = atoi (PQgetvalue (res, 0, 0));
    PQclear (res);
    for (int v = have + 1; v <= nf_migrations_count; v++) {
        char version[16];
        snprintf (version, sizeof version, "%d", v);
        const char *params[] = {version};
        if (nf_db_begin (db) != 0 || nf_db_command (db, nf_migrations[v - 1]) != 0) {
            nf_error ("schema: migration %d failed: %s", v, nf_db_error (db));
            nf_db_rollback (db);
            goto done;
        }
        res = nf_db_exec (db, "schema_mark", "INSERT INTO nf_schema_version (version) VALUES ($1)",
                          1, params);
        if (!res || nf_db_commit (db) != 0) {
            PQclear (res);
            nf_error ("schema: recording migration %d failed: %s", v, nf_db_error (db));
            nf_db_rollback (db);
            goto done;
        }
        PQclear (res);
        nf_info ("schema: applied migration %d", v);
    }
    rc = s_check_states (db);
done:
    nf_db_command (db, "SELECT pg_advisory_unlock(" NF_SCHEMA_LOCK ")");
    return rc;
}

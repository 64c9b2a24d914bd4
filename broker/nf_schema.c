/*  nf_schema: see nf_schema.h. The migration texts come from the generated
    nf_migrations.c (one string per file, in order). */
#include "nf_schema.h"
#include "nf_log.h"

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
    rc = 0;
done:
    nf_db_command (db, "SELECT pg_advisory_unlock(" NF_SCHEMA_LOCK ")");
    return rc;
}

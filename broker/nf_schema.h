/*  nf_schema: the database schema as numbered migrations (broker/migrations/
    NNN_name.sql, embedded at build time). nf_schema_migrate applies the
    missing ones in order, each in its own transaction, under a session
    advisory lock so that several brokers starting at once apply each once. */
#ifndef NF_SCHEMA_H
#define NF_SCHEMA_H

#include "nf_db.h"

/* Bring the database to the latest version. 0, or -1 (error logged). */
int nf_schema_migrate (nf_db_t *db);
/* The version this build knows. */
int nf_schema_latest (void);

#endif

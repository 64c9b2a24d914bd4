/*  nf_err: numbered errors for the library and the broker's store, in the
    manner of curl's CURLcode: a function that can fail returns nf_err_t,
    NF_OK (0) on success and a negative code otherwise, so `rc != 0` and
    `rc < 0` read as they always did. The numbers are never reused or
    renumbered (they appear in logs); new codes go at the end.
    nf_strerror gives each a fixed English sentence. Pure. */
#ifndef NF_ERR_H
#define NF_ERR_H

typedef enum {
    NF_OK = 0,
    NF_ERR_DB = -1,        /* the database is unreachable or the statement failed; try again */
    NF_ERR_DB_DATA = -2,   /* the database refused the data itself (a constraint, a cast) */
    NF_ERR_NOMEM = -3,     /* out of memory */
    NF_ERR_INVALID = -4,   /* an invalid argument or input */
    NF_ERR_PROTO = -5,     /* a malformed message */
    NF_ERR_IO = -6,        /* a file or socket error (see errno) */
    NF_ERR_TIMEOUT = -7,   /* no answer in time */
    NF_ERR_NOT_FOUND = -8, /* no such thing */
    NF_ERR_LAST = -8       /* the lowest code in use */
} nf_err_t;

/* A sentence for ERR ("the database refused the data"); never NULL. */
const char *nf_strerror (nf_err_t err);

#endif

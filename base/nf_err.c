/*  nf_err: see nf_err.h. */
#include "nf_err.h"

const char *
nf_strerror (nf_err_t err)
{
    switch (err) {
    case NF_OK: return "no error";
    case NF_ERR_DB: return "the database is unavailable or the statement failed";
    case NF_ERR_DB_DATA: return "the database refused the data";
    case NF_ERR_NOMEM: return "out of memory";
    case NF_ERR_INVALID: return "invalid argument or input";
    case NF_ERR_PROTO: return "malformed message";
    case NF_ERR_IO: return "input/output error";
    case NF_ERR_TIMEOUT: return "timed out";
    case NF_ERR_NOT_FOUND: return "not found";
    }
    return "unknown error";
}

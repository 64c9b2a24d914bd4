/*  nf_log: the one logging facility of every nicheflow program.
    One line per event to stderr, with level and process identity; plain text
    or JSON lines (NF_LOG_JSON). Configured once in main() before any thread
    starts; read-only afterwards, so it is safe from every thread. */
#ifndef NF_LOG_H
#define NF_LOG_H

#include "nf_err.h"
#include <stdbool.h>

typedef enum { NF_LOG_DEBUG = 0, NF_LOG_INFO, NF_LOG_WARN, NF_LOG_ERROR } nf_log_level_t;

/* Set the process identity (e.g. "nf-broker"), minimum level and format. */
void nf_log_init (const char *identity, nf_log_level_t level, bool json);
/* Parse "debug|info|warn|error"; returns -1 on anything else. */
nf_err_t nf_log_level_parse (const char *text, nf_log_level_t *level);
bool nf_log_enabled (nf_log_level_t level);
void nf_log (nf_log_level_t level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

#define nf_debug(...) nf_log (NF_LOG_DEBUG, __VA_ARGS__)
#define nf_info(...)  nf_log (NF_LOG_INFO, __VA_ARGS__)
#define nf_warn(...)  nf_log (NF_LOG_WARN, __VA_ARGS__)
#define nf_error(...) nf_log (NF_LOG_ERROR, __VA_ARGS__)

#endif

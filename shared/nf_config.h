/*  nf_config: every setting of every nicheflow program, defined once as a
    table (key, environment variable, default, help, which programs use it).
    Resolution order: built-in default, then the NF_* environment variable,
    then a command-line flag --key VALUE or --key=VALUE. Resolved once in
    main() and passed down; nothing reads the environment afterwards. */
#ifndef NF_CONFIG_H
#define NF_CONFIG_H

#include "nf_err.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Which programs a setting belongs to (bit mask). */
enum {
    NF_PROG_BROKER = 1,
    NF_PROG_WORKER = 2,
    NF_PROG_CLIENT = 4,
    NF_PROG_ALL = 7,
    NF_PROG_WEB = 8, /* nf-web: a client (NF_PROG_CLIENT too) with its own settings */
};

/* Keys; never renumbered (append at the end). */
typedef enum {
    NF_CFG_LOG_LEVEL,
    NF_CFG_LOG_JSON,
    NF_CFG_DATABASE_URL,
    NF_CFG_WORKERS_BIND,
    NF_CFG_CLIENTS_BIND,
    NF_CFG_PUB_BIND,
    NF_CFG_BROKER,
    NF_CFG_BROKER_CLIENTS,
    NF_CFG_BROKER_PUB,
    NF_CFG_BROKER_ID,
    NF_CFG_HEARTBEAT_MS,
    NF_CFG_LIVENESS,
    NF_CFG_LEASE_MS,
    NF_CFG_TASK_TIMEOUTS,
    NF_CFG_INSECURE,
    NF_CFG_MAX_ATTEMPTS,
    NF_CFG_RETRY_BASE_MS,
    NF_CFG_RETRY_MAX_MS,
    NF_CFG_CLAIM_BATCH,
    NF_CFG_FLUSH_MS,
    NF_CFG_MAX_FRAME,
    NF_CFG_MAX_ACTIVE_JOBS,
    NF_CFG_MIN_READY,
    NF_CFG_RETAIN_DAYS,
    NF_CFG_SOURCES,
    NF_CFG_YOUTUBE_SEARCH_CALLS,
    NF_CFG_YOUTUBE_UNITS,
    NF_CFG_METRICS_BIND,
    NF_CFG_RECONNECT_MAX_MS,
    NF_CFG_TIMEOUT_MS,
    NF_CFG_QUALITY_MIN,
    NF_CFG_TRANSCRIPT_MAX,
    NF_CFG_TIER1,
    NF_CFG_WEIGHTS,
    NF_CFG_BASELINE_MAX,
    NF_CFG_BASELINE_MIN,
    NF_CFG_MATURITY_DAYS,
    NF_CFG_LLM_URL,
    NF_CFG_LLM_MODEL,
    NF_CFG_LLM_API_KEY,
    NF_CFG_LLM_TIMEOUT_MS,
    NF_CFG_LLM_RETRIES,
    NF_CFG_LLM_CONTEXT_TOKENS,
    NF_CFG_PROMPT_DIR,
    NF_CFG_OUTPUT_DIR,
    NF_CFG_YOUTUBE_API_URL,
    NF_CFG_YOUTUBE_WEB_URL,
    NF_CFG_YOUTUBE_API_KEY,
    NF_CFG_HTTP_TIMEOUT_MS,
    NF_CFG_HTTP_MAX_BYTES,
    NF_CFG_HTTP_RETRIES,
    NF_CFG_HTTP_RATE,
    NF_CFG_HTTP_BURST,
    NF_CFG_HTTP_DELAY_MS,
    NF_CFG_HTTP_MAX_WAIT_MS,
    NF_CFG_PROXIES,
    NF_CFG_USER_AGENTS,
    NF_CFG_CACHE_DIR,
    NF_CFG_CACHE_TTL_S,
    NF_CFG_CACHE_MAX_MB,
    NF_CFG_BASELINE_UPLOADS,
    NF_CFG_BASELINE_LANES,
    NF_CFG_YOUTUBE_IMG_URL,
    NF_CFG_TEMPLATE_DIR,
    NF_CFG_CURVE_CERT,
    NF_CFG_CURVE_BROKER_CERT,
    NF_CFG_CURVE_ALLOW,
    NF_CFG_HEALTH_FILE,
    NF_CFG_WEB_BIND,
    NF_CFG_WEB_TOKEN,
    NF_CFG_COUNT
} nf_cfg_key_t;

typedef struct nf_config_t nf_config_t;

/* A configuration for program PROGRAM (an NF_PROG_* bit) holding defaults. */
nf_config_t *nf_config_new (const char *program_name, int program);
void nf_config_destroy (nf_config_t **self_p);

/* Narrow a worker's help to the settings of stage SERVICE (plus the ones
   every worker shares). */
void nf_config_set_service (nf_config_t *self, const char *service);

/* Apply the NF_* environment, then the flags of argv. Flags the table does
   not know are left for the caller: their indexes are stored in order and
   can be read with nf_config_args. Returns NF_OK, or NF_ERR_INVALID with a message printed
   naming the bad flag or value. --help and --version are reported through
   nf_config_wants_help / nf_config_wants_version. */
nf_err_t nf_config_load (nf_config_t *self, int argc, char **argv);

/* Positional (non-flag) arguments left after nf_config_load. */
int nf_config_argc (nf_config_t *self);
const char *nf_config_arg (nf_config_t *self, int index);

bool nf_config_wants_help (nf_config_t *self);
bool nf_config_wants_version (nf_config_t *self);

/* Borrowed string value of KEY (never NULL; may be ""). */
const char *nf_config_str (nf_config_t *self, nf_cfg_key_t key);
int64_t nf_config_int (nf_config_t *self, nf_cfg_key_t key);
bool nf_config_bool (nf_config_t *self, nf_cfg_key_t key);
/* Override KEY (used by tests and by programs with their own flags). */
void nf_config_set (nf_config_t *self, nf_cfg_key_t key, const char *value);

/* Print the settings of this program: "--key VALUE  (NF_ENV, default D) help". */
void nf_config_print_help (nf_config_t *self, FILE *out);
/* Print the whole table as a Markdown table (for the README). */
void nf_config_print_markdown (FILE *out);

/* Process-wide start-up from the configuration: logging. */
void nf_config_apply_logging (nf_config_t *self);

#endif

/*  nf_config: see nf_config.h. The table below is the single definition of
    every setting; help output and the README's table are printed from it. */
#include "nf_config.h"
#include "nf_log.h"
#include "nf_util.h"
#include "nf_version.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* NF_T_SECRET: a string that is never a flag (flags show in `ps`): from
   the environment, or read from the file named by <ENV>_FILE (the Docker
   secrets convention). */
typedef enum { NF_T_STR, NF_T_INT, NF_T_BOOL, NF_T_SECRET } nf_cfg_type_t;

typedef struct {
    const char *key;    /* flag name without the leading "--" */
    const char *env;    /* environment variable */
    nf_cfg_type_t type; /* how the value is checked */
    int64_t min, max;   /* range for integers */
    int programs;       /* NF_PROG_* bits */
    const char *dflt;   /* built-in default */
    const char *help;   /* one line */
    const char *stage;  /* for worker settings: the stages that read it (space list), or NULL */
} nf_cfg_def_t;

static const nf_cfg_def_t s_defs[NF_CFG_COUNT] = {
    [NF_CFG_LOG_LEVEL] = {"log-level", "NF_LOG_LEVEL", NF_T_STR, 0, 0, NF_PROG_ALL, "info",
                          "debug, info, warn or error"},
    [NF_CFG_LOG_JSON] = {"log-json", "NF_LOG_JSON", NF_T_BOOL, 0, 1, NF_PROG_ALL, "0",
                         "1: log JSON lines instead of plain text"},
    [NF_CFG_DATABASE_URL] = {"database-url", "NF_DATABASE_URL", NF_T_STR, 0, 0, NF_PROG_BROKER,
                             "postgresql:///nicheflow",
                             "libpq connection string or URI (sslmode etc. accepted)"},
    [NF_CFG_WORKERS_BIND] = {"workers-bind", "NF_WORKERS_BIND", NF_T_STR, 0, 0, NF_PROG_BROKER,
                             "tcp://127.0.0.1:5555",
                             "endpoint the broker binds for workers (MDP/0.1); another address "
                             "than loopback needs CURVE (or NF_INSECURE=1)"},
    [NF_CFG_CLIENTS_BIND] = {"clients-bind", "NF_CLIENTS_BIND", NF_T_STR, 0, 0, NF_PROG_BROKER,
                             "tcp://127.0.0.1:5556",
                             "endpoint the broker binds for clients (MDP/0.1); another address "
                             "than loopback needs CURVE (or NF_INSECURE=1)"},
    [NF_CFG_PUB_BIND] = {"pub-bind", "NF_PUB_BIND", NF_T_STR, 0, 0, NF_PROG_BROKER,
                         "tcp://127.0.0.1:5557",
                         "endpoint the broker binds for progress events (PUB); another address "
                         "than loopback needs CURVE (or NF_INSECURE=1)"},
    [NF_CFG_BROKER] = {"broker", "NF_BROKER", NF_T_STR, 0, 0, NF_PROG_WORKER,
                       "tcp://127.0.0.1:5555", "broker endpoint a worker connects to"},
    [NF_CFG_BROKER_CLIENTS] = {"broker-clients", "NF_BROKER_CLIENTS", NF_T_STR, 0, 0,
                               NF_PROG_CLIENT, "tcp://127.0.0.1:5556",
                               "broker endpoint a client (nf-submit, nf-monitor) connects to"},
    [NF_CFG_BROKER_PUB] = {"broker-pub", "NF_BROKER_PUB", NF_T_STR, 0, 0, NF_PROG_CLIENT,
                           "tcp://127.0.0.1:5557",
                           "broker progress endpoint a client subscribes to"},
    [NF_CFG_BROKER_ID] = {"broker-id", "NF_BROKER_ID", NF_T_STR, 0, 0, NF_PROG_BROKER, "",
                          "lease owner name of this broker (default: host name), one broker "
                          "per name (a second refuses to start); a restarted broker releases "
                          "the leases of its own name"},
    [NF_CFG_HEARTBEAT_MS] = {"heartbeat-ms", "NF_HEARTBEAT_MS", NF_T_INT, 50, 600000,
                             NF_PROG_BROKER | NF_PROG_WORKER, "1000", "MDP heartbeat interval"},
    [NF_CFG_LIVENESS] = {"liveness", "NF_LIVENESS", NF_T_INT, 1, 100,
                         NF_PROG_BROKER | NF_PROG_WORKER, "5",
                         "missed heartbeats before a peer is declared dead (5 x 1 s: a worker "
                         "that heartbeats every 2.5 s, as the zguide's do, stays up; a worker "
                         "holding a task is not dead for silence before the task's lease ends)"},
    [NF_CFG_LEASE_MS] = {"lease-ms", "NF_LEASE_MS", NF_T_INT, 100, 86400000, NF_PROG_BROKER,
                         "300000", "how long a claimed task may run before it is reclaimed"},
    [NF_CFG_TASK_TIMEOUTS] = {"task-timeouts", "NF_TASK_TIMEOUTS", NF_T_STR, 0, 0, NF_PROG_BROKER,
                              "discover=1800000 scrape=600000 sanitize=120000 geo=120000 "
                              "analyze=1800000 architect=900000 export=600000",
                              "each stage's task deadline in ms (space list of stage=ms): a live "
                              "worker's lease is renewed until then, so a long task is not "
                              "reclaimed; one past it is (a stage left out: 600000)"},
    [NF_CFG_MAX_ATTEMPTS] = {"max-attempts", "NF_MAX_ATTEMPTS", NF_T_INT, 1, 100, NF_PROG_BROKER,
                             "3", "attempts per stage before a video (or job stage) is FAILED"},
    [NF_CFG_RETRY_BASE_MS] = {"retry-base-ms", "NF_RETRY_BASE_MS", NF_T_INT, 0, 86400000,
                              NF_PROG_BROKER, "1000", "first retry delay (doubles per attempt)"},
    [NF_CFG_RETRY_MAX_MS] = {"retry-max-ms", "NF_RETRY_MAX_MS", NF_T_INT, 0, 86400000,
                             NF_PROG_BROKER, "60000", "retry delay cap"},
    [NF_CFG_CLAIM_BATCH] = {"claim-batch", "NF_CLAIM_BATCH", NF_T_INT, 1, 10000, NF_PROG_BROKER,
                            "256", "most tasks claimed per service in one statement"},
    [NF_CFG_FLUSH_MS] = {"flush-ms", "NF_FLUSH_MS", NF_T_INT, 0, 10000, NF_PROG_BROKER, "5",
                         "longest a reply waits before its batch starts to commit (one batch "
                         "at a time: replies arriving meanwhile make the next)"},
    [NF_CFG_MAX_FRAME] = {"max-frame", "NF_MAX_FRAME", NF_T_INT, 1024, 1073741824, NF_PROG_ALL,
                          "16777216",
                          "largest ZeroMQ message accepted (bytes); larger peers "
                          "are disconnected"},
    [NF_CFG_MAX_ACTIVE_JOBS] = {"max-active-jobs", "NF_MAX_ACTIVE_JOBS", NF_T_INT, 1, 100000,
                                NF_PROG_BROKER, "8",
                                "jobs admitted (pending to queued) at once, by priority"},
    [NF_CFG_MIN_READY] = {"min-ready", "NF_MIN_READY", NF_T_INT, 0, 100000, NF_PROG_BROKER, "5",
                          "READY videos a job needs to export; fewer ends it failed"},
    [NF_CFG_RETAIN_DAYS] = {"retain-days", "NF_RETAIN_DAYS", NF_T_INT, 0, 36500, NF_PROG_BROKER,
                            "30",
                            "days a finished job keeps its transcripts, video history and log; "
                            "then they are pruned (its results and exports stay until nf-submit "
                            "purge); 0: keep everything"},
    [NF_CFG_YOUTUBE_SEARCH_CALLS] = {"youtube-search-calls", "NF_YOUTUBE_SEARCH_CALLS", NF_T_INT, 0,
                                     100000000, NF_PROG_BROKER, "100",
                                     "search.list calls the API key may make a day (Google's own "
                                     "bucket); a job needing more is refused; 0: unchecked"},
    [NF_CFG_YOUTUBE_UNITS] = {"youtube-units", "NF_YOUTUBE_UNITS", NF_T_INT, 0, 1000000000,
                              NF_PROG_BROKER, "10000",
                              "Data API units a day for videos.list and channels.list (1 a call "
                              "of 50 ids); a job needing more is refused; 0: unchecked"},
    [NF_CFG_SOURCES] = {"sources", "NF_SOURCES", NF_T_STR, 0, 0, NF_PROG_BROKER,
                        "youtube template:simsite",
                        "space list of the discovery sources nf.submit accepts (template:NAME "
                        "for each template the scrapers have)"},
    [NF_CFG_INSECURE] = {"insecure", "NF_INSECURE", NF_T_BOOL, 0, 1, NF_PROG_BROKER, "0",
                         "1: let the broker bind an address other than loopback without CURVE "
                         "(anyone who reaches it may submit, cancel, download and serve as a "
                         "worker; warned at every start); for a private network you trust"},
    [NF_CFG_METRICS_BIND] = {"metrics-bind", "NF_METRICS_BIND", NF_T_STR, 0, 0, NF_PROG_BROKER,
                             "127.0.0.1:9464",
                             "ADDRESS:PORT of the Prometheus endpoint (GET /metrics); empty "
                             "turns it off"},
    [NF_CFG_RECONNECT_MAX_MS] = {"reconnect-max-ms", "NF_RECONNECT_MAX_MS", NF_T_INT, 100, 600000,
                                 NF_PROG_WORKER, "32000", "cap of a worker's reconnect backoff"},
    [NF_CFG_TIMEOUT_MS] = {"timeout-ms", "NF_TIMEOUT_MS", NF_T_INT, 100, 86400000, NF_PROG_CLIENT,
                           "5000", "how long a client waits for each broker reply"},
    [NF_CFG_QUALITY_MIN] = {"quality-min", "NF_QUALITY_MIN", NF_T_INT, 0, 100, NF_PROG_WORKER, "50",
                            "transcripts scoring below this quality are REJECTED "
                            "low_quality",
                            "sanitize"},
    [NF_CFG_TRANSCRIPT_MAX] = {"transcript-max", "NF_TRANSCRIPT_MAX", NF_T_INT, 1024, 16777216,
                               NF_PROG_WORKER, "200000",
                               "bytes of transcript kept; the rest is cut at a character "
                               "boundary",
                               "sanitize"},
    [NF_CFG_TIER1] = {"tier1", "NF_TIER1", NF_T_STR, 0, 0, NF_PROG_WORKER, "default",
                      "Tier-1 countries: `default` (US,GB,CA,AU,NZ), `extended` (adds IE,DE,NL,"
                      "CH,NO,SE,DK,FI,AT,BE,LU,FR) or a list of ISO codes",
                      "geo"},
    [NF_CFG_WEIGHTS] = {"weights", "NF_WEIGHTS", NF_T_STR, 0, 0, NF_PROG_WORKER,
                        "0.40,0.20,0.25,0.15",
                        "composite weights: multiplier, views per subscriber, velocity, "
                        "engagement",
                        "analyze"},
    [NF_CFG_BASELINE_MAX] = {"baseline-max", "NF_BASELINE_MAX", NF_T_INT, 1, 50, NF_PROG_WORKER,
                             "30",
                             "a video's baseline is the median views of at most this many of its "
                             "channel's most recent long-form, matured uploads (itself left out)",
                             "analyze"},
    [NF_CFG_BASELINE_MIN] = {"baseline-min", "NF_BASELINE_MIN", NF_T_INT, 1, 50, NF_PROG_WORKER,
                             "5",
                             "fewer such uploads: the channel's lifetime mean (views / videos) is "
                             "the baseline",
                             "analyze"},
    [NF_CFG_MATURITY_DAYS] = {"maturity-days", "NF_MATURITY_DAYS", NF_T_INT, 0, 365, NF_PROG_WORKER,
                              "7",
                              "uploads younger than this (at the job's creation) are still "
                              "growing and left out of the baseline",
                              "analyze"},
    [NF_CFG_LLM_URL] = {"llm-url", "NF_LLM_URL", NF_T_STR, 0, 0, NF_PROG_WORKER, "",
                        "OpenAI-compatible base URL (`.../v1`); empty: the built-in generator",
                        "architect"},
    [NF_CFG_LLM_MODEL] = {"llm-model", "NF_LLM_MODEL", NF_T_STR, 0, 0, NF_PROG_WORKER,
                          "gpt-4o-mini", "model name sent to the LLM", "architect"},
    [NF_CFG_LLM_API_KEY] = {"llm-api-key", "NF_LLM_API_KEY", NF_T_SECRET, 0, 0, NF_PROG_WORKER, "",
                            "bearer token for the LLM (never logged); the environment or "
                            "NF_LLM_API_KEY_FILE only, never a flag",
                            "architect"},
    [NF_CFG_LLM_TIMEOUT_MS] = {"llm-timeout-ms", "NF_LLM_TIMEOUT_MS", NF_T_INT, 100, 600000,
                               NF_PROG_WORKER, "60000", "timeout of one LLM request", "architect"},
    [NF_CFG_LLM_RETRIES] = {"llm-retries", "NF_LLM_RETRIES", NF_T_INT, 0, 10, NF_PROG_WORKER, "2",
                            "extra LLM requests per task after a 429, 5xx or invalid "
                            "answer",
                            "architect"},
    [NF_CFG_LLM_CONTEXT_TOKENS] = {"llm-context-tokens", "NF_LLM_CONTEXT_TOKENS", NF_T_INT, 100,
                                   1000000, NF_PROG_WORKER, "3000",
                                   "token budget of the transcript in the prompt (4 bytes a "
                                   "token)",
                                   "architect"},
    [NF_CFG_PROMPT_DIR] = {"prompt-dir", "NF_PROMPT_DIR", NF_T_STR, 0, 0, NF_PROG_WORKER, "",
                           "folder with `system.txt` and `user.txt` prompt templates; empty: "
                           "the built-in ones",
                           "architect"},
    [NF_CFG_OUTPUT_DIR] =
        {"output-dir", "NF_OUTPUT_DIR", NF_T_STR, 0, 0, NF_PROG_WORKER, "",
         "folder the exporter also writes `<niche>-<job>.xlsx` (and .csv, .json) into", "export"},
    [NF_CFG_YOUTUBE_API_URL] =
        {"youtube-api-url", "NF_YOUTUBE_API_URL", NF_T_STR, 0, 0, NF_PROG_WORKER,
         "https://www.googleapis.com/youtube/v3",
         "YouTube Data API v3 base URL (nf-ytsim: `http://HOST:PORT/youtube/v3`)",
         "discover scrape"},
    [NF_CFG_YOUTUBE_WEB_URL] = {"youtube-web-url", "NF_YOUTUBE_WEB_URL", NF_T_STR, 0, 0,
                                NF_PROG_WORKER, "https://www.youtube.com",
                                "base URL of watch pages (nf-ytsim: `http://HOST:PORT`)",
                                "discover scrape"},
    [NF_CFG_YOUTUBE_API_KEY] = {"youtube-api-key", "NF_YOUTUBE_API_KEY", NF_T_SECRET, 0, 0,
                                NF_PROG_WORKER, "",
                                "Data API key (never logged or cached); the environment or "
                                "NF_YOUTUBE_API_KEY_FILE only, never a flag",
                                "discover"},
    [NF_CFG_HTTP_TIMEOUT_MS] = {"http-timeout-ms", "NF_HTTP_TIMEOUT_MS", NF_T_INT, 100, 600000,
                                NF_PROG_WORKER, "15000", "timeout of one HTTP request",
                                "discover scrape"},
    [NF_CFG_HTTP_MAX_BYTES] = {"http-max-bytes", "NF_HTTP_MAX_BYTES", NF_T_INT, 1024, 1073741824,
                               NF_PROG_WORKER, "8388608",
                               "largest HTTP body accepted; a larger one aborts the transfer",
                               "discover scrape"},
    [NF_CFG_HTTP_RETRIES] = {"http-retries", "NF_HTTP_RETRIES", NF_T_INT, 0, 20, NF_PROG_WORKER,
                             "2",
                             "extra requests after a 429, block, 5xx or network error "
                             "(then the broker's attempts take over)",
                             "discover scrape"},
    [NF_CFG_HTTP_RATE] =
        {"http-rate", "NF_HTTP_RATE", NF_T_STR, 0, 0, NF_PROG_WORKER, "2",
         "requests per second per host (token bucket, per process) for pages, the player "
         "and timed text; Data API calls are not paced (their quota limits "
         "them); 0: no limit",
         "discover scrape"},
    [NF_CFG_HTTP_BURST] = {"http-burst", "NF_HTTP_BURST", NF_T_INT, 1, 10000, NF_PROG_WORKER, "4",
                           "token bucket size per host", "discover scrape"},
    [NF_CFG_HTTP_DELAY_MS] =
        {"http-delay-ms", "NF_HTTP_DELAY_MS", NF_T_STR, 0, 0, NF_PROG_WORKER, "200-800",
         "random pause before each request for a page, the player or timed text "
         "(not the Data API), `MIN-MAX` or `N`; 0: none",
         "discover scrape"},
    [NF_CFG_HTTP_MAX_WAIT_MS] = {"http-max-wait-ms", "NF_HTTP_MAX_WAIT_MS", NF_T_INT, 0, 3600000,
                                 NF_PROG_WORKER, "30000",
                                 "longest wait for one Retry-After or backoff inside a task",
                                 "discover scrape"},
    [NF_CFG_PROXIES] = {"proxies", "NF_PROXIES", NF_T_STR, 0, 0, NF_PROG_WORKER, "",
                        "comma list of proxy URLs (`http://h:p`, `socks5://h:p`), rotated with "
                        "health marking; empty: direct",
                        "discover scrape"},
    [NF_CFG_USER_AGENTS] = {"user-agents", "NF_USER_AGENTS", NF_T_STR, 0, 0, NF_PROG_WORKER, "",
                            "file with one user agent per line; empty: a built-in desktop list",
                            "discover scrape"},
    [NF_CFG_CACHE_DIR] = {"cache-dir", "NF_CACHE_DIR", NF_T_STR, 0, 0, NF_PROG_WORKER, "",
                          "local HTTP cache folder (TTL and ETag revalidation); empty: no cache",
                          "discover scrape"},
    [NF_CFG_CACHE_TTL_S] = {"cache-ttl-s", "NF_CACHE_TTL_S", NF_T_INT, 0, 31536000, NF_PROG_WORKER,
                            "86400",
                            "seconds a cached answer is used without asking; then revalidated",
                            "discover scrape"},
    [NF_CFG_CACHE_MAX_MB] = {"cache-max-mb", "NF_CACHE_MAX_MB", NF_T_INT, 1, 1000000,
                             NF_PROG_WORKER, "512",
                             "largest size of the HTTP cache folder in MiB: beyond it the least "
                             "recently used entries are evicted",
                             "discover scrape"},
    [NF_CFG_BASELINE_UPLOADS] = {"baseline-uploads", "NF_BASELINE_UPLOADS", NF_T_INT, 0, 50,
                                 NF_PROG_WORKER, "50",
                                 "recent uploads discovery reads per channel for its baseline "
                                 "(playlistItems.list and videos.list, a unit each, once a day "
                                 "per channel); 0: none (the lifetime mean is the baseline)",
                                 "discover"},
    [NF_CFG_BASELINE_LANES] = {"baseline-lanes", "NF_BASELINE_LANES", NF_T_INT, 1, 16,
                               NF_PROG_WORKER, "4",
                               "channels whose recent uploads discovery reads at once, each on a "
                               "connection of its own",
                               "discover"},
    [NF_CFG_YOUTUBE_IMG_URL] = {"youtube-img-url", "NF_YOUTUBE_IMG_URL", NF_T_STR, 0, 0,
                                NF_PROG_WORKER | NF_PROG_WEB, "https://i.ytimg.com",
                                "where the workbook's (and nf-web's) thumbnails come from "
                                "(URL/vi/ID/mqdefault.jpg); empty: no pictures",
                                "export"},
    [NF_CFG_TEMPLATE_DIR] = {"template-dir", "NF_TEMPLATE_DIR", NF_T_STR, 0, 0, NF_PROG_WORKER, "",
                             "folder of extraction templates (`youtube_watch.json` overrides "
                             "the built-in one; `<name>.json` for `source=template:<name>`)",
                             "discover scrape"},
    [NF_CFG_CURVE_CERT] = {"curve-cert", "NF_CURVE_CERT", NF_T_STR, 0, 0, NF_PROG_ALL, "",
                           "this program's CURVE certificate (`NAME.cert_secret` from "
                           "nf-keygen); empty: no encryption"},
    [NF_CFG_CURVE_BROKER_CERT] = {"curve-broker-cert", "NF_CURVE_BROKER_CERT", NF_T_STR, 0, 0,
                                  NF_PROG_WORKER | NF_PROG_CLIENT, "",
                                  "the broker's public certificate (`broker.cert`); needed "
                                  "with NF_CURVE_CERT"},
    [NF_CFG_CURVE_ALLOW] = {"curve-allow", "NF_CURVE_ALLOW", NF_T_STR, 0, 0, NF_PROG_BROKER, "",
                            "folder of the public certificates of the workers and clients "
                            "admitted (re-read when it changes); needed with NF_CURVE_CERT"},
    [NF_CFG_HEALTH_FILE] = {"health-file", "NF_HEALTH_FILE", NF_T_STR, 0, 0, NF_PROG_WORKER, "",
                            "file whose modification time the worker renews (at most once a "
                            "second) while it hears the broker: a container health check; "
                            "empty: none"},
    [NF_CFG_WEB_BIND] = {"web-bind", "NF_WEB_BIND", NF_T_STR, 0, 0, NF_PROG_WEB, "127.0.0.1:8090",
                         "HOST:PORT nf-web serves its page on (port 0: any free one, printed); "
                         "another address than loopback needs NF_WEB_TOKEN"},
    [NF_CFG_WEB_TOKEN] = {"web-token", "NF_WEB_TOKEN", NF_T_SECRET, 0, 0, NF_PROG_WEB, "",
                          "the token nf-web's page asks for before anything (at least 16 "
                          "characters; never a flag); empty: none, "
                          "allowed on a loopback bind only"},
};

struct nf_config_t {
    char *name;                 /* program name, for messages */
    char *service;              /* worker stage, for help; NULL elsewhere */
    int program;                /* NF_PROG_* bit of this program */
    char *values[NF_CFG_COUNT]; /* resolved values, owned */
    int argc;                   /* positional arguments left */
    char **argv;                /* borrowed pointers into main's argv */
    bool help;                  /* --help seen */
    bool version;               /* --version seen */
};

nf_config_t *
nf_config_new (const char *program_name, int program)
{
    nf_config_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->name = strdup (program_name);
    self->program = program;
    for (int i = 0; i < NF_CFG_COUNT; i++)
        self->values[i] = strdup (s_defs[i].dflt);
    return self;
}

void
nf_config_destroy (nf_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_config_t *self = *self_p;
    for (int i = 0; i < NF_CFG_COUNT; i++)
        free (self->values[i]);
    free (self->service);
    free (self->argv);
    free (self->name);
    free (self);
    *self_p = NULL;
}

static int
s_check (nf_config_t *self, int i, const char *value, const char *origin)
{
    const nf_cfg_def_t *d = &s_defs[i];
    if (d->type == NF_T_INT || d->type == NF_T_BOOL) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll (value, &end, 10);
        if (errno || !*value || *end || v < d->min || v > d->max) {
            fprintf (stderr, "%s: %s: '%s' is not a whole number from %lld to %lld\n", self->name,
                     origin, value, (long long) d->min, (long long) d->max);
            return -1;
        }
    }
    if (i == NF_CFG_LOG_LEVEL) {
        nf_log_level_t level;
        if (nf_log_level_parse (value, &level) != 0) {
            fprintf (stderr, "%s: %s: '%s' is not one of debug, info, warn, error\n", self->name,
                     origin, value);
            return -1;
        }
    }
    return 0;
}

void
nf_config_set_service (nf_config_t *self, const char *service)
{
    free (self->service);
    self->service = service ? strdup (service) : NULL;
}

void
nf_config_set (nf_config_t *self, nf_cfg_key_t key, const char *value)
{
    assert ((int) key >= 0 && key < NF_CFG_COUNT);
    free (self->values[key]);
    self->values[key] = strdup (value ? value : "");
}

/* Secret I from the file named by <ENV>_FILE, if set: its first line,
   trailing white space dropped. 0, or -1 (said on stderr). */
static int
s_secret_file (nf_config_t *self, int i)
{
    char var[80];
    snprintf (var, sizeof var, "%s_FILE", s_defs[i].env);
    const char *path = getenv (var);
    if (!path || !*path)
        return 0;
    if (getenv (s_defs[i].env)) {
        fprintf (stderr, "%s: set %s or %s, not both\n", self->name, s_defs[i].env, var);
        return -1;
    }
    nf_buf_t b;
    nf_buf_init (&b);
    if (nf_buf_read_file (&b, path, 65536) != 0) {
        fprintf (stderr, "%s: %s: cannot read '%s': %s\n", self->name, var, path, strerror (errno));
        nf_buf_free (&b);
        return -1;
    }
    size_t n = b.data ? strcspn (b.data, "\r\n") : 0;
    while (n && (b.data[n - 1] == ' ' || b.data[n - 1] == '\t'))
        n--;
    if (b.data)
        b.data[n] = 0;
    nf_config_set (self, (nf_cfg_key_t) i, b.data ? b.data : "");
    nf_buf_free (&b);
    return 0;
}

nf_err_t
nf_config_load (nf_config_t *self, int argc, char **argv)
{
    for (int i = 0; i < NF_CFG_COUNT; i++) {
        const char *env = getenv (s_defs[i].env);
        if (env) {
            if (s_check (self, i, env, s_defs[i].env) != 0)
                return NF_ERR_INVALID;
            nf_config_set (self, (nf_cfg_key_t) i, env);
        }
        if (s_defs[i].type == NF_T_SECRET && s_secret_file (self, i) != 0)
            return NF_ERR_INVALID;
    }
    free (self->argv);
    self->argv = calloc ((size_t) argc + 1, sizeof (char *));
    self->argc = 0;
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            self->help = true;
            continue;
        }
        if (strcmp (arg, "--version") == 0) {
            self->version = true;
            continue;
        }
        bool matched = false;
        if (strncmp (arg, "--", 2) == 0) {
            const char *name = arg + 2;
            const char *eq = strchr (name, '=');
            size_t nlen = eq ? (size_t) (eq - name) : strlen (name);
            for (int i = 0; i < NF_CFG_COUNT; i++) {
                if (strlen (s_defs[i].key) != nlen || strncmp (s_defs[i].key, name, nlen) != 0)
                    continue;
                if (s_defs[i].type == NF_T_SECRET) {
                    fprintf (stderr,
                             "%s: --%s: a secret is never a flag (flags show in ps); set %s or "
                             "%s_FILE\n",
                             self->name, s_defs[i].key, s_defs[i].env, s_defs[i].env);
                    return NF_ERR_INVALID;
                }
                const char *value = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
                if (!value) {
                    fprintf (stderr, "%s: --%s needs a value\n", self->name, s_defs[i].key);
                    return NF_ERR_INVALID;
                }
                char origin[80];
                snprintf (origin, sizeof origin, "--%s", s_defs[i].key);
                if (s_check (self, i, value, origin) != 0)
                    return NF_ERR_INVALID;
                nf_config_set (self, (nf_cfg_key_t) i, value);
                matched = true;
                break;
            }
        }
        if (!matched)
            self->argv[self->argc++] = argv[a];
    }
    return NF_OK;
}

int
nf_config_argc (nf_config_t *self)
{
    return self->argc;
}

const char *
nf_config_arg (nf_config_t *self, int index)
{
    return index >= 0 && index < self->argc ? self->argv[index] : NULL;
}

bool
nf_config_wants_help (nf_config_t *self)
{
    return self->help;
}

bool
nf_config_wants_version (nf_config_t *self)
{
    return self->version;
}

const char *
nf_config_str (nf_config_t *self, nf_cfg_key_t key)
{
    return self->values[key];
}

int64_t
nf_config_int (nf_config_t *self, nf_cfg_key_t key)
{
    return strtoll (self->values[key], NULL, 10);
}

bool
nf_config_bool (nf_config_t *self, nf_cfg_key_t key)
{
    return nf_config_int (self, key) != 0;
}

void
nf_config_print_help (nf_config_t *self, FILE *out)
{
    fprintf (out, "Settings (flag, environment variable, default):\n");
    for (int i = 0; i < NF_CFG_COUNT; i++) {
        if (!(s_defs[i].programs & self->program))
            continue;
        if (s_defs[i].stage && !(s_defs[i].programs & self->program & NF_PROG_WEB)
            && (!self->service
                || !nf_word_in (s_defs[i].stage, self->service, strlen (self->service))))
            continue;
        if (s_defs[i].type == NF_T_SECRET)
            fprintf (out, "  %-20s %-22s (or %s_FILE)\n      %s\n", "(no flag)", s_defs[i].env,
                     s_defs[i].env, s_defs[i].help);
        else
            fprintf (out, "  --%-18s %-22s [%s]\n      %s\n", s_defs[i].key, s_defs[i].env,
                     s_defs[i].dflt, s_defs[i].help);
    }
    fprintf (out, "  --help, --version\n");
}

void
nf_config_print_markdown (FILE *out)
{
    static const char *progs[] = {"",       "broker",         "worker",         "broker, worker",
                                  "client", "broker, client", "worker, client", "all"};
    fprintf (out, "| variable | flag | default | used by | meaning |\n|---|---|---|---|---|\n");
    for (int i = 0; i < NF_CFG_COUNT; i++) {
        char used[64];
        if (s_defs[i].stage)
            snprintf (used, sizeof used, "`%s` worker%s%s", s_defs[i].stage,
                      strchr (s_defs[i].stage, ' ') ? "s" : "",
                      s_defs[i].programs & NF_PROG_WEB ? ", nf-web" : "");
        else if (s_defs[i].programs == NF_PROG_WEB)
            snprintf (used, sizeof used, "nf-web");
        else
            snprintf (used, sizeof used, "%s", progs[s_defs[i].programs & 7]);
        if (s_defs[i].type == NF_T_SECRET)
            fprintf (out, "| `%s` | none (or the file `%s_FILE`) | `` | %s | %s |\n", s_defs[i].env,
                     s_defs[i].env, used, s_defs[i].help);
        else
            fprintf (out, "| `%s` | `--%s` | `%s` | %s | %s |\n", s_defs[i].env, s_defs[i].key,
                     s_defs[i].dflt, used, s_defs[i].help);
    }
}

void
nf_config_apply_logging (nf_config_t *self)
{
    nf_log_level_t level = NF_LOG_INFO;
    nf_log_level_parse (nf_config_str (self, NF_CFG_LOG_LEVEL), &level);
    nf_log_init (self->name, level, nf_config_bool (self, NF_CFG_LOG_JSON));
}

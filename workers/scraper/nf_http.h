/*  nf_http: the scraper's polite HTTP GET (libcurl).

    Every request goes through, in order:
      cache         a fresh copy in NF_CACHE_DIR answers without a request;
                    a stale one with an ETag is revalidated (If-None-Match,
                    304 refreshes it). Only GET answers with status 200 and
                    a body that is not empty or blank are stored (YouTube
                    answers a gated request with an empty 200: never a
                    copy to keep); a request marked no_store (signed URLs
                    and the answers that carry them, which expire) neither
                    reads nor writes it. The file name is a hash of the URL
                    without its `key=` parameter.
      politeness    a token bucket per host (NF_HTTP_RATE requests/s, burst
                    NF_HTTP_BURST) and a random delay in NF_HTTP_DELAY_MS
                    ("MIN-MAX") between requests to one host. A request
                    marked unpaced skips both: the Data API's, which are
                    made with a key and limited by its quota, not by a
                    site's tolerance of scrapers (its rate errors are
                    retried with the backoff below like any other).
      identity      a user agent from the rotation list (built in, or one per
                    line in NF_USER_AGENTS) and a proxy from NF_PROXIES
                    (comma list; "" goes direct).
      limits        NF_HTTP_TIMEOUT_MS per request, NF_HTTP_MAX_BYTES per
                    body (a larger body aborts the transfer).
    Then the answer is classified:
      OK            2xx (and 304 served from the cache)
      GONE          404 and 410: permanent
      BLOCKED       429; a captcha page ("unusual traffic", g-recaptcha)
                    at 403 or at 200; a redirect to a consent page
      TRANSIENT     5xx, timeouts, resets, connection errors, a cut body
      TOO_BIG       a body over the cap
      CLIENT        any other 4xx: the caller reads the body (API errors)
    BLOCKED and TRANSIENT answers are retried inside the call up to
    NF_HTTP_RETRIES times: Retry-After honoured (at most NF_HTTP_MAX_WAIT_MS),
    else capped exponential backoff; a block also rotates the user agent and
    marks the proxy unhealthy for a cool-down (doubling per strike), so the
    next request leaves through another one. */
#ifndef NF_HTTP_H
#define NF_HTTP_H

#include "nf_util.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    NF_HTTP_OK,
    NF_HTTP_GONE,
    NF_HTTP_BLOCKED,
    NF_HTTP_TRANSIENT,
    NF_HTTP_TOO_BIG,
    NF_HTTP_CLIENT,
} nf_http_class_t;

typedef struct {
    long timeout_ms;                 /* per request */
    size_t max_bytes;                /* body cap */
    int retries;                     /* extra requests after a block or a transient failure */
    double rate;                     /* requests per second per host; 0: unlimited */
    int burst;                       /* token bucket size */
    long delay_min_ms, delay_max_ms; /* random pause before each request */
    long max_wait_ms;                /* cap on one Retry-After or backoff wait */
    long backoff_base_ms;            /* first backoff when no Retry-After */
    const char *proxies;             /* comma list, or "" */
    const char *user_agents;         /* file with one per line, or "" for the built-in list */
    const char *cache_dir;           /* "" disables the cache */
    long cache_ttl_s;                /* fresh for this long */
    int64_t cache_max_bytes;         /* the folder's cap; least recently used evicted (0: none) */
} nf_http_opts_t;

typedef struct {
    long status; /* final HTTP status, 0 when none */
    nf_http_class_t klass;
    nf_buf_t body;   /* the body (from the network or the cache) */
    bool from_cache; /* served from the cache (fresh or revalidated) */
    int requests;    /* HTTP requests this call made */
    char error[512]; /* what went wrong, when not OK */
} nf_http_resp_t;

typedef struct nf_http_t nf_http_t;

/* A client; NULL with ERR on a bad option (unreadable user-agent file,
   cache folder that cannot be made). OPTS strings are copied. */
nf_http_t *nf_http_new (const nf_http_opts_t *opts, char *err, size_t errlen);
void nf_http_destroy (nf_http_t **self_p);

/* Parse "MIN-MAX" or "N" milliseconds. 0, or -1. */
int nf_http_parse_range (const char *text, long *min, long *max);

void nf_http_resp_init (nf_http_resp_t *r);
void nf_http_resp_free (nf_http_resp_t *r);

/* How one request differs from a plain GET (all fields optional). */
typedef struct {
    const char *body;           /* a POST body (then the method is POST), or NULL */
    size_t body_len;            /* its length */
    const char *content_type;   /* of the body */
    const char *user_agent;     /* instead of the rotation's (a client profile's) */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated */
    bool no_store;              /* bypass the cache both ways */
    bool unpaced;               /* no politeness wait: a Data API call (see above) */
} nf_http_req_t;

/* GET URL into R (reset first). Returns R->klass. */
nf_http_class_t nf_http_get (nf_http_t *self, const char *url, nf_http_resp_t *r);

/* R's body as the cached copy of URL (when the cache is on): for a caller
   that found the cached copy unusable and fetched it again with no_store. */
void nf_http_cache_replace (nf_http_t *self, const char *url, const nf_http_resp_t *r);

/* URL with REQ's method, body, headers and cache rule (NULL: as nf_http_get).
   POST answers are never cached. */
nf_http_class_t nf_http_request (nf_http_t *self, const char *url, const nf_http_req_t *req,
                                 nf_http_resp_t *r);

/* A block seen in an answer that was otherwise fine (a bot check inside a
   player answer): the next request leaves with another user agent and,
   with proxies, through another proxy. */
void nf_http_note_block (nf_http_t *self);

/* True when LEN bytes of BODY are empty or only white space. */
bool nf_http_blank (const char *body, size_t len);

/* Retry-After (seconds or an HTTP date) in milliseconds from NOW (epoch
   seconds), or -1 when VALUE is neither. */
long nf_http_retry_after_ms (const char *value, double now);

/* True when an answer is a block page: an HTML document (past blanks, it
   opens with <!DOCTYPE html or <html, any case) whose first 64 KiB say
   "unusual traffic", "g-recaptcha" or "captcha-form" (any case). JSON and
   timed text never are, whatever their texts say: a video described as
   "unusual traffic on the M25" is not a captcha. */
bool nf_http_is_block_page (const char *body, size_t len);

/* SHA-256 of the URL without its key= parameter (the secret never shapes
   a file name), as 64 hex digits: the cache file's name. The entry also
   stores that URL and answers only for it. */
void nf_http_cache_key (const char *url, char out[65]);
/* A stable id derived from URL (a template source's video id): the first
   16 hex digits of its cache key. */
void nf_http_url_id (const char *url, char out[17]);

#endif

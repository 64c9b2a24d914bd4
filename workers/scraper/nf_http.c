/*  nf_http: see nf_http.h. One curl easy handle per client (a worker runs
    one task at a time), so connections to a host are kept alive. */
#define _GNU_SOURCE /* strcasestr */
#include "nf_http.h"
#include "nf_log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#define MAX_HOSTS     32
#define MAX_LIST      64
#define MAX_REDIRECTS 3
#define CACHE_MAGIC   "NFCACHE2\n" /* then the URL, the time stored, the ETag, the body */

static const char *const s_builtin_agents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
};

typedef struct {
    char host[128];
    double tokens;
    int64_t last_ms;
} s_host_t;

typedef struct {
    char *url;
    int64_t bad_until_ms; /* unhealthy until then */
    int strikes;
} s_proxy_t;

struct nf_http_t {
    nf_http_opts_t opts;
    char *proxies_text, *agents_text, *cache_dir;
    CURL *curl;
    s_host_t hosts[MAX_HOSTS];
    int nhosts;
    s_proxy_t proxies[MAX_LIST];
    int nproxies, proxy;
    char *agents[MAX_LIST];
    int nagents, agent;
    uint64_t rng;
    int64_t cache_bytes; /* the cache folder's size, as last counted plus what was stored since */
};

static void s_cache_open (nf_http_t *self);

/* ---- small helpers --------------------------------------------------------- */

static double
s_random (nf_http_t *self)
{
    self->rng ^= self->rng << 13;
    self->rng ^= self->rng >> 7;
    self->rng ^= self->rng << 17;
    return (double) (self->rng >> 11) * (1.0 / 9007199254740992.0);
}

static void
s_sleep_ms (int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* "host/path" of URL, without scheme, credentials or query: safe to log. */
static void
s_redact (const char *url, char *out, size_t cap)
{
    const char *p = strstr (url, "://");
    p = p ? p + 3 : url;
    const char *at = strchr (p, '@'), *slash = strchr (p, '/');
    if (at && (!slash || at < slash))
        p = at + 1;
    size_t n = strcspn (p, "?#");
    snprintf (out, cap, "%.*s", (int) (n < 200 ? n : 200), p);
}

static void
s_host_of (const char *url, char *out, size_t cap)
{
    const char *p = strstr (url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn (p, "/?#");
    snprintf (out, cap, "%.*s", (int) (n < cap - 1 ? n : cap - 1), p);
}

int
nf_http_parse_range (const char *text, long *min, long *max)
{
    char *end = NULL;
    long a = strtol (text, &end, 10), b = a;
    if (end == text || a < 0)
        return -1;
    if (*end == '-') {
        const char *q = end + 1;
        b = strtol (q, &end, 10);
        if (end == q || b < a)
            return -1;
    }
    if (*end)
        return -1;
    *min = a;
    *max = b;
    return 0;
}

long
nf_http_retry_after_ms (const char *value, double now)
{
    if (!value)
        return -1;
    while (*value == ' ')
        value++;
    char *end = NULL;
    long secs = strtol (value, &end, 10);
    if (end != value && (*end == 0 || *end == '\r' || *end == '\n' || *end == ' '))
        return secs < 0 ? -1 : secs * 1000;
    time_t at = curl_getdate (value, NULL);
    if (at < 0)
        return -1;
    double ms = ((double) at - now) * 1000.0;
    return ms < 0 ? 0 : (long) ms;
}

/* True when the N bytes at P start with NEEDLE, in any case. */
static bool
s_starts_nocase (const char *p, size_t n, const char *needle)
{
    size_t k = strlen (needle);
    return n >= k && strncasecmp (p, needle, k) == 0;
}

bool
nf_http_is_block_page (const char *body, size_t len)
{
    if (!body)
        return false;
    size_t i = 0;
    if (len >= 3 && memcmp (body, "\xef\xbb\xbf", 3) == 0)
        i = 3; /* a UTF-8 byte order mark */
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (!s_starts_nocase (body + i, len - i, "<!doctype html")
        && !s_starts_nocase (body + i, len - i, "<html"))
        return false;
    /* One pass, no copy: a needle can only start where its first letter is
       (every answer comes through here, a watch page is 1 MB). */
    size_t n = len < 65536 ? len : 65536;
    for (; i < n; i++) {
        const char *p = body + i;
        switch (tolower ((unsigned char) *p)) {
        case 'u':
            if (s_starts_nocase (p, n - i, "unusual traffic"))
                return true;
            break;
        case 'g':
            if (s_starts_nocase (p, n - i, "g-recaptcha"))
                return true;
            break;
        case 'c':
            if (s_starts_nocase (p, n - i, "captcha-form"))
                return true;
            break;
        default: break;
        }
    }
    return false;
}

/* URL without its key= parameter into B (the secret never reaches a file). */
static void
s_url_keyless (const char *url, nf_buf_t *b)
{
    size_t i = 0;
    while (url[i]) {
        if (i > 0 && (url[i - 1] == '?' || url[i - 1] == '&')
            && strncmp (url + i, "key=", 4) == 0) {
            i += strcspn (url + i, "&#");
            if (url[i] == '&')
                i++;
            continue;
        }
        nf_buf_append (b, url + i, 1);
        i++;
    }
    if (b->len && (b->data[b->len - 1] == '&' || b->data[b->len - 1] == '?'))
        b->data[--b->len] = 0; /* the key was the last parameter */
}

void
nf_http_cache_key (const char *url, char out[65])
{
    nf_buf_t b;
    nf_buf_init (&b);
    s_url_keyless (url, &b);
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, (const unsigned char *) (b.data ? b.data : ""), b.len);
    sodium_bin2hex (out, 65, hash, sizeof hash);
    nf_buf_free (&b);
}

void
nf_http_url_id (const char *url, char out[17])
{
    char key[65];
    nf_http_cache_key (url, key);
    snprintf (out, 17, "%.16s", key);
}

/* ---- construction -------------------------------------------------------------- */

static int
s_split (char *text, const char *sep, char **items, int cap)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r (text, sep, &save); t && n < cap; t = strtok_r (NULL, sep, &save)) {
        while (*t == ' ' || *t == '\t')
            t++;
        size_t len = strlen (t);
        while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '\r'))
            t[--len] = 0;
        if (*t && *t != '#')
            items[n++] = t;
    }
    return n;
}

nf_http_t *
nf_http_new (const nf_http_opts_t *opts, char *err, size_t errlen)
{
    nf_http_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = *opts;
    if (sodium_init () < 0) { /* SHA-256 of the cache keys */
        snprintf (err, errlen, "libsodium cannot start");
        free (self);
        return NULL;
    }
    self->proxies_text = strdup (opts->proxies ? opts->proxies : "");
    self->cache_dir = strdup (opts->cache_dir ? opts->cache_dir : "");
    self->opts.proxies = self->proxies_text;
    self->opts.cache_dir = self->cache_dir;
    self->opts.user_agents = NULL;
    self->rng = (uint64_t) time (NULL) ^ ((uint64_t) getpid () << 32) ^ (uintptr_t) self;
    if (!self->rng)
        self->rng = 88172645463325252ULL;
    char *items[MAX_LIST];
    int n = s_split (self->proxies_text, ",", items, MAX_LIST);
    for (int i = 0; i < n; i++)
        self->proxies[self->nproxies++].url = items[i];
    if (opts->user_agents && *opts->user_agents) {
        nf_buf_t b;
        nf_buf_init (&b);
        if (nf_buf_read_file (&b, opts->user_agents, 1 << 20) != 0) {
            snprintf (err, errlen, "cannot read user agents from %s: %s", opts->user_agents,
                      strerror (errno));
            nf_buf_free (&b);
            nf_http_destroy (&self);
            return NULL;
        }
        self->agents_text = b.data ? b.data : strdup ("");
        self->nagents = s_split (self->agents_text, "\n", self->agents, MAX_LIST);
        if (self->nagents == 0) {
            snprintf (err, errlen, "%s lists no user agents", opts->user_agents);
            nf_http_destroy (&self);
            return NULL;
        }
    }
    else
        for (size_t i = 0; i < sizeof s_builtin_agents / sizeof s_builtin_agents[0]; i++)
            self->agents[self->nagents++] = (char *) s_builtin_agents[i];
    self->agent = (int) (s_random (self) * self->nagents);
    if (*self->cache_dir && mkdir (self->cache_dir, 0700) != 0 && errno != EEXIST) {
        snprintf (err, errlen, "cannot make the cache folder %s: %s", self->cache_dir,
                  strerror (errno));
        nf_http_destroy (&self);
        return NULL;
    }
    s_cache_open (self);
    self->curl = curl_easy_init ();
    if (!self->curl) {
        snprintf (err, errlen, "curl_easy_init failed");
        nf_http_destroy (&self);
        return NULL;
    }
    return self;
}

void
nf_http_destroy (nf_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_http_t *self = *self_p;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    free (self->proxies_text);
    free (self->agents_text);
    free (self->cache_dir);
    free (self);
    *self_p = NULL;
}

void
nf_http_resp_init (nf_http_resp_t *r)
{
    memset (r, 0, sizeof *r);
    nf_buf_init (&r->body);
}

void
nf_http_resp_free (nf_http_resp_t *r)
{
    nf_buf_free (&r->body);
}

/* ---- proxies ------------------------------------------------------------------------ */

/* Index of the proxy to use: the current one if healthy, else the next
   healthy one, else the one that recovers first. -1: direct. */
static int
s_pick_proxy (nf_http_t *self)
{
    if (self->nproxies == 0)
        return -1;
    int64_t now = nf_clock_ms ();
    int best = self->proxy;
    for (int i = 0; i < self->nproxies; i++) {
        int k = (self->proxy + i) % self->nproxies;
        if (self->proxies[k].bad_until_ms <= now) {
            self->proxy = k;
            return k;
        }
        if (self->proxies[k].bad_until_ms < self->proxies[best].bad_until_ms)
            best = k;
    }
    self->proxy = best;
    return best;
}

static void
s_proxy_strike (nf_http_t *self, int k)
{
    if (k < 0)
        return;
    s_proxy_t *p = &self->proxies[k];
    if (p->strikes < 10)
        p->strikes++;
    p->bad_until_ms = nf_clock_ms () + (int64_t) 30000 * (1 << (p->strikes - 1));
    self->proxy = (k + 1) % self->nproxies;
}

/* ---- politeness ------------------------------------------------------------------ */

static void
s_polite_wait (nf_http_t *self, const char *url)
{
    char host[128];
    s_host_of (url, host, sizeof host);
    s_host_t *h = NULL;
    for (int i = 0; i < self->nhosts && !h; i++)
        if (strcmp (self->hosts[i].host, host) == 0)
            h = &self->hosts[i];
    if (!h) {
        h = &self->hosts[self->nhosts < MAX_HOSTS ? self->nhosts++ : MAX_HOSTS - 1];
        snprintf (h->host, sizeof h->host, "%s", host);
        h->tokens = self->opts.burst > 0 ? self->opts.burst : 1;
        h->last_ms = nf_clock_ms ();
    }
    if (self->opts.rate > 0) {
        int64_t now = nf_clock_ms ();
        double cap = self->opts.burst > 0 ? self->opts.burst : 1;
        h->tokens += (double) (now - h->last_ms) / 1000.0 * self->opts.rate;
        if (h->tokens > cap)
            h->tokens = cap;
        h->last_ms = now;
        if (h->tokens < 1.0) {
            int64_t wait = (int64_t) ((1.0 - h->tokens) / self->opts.rate * 1000.0) + 1;
            s_sleep_ms (wait);
            h->tokens += (double) wait / 1000.0 * self->opts.rate;
            h->last_ms = nf_clock_ms ();
        }
        h->tokens -= 1.0;
    }
    if (self->opts.delay_max_ms > 0)
        s_sleep_ms (self->opts.delay_min_ms
                    + (int64_t) (s_random (self)
                                 * (double) (self->opts.delay_max_ms - self->opts.delay_min_ms)));
}

/* ---- the cache --------------------------------------------------------------------- */

/* An entry is the file <dir>/<SHA-256 of the key-less URL>: CACHE_MAGIC,
   the key-less URL, the time it was stored, the ETag, then the body. Its
   modification time is when it was last used: a hit touches it, and
   eviction removes the least recently used first. */

static void
s_cache_path (nf_http_t *self, const char *url, char *out, size_t cap)
{
    char key[65];
    nf_http_cache_key (url, key);
    snprintf (out, cap, "%s/%s", self->cache_dir, key);
}

/* Load the cached copy of URL: 0 with BODY, ETAG and its age, or -1 (none,
   unreadable, or an entry of another URL). */
static int
s_cache_load (nf_http_t *self, const char *url, nf_buf_t *body, char *etag, size_t etagcap,
              double *age_s)
{
    char path[4200];
    s_cache_path (self, url, path, sizeof path);
    nf_buf_t b, want;
    nf_buf_init (&b);
    nf_buf_init (&want);
    s_url_keyless (url, &want);
    int rc = -1;
    if (nf_buf_read_file (&b, path, self->opts.max_bytes + 8192 + 2 * want.len) != 0
        || b.len < sizeof CACHE_MAGIC || memcmp (b.data, CACHE_MAGIC, sizeof CACHE_MAGIC - 1) != 0)
        goto done;
    char *u = b.data + sizeof CACHE_MAGIC - 1;
    char *nl0 = strchr (u, '\n');
    char *nl1 = nl0 ? strchr (nl0 + 1, '\n') : NULL, *nl2 = nl1 ? strchr (nl1 + 1, '\n') : NULL;
    if (!nl2)
        goto done;
    if ((size_t) (nl0 - u) != want.len || memcmp (u, want.data ? want.data : "", want.len) != 0) {
        nf_debug ("cache: %s holds another URL's answer; not used", path);
        goto done;
    }
    double stored = strtod (nl0 + 1, NULL);
    snprintf (etag, etagcap, "%.*s", (int) (nl2 - nl1 - 1), nl1 + 1);
    *age_s = (double) time (NULL) - stored;
    nf_buf_reset (body);
    nf_buf_append (body, nl2 + 1, b.len - (size_t) (nl2 + 1 - b.data));
    utime (path, NULL); /* used now: the last to be evicted */
    rc = 0;
done:
    nf_buf_free (&b);
    nf_buf_free (&want);
    return rc;
}

typedef struct {
    char name[72];
    time_t used;
    int64_t size;
} s_entry_t;

static int
s_entry_cmp (const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    return x->used < y->used ? -1 : x->used > y->used ? 1 : strcmp (x->name, y->name);
}

/* The cache folder's entries (N of them) and their total size; every
   process that shares the folder counts what is there. NULL when it cannot
   be read. */
static s_entry_t *
s_cache_list (nf_http_t *self, size_t *n, int64_t *total)
{
    *n = 0;
    *total = 0;
    DIR *dir = opendir (self->cache_dir);
    if (!dir)
        return NULL;
    size_t cap = 256;
    s_entry_t *list = malloc (cap * sizeof *list);
    if (!list)
        abort (); /* nicheflow's out-of-memory policy (nf_util.h) */
    for (struct dirent *de = readdir (dir); de; de = readdir (dir)) {
        struct stat st;
        char path[4200];
        if (strlen (de->d_name) != 64) /* entries only: not ".", "..", nor a .tmp */
            continue;
        snprintf (path, sizeof path, "%s/%s", self->cache_dir, de->d_name);
        if (stat (path, &st) != 0 || !S_ISREG (st.st_mode))
            continue;
        if (*n == cap) {
            s_entry_t *grown = realloc (list, 2 * cap * sizeof *list);
            if (!grown)
                break;
            list = grown;
            cap *= 2;
        }
        memcpy (list[*n].name, de->d_name, 65); /* 64 hex digits and the NUL */
        list[*n].used = st.st_mtime;
        list[*n].size = (int64_t) st.st_size;
        *total += list[(*n)++].size;
    }
    closedir (dir);
    return list;
}

/* Near the cap (this process's count, which does not see what other
   processes sharing the folder stored since, is over 90 % of it): count
   the folder again and, over 70 %, remove the least recently used entries
   until it is at 70 %. So a process stores at most 20 % of the cap
   between two counts: one process per folder stays under the cap. */
static void
s_cache_evict (nf_http_t *self)
{
    size_t n;
    int64_t total;
    s_entry_t *list = s_cache_list (self, &n, &total);
    if (!list)
        return;
    qsort (list, n, sizeof *list, s_entry_cmp);
    int64_t goal = self->opts.cache_max_bytes / 10 * 7;
    size_t gone = 0;
    for (size_t i = 0; i < n && total > goal; i++) {
        char path[4200];
        snprintf (path, sizeof path, "%s/%s", self->cache_dir, list[i].name);
        if (unlink (path) == 0 || errno == ENOENT) {
            total -= list[i].size;
            gone++;
        }
    }
    nf_debug ("cache: %zu least recently used entries evicted; %lld bytes left (cap %lld)", gone,
              (long long) total, (long long) self->opts.cache_max_bytes);
    self->cache_bytes = total;
    free (list);
}

/* At start: what an earlier run left counts against the cap. */
static void
s_cache_open (nf_http_t *self)
{
    if (!*self->cache_dir)
        return;
    size_t n;
    free (s_cache_list (self, &n, &self->cache_bytes));
    if (self->opts.cache_max_bytes > 0 && self->cache_bytes > self->opts.cache_max_bytes / 10 * 9)
        s_cache_evict (self);
}

static void
s_cache_store (nf_http_t *self, const char *url, const char *etag, const char *body, size_t len)
{
    char path[4200], tmp[4300];
    nf_buf_t keyless;
    nf_buf_init (&keyless);
    s_url_keyless (url, &keyless);
    if (!keyless.data || strchr (keyless.data, '\n') || (etag && strchr (etag, '\n'))) {
        nf_buf_free (&keyless);
        return; /* not an entry's line: never stored */
    }
    s_cache_path (self, url, path, sizeof path);
    snprintf (tmp, sizeof tmp, "%s.%d.%lx.tmp", path, (int) getpid (),
              (unsigned long) (uintptr_t) self);
    FILE *f = fopen (tmp, "wb");
    if (!f) {
        nf_warn ("cache: cannot write %s: %s", tmp, strerror (errno));
        nf_buf_free (&keyless);
        return;
    }
    struct stat old;
    int64_t had = stat (path, &old) == 0 ? (int64_t) old.st_size : 0;
    int head = fprintf (f, "%s%s\n%lld\n%s\n", CACHE_MAGIC, keyless.data, (long long) time (NULL),
                        etag ? etag : "");
    size_t w = fwrite (body, 1, len, f);
    nf_buf_free (&keyless);
    if (fclose (f) != 0 || w != len || head < 0 || rename (tmp, path) != 0) {
        nf_warn ("cache: cannot store %s", path);
        unlink (tmp);
        return;
    }
    self->cache_bytes += (int64_t) len + head - had;
    if (self->opts.cache_max_bytes > 0 && self->cache_bytes > self->opts.cache_max_bytes / 10 * 9)
        s_cache_evict (self);
}

/* ---- one request --------------------------------------------------------------------- */

typedef struct {
    nf_buf_t *body;
    size_t max;
    bool too_big;
    char retry_after[64];
    char etag[128];
} s_xfer_t;

static size_t
s_on_body (char *data, size_t size, size_t n, void *arg)
{
    s_xfer_t *x = arg;
    size_t len = size * n;
    if (x->body->len + len > x->max) {
        x->too_big = true;
        return 0;
    }
    nf_buf_append (x->body, data, len);
    return len;
}

static void
s_header_value (const char *data, size_t len, size_t skip, char *out, size_t cap)
{
    const char *v = data + skip;
    size_t n = len - skip;
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    snprintf (out, cap, "%.*s", (int) (n < cap - 1 ? n : cap - 1), v);
}

static size_t
s_on_header (char *data, size_t size, size_t n, void *arg)
{
    s_xfer_t *x = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp (data, "retry-after:", 12) == 0)
        s_header_value (data, len, 12, x->retry_after, sizeof x->retry_after);
    else if (len > 5 && strncasecmp (data, "etag:", 5) == 0)
        s_header_value (data, len, 5, x->etag, sizeof x->etag);
    return len;
}

bool
nf_http_blank (const char *body, size_t len)
{
    for (size_t i = 0; body && i < len; i++)
        if (body[i] != ' ' && body[i] != '\n' && body[i] != '\r' && body[i] != '\t')
            return false;
    return true;
}

void
nf_http_note_block (nf_http_t *self)
{
    self->agent = (self->agent + 1) % self->nagents;
    if (self->nproxies > 0)
        s_proxy_strike (self, self->proxy);
}

void
nf_http_cache_replace (nf_http_t *self, const char *url, const nf_http_resp_t *r)
{
    if (*self->cache_dir)
        s_cache_store (self, url, "", r->body.data ? r->body.data : "", r->body.len);
}

nf_http_class_t
nf_http_get (nf_http_t *self, const char *url, nf_http_resp_t *r)
{
    return nf_http_request (self, url, NULL, r);
}

/* One call of nf_http_request: what its attempts share. */
typedef struct {
    const char *url;          /* as asked (the cache key) */
    const nf_http_req_t *req; /* method, body, headers */
    char safe[256];           /* URL with secrets redacted, for messages */
    char target[4096];        /* where the next attempt goes (after redirects) */
    int redirects;            /* followed so far */
    bool use_cache, cached;   /* may use the cache; a stale copy exists */
    char etag[128];           /* its ETag, for If-None-Match */
    nf_buf_t stale;           /* the stale copy, for a 304 */
    int proxy;                /* this attempt's proxy, or -1 */
} s_call_t;

/* Set up the easy handle for one attempt of CALL; the header list to free. */
static struct curl_slist *
s_attempt_setup (nf_http_t *self, s_call_t *call, s_xfer_t *x)
{
    const nf_http_req_t *req = call->req;
    CURL *c = self->curl;
    curl_easy_reset (c);
    struct curl_slist *headers = curl_slist_append (NULL, "Accept-Language: en-US,en;q=0.9");
    char line[160];
    if (call->cached && *call->etag) {
        snprintf (line, sizeof line, "If-None-Match: %s", call->etag);
        headers = curl_slist_append (headers, line);
    }
    if (req->body && req->content_type) {
        snprintf (line, sizeof line, "Content-Type: %s", req->content_type);
        headers = curl_slist_append (headers, line);
    }
    for (const char *const *h = req->headers; h && *h; h++)
        headers = curl_slist_append (headers, *h);
    curl_easy_setopt (c, CURLOPT_URL, call->target);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);
    if (req->body && call->redirects == 0) {
        curl_easy_setopt (c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
    }
    curl_easy_setopt (c, CURLOPT_USERAGENT,
                      req->user_agent ? req->user_agent
                                      : self->agents[self->agent % self->nagents]);
    curl_easy_setopt (c, CURLOPT_PROXY, call->proxy >= 0 ? self->proxies[call->proxy].url : "");
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, self->opts.timeout_ms);
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT_MS, self->opts.timeout_ms);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt (c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) self->opts.max_bytes);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
    return headers;
}

/* What an attempt's outcome asks for. */
typedef enum { S_DONE, S_RETRY, S_REDIRECT } s_next_t;

/* A transfer that failed (RC): too big (done) or transient (retry). */
static s_next_t
s_on_failure (nf_http_t *self, s_call_t *call, const s_xfer_t *x, CURLcode rc, nf_http_resp_t *r)
{
    if (x->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        r->klass = NF_HTTP_TOO_BIG;
        snprintf (r->error, sizeof r->error, "%s: body larger than %zu bytes", call->safe,
                  self->opts.max_bytes);
        return S_DONE;
    }
    r->klass = NF_HTTP_TRANSIENT;
    snprintf (r->error, sizeof r->error, "%s: %s", call->safe, curl_easy_strerror (rc));
    if (call->proxy >= 0
        && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_PROXY
            || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR))
        s_proxy_strike (self, call->proxy);
    return S_RETRY;
}

/* A 3xx: a consent redirect is a block, others are followed a few times. */
static s_next_t
s_on_redirect (nf_http_t *self, s_call_t *call, long status, nf_http_resp_t *r)
{
    char *loc = NULL;
    curl_easy_getinfo (self->curl, CURLINFO_REDIRECT_URL, &loc);
    if (loc && strstr (loc, "consent.")) {
        r->klass = NF_HTTP_BLOCKED;
        snprintf (r->error, sizeof r->error, "%s: redirected to a consent page", call->safe);
        return S_RETRY;
    }
    if (loc && call->redirects < MAX_REDIRECTS) {
        snprintf (call->target, sizeof call->target, "%s", loc);
        call->redirects++;
        return S_REDIRECT;
    }
    r->klass = NF_HTTP_CLIENT;
    snprintf (r->error, sizeof r->error, "%s: HTTP %ld redirect loop", call->safe, status);
    return S_DONE;
}

/* An answer with STATUS: its class, and whether to retry (WAIT: the
   server's Retry-After in ms, or -1). */
static s_next_t
s_on_status (nf_http_t *self, s_call_t *call, const s_xfer_t *x, long status, nf_http_resp_t *r,
             long *wait)
{
    bool block_page = nf_http_is_block_page (r->body.data, r->body.len);
    const char *safe = call->safe;
    if (status == 304 && call->cached) {
        nf_buf_reset (&r->body);
        nf_buf_append (&r->body, call->stale.data ? call->stale.data : "", call->stale.len);
        s_cache_store (self, call->url, call->etag, call->stale.data ? call->stale.data : "",
                       call->stale.len);
        r->status = 200;
        r->from_cache = true;
        r->klass = NF_HTTP_OK;
        return S_DONE;
    }
    if (status >= 300 && status < 400)
        return s_on_redirect (self, call, status, r);
    if (status >= 200 && status < 300 && block_page) {
        r->klass = NF_HTTP_BLOCKED; /* a captcha page can come with a 200 */
        snprintf (r->error, sizeof r->error, "%s: blocked (HTTP %ld, captcha page)", safe, status);
        return S_RETRY;
    }
    if (status >= 200 && status < 300) {
        r->klass = NF_HTTP_OK;
        if (call->use_cache && status == 200 && !nf_http_blank (r->body.data, r->body.len))
            s_cache_store (self, call->url, x->etag, r->body.data ? r->body.data : "", r->body.len);
        return S_DONE;
    }
    bool blocked = status == 429 || (status == 403 && block_page);
    r->klass = status == 404 || status == 410 ? NF_HTTP_GONE
               : blocked                      ? NF_HTTP_BLOCKED
               : status >= 500                ? NF_HTTP_TRANSIENT
                                              : NF_HTTP_CLIENT;
    if (blocked)
        snprintf (r->error, sizeof r->error, "%s: blocked (HTTP %ld%s)", safe, status,
                  status == 403 ? ", captcha page" : "");
    else
        snprintf (r->error, sizeof r->error, "%s: HTTP %ld", safe, status);
    if (!blocked && status < 500)
        return S_DONE;
    *wait =
        nf_http_retry_after_ms (x->retry_after[0] ? x->retry_after : NULL, (double) time (NULL));
    return S_RETRY;
}

/* Before attempt ATTEMPT + 1: a block changes the user agent and strikes
   the proxy; then the backoff (or the server's WAIT), capped. */
static void
s_before_retry (nf_http_t *self, const s_call_t *call, int attempt, long wait,
                const nf_http_resp_t *r)
{
    if (wait < 0)
        wait = self->opts.backoff_base_ms * (1L << (attempt < 10 ? attempt : 10));
    if (wait > self->opts.max_wait_ms)
        wait = self->opts.max_wait_ms;
    if (r->klass == NF_HTTP_BLOCKED)
        nf_warn ("%s; new user agent%s, retrying in %ld ms", r->error,
                 call->proxy >= 0 ? " and proxy" : "", wait);
    else
        nf_debug ("%s; retrying in %ld ms", r->error, wait);
    s_sleep_ms (wait);
}

/* The fresh cached copy of CALL's URL into R (true), or false; keeps a
   stale copy and its ETag in CALL for a conditional request. */
static bool
s_from_cache (nf_http_t *self, s_call_t *call, nf_http_resp_t *r)
{
    double age = 0;
    call->cached =
        call->use_cache
        && s_cache_load (self, call->url, &r->body, call->etag, sizeof call->etag, &age) == 0;
    if (call->cached && age < (double) self->opts.cache_ttl_s) {
        r->from_cache = true;
        r->status = 200;
        r->klass = NF_HTTP_OK;
        return true;
    }
    if (call->cached)
        nf_buf_append (&call->stale, r->body.data ? r->body.data : "", r->body.len);
    return false;
}

nf_http_class_t
nf_http_request (nf_http_t *self, const char *url, const nf_http_req_t *req, nf_http_resp_t *r)
{
    static const nf_http_req_t plain = {0};
    s_call_t call = {.url = url, .req = req ? req : &plain, .proxy = -1};
    call.use_cache = *self->cache_dir && !call.req->no_store && !call.req->body;
    nf_buf_init (&call.stale);
    nf_buf_reset (&r->body);
    r->status = 0;
    r->from_cache = false;
    r->requests = 0;
    r->error[0] = 0;
    r->klass = NF_HTTP_TRANSIENT;
    s_redact (url, call.safe, sizeof call.safe);
    if (s_from_cache (self, &call, r)) {
        nf_buf_free (&call.stale);
        return r->klass;
    }
    snprintf (call.target, sizeof call.target, "%s", url);
    for (int attempt = 0; attempt <= self->opts.retries; attempt++) {
        nf_buf_reset (&r->body);
        s_xfer_t x = {&r->body, self->opts.max_bytes, false, "", ""};
        if (!call.req->unpaced)
            s_polite_wait (self, call.target);
        call.proxy = s_pick_proxy (self);
        struct curl_slist *headers = s_attempt_setup (self, &call, &x);
        CURLcode rc = curl_easy_perform (self->curl);
        curl_slist_free_all (headers);
        r->requests++;
        long status = 0, wait = -1;
        if (rc == CURLE_OK)
            curl_easy_getinfo (self->curl, CURLINFO_RESPONSE_CODE, &status);
        r->status = status;
        s_next_t next = rc != CURLE_OK ? s_on_failure (self, &call, &x, rc, r)
                                       : s_on_status (self, &call, &x, status, r, &wait);
        if (next == S_REDIRECT) {
            attempt--; /* a redirect is not a failure */
            continue;
        }
        if (next == S_DONE)
            break;
        if (r->klass == NF_HTTP_BLOCKED) {
            self->agent = (self->agent + 1) % self->nagents;
            s_proxy_strike (self, call.proxy);
        }
        if (attempt == self->opts.retries)
            break;
        s_before_retry (self, &call, attempt, wait, r);
    }
    nf_buf_free (&call.stale);
    return r->klass;
}

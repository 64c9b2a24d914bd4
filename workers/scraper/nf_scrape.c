/*  nf_scrape: see nf_scrape.h. */
#include "nf_scrape.h"
#include "nf_innertube.h"
#include "nf_log.h"
#include "nf_youtube.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Built-in templates (cmake/embed_text.cmake), in this order. */
extern const char *const nf_templates[];
extern const int nf_templates_count;
static const char *const s_template_names[] = {"youtube_watch", "simsite", "youtube_clients"};

#define BATCH 50

/* Not ok: PREFIX then DETAIL. */
static void
s_fail (nf_outcome_t *out, bool retryable, const char *prefix, const char *detail)
{
    out->ok = false;
    out->retryable = retryable;
    snprintf (out->error, sizeof out->error, "%s%.700s", prefix, detail);
}

static bool
s_name_ok (const char *name)
{
    if (!name || !*name || strlen (name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    return true;
}

/* The text of the data file NAME: NF_TEMPLATE_DIR/NAME.json into B (WHERE
   gets its path), else the built-in one (*TEXT, WHERE "built-in NAME").
   0, or -1 with ERR. */
static int
s_data_file (const char *template_dir, const char *name, nf_buf_t *b, const char **text,
             size_t *len, char *where, size_t wcap, char *err, size_t errlen)
{
    if (!s_name_ok (name)) {
        snprintf (err, errlen, "bad template name '%.64s'", name ? name : "");
        return -1;
    }
    snprintf (where, wcap, "%s/%s.json", template_dir ? template_dir : "", name);
    if (template_dir && *template_dir && nf_buf_read_file (b, where, 1 << 20) == 0) {
        *text = b->data ? b->data : "";
        *len = b->len;
        return 0;
    }
    for (int i = 0; i < nf_templates_count; i++)
        if (strcmp (s_template_names[i], name) == 0) {
            *text = nf_templates[i];
            *len = strlen (nf_templates[i]);
            snprintf (where, wcap, "built-in %s", name);
            return 0;
        }
    snprintf (err, errlen, "no template '%s' (looked in %s and the built-in ones)", name,
              template_dir && *template_dir ? template_dir : "no NF_TEMPLATE_DIR");
    return -1;
}

nf_template_t *
nf_scrape_template (const char *template_dir, const char *name, char *err, size_t errlen)
{
    nf_buf_t b;
    nf_buf_init (&b);
    const char *text = NULL;
    size_t len = 0;
    char where[4200], why[300];
    nf_template_t *t = NULL;
    if (s_data_file (template_dir, name, &b, &text, &len, where, sizeof where, err, errlen) == 0
        && !(t = nf_template_new (text, len, why, sizeof why)))
        snprintf (err, errlen, "%s: %s", where, why);
    nf_buf_free (&b);
    return t;
}

nf_clients_t *
nf_scrape_clients (const char *template_dir, char *err, size_t errlen)
{
    nf_buf_t b;
    nf_buf_init (&b);
    const char *text = NULL;
    size_t len = 0;
    char where[4200], why[300];
    nf_clients_t *c = NULL;
    if (s_data_file (template_dir, "youtube_clients", &b, &text, &len, where, sizeof where, err,
                     errlen)
            == 0
        && !(c = nf_clients_new (text, len, why, sizeof why)))
        snprintf (err, errlen, "%s: %s", where, why);
    nf_buf_free (&b);
    return c;
}

/* ---- URLs ------------------------------------------------------------------- */

static void
s_param (nf_buf_t *url, const char *name, const char *value)
{
    if (!value || !*value)
        return;
    char *e = curl_easy_escape (NULL, value, 0);
    nf_buf_printf (url, "%c%s=%s", strchr (url->data, '?') ? '&' : '?', name, e ? e : "");
    curl_free (e);
}

static const char *
s_opt_str (const json_t *job, const char *key)
{
    return json_string_value (json_object_get (json_object_get (job, "options"), key));
}

static long
s_opt_int (const json_t *job, const char *key, long dflt)
{
    const json_t *v = json_object_get (json_object_get (job, "options"), key);
    return json_is_integer (v) ? (long) json_integer_value (v) : dflt;
}

/* "2026-01-31" -> "2026-01-31T00:00:00Z"; other forms pass through. */
static void
s_rfc3339 (const char *day, char *out, size_t cap)
{
    if (day && strlen (day) == 10)
        snprintf (out, cap, "%sT00:00:00Z", day);
    else
        snprintf (out, cap, "%s", day ? day : "");
}

/* URL of a videos.list or channels.list request (PATH) for IDS[AT..STOP). */
static void
s_list_url (nf_scraper_t *s, const char *path, const json_t *ids, size_t at, size_t stop,
            nf_buf_t *url)
{
    nf_buf_t list;
    nf_buf_init (&list);
    for (size_t k = at; k < stop; k++)
        nf_buf_printf (&list, "%s%s", k > at ? "," : "",
                       json_string_value (json_array_get (ids, k)));
    nf_buf_reset (url);
    nf_buf_printf (url, "%s/%s", s->api_url, path);
    s_param (url, "id", list.data);
    s_param (url, "key", s->api_key);
    nf_buf_free (&list);
}

/* Whether R's body is JSON. */
static bool
s_json_body (const nf_http_resp_t *r)
{
    json_error_t jerr;
    json_t *j = json_loadb (r->body.data ? r->body.data : "", r->body.len, JSON_DECODE_ANY, &jerr);
    json_decref (j);
    return j != NULL;
}

/* An API GET, unpaced (nf_http.h): counts usage, maps errors. Google's
   quota model: search.list calls have a daily bucket of their own
   (SEARCH), every other call costs a unit of the 10,000-unit bucket; a
   cache hit costs neither. 0 with R's body, or -1 with OUT set (quota:
   *QUOTA true and OUT left ok for the caller to decide). */
static int
s_api_get (nf_scraper_t *s, const char *url, bool search, nf_http_resp_t *r, nf_usage_t *usage,
           nf_outcome_t *out, bool *quota)
{
    nf_http_class_t k = nf_http_request (s->http, url, &(nf_http_req_t){.unpaced = true}, r);
    /* A 200 whose body is not JSON (cut short on the way, or a cached copy
       that was) is asked again past the cache, twice at most, and a good
       answer replaces the cached copy: kept, the broken copy failed every
       later attempt of the task alike. */
    for (int again = 0;; again++) {
        usage->http_requests += r->requests;
        if (k == NF_HTTP_OK && !r->from_cache) {
            if (search)
                usage->search_calls++;
            else
                usage->quota_units++;
        }
        if (k != NF_HTTP_OK || again == 2 || s_json_body (r))
            break;
        nf_warn ("a YouTube API answer of %zu bytes is not JSON%s; asking again", r->body.len,
                 r->from_cache ? " (a cached copy)" : "");
        k = nf_http_request (s->http, url, &(nf_http_req_t){.no_store = true, .unpaced = true}, r);
        if (k == NF_HTTP_OK && s_json_body (r))
            nf_http_cache_replace (s->http, url, r);
    }
    if (k == NF_HTTP_OK)
        return 0;
    char reason[64];
    nf_yt_error_reason (r->body.data, r->body.len, reason, sizeof reason);
    if (strcmp (reason, "quotaExceeded") == 0 || strcmp (reason, "dailyLimitExceeded") == 0) {
        *quota = true;
        return -1;
    }
    char msg[700];
    snprintf (msg, sizeof msg, "%.600s%s%s", r->error, *reason ? ": " : "", reason);
    bool retryable = k == NF_HTTP_TRANSIENT || k == NF_HTTP_BLOCKED || k == NF_HTTP_TOO_BIG
                     || strcmp (reason, "rateLimitExceeded") == 0
                     || strcmp (reason, "userRateLimitExceeded") == 0
                     || strcmp (reason, "backendError") == 0;
    s_fail (out, retryable, "YouTube API: ", msg);
    return -1;
}

/* ---- discover: youtube ------------------------------------------------------- */

/* A YouTube discovery in progress: what its rounds share. */
typedef struct {
    nf_scraper_t *s;
    const json_t *job;
    nf_usage_t *usage;
    nf_outcome_t *out;
    long need, max_pages;                    /* new videos wanted; search pages allowed */
    char q[512], after[40], before[40];      /* the query and its date range */
    json_t *seen;                            /* ids known or found: id -> true */
    json_t *ids;                             /* new ids in search order */
    size_t cursor;                           /* ids before it were looked up */
    char token[256];                         /* the next search page */
    long pages, dropped;                     /* pages read; ids looked up that did not come back */
    bool exhausted;                          /* the search has no more pages */
    bool quota, lookup_quota, channel_quota; /* an answer said quotaExceeded */
    nf_http_resp_t r;
    nf_buf_t url;
} s_disc_t;

static void
s_disc_init (s_disc_t *d, nf_scraper_t *s, const json_t *job, const json_t *known, long need,
             nf_usage_t *usage, nf_outcome_t *out)
{
    memset (d, 0, sizeof *d);
    d->s = s;
    d->job = job;
    d->usage = usage;
    d->out = out;
    d->need = need;
    d->max_pages = s_opt_int (job, "max_pages", 0);
    if (d->max_pages <= 0)
        d->max_pages = (long) fmin (250.0, ceil ((double) need / (BATCH - 1)) + 2);
    d->seen = json_object ();
    size_t i;
    const json_t *id;
    json_array_foreach (known, i, id) if (json_is_string (id))
        json_object_set (d->seen, json_string_value (id), json_true ());
    const char *sub = json_string_value (json_object_get (job, "sub_niche"));
    snprintf (d->q, sizeof d->q, "%s%s%s", json_string_value (json_object_get (job, "niche")),
              sub && *sub ? " " : "", sub && *sub ? sub : "");
    s_rfc3339 (s_opt_str (job, "since"), d->after, sizeof d->after);
    s_rfc3339 (s_opt_str (job, "until"), d->before, sizeof d->before);
    d->ids = json_array ();
    nf_http_resp_init (&d->r);
    nf_buf_init (&d->url);
}

static void
s_disc_free (s_disc_t *d)
{
    nf_buf_free (&d->url);
    nf_http_resp_free (&d->r);
    json_decref (d->ids);
    json_decref (d->seen);
}

/* One search.list page: its new ids appended to d->ids. 0 or -1 (the
   outcome says why, or the quota ran out). */
static int
s_search_page (s_disc_t *d)
{
    const json_t *job = d->job;
    const char *format = s_opt_str (job, "format");
    nf_buf_t *url = &d->url;
    nf_buf_reset (url);
    nf_buf_printf (url, "%s/search?part=snippet&type=video&maxResults=%d", d->s->api_url, BATCH);
    s_param (url, "q", d->q);
    s_param (url, "pageToken", d->token);
    s_param (url, "publishedAfter", d->after);
    s_param (url, "publishedBefore", d->before);
    s_param (url, "regionCode", s_opt_str (job, "region"));
    s_param (url, "relevanceLanguage", s_opt_str (job, "lang"));
    s_param (url, "order", s_opt_str (job, "order"));
    s_param (url, "videoDuration", format && strcmp (format, "short") == 0 ? "short" : NULL);
    s_param (url, "key", d->s->api_key);
    if (s_api_get (d->s, url->data, true, &d->r, d->usage, d->out, &d->quota) != 0)
        return -1;
    json_t *page = json_array ();
    char err[256];
    if (nf_yt_parse_search (d->r.body.data, d->r.body.len, page, d->token, sizeof d->token, err,
                            sizeof err)
        != 0) {
        json_decref (page);
        s_fail (d->out, true, "search.list: ", err);
        return -1;
    }
    d->pages++;
    size_t i;
    const json_t *id;
    json_array_foreach (page, i, id)
    {
        const char *v = json_string_value (id);
        if (!json_object_get (d->seen, v)) {
            json_object_set (d->seen, v, json_true ());
            json_array_append_new (d->ids, json_string (v));
        }
    }
    json_decref (page);
    d->exhausted = !*d->token;
    return 0;
}

/* videos.list for ids [cursor, END), 50 a request, into VIDEOS. */
static void
s_lookup_videos (s_disc_t *d, size_t end, json_t *videos)
{
    for (size_t at = d->cursor; at < end; at += BATCH) {
        size_t stop = at + BATCH < end ? at + BATCH : end;
        s_list_url (d->s, "videos?part=snippet,statistics,contentDetails", d->ids, at, stop,
                    &d->url);
        if (s_api_get (d->s, d->url.data, false, &d->r, d->usage, d->out, &d->lookup_quota) != 0)
            break;
        size_t before_n = json_array_size (videos);
        char err[256];
        if (nf_yt_parse_videos (d->r.body.data, d->r.body.len, d->s->web_url, videos, err,
                                sizeof err)
            != 0) {
            s_fail (d->out, true, "videos.list: ", err);
            break;
        }
        d->dropped += (long) (stop - at) - (long) (json_array_size (videos) - before_n);
    }
    d->cursor = end;
}

/* channels.list for the channels of VIDEOS, 50 a request, into CHANNELS. */
static void
s_lookup_channels (s_disc_t *d, const json_t *videos, json_t *channels)
{
    json_t *chan_seen = json_object (), *chan_ids = json_array ();
    size_t i;
    const json_t *v;
    json_array_foreach (videos, i, v)
    {
        const char *c = json_string_value (json_object_get (v, "channel_id"));
        if (c && !json_object_get (chan_seen, c)) {
            json_object_set (chan_seen, c, json_true ());
            json_array_append_new (chan_ids, json_string (c));
        }
    }
    size_t n = json_array_size (chan_ids);
    for (size_t at = 0; d->out->error[0] == 0 && !d->channel_quota && at < n; at += BATCH) {
        size_t stop = at + BATCH < n ? at + BATCH : n;
        s_list_url (d->s, "channels?part=snippet,statistics,contentDetails", chan_ids, at, stop,
                    &d->url);
        if (s_api_get (d->s, d->url.data, false, &d->r, d->usage, d->out, &d->channel_quota) != 0)
            break;
        char err[256];
        if (nf_yt_parse_channels (d->r.body.data, d->r.body.len, channels, err, sizeof err) != 0) {
            s_fail (d->out, true, "channels.list: ", err);
            break;
        }
    }
    json_decref (chan_seen);
    json_decref (chan_ids);
}

/* One channel's recent uploads, as a lane reads them (s_lookup_uploads). */
typedef struct {
    const json_t *channel;
    const char *id, *pl; /* its id and uploads playlist */
    json_t *recent;      /* when read without error (a quota stop leaves the rest unread) */
    nf_outcome_t out;    /* its failure: not the discovery's */
    nf_usage_t usage;    /* what it cost */
    bool quota;          /* an answer said quotaExceeded */
} s_uploads_t;

/* A lane: a client of its own, taking channels from a shared counter. */
typedef struct {
    nf_scraper_t s; /* the scraper, with this lane's client as http */
    s_uploads_t *work;
    size_t n;
    atomic_size_t *next;
    atomic_bool *quota;
} s_lane_t;

/* The two reads of a channel's uploads, as s_read_retrying calls them. */
typedef int s_parse_fn (const nf_scraper_t *s, const nf_http_resp_t *r, json_t *into, char *err,
                        size_t errlen);

static int
s_parse_playlist (const nf_scraper_t *s, const nf_http_resp_t *r, json_t *into, char *err,
                  size_t errlen)
{
    (void) s;
    return nf_yt_parse_playlist (r->body.data, r->body.len, into, err, errlen);
}

static int
s_parse_videos (const nf_scraper_t *s, const nf_http_resp_t *r, json_t *into, char *err,
                size_t errlen)
{
    return nf_yt_parse_videos (r->body.data, r->body.len, s->web_url, into, err, errlen);
}

/* URL's answer for U, parsed by PARSE into INTO (WHAT names it in an
   error). A cut or garbled answer is asked again (up to 3 times) before
   the channel goes without: its baseline should not depend on luck. */
static void
s_read_retrying (nf_scraper_t *s, const char *url, const char *what, s_parse_fn *parse,
                 nf_http_resp_t *r, s_uploads_t *u, json_t *into)
{
    char err[256];
    for (int t = 0; t < 3; t++) {
        memset (&u->out, 0, sizeof u->out);
        json_array_clear (into);
        if (s_api_get (s, url, false, r, &u->usage, &u->out, &u->quota) == 0
            && parse (s, r, into, err, sizeof err) != 0)
            s_fail (&u->out, true, what, err);
        if (!u->out.error[0] || !u->out.retryable || u->quota)
            break;
    }
}

/* U's uploads playlist (playlistItems.list, the newest baseline_uploads)
   and their statistics (videos.list), a unit each. */
static void
s_channel_uploads (nf_scraper_t *s, s_uploads_t *u, nf_http_resp_t *r, nf_buf_t *url)
{
    nf_buf_reset (url);
    nf_buf_printf (url, "%s/playlistItems?part=contentDetails&maxResults=%d", s->api_url,
                   s->baseline_uploads);
    s_param (url, "playlistId", u->pl);
    s_param (url, "key", s->api_key);
    json_t *ids = json_array ();
    s_read_retrying (s, url->data, "playlistItems.list: ", s_parse_playlist, r, u, ids);
    json_t *recent = json_array ();
    if (!u->out.error[0] && !u->quota && json_array_size (ids)) {
        s_list_url (s, "videos?part=statistics,contentDetails,snippet", ids, 0,
                    json_array_size (ids), url);
        json_t *got = json_array ();
        s_read_retrying (s, url->data, "videos.list: ", s_parse_videos, r, u, got);
        size_t k;
        const json_t *v;
        json_array_foreach (got, k, v)
        {
            const json_t *m = json_object_get (v, "meta");
            json_array_append_new (recent,
                                   json_pack ("{s:O, s:O?, s:O?, s:O?}", "video_id",
                                              json_object_get (v, "video_id"), "views",
                                              json_object_get (m, "views"), "published_at",
                                              json_object_get (m, "published_at"), "duration_s",
                                              json_object_get (m, "duration_s")));
        }
        json_decref (got);
    }
    if (!u->out.error[0] && !u->quota)
        u->recent = recent;
    else
        json_decref (recent);
    json_decref (ids);
}

static void *
s_lane_run (void *arg)
{
    s_lane_t *l = arg;
    nf_http_resp_t r;
    nf_buf_t url;
    nf_http_resp_init (&r);
    nf_buf_init (&url);
    for (size_t i; !atomic_load (l->quota) && (i = atomic_fetch_add (l->next, 1)) < l->n;) {
        s_channel_uploads (&l->s, &l->work[i], &r, &url);
        if (l->work[i].quota)
            atomic_store (l->quota, true);
    }
    nf_buf_free (&url);
    nf_http_resp_free (&r);
    return NULL;
}

/* The recent uploads of each channel of CHANNELS not in FRESH, read on
   the scraper's lanes at once (one lane without them), into the channel's
   "recent" ([{video_id, views, published_at, duration_s}], newest first)
   and "recent_at" (when, in epoch seconds). The analyst takes the
   channel's baseline from them. A failure leaves that channel without
   them (the analyst falls back to its lifetime mean, and says so) and
   fails nothing: the discovery stands. A quota stop ends it: no lane
   takes another channel. */
static void
s_lookup_uploads (s_disc_t *d, const json_t *fresh, json_t *channels)
{
    if (d->s->baseline_uploads <= 0 || d->out->error[0])
        return;
    json_t *skip = json_object ();
    size_t i;
    const json_t *c;
    json_array_foreach (fresh, i, c) if (json_is_string (c))
        json_object_set (skip, json_string_value (c), json_true ());
    s_uploads_t *work = calloc (json_array_size (channels) + 1, sizeof *work);
    size_t n = 0;
    json_array_foreach (channels, i, c)
    {
        const char *id = json_string_value (json_object_get (c, "channel_id"));
        const char *pl = json_string_value (json_object_get (c, "uploads_playlist"));
        if (id && pl && !json_object_get (skip, id))
            work[n++] = (s_uploads_t){.channel = c, .id = id, .pl = pl};
    }
    atomic_size_t next = 0;
    atomic_bool quota = false;
    size_t lanes = d->s->nlanes > 1 ? (size_t) d->s->nlanes : 1;
    if (lanes > NF_SCRAPE_LANES_MAX)
        lanes = NF_SCRAPE_LANES_MAX;
    if (lanes > n)
        lanes = n ? n : 1;
    s_lane_t lane[NF_SCRAPE_LANES_MAX];
    pthread_t thread[NF_SCRAPE_LANES_MAX];
    size_t started = 0;
    for (size_t k = 0; k < lanes; k++) {
        lane[k] = (s_lane_t){*d->s, work, n, &next, &quota};
        if (lanes > 1)
            lane[k].s.http = d->s->lanes[k];
    }
    /* The first lane runs here; a thread that cannot start leaves its
       channels to the lanes that did. */
    for (size_t k = 1; k < lanes; k++) {
        if (pthread_create (&thread[started], NULL, s_lane_run, &lane[k]) != 0) {
            nf_warn ("cannot start a lane for the channels' uploads: %s", strerror (errno));
            break;
        }
        started++;
    }
    s_lane_run (&lane[0]);
    for (size_t k = 0; k < started; k++)
        pthread_join (thread[k], NULL);
    size_t failed = 0;
    for (size_t k = 0; k < n; k++) {
        s_uploads_t *u = &work[k]; /* one no lane took costs nothing and has no error */
        d->usage->quota_units += u->usage.quota_units;
        d->usage->search_calls += u->usage.search_calls;
        d->usage->http_requests += u->usage.http_requests;
        d->usage->baseline_units += u->usage.quota_units;
        if (u->out.error[0]) {
            failed++;
            nf_info ("channel %s: no recent uploads (%s); its baseline is the lifetime mean", u->id,
                     u->out.error);
        }
        if (u->recent) {
            json_object_set_new ((json_t *) u->channel, "recent", u->recent);
            json_object_set_new ((json_t *) u->channel, "recent_at",
                                 json_real ((double) time (NULL)));
        }
    }
    if (atomic_load (&quota))
        d->channel_quota = true;
    if (failed)
        nf_warn ("%zu channels' recent uploads could not be read: their baselines are the "
                 "lifetime means",
                 failed);
    free (work);
    json_decref (skip);
}

static void
s_discover_youtube (nf_scraper_t *s, const json_t *job, const json_t *known, const json_t *fresh,
                    json_t *videos, json_t *channels, nf_usage_t *usage, nf_outcome_t *out)
{
    long count = s_opt_int (job, "count", 50);
    long known_n = (long) json_array_size (known);
    long need = count - known_n;
    if (need <= 0) {
        snprintf (out->note, sizeof out->note, "the job already has %ld of %ld videos", known_n,
                  count);
        return;
    }
    s_disc_t d;
    s_disc_init (&d, s, job, known, need, usage, out);
    /* Rounds: search until there are enough ids to look up, look them up
       (videos.list, 50 a request); private or removed ones leave a gap
       that the next round fills from the spare ids of the last page. */
    while (out->error[0] == 0 && !d.lookup_quota && (long) json_array_size (videos) < need) {
        size_t want = (size_t) (need - (long) json_array_size (videos));
        while (json_array_size (d.ids) - d.cursor < want && !d.exhausted && !d.quota
               && d.pages < d.max_pages)
            if (s_search_page (&d) != 0)
                break;
        if (out->error[0] || json_array_size (d.ids) == d.cursor)
            break; /* (after a quota stop, the ids found are still looked up) */
        size_t n = json_array_size (d.ids);
        s_lookup_videos (&d, d.cursor + want < n ? d.cursor + want : n, videos);
        if (d.quota)
            break;
    }
    s_lookup_channels (&d, videos, channels);
    s_lookup_uploads (&d, fresh, channels);
    bool quota = d.quota || d.lookup_quota || d.channel_quota;
    if (quota)
        snprintf (out->note, sizeof out->note,
                  "quotaExceeded: discovery stopped after %ld search pages with %zu of %ld videos",
                  d.pages, json_array_size (videos), need);
    else if (out->error[0] == 0 && (d.dropped > 0 || (long) json_array_size (videos) < need))
        snprintf (out->note, sizeof out->note,
                  "found %zu of %ld videos in %ld search pages (%ld private or removed)",
                  json_array_size (videos), need, d.pages, d.dropped);
    s_disc_free (&d);
}

/* ---- discover: template listing ---------------------------------------------- */

/* {web} and {query} in PATTERN. */
static void
s_expand (const char *pattern, const char *web, const char *query, nf_buf_t *out)
{
    char *q = curl_easy_escape (NULL, query, 0);
    for (const char *p = pattern; *p; p++) {
        if (strncmp (p, "{web}", 5) == 0) {
            nf_buf_puts (out, web);
            p += 4;
        }
        else if (strncmp (p, "{query}", 7) == 0) {
            nf_buf_puts (out, q ? q : "");
            p += 6;
        }
        else
            nf_buf_append (out, p, 1);
    }
    curl_free (q);
}

/* An item page as meta and channel from the template's fields. */
static void
s_item_meta (const json_t *fields, const char *url, const char *source, json_t *meta)
{
    static const char *const keys[] = {"title",        "description", "channel_title",
                                       "views",        "likes",       "comments",
                                       "published_at", "duration_s",  "default_audio_language"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const json_t *v = json_object_get (fields, keys[i]);
        if (v)
            json_object_set (meta, keys[i], (json_t *) v);
    }
    const json_t *d = json_object_get (fields, "duration_s");
    if (json_is_integer (d))
        json_object_set_new (meta, "is_short",
                             json_boolean (json_integer_value (d) > 0
                                           && json_integer_value (d) <= NF_YT_SHORT_MAX_S));
    json_object_set_new (meta, "url", json_string (url));
    json_object_set_new (meta, "source", json_string (source));
    json_object_set (meta, "template_matched", json_object_get (fields, "_matched"));
}

/* The template that reads a listing page: two fields, the item links
   (LISTING.items, all) and the next page (LISTING.next). NULL with ERR. */
static nf_template_t *
s_lister_new (const json_t *listing, char *err, size_t errlen)
{
    const char *next_xp = json_string_value (json_object_get (listing, "next"));
    json_t *lt = json_pack ("{s:s, s:[{s:s, s:[{s:s, s:b}], s:[s]}, {s:s, s:[{s:s}], s:[s]}]}",
                            "name", "listing", "fields", "name", "items", "selectors", "xpath",
                            json_string_value (json_object_get (listing, "items")), "all", 1,
                            "post", "url", "name", "next", "selectors", "xpath",
                            next_xp ? next_xp : "/nothing", "post", "url");
    char *lt_text = json_dumps (lt, 0);
    json_decref (lt);
    nf_template_t *lister = nf_template_new (lt_text, strlen (lt_text), err, errlen);
    free (lt_text);
    return lister;
}

/* A template discovery in progress. */
typedef struct {
    nf_scraper_t *s;
    nf_template_t *t; /* the item template */
    nf_usage_t *usage;
    nf_outcome_t *out;
    json_t *videos, *channels; /* results */
    json_t *seen, *chan_seen;  /* ids known or found; channels found */
    char source[80];           /* "template:NAME" */
    long need, added;          /* items wanted; found */
    nf_http_resp_t r;
} s_tdisc_t;

/* The channel facts an item page gave, once per channel CH. */
static void
s_item_channel (s_tdisc_t *d, const json_t *fields, const char *ch)
{
    if (json_object_get (d->chan_seen, ch))
        return;
    json_object_set (d->chan_seen, ch, json_true ());
    json_t *data = json_object ();
    static const char *const ck[][2] = {{"channel_title", "title"},
                                        {"country", "country"},
                                        {"subscribers", "subscribers"},
                                        {"channel_views", "view_count"},
                                        {"channel_videos", "video_count"}};
    for (size_t c = 0; c < sizeof ck / sizeof ck[0]; c++)
        if (json_object_get (fields, ck[c][0]))
            json_object_set (data, ck[c][1], json_object_get (fields, ck[c][0]));
    json_object_set_new (data, "hidden_subscribers",
                         json_boolean (!json_object_get (fields, "subscribers")));
    json_object_set_new (data, "channel_id", json_string (ch));
    json_array_append_new (d->channels, data);
}

/* One item page: a video (and its channel) when the template reads it.
   -1 when discovery must stop (the outcome says why). */
static int
s_template_item (s_tdisc_t *d, const char *item_url)
{
    char vid[17], err[512];
    nf_http_url_id (item_url, vid); /* a stable id from the URL */
    if (d->added >= d->need || json_object_get (d->seen, vid))
        return 0;
    json_object_set (d->seen, vid, json_true ());
    nf_http_class_t ik = nf_http_get (d->s->http, item_url, &d->r);
    d->usage->http_requests += d->r.requests;
    if (ik == NF_HTTP_GONE)
        return 0;
    if (ik != NF_HTTP_OK) {
        s_fail (d->out, ik != NF_HTTP_CLIENT, "item page: ", d->r.error);
        return -1;
    }
    json_t *fields =
        nf_template_apply (d->t, d->r.body.data, d->r.body.len, item_url, err, sizeof err);
    if (!fields) {
        nf_warn ("%s: %s", item_url, err);
        return 0;
    }
    json_t *meta = json_object ();
    s_item_meta (fields, item_url, d->source, meta);
    json_t *v = json_pack ("{s:s, s:o}", "video_id", vid, "meta", meta);
    const char *ch = json_string_value (json_object_get (fields, "channel_id"));
    if (ch) {
        json_object_set_new (v, "channel_id", json_string (ch));
        s_item_channel (d, fields, ch);
    }
    json_array_append_new (d->videos, v);
    json_decref (fields);
    d->added++;
    return 0;
}

static void
s_discover_template (nf_scraper_t *s, const char *name, const json_t *job, const json_t *known,
                     json_t *videos, json_t *channels, nf_usage_t *usage, nf_outcome_t *out)
{
    char err[512];
    nf_template_t *t = nf_scrape_template (s->template_dir, name, err, sizeof err);
    const json_t *listing = t ? json_object_get (nf_template_json (t), "listing") : NULL;
    if (!t || !json_is_string (json_object_get (listing, "start"))
        || !json_is_string (json_object_get (listing, "items"))) {
        s_fail (out, false, "", t ? "template has no listing.start and listing.items" : err);
        nf_template_destroy (&t);
        return;
    }
    nf_template_t *lister = s_lister_new (listing, err, sizeof err);
    if (!lister) {
        s_fail (out, false, "listing: ", err);
        nf_template_destroy (&t);
        return;
    }
    s_tdisc_t d = {.s = s,
                   .t = t,
                   .usage = usage,
                   .out = out,
                   .videos = videos,
                   .channels = channels,
                   .seen = json_object (),
                   .chan_seen = json_object ()};
    d.need = s_opt_int (job, "count", 50) - (long) json_array_size (known);
    long max_pages = s_opt_int (job, "max_pages", 0);
    if (max_pages <= 0)
        max_pages = json_is_integer (json_object_get (listing, "max_pages"))
                        ? (long) json_integer_value (json_object_get (listing, "max_pages"))
                        : 10;
    snprintf (d.source, sizeof d.source, "template:%s", name);
    char q[512];
    const char *sub = json_string_value (json_object_get (job, "sub_niche"));
    snprintf (q, sizeof q, "%s%s%s", json_string_value (json_object_get (job, "niche")),
              sub && *sub ? " " : "", sub && *sub ? sub : "");
    size_t i;
    const json_t *id;
    json_array_foreach (known, i, id) if (json_is_string (id))
        json_object_set (d.seen, json_string_value (id), json_true ());
    nf_buf_t url;
    nf_buf_init (&url);
    s_expand (json_string_value (json_object_get (listing, "start")), s->web_url, q, &url);
    nf_http_resp_init (&d.r);
    long pages = 0;
    while (url.len > 0 && pages < max_pages && d.added < d.need) {
        nf_http_class_t k = nf_http_get (s->http, url.data, &d.r);
        usage->http_requests += d.r.requests;
        if (k != NF_HTTP_OK) {
            s_fail (out, k != NF_HTTP_CLIENT && k != NF_HTTP_GONE, "listing page: ", d.r.error);
            break;
        }
        pages++;
        json_t *list =
            nf_template_apply (lister, d.r.body.data, d.r.body.len, url.data, err, sizeof err);
        char next[2048];
        const char *nx = json_string_value (json_object_get (list, "next"));
        snprintf (next, sizeof next, "%s", nx ? nx : "");
        json_array_foreach (json_object_get (list, "items"), i,
                            id) if (s_template_item (&d, json_string_value (id)) != 0) break;
        json_decref (list);
        nf_buf_reset (&url);
        if (out->error[0] || !*next)
            break;
        nf_buf_puts (&url, next);
    }
    if (out->error[0] == 0 && d.added < d.need)
        snprintf (out->note, sizeof out->note, "found %ld of %ld items in %ld listing pages",
                  d.added, d.need, pages);
    nf_http_resp_free (&d.r);
    nf_buf_free (&url);
    json_decref (d.seen);
    json_decref (d.chan_seen);
    nf_template_destroy (&lister);
    nf_template_destroy (&t);
}

void
nf_discover (nf_scraper_t *s, const json_t *job, const json_t *known, const json_t *fresh,
             json_t *videos, json_t *channels, nf_usage_t *usage, nf_outcome_t *out)
{
    memset (out, 0, sizeof *out);
    out->ok = true;
    const char *source = s_opt_str (job, "source");
    if (source && strncmp (source, "template:", 9) == 0)
        s_discover_template (s, source + 9, job, known, videos, channels, usage, out);
    else if (source && *source && strcmp (source, "youtube") != 0)
        s_fail (out, false, "unknown source: ", source);
    else
        s_discover_youtube (s, job, known, fresh, videos, channels, usage, out);
    if (out->error[0]) { /* a failed discovery creates nothing */
        json_array_clear (videos);
        json_array_clear (channels);
    }
}

/* ---- scrape ---------------------------------------------------------------------- */

static void
s_scrape_template (nf_scraper_t *s, const char *name, const json_t *meta, json_t *meta_out,
                   nf_buf_t *transcript, nf_usage_t *usage, nf_outcome_t *out)
{
    char err[512];
    const char *url = json_string_value (json_object_get (meta, "url"));
    nf_template_t *t = url ? nf_scrape_template (s->template_dir, name, err, sizeof err) : NULL;
    if (!t) {
        s_fail (out, false, "", url ? err : "the video has no url");
        return;
    }
    nf_http_resp_t r;
    nf_http_resp_init (&r);
    nf_http_class_t k = nf_http_get (s->http, url, &r);
    usage->http_requests += r.requests;
    if (k != NF_HTTP_OK)
        s_fail (out, k != NF_HTTP_GONE && k != NF_HTTP_CLIENT, "item page: ", r.error);
    else {
        json_t *f = nf_template_apply (t, r.body.data, r.body.len, url, err, sizeof err);
        if (!f)
            s_fail (out, true, "", err);
        else {
            const char *text = json_string_value (json_object_get (f, "transcript"));
            if (text)
                nf_buf_puts (transcript, text);
            json_object_set_new (meta_out, "captions", json_string (text ? "page" : "none"));
            json_decref (f);
        }
    }
    nf_http_resp_free (&r);
    nf_template_destroy (&t);
}

/* ---- scrape: youtube ---------------------------------------------------------- */

/* The job's languages in order of preference: its `lang` (a comma list),
   else the video's audio language, else en. */
static void
s_langs (const json_t *job, const json_t *meta, char *out, size_t cap)
{
    const char *lang = s_opt_str (job, "lang");
    const char *audio = json_string_value (json_object_get (meta, "default_audio_language"));
    snprintf (out, cap, "%s", lang && *lang ? lang : audio && *audio ? audio : "en");
}

/* The request for a YouTube web page or answer: the consent cookies
   (SOCS=CAI always, as yt-dlp does; CONSENT=YES+... once a consent form was
   answered), never cached (signed URLs expire; gated answers are empty). */
typedef struct {
    char cookie[400];
    const char *headers[12];
    nf_buf_t hbuf;
    nf_http_req_t req;
} s_webreq_t;

static void
s_webreq_init (nf_scraper_t *s, s_webreq_t *w, const json_t *profile)
{
    memset (w, 0, sizeof *w);
    nf_buf_init (&w->hbuf);
    snprintf (w->cookie, sizeof w->cookie, "Cookie: SOCS=CAI%s%s", s->consent[0] ? "; " : "",
              s->consent);
    size_t n = 0;
    if (profile)
        nf_clients_headers (profile, &w->hbuf, w->headers, 10);
    while (w->headers[n])
        n++;
    w->headers[n] = w->cookie;
    w->headers[n + 1] = NULL;
    w->req.headers = w->headers;
    w->req.no_store = true;
    w->req.user_agent =
        profile ? json_string_value (json_object_get (profile, "user_agent")) : NULL;
}

/* What one step of the chain found out. */
typedef enum {
    S_NEXT, /* nothing usable here: ask the next step */
    S_DONE, /* OUT says how the video ends (ok, rejected or failed) */
} s_step_t;

typedef struct {
    nf_buf_t trail;       /* "VISIONOS: 9 of 9 tracks gated; ..." for the error */
    bool gated;           /* some step found only gated tracks or empty timed text */
    char unplayable[400]; /* YouTube's reason, when a step said UNPLAYABLE */
} s_chain_t;

/* Add "STEP: WHAT DETAIL" to the chain's trail. */
static void
s_trail (s_chain_t *c, const char *step, const char *what, const char *detail)
{
    nf_buf_printf (&c->trail, "%s%s: %s%s", c->trail.len ? "; " : "", step, what, detail);
}

static void
s_reject (nf_outcome_t *out, const char *reason, const char *detail)
{
    out->ok = false;
    out->rejected = true;
    snprintf (out->reason, sizeof out->reason, "%s", reason);
    snprintf (out->error, sizeof out->error, "%s: %.700s", reason, detail);
}

/* GET (or POST with REQ's body) URL through the consent rule: a consent form
   in the answer is answered once (the cookie kept for the process) and the
   request made again. 0 with R's body, or -1 with a note in C. */
static int
s_web_fetch (nf_scraper_t *s, const char *step, const char *url, const json_t *profile,
             const char *body, nf_http_resp_t *r, nf_usage_t *usage, s_chain_t *c,
             nf_outcome_t *out)
{
    for (int round = 0; round < 2; round++) {
        s_webreq_t w;
        s_webreq_init (s, &w, profile);
        if (body) {
            w.req.body = body;
            w.req.body_len = strlen (body);
            w.req.content_type = "application/json";
        }
        nf_http_class_t k = nf_http_request (s->http, url, &w.req, r);
        nf_buf_free (&w.hbuf);
        usage->http_requests += r->requests;
        if (k == NF_HTTP_BLOCKED) {
            s_fail (out, true, "blocked: ", r->error);
            return -1;
        }
        if (k == NF_HTTP_GONE && strcmp (step, "watch") == 0) {
            s_reject (out, "unavailable", r->error); /* the watch page of a removed video */
            return -1;
        }
        if (k != NF_HTTP_OK) {
            s_trail (c, step, "", r->error);
            return -1;
        }
        char cookie[300];
        int consent = nf_yt_consent_cookie (r->body.data, r->body.len, cookie, sizeof cookie);
        if (consent == 0)
            return 0;
        if (consent < 0 || round == 1) {
            s_trail (c, step, "",
                     consent < 0 ? "a consent form without its value"
                                 : "the consent page again after answering it");
            return -1;
        }
        snprintf (s->consent, sizeof s->consent, "%s", cookie);
        nf_info ("%s: answered YouTube's consent form (%s)", step, cookie);
    }
    return -1;
}

/* The player answer of one step: an innertube client's, or the watch page's
   ytInitialPlayerResponse (with its title into META_OUT). New reference, or
   NULL with a note in C (or OUT failed). */
static json_t *
s_player (nf_scraper_t *s, const char *step, const char *video_id, const char *langs,
          const json_t *meta, json_t *meta_out, nf_usage_t *usage, s_chain_t *c, nf_outcome_t *out)
{
    nf_http_resp_t r;
    nf_http_resp_init (&r);
    json_t *player = NULL;
    char url[1024], err[512];
    char *eid = curl_easy_escape (NULL, video_id, 0);
    if (strcmp (step, "watch") == 0) {
        snprintf (url, sizeof url, "%s/watch?v=%s", s->web_url, eid ? eid : "");
        if (s_web_fetch (s, step, url, NULL, NULL, &r, usage, c, out) == 0) {
            json_t *page =
                nf_template_apply (s->watch, r.body.data, r.body.len, url, err, sizeof err);
            if (!page)
                s_trail (c, step, "", err);
            else {
                player = json_incref (json_object_get (page, "player"));
                json_object_set (meta_out, "watch_matched", json_object_get (page, "_matched"));
                if (!json_object_get (meta, "title") && json_object_get (page, "title"))
                    json_object_set (meta_out, "title", json_object_get (page, "title"));
                json_decref (page);
            }
        }
    }
    else {
        const json_t *profile = nf_clients_get (s->clients, step);
        char hl[8];
        snprintf (hl, sizeof hl, "%.*s", (int) strcspn (langs, "-_,"), langs);
        char *body = nf_clients_body (profile, video_id, hl);
        snprintf (url, sizeof url, "%s/youtubei/v1/player?prettyPrint=false", s->web_url);
        if (s_web_fetch (s, step, url, profile, body, &r, usage, c, out) == 0) {
            json_error_t je;
            player = json_loadb (r.body.data ? r.body.data : "", r.body.len, 0, &je);
            if (!json_is_object (player)) {
                s_trail (c, step, "the player answer is not JSON: ", je.text);
                json_decref (player);
                player = NULL;
            }
        }
        free (body);
    }
    curl_free (eid);
    nf_http_resp_free (&r);
    return player;
}

/* Fetch the timed text of PICK (its own signed URL, at once) into TRANSCRIPT:
   the segment count, 0 for an empty body (gated or unsigned: YouTube's
   empty 200), or -1 with OUT failed or a note in C. */
static int
s_fetch_track (nf_scraper_t *s, const char *step, const nf_track_pick_t *pick, nf_buf_t *transcript,
               nf_usage_t *usage, s_chain_t *c, nf_outcome_t *out)
{
    const char *base = json_string_value (json_object_get (pick->track, "baseUrl"));
    nf_buf_t url;
    nf_buf_init (&url);
    if (strncmp (base, "http://", 7) == 0 || strncmp (base, "https://", 8) == 0)
        nf_buf_puts (&url, base);
    else
        nf_buf_printf (&url, "%s%s%s", s->web_url, base[0] == '/' ? "" : "/", base);
    s_param (&url, "tlang", pick->tlang);
    nf_http_resp_t r;
    nf_http_resp_init (&r);
    int n = -1;
    if (s_web_fetch (s, step, url.data, NULL, NULL, &r, usage, c, out) == 0) {
        char err[512];
        if (nf_http_blank (r.body.data, r.body.len))
            n = 0;
        else if ((n = nf_timedtext_parse (r.body.data, r.body.len, transcript, err, sizeof err))
                 < 0)
            s_fail (out, true, "timed text: ", err);
    }
    nf_http_resp_free (&r);
    nf_buf_free (&url);
    return n;
}

/* The tracks of an OK player answer: pick the job's, fetch it. */
static s_step_t
s_tracks (nf_scraper_t *s, const char *step, const json_t *player, const char *langs,
          bool translate, json_t *meta_out, nf_buf_t *transcript, nf_usage_t *usage, s_chain_t *c,
          nf_outcome_t *out)
{
    const json_t *tracks = json_object_get (
        json_object_get (json_object_get (player, "captions"), "playerCaptionsTracklistRenderer"),
        "captionTracks");
    if (json_array_size (tracks) == 0) { /* no captions: RAW without a transcript */
        json_object_set_new (meta_out, "captions", json_string ("none"));
        json_object_set_new (meta_out, "caption_client", json_string (step));
        return S_DONE;
    }
    size_t gated = 0;
    json_t *usable = nf_tracks_usable (tracks, &gated);
    nf_track_pick_t pick;
    s_step_t next = S_NEXT;
    if (json_array_size (usable) == 0) {
        char n[64];
        snprintf (n, sizeof n, "%zu of %zu", gated, json_array_size (tracks));
        s_trail (c, step, n, " tracks gated (exp=xpe)");
        c->gated = true;
    }
    else if (!nf_tracks_pick (usable, langs, translate, &pick)) {
        nf_buf_t have;
        nf_buf_init (&have);
        size_t i;
        const json_t *t;
        json_array_foreach (usable, i, t)
        {
            nf_buf_printf (
                &have, "%s%s%s", i ? ", " : "",
                json_string_value (json_object_get (t, "languageCode")),
                json_is_true (json_object_get (t, "isTranslatable")) ? "" : " (not translatable)");
        }
        char msg[600];
        snprintf (msg, sizeof msg, "wanted %s%s; the video has %s", langs,
                  translate ? " (or a translation)" : "", have.data ? have.data : "none");
        s_reject (out, "no_transcript_in_language", msg);
        nf_buf_free (&have);
        next = S_DONE;
    }
    else {
        int n = s_fetch_track (s, step, &pick, transcript, usage, c, out);
        const char *code = json_string_value (json_object_get (pick.track, "languageCode"));
        const char *kind = json_string_value (json_object_get (pick.track, "kind"));
        bool asr = kind && strcmp (kind, "asr") == 0;
        if (n > 0) {
            json_object_set_new (meta_out, "captions", json_string (asr ? "asr" : "manual"));
            json_object_set_new (meta_out, "caption_kind", json_string (asr ? "asr" : "manual"));
            json_object_set_new (meta_out, "caption_lang",
                                 json_string (pick.tlang[0] ? pick.tlang : code));
            if (pick.tlang[0])
                json_object_set_new (meta_out, "caption_translated_from", json_string (code));
            json_object_set_new (meta_out, "caption_client", json_string (step));
            json_object_set_new (meta_out, "caption_segments", json_integer (n));
            next = S_DONE;
        }
        else if (n == 0) {
            transcript->len = 0;
            if (transcript->data)
                transcript->data[0] = 0;
            s_trail (c, step, "the track's timed text was empty", "");
            c->gated = true;
        }
        else
            next = out->ok ? S_NEXT : S_DONE;
    }
    json_decref (usable);
    return next;
}

/* One step of the chain for VIDEO_ID. */
static s_step_t
s_step (nf_scraper_t *s, const char *step, const char *video_id, const json_t *meta,
        const char *langs, bool translate, json_t *meta_out, nf_buf_t *transcript,
        nf_usage_t *usage, s_chain_t *c, nf_outcome_t *out)
{
    json_t *player = s_player (s, step, video_id, langs, meta, meta_out, usage, c, out);
    if (!player)
        return out->ok ? S_NEXT : S_DONE;
    const char *reason = "";
    nf_play_t play = nf_play_classify (player, video_id, &reason);
    s_step_t next = S_DONE;
    char msg[400];
    snprintf (msg, sizeof msg, "%s (%s, %s)", *reason ? reason : "no reason given", step,
              json_string_value (
                  json_object_get (json_object_get (player, "playabilityStatus"), "status"))
                  ?: "?");
    switch (play) {
    case NF_PLAY_OK:
        next = s_tracks (s, step, player, langs, translate, meta_out, transcript, usage, c, out);
        break;
    case NF_PLAY_BLOCKED:
        nf_http_note_block (s->http);
        s_fail (out, true, "blocked: ", msg);
        break;
    case NF_PLAY_AGE: s_reject (out, "age_restricted", msg); break;
    case NF_PLAY_UNAVAILABLE: s_reject (out, "unavailable", msg); break;
    case NF_PLAY_UNPLAYABLE:
        snprintf (c->unplayable, sizeof c->unplayable, "%s", msg);
        s_trail (c, step, "unplayable: ", reason);
        next = S_NEXT;
        break;
    default:
        s_trail (c, step, "",
                 play == NF_PLAY_OTHER_VIDEO ? "an answer about another video"
                                             : "no playabilityStatus");
        next = S_NEXT;
    }
    json_decref (player);
    return next;
}

static void
s_scrape_youtube (nf_scraper_t *s, const char *video_id, const json_t *meta, const json_t *job,
                  json_t *meta_out, nf_buf_t *transcript, nf_usage_t *usage, nf_outcome_t *out)
{
    char langs[128];
    s_langs (job, meta, langs, sizeof langs);
    bool translate = s_opt_int (job, "translate", 0) == 1;
    s_chain_t c = {.gated = false};
    nf_buf_init (&c.trail);
    bool done = false;
    for (size_t i = 0; !done && i < nf_clients_steps (s->clients); i++)
        done = s_step (s, nf_clients_step (s->clients, i), video_id, meta, langs, translate,
                       meta_out, transcript, usage, &c, out)
               == S_DONE;
    if (!done && c.unplayable[0] && !c.gated)
        s_reject (out, "unplayable", c.unplayable);
    else if (!done)
        s_fail (out, true, c.gated ? "transcript_gated: " : "no client answered: ",
                c.trail.data ? c.trail.data : "no client in the chain");
    nf_buf_free (&c.trail);
}

void
nf_scrape (nf_scraper_t *s, const char *video_id, const json_t *meta, const json_t *job,
           json_t *meta_out, nf_buf_t *transcript, nf_usage_t *usage, nf_outcome_t *out)
{
    memset (out, 0, sizeof *out);
    out->ok = true;
    const char *source = json_string_value (json_object_get (meta, "source"));
    if (source && strncmp (source, "template:", 9) == 0)
        s_scrape_template (s, source + 9, meta, meta_out, transcript, usage, out);
    else
        s_scrape_youtube (s, video_id, meta, job, meta_out, transcript, usage, out);
}

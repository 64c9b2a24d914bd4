/*  nf_scrape: see nf_scrape.h. */
#include "nf_scrape.h"
#include "nf_log.h"
#include "nf_youtube.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Built-in templates (cmake/embed_text.cmake), in this order. */
extern const char *const nf_templates[];
extern const int nf_templates_count;
static const char *const s_template_names[] = {"youtube_watch", "simsite"};

#define BATCH        50
#define SEARCH_UNITS 100

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

nf_template_t *
nf_scrape_template (const char *template_dir, const char *name, char *err, size_t errlen)
{
    if (!s_name_ok (name)) {
        snprintf (err, errlen, "bad template name '%.64s'", name ? name : "");
        return NULL;
    }
    nf_buf_t b;
    nf_buf_init (&b);
    char path[4200];
    snprintf (path, sizeof path, "%s/%s.json", template_dir ? template_dir : "", name);
    nf_template_t *t = NULL;
    char why[300];
    if (template_dir && *template_dir && nf_buf_read_file (&b, path, 1 << 20) == 0) {
        t = nf_template_new (b.data ? b.data : "", b.len, why, sizeof why);
        if (!t)
            snprintf (err, errlen, "%s: %s", path, why);
        nf_buf_free (&b);
        return t;
    }
    nf_buf_free (&b);
    for (int i = 0; i < nf_templates_count; i++)
        if (strcmp (s_template_names[i], name) == 0) {
            t = nf_template_new (nf_templates[i], strlen (nf_templates[i]), why, sizeof why);
            if (!t)
                snprintf (err, errlen, "built-in template %s: %s", name, why);
            return t;
        }
    snprintf (err, errlen, "no template '%s' (looked in %s and the built-in ones)", name,
              template_dir && *template_dir ? template_dir : "no NF_TEMPLATE_DIR");
    return NULL;
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

/* An API GET: counts usage, maps errors. 0 with R's body, or -1 with OUT
   set (quota: *QUOTA true and OUT left ok for the caller to decide). */
static int
s_api_get (nf_scraper_t *s, const char *url, int units, nf_http_resp_t *r, nf_usage_t *usage,
           nf_outcome_t *out, bool *quota)
{
    nf_http_class_t k = nf_http_get (s->http, url, r);
    usage->http_requests += r->requests;
    if (k == NF_HTTP_OK && !r->from_cache)
        usage->quota_units += units;
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

static void
s_discover_youtube (nf_scraper_t *s, const json_t *job, const json_t *known, json_t *videos,
                    json_t *channels, nf_usage_t *usage, nf_outcome_t *out)
{
    long count = s_opt_int (job, "count", 50);
    long known_n = (long) json_array_size (known);
    long need = count - known_n;
    if (need <= 0) {
        snprintf (out->note, sizeof out->note, "the job already has %ld of %ld videos", known_n,
                  count);
        return;
    }
    long max_pages = s_opt_int (job, "max_pages", 0);
    if (max_pages <= 0)
        max_pages = (long) fmin (250.0, ceil ((double) need / (BATCH - 1)) + 2);
    json_t *seen = json_object ();
    size_t i;
    const json_t *id;
    json_array_foreach (known, i, id) if (json_is_string (id))
        json_object_set (seen, json_string_value (id), json_true ());

    char q[512], after[40], before[40];
    const char *sub = json_string_value (json_object_get (job, "sub_niche"));
    snprintf (q, sizeof q, "%s%s%s", json_string_value (json_object_get (job, "niche")),
              sub && *sub ? " " : "", sub && *sub ? sub : "");
    s_rfc3339 (s_opt_str (job, "since"), after, sizeof after);
    s_rfc3339 (s_opt_str (job, "until"), before, sizeof before);
    const char *format = s_opt_str (job, "format");

    json_t *ids = json_array (); /* new ids in search order */
    json_t *chan_seen = json_object (), *chan_ids = json_array ();
    char token[256] = "";
    long pages = 0, dropped = 0;
    size_t cursor = 0;                     /* ids before it were looked up */
    bool quota = false, exhausted = false; /* quota: an answer said quotaExceeded */
    bool lookup_quota = false, channel_quota = false;
    nf_http_resp_t r;
    nf_http_resp_init (&r);
    nf_buf_t url;
    nf_buf_init (&url);
    /* Rounds: search until there are enough ids to look up, look them up
       (videos.list, 50 a request); private or removed ones leave a gap
       that the next round fills from the spare ids of the last page. */
    while (out->error[0] == 0 && !lookup_quota && (long) json_array_size (videos) < need) {
        size_t want = (size_t) (need - (long) json_array_size (videos));
        while (json_array_size (ids) - cursor < want && !exhausted && !quota && pages < max_pages) {
            nf_buf_reset (&url);
            nf_buf_printf (&url, "%s/search?part=snippet&type=video&maxResults=%d", s->api_url,
                           BATCH);
            s_param (&url, "q", q);
            s_param (&url, "pageToken", token);
            s_param (&url, "publishedAfter", after);
            s_param (&url, "publishedBefore", before);
            s_param (&url, "regionCode", s_opt_str (job, "region"));
            s_param (&url, "relevanceLanguage", s_opt_str (job, "lang"));
            s_param (&url, "order", s_opt_str (job, "order"));
            s_param (&url, "videoDuration",
                     format && strcmp (format, "short") == 0 ? "short" : NULL);
            s_param (&url, "key", s->api_key);
            if (s_api_get (s, url.data, SEARCH_UNITS, &r, usage, out, &quota) != 0)
                break;
            json_t *page = json_array ();
            char err[256];
            if (nf_yt_parse_search (r.body.data, r.body.len, page, token, sizeof token, err,
                                    sizeof err)
                != 0) {
                json_decref (page);
                s_fail (out, true, "search.list: ", err);
                break;
            }
            pages++;
            json_array_foreach (page, i, id)
            {
                const char *v = json_string_value (id);
                if (!json_object_get (seen, v)) {
                    json_object_set (seen, v, json_true ());
                    json_array_append_new (ids, json_string (v));
                }
            }
            json_decref (page);
            exhausted = !*token;
        }
        if (out->error[0] || json_array_size (ids) == cursor)
            break; /* (after a quota stop, the ids found are still looked up) */
        size_t end = cursor + want < json_array_size (ids) ? cursor + want : json_array_size (ids);
        for (size_t at = cursor; at < end; at += BATCH) {
            size_t stop = at + BATCH < end ? at + BATCH : end;
            s_list_url (s, "videos?part=snippet,statistics,contentDetails", ids, at, stop, &url);
            if (s_api_get (s, url.data, 1, &r, usage, out, &lookup_quota) != 0)
                break;
            size_t before_n = json_array_size (videos);
            char err[256];
            if (nf_yt_parse_videos (r.body.data, r.body.len, s->web_url, videos, err, sizeof err)
                != 0) {
                s_fail (out, true, "videos.list: ", err);
                break;
            }
            dropped += (long) (stop - at) - (long) (json_array_size (videos) - before_n);
        }
        cursor = end;
        if (quota)
            break;
    }
    quota = quota || lookup_quota;
    json_array_foreach (videos, i, id)
    {
        const char *c = json_string_value (json_object_get (id, "channel_id"));
        if (c && !json_object_get (chan_seen, c)) {
            json_object_set (chan_seen, c, json_true ());
            json_array_append_new (chan_ids, json_string (c));
        }
    }
    for (size_t at = 0; out->error[0] == 0 && !channel_quota && at < json_array_size (chan_ids);
         at += BATCH) {
        size_t stop =
            at + BATCH < json_array_size (chan_ids) ? at + BATCH : json_array_size (chan_ids);
        s_list_url (s, "channels?part=snippet,statistics", chan_ids, at, stop, &url);
        if (s_api_get (s, url.data, 1, &r, usage, out, &channel_quota) != 0)
            break;
        char err[256];
        if (nf_yt_parse_channels (r.body.data, r.body.len, channels, err, sizeof err) != 0) {
            s_fail (out, true, "channels.list: ", err);
            break;
        }
    }
    quota = quota || channel_quota;
    if (quota)
        snprintf (out->note, sizeof out->note,
                  "quotaExceeded: discovery stopped after %ld search pages with %zu of %ld videos",
                  pages, json_array_size (videos), need);
    else if (out->error[0] == 0 && (dropped > 0 || (long) json_array_size (videos) < need))
        snprintf (out->note, sizeof out->note,
                  "found %zu of %ld videos in %ld search pages (%ld private or removed)",
                  json_array_size (videos), need, pages, dropped);
    nf_buf_free (&url);
    nf_http_resp_free (&r);
    json_decref (ids);
    json_decref (seen);
    json_decref (chan_seen);
    json_decref (chan_ids);
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
        json_object_set_new (
            meta, "is_short",
            json_boolean (json_integer_value (d) > 0 && json_integer_value (d) <= 60));
    json_object_set_new (meta, "url", json_string (url));
    json_object_set_new (meta, "source", json_string (source));
    json_object_set (meta, "template_matched", json_object_get (fields, "_matched"));
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
    long count = s_opt_int (job, "count", 50);
    long need = count - (long) json_array_size (known);
    long max_pages = s_opt_int (job, "max_pages", 0);
    if (max_pages <= 0)
        max_pages = json_is_integer (json_object_get (listing, "max_pages"))
                        ? (long) json_integer_value (json_object_get (listing, "max_pages"))
                        : 10;
    char source[80], q[512];
    snprintf (source, sizeof source, "template:%s", name);
    const char *sub = json_string_value (json_object_get (job, "sub_niche"));
    snprintf (q, sizeof q, "%s%s%s", json_string_value (json_object_get (job, "niche")),
              sub && *sub ? " " : "", sub && *sub ? sub : "");
    /* A listing page is read with a template of two fields. */
    const char *next_xp = json_string_value (json_object_get (listing, "next"));
    json_t *lt = json_pack ("{s:s, s:[{s:s, s:[{s:s, s:b}], s:[s]}, {s:s, s:[{s:s}], s:[s]}]}",
                            "name", "listing", "fields", "name", "items", "selectors", "xpath",
                            json_string_value (json_object_get (listing, "items")), "all", 1,
                            "post", "url", "name", "next", "selectors", "xpath",
                            next_xp ? next_xp : "/nothing", "post", "url");
    char *lt_text = json_dumps (lt, 0);
    json_decref (lt);
    nf_template_t *lister = nf_template_new (lt_text, strlen (lt_text), err, sizeof err);
    free (lt_text);
    if (!lister) {
        s_fail (out, false, "listing: ", err);
        nf_template_destroy (&t);
        return;
    }
    json_t *seen = json_object (), *chan_seen = json_object ();
    size_t i;
    const json_t *id;
    json_array_foreach (known, i, id) if (json_is_string (id))
        json_object_set (seen, json_string_value (id), json_true ());
    nf_buf_t url;
    nf_buf_init (&url);
    s_expand (json_string_value (json_object_get (listing, "start")), s->web_url, q, &url);
    nf_http_resp_t r;
    nf_http_resp_init (&r);
    long pages = 0, added = 0;
    while (url.len > 0 && pages < max_pages && added < need) {
        nf_http_class_t k = nf_http_get (s->http, url.data, &r);
        usage->http_requests += r.requests;
        if (k != NF_HTTP_OK) {
            s_fail (out, k != NF_HTTP_CLIENT && k != NF_HTTP_GONE, "listing page: ", r.error);
            break;
        }
        pages++;
        json_t *list =
            nf_template_apply (lister, r.body.data, r.body.len, url.data, err, sizeof err);
        const json_t *items = json_object_get (list, "items");
        char next[2048] = "";
        const char *nx = json_string_value (json_object_get (list, "next"));
        snprintf (next, sizeof next, "%s", nx ? nx : "");
        json_array_foreach (items, i, id)
        {
            const char *item_url = json_string_value (id);
            char vid[17];
            nf_http_cache_key (item_url, vid); /* a stable id from the URL */
            if (added >= need || json_object_get (seen, vid))
                continue;
            json_object_set (seen, vid, json_true ());
            nf_http_class_t ik = nf_http_get (s->http, item_url, &r);
            usage->http_requests += r.requests;
            if (ik == NF_HTTP_GONE)
                continue;
            if (ik != NF_HTTP_OK) {
                s_fail (out, ik != NF_HTTP_CLIENT, "item page: ", r.error);
                break;
            }
            json_t *fields =
                nf_template_apply (t, r.body.data, r.body.len, item_url, err, sizeof err);
            if (!fields) {
                nf_warn ("%s: %s", item_url, err);
                continue;
            }
            json_t *meta = json_object ();
            s_item_meta (fields, item_url, source, meta);
            json_t *v = json_pack ("{s:s, s:o}", "video_id", vid, "meta", meta);
            const char *ch = json_string_value (json_object_get (fields, "channel_id"));
            if (ch) {
                json_object_set_new (v, "channel_id", json_string (ch));
                if (!json_object_get (chan_seen, ch)) {
                    json_object_set (chan_seen, ch, json_true ());
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
                    json_array_append_new (channels, data);
                }
            }
            json_array_append_new (videos, v);
            json_decref (fields);
            added++;
        }
        json_decref (list);
        nf_buf_reset (&url);
        if (out->error[0] || strcmp (next, url.data ? url.data : "") == 0)
            break;
        nf_buf_puts (&url, next);
    }
    if (out->error[0] == 0 && added < need)
        snprintf (out->note, sizeof out->note, "found %ld of %ld items in %ld listing pages", added,
                  need, pages);
    nf_http_resp_free (&r);
    nf_buf_free (&url);
    json_decref (seen);
    json_decref (chan_seen);
    nf_template_destroy (&lister);
    nf_template_destroy (&t);
}

void
nf_discover (nf_scraper_t *s, const json_t *job, const json_t *known, json_t *videos,
             json_t *channels, nf_usage_t *usage, nf_outcome_t *out)
{
    memset (out, 0, sizeof *out);
    out->ok = true;
    const char *source = s_opt_str (job, "source");
    if (source && strncmp (source, "template:", 9) == 0)
        s_discover_template (s, source + 9, job, known, videos, channels, usage, out);
    else if (source && *source && strcmp (source, "youtube") != 0)
        s_fail (out, false, "unknown source: ", source);
    else
        s_discover_youtube (s, job, known, videos, channels, usage, out);
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

/* The language whose track a video's transcript comes from: the job's
   `lang`, else the video's audio language, else en. */
static const char *
s_track_lang (const json_t *job, const json_t *meta)
{
    const char *lang = s_opt_str (job, "lang");
    const char *audio = json_string_value (json_object_get (meta, "default_audio_language"));
    return lang && *lang ? lang : audio && *audio ? audio : "en";
}

/* Fetch and parse the timed text at URL into TRANSCRIPT: its segment
   count, NF_TT_GONE when there is no such track (404/410), or -1 with OUT
   failed (retryable for a cut or malformed body and transient errors). */
#define NF_TT_GONE (-2)
static int
s_timed_text (nf_scraper_t *s, const char *url, nf_buf_t *transcript, nf_usage_t *usage,
              nf_outcome_t *out)
{
    nf_http_resp_t r;
    nf_http_resp_init (&r);
    nf_http_class_t k = nf_http_get (s->http, url, &r);
    usage->http_requests += r.requests;
    char err[512];
    int n = NF_TT_GONE;
    if (k == NF_HTTP_OK) {
        n = nf_timedtext_parse (r.body.data, r.body.len, transcript, err, sizeof err);
        if (n < 0) {
            s_fail (out, true, "timed text: ", err);
            n = -1;
        }
    }
    else if (k != NF_HTTP_GONE) {
        s_fail (out, k != NF_HTTP_CLIENT, "timed text: ", r.error);
        n = -1;
    }
    nf_http_resp_free (&r);
    return n;
}

/* The direct path (NF_WATCH_PAGE=fallback): videos.list already said
   whether the video has uploaded captions (contentDetails.caption, kept as
   meta.captions_listed) and its audio language, so the timed text is asked
   for at once: the uploaded track when listed, else the auto-generated
   one, in the job's language, else the audio language, else en (primary
   subtag). One request instead of two for nearly every video. Returns
   false when the watch page must decide: no listing in the metadata, or a
   listed track that is not there (another language, or the video is gone:
   the watch page says which). An unlisted video without an auto-generated
   track in that language has no transcript; the watch page is not asked
   whether it has one in another language. */
static bool
s_scrape_direct (nf_scraper_t *s, const char *video_id, const json_t *meta, const json_t *job,
                 json_t *meta_out, nf_buf_t *transcript, nf_usage_t *usage, nf_outcome_t *out)
{
    const json_t *listed_j = json_object_get (meta, "captions_listed");
    if (s->watch_always || !json_is_boolean (listed_j))
        return false;
    bool listed = json_is_true (listed_j);
    const char *want = s_track_lang (job, meta);
    char primary[16];
    size_t n = strcspn (want, "-_");
    snprintf (primary, sizeof primary, "%.*s", (int) (n < sizeof primary ? n : sizeof primary - 1),
              want);
    nf_buf_t url;
    nf_buf_init (&url);
    nf_buf_printf (&url, "%s/api/timedtext", s->web_url);
    s_param (&url, "v", video_id);
    s_param (&url, "lang", primary);
    if (!listed)
        s_param (&url, "kind", "asr");
    int segments = s_timed_text (s, url.data, transcript, usage, out);
    nf_buf_free (&url);
    if (segments > 0) {
        json_object_set_new (meta_out, "captions", json_string (listed ? "manual" : "asr"));
        json_object_set_new (meta_out, "caption_lang", json_string (primary));
        json_object_set_new (meta_out, "caption_segments", json_integer (segments));
    }
    else if (segments == 0 || segments == NF_TT_GONE) {
        /* No such track (YouTube answers an empty body, the simulator 404). */
        transcript->len = 0;
        if (transcript->data)
            transcript->data[0] = 0;
        if (listed)
            return false; /* the watch page decides */
        json_object_set_new (meta_out, "captions", json_string ("none"));
    }
    return true;
}

void
nf_scrape (nf_scraper_t *s, const char *video_id, const json_t *meta, const json_t *job,
           json_t *meta_out, nf_buf_t *transcript, nf_usage_t *usage, nf_outcome_t *out)
{
    memset (out, 0, sizeof *out);
    out->ok = true;
    const char *source = json_string_value (json_object_get (meta, "source"));
    if (source && strncmp (source, "template:", 9) == 0) {
        s_scrape_template (s, source + 9, meta, meta_out, transcript, usage, out);
        return;
    }
    if (s_scrape_direct (s, video_id, meta, job, meta_out, transcript, usage, out))
        return;
    char url[1024], err[512];
    char *eid = curl_easy_escape (NULL, video_id, 0);
    snprintf (url, sizeof url, "%s/watch?v=%s", s->web_url, eid ? eid : "");
    curl_free (eid);
    nf_http_resp_t r;
    nf_http_resp_init (&r);
    nf_http_class_t k = nf_http_get (s->http, url, &r);
    usage->http_requests += r.requests;
    json_t *page = NULL;
    if (k == NF_HTTP_GONE)
        s_fail (out, false, "video removed: ", r.error);
    else if (k != NF_HTTP_OK)
        s_fail (out, k != NF_HTTP_CLIENT, "watch page: ", r.error);
    else if (!(page = nf_template_apply (s->watch, r.body.data, r.body.len, url, err, sizeof err)))
        s_fail (out, true, "watch page: ", err);
    if (!out->ok) {
        nf_http_resp_free (&r);
        return;
    }
    const char *status = json_string_value (json_object_get (page, "status"));
    if (!status || strcmp (status, "OK") != 0) {
        const char *why = json_string_value (json_object_get (page, "reason"));
        char msg[300];
        snprintf (msg, sizeof msg, "%s (%s)", why ? why : "not playable", status ? status : "?");
        s_fail (out, false, "video unavailable: ", msg);
        json_decref (page);
        nf_http_resp_free (&r);
        return;
    }
    json_object_set (meta_out, "watch_matched", json_object_get (page, "_matched"));
    if (!json_object_get (meta, "title") && json_object_get (page, "title"))
        json_object_set (meta_out, "title", json_object_get (page, "title"));
    const json_t *track =
        nf_yt_pick_track (json_object_get (page, "caption_tracks"), s_track_lang (job, meta));
    if (!track) {
        json_object_set_new (meta_out, "captions", json_string ("none"));
        json_decref (page);
        nf_http_resp_free (&r);
        return;
    }
    const char *kind = json_string_value (json_object_get (track, "kind"));
    const char *code = json_string_value (json_object_get (track, "languageCode"));
    const char *base = json_string_value (json_object_get (track, "baseUrl"));
    char tt[4096];
    if (strncmp (base, "http://", 7) == 0 || strncmp (base, "https://", 8) == 0)
        snprintf (tt, sizeof tt, "%s", base);
    else
        snprintf (tt, sizeof tt, "%s%s%s", s->web_url, base[0] == '/' ? "" : "/", base);
    json_object_set_new (meta_out, "captions",
                         json_string (kind && strcmp (kind, "asr") == 0 ? "asr" : "manual"));
    json_object_set_new (meta_out, "caption_lang", json_string (code ? code : ""));
    json_decref (page);
    nf_http_resp_free (&r);
    int n = s_timed_text (s, tt, transcript, usage, out);
    if (n == NF_TT_GONE) /* the track went away: no transcript */
        json_object_set_new (meta_out, "captions", json_string ("missing"));
    else if (n >= 0)
        json_object_set_new (meta_out, "caption_segments", json_integer (n));
}

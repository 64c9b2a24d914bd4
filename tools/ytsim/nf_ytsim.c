/*  nf-ytsim: a simulator of the YouTube endpoints nf-scraper uses, for
    tests, benchmarks and the offline demo. Serves

      GET /youtube/v3/search    search.list   (a call of its own daily bucket,
                                --search-calls, as Google counts it today)
      GET /youtube/v3/videos    videos.list   (1 unit of --quota)
      GET /youtube/v3/channels  channels.list (1 unit of --quota), with
                                contentDetails.relatedPlaylists.uploads
      GET /youtube/v3/playlistItems  playlistItems.list of a channel's
                                uploads playlist, newest first (1 unit)
      GET /vi/ID/mqdefault.jpg  the video's thumbnail, a 320x180 JPEG (as
                                i.ytimg.com serves it)
      POST /youtubei/v1/player  the innertube player API: per client (the body's
                                context.client.clientName), WEB's caption
                                tracks gated (exp=xpe), every other client's
                                signed (sig=, expire= --url-ttl ahead)
      GET /watch?v=ID           a watch page with ytInitialPlayerResponse (its
                                tracks gated, as since June 2025), or YouTube's
                                inline consent page to half of the requests
                                that carry neither SOCS nor CONSENT cookie
      GET /api/timedtext        timed text: XML (srv1, default), fmt=srv3,
                                fmt=json3, &tlang= translated; unsigned, gated
                                (exp=xpe without pot=) and expired URLs get
                                YouTube's answer: 200 with an empty body
      GET /site/search?q=&page= a listing site (20 links a page, rel=next) and
      GET /site/item/ID         its item pages, for the generic template source
      GET /_sim/stats           counters as JSON (concurrent_max: the most requests
                                being answered at once; gap_min_ms: the smallest gap
                                between two Data API requests, and between two others);
                                GET /_sim/reset zeroes them

    with the API's JSON shapes and error bodies. The data comes from
    nf_ytdata (deterministic from --seed and the query). Faults are injected
    by flag (--fault KIND:RATE[:PATHS]); see --help and tools/README.md.

    Videos follow today's YouTube too: a share is age-restricted (LOGIN_
    REQUIRED, "Sign in to confirm your age"), unplayable (UNPLAYABLE), or has
    tracks only in another language than the one spoken in its metadata.
    --legacy serves the YouTube of before 2025 instead: no player API (404),
    unsigned timed text answered, ungated watch-page tracks, none of the new
    video classes; for comparison runs.

    Requests in proxy form ("GET http://host/path") are served too and
    counted as proxied, so a test can use the simulator as a proxy. */
#include "nf_util.h"
#include "nf_version.h"
#include "nf_ytdata.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <jpeglib.h>
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Paths with counters and fault filters. */
enum {
    P_SEARCH,
    P_VIDEOS,
    P_CHANNELS,
    P_PLAYLIST, /* playlistItems.list (the last Data API path) */
    P_WATCH,
    P_TIMEDTEXT,
    P_PLAYER,
    P_IMAGE, /* i.ytimg.com: /vi/ID/mqdefault.jpg */
    P_SITE,
    P_OTHER,
    P_COUNT
};
static const char *const s_path_names[P_COUNT] = {
    "search",    "videos", "channels", "playlistItems", "watch",
    "timedtext", "player", "image",    "site",          "other"};

/* Fault kinds. */
enum {
    F_500,
    F_503,
    F_429,
    F_TRUNCATE,
    F_MALFORMED,
    F_BLOCK,
    F_CONSENT,
    F_RESET,
    F_GIANT,
    F_BOTCHECK,
    F_CAPTCHA,
    F_CONSENT_REDIRECT,
    F_COUNT
};
static const char *const s_fault_names[F_COUNT] = {
    "500",     "503",   "429",   "truncate", "malformed", "block",
    "consent", "reset", "giant", "botcheck", "captcha",   "consent-redirect"};

#define MAX_FAULTS  16
#define MAX_QUERIES 4096
#define GIANT_BYTES (64u << 20)

typedef struct {
    int kind;
    double rate;
    unsigned paths; /* bit per P_* */
} s_fault_t;

typedef struct {
    nf_ytworld_t world;
    const char *bind;
    int port;
    int threads;
    int latency_ms, jitter_ms;
    int retry_after;
    long quota;          /* daily units of the list calls, 0: unlimited */
    long search_calls;   /* daily search.list calls, 0: unlimited */
    const char *api_key; /* required key, or NULL */
    bool legacy;         /* --legacy: the YouTube of before 2025 */
    long url_ttl_s;      /* --url-ttl: signed URLs expire this long after they are made */
    s_fault_t faults[MAX_FAULTS];
    int nfaults;
    /* state */
    pthread_mutex_t lock;
    struct {
        uint64_t tag;
        char *query;
    } queries[MAX_QUERIES];
    atomic_ulong seq; /* request sequence: drives fault choice */
    atomic_long quota_used;
    atomic_long search_used;
    atomic_ulong requests[P_COUNT];
    atomic_ulong faults_served[F_COUNT];
    atomic_ulong not_modified, proxied, quota_refused;
    atomic_long in_flight, in_flight_max; /* requests being answered now; the most at once */
    int64_t last_us[2], gap_min_us[2];    /* under lock: the Data API's [0], the rest [1] */
    /* timed text answered: with text (signed, unexpired), and empty for an
       unsigned, a gated or an expired URL; consent pages served */
    atomic_ulong tt_signed, tt_unsigned, tt_gated, tt_expired, consent_pages, thumbnails;
} s_sim_t;

/* ---- the query registry ---------------------------------------------------- */

static void
s_remember (s_sim_t *sim, uint64_t tag, const char *q)
{
    pthread_mutex_lock (&sim->lock);
    size_t slot = (size_t) (nf_yt_mix (tag) % MAX_QUERIES);
    for (size_t i = 0; i < MAX_QUERIES; i++) {
        size_t k = (slot + i) % MAX_QUERIES;
        if (sim->queries[k].query && sim->queries[k].tag == tag)
            break;
        if (!sim->queries[k].query || i == MAX_QUERIES - 1) {
            free (sim->queries[k].query);
            sim->queries[k].tag = tag;
            sim->queries[k].query = strndup (q, 200);
            break;
        }
    }
    pthread_mutex_unlock (&sim->lock);
}

/* The query text of TAG into OUT (empty when unknown). */
static void
s_recall (s_sim_t *sim, uint64_t tag, char *out, size_t cap)
{
    out[0] = 0;
    pthread_mutex_lock (&sim->lock);
    size_t slot = (size_t) (nf_yt_mix (tag) % MAX_QUERIES);
    for (size_t i = 0; i < MAX_QUERIES; i++) {
        size_t k = (slot + i) % MAX_QUERIES;
        if (!sim->queries[k].query)
            break;
        if (sim->queries[k].tag == tag) {
            snprintf (out, cap, "%s", sim->queries[k].query);
            break;
        }
    }
    pthread_mutex_unlock (&sim->lock);
}

/* ---- responses ------------------------------------------------------------- */

static enum MHD_Result
s_send (struct MHD_Connection *c, unsigned status, const char *type, char *body, size_t len,
        const char *etag)
{
    struct MHD_Response *r = MHD_create_response_from_buffer (len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free (body);
        return MHD_NO;
    }
    MHD_add_response_header (r, "Content-Type", type);
    if (etag)
        MHD_add_response_header (r, "ETag", etag);
    enum MHD_Result rc = MHD_queue_response (c, status, r);
    MHD_destroy_response (r);
    return rc;
}

static enum MHD_Result
s_send_text (struct MHD_Connection *c, unsigned status, const char *type, const char *text)
{
    return s_send (c, status, type, strdup (text), strlen (text), NULL);
}

/* The YouTube Data API error body. */
static enum MHD_Result
s_api_error (struct MHD_Connection *c, unsigned code, const char *reason, const char *domain,
             const char *message)
{
    json_t *e = json_pack ("{s:{s:i, s:s, s:[{s:s, s:s, s:s}], s:s}}", "error", "code", (int) code,
                           "message", message, "errors", "message", message, "domain", domain,
                           "reason", reason, "status",
                           code == 403   ? "PERMISSION_DENIED"
                           : code == 404 ? "NOT_FOUND"
                           : code == 429 ? "RESOURCE_EXHAUSTED"
                                         : "INVALID_ARGUMENT");
    char *text = json_dumps (e, JSON_INDENT (2));
    json_decref (e);
    return s_send (c, code, "application/json; charset=UTF-8", text, strlen (text), NULL);
}

/* Send BODY (JSON or HTML) with an ETag; 304 when the client has it. */
static enum MHD_Result
s_send_cached (s_sim_t *sim, struct MHD_Connection *c, const char *type, char *body)
{
    size_t len = strlen (body);
    uint64_t h = UINT64_C (0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char) body[i]) * UINT64_C (0x100000001b3);
    char etag[40];
    snprintf (etag, sizeof etag, "\"%016llx\"", (unsigned long long) h);
    const char *inm = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "If-None-Match");
    if (inm && strcmp (inm, etag) == 0) {
        free (body);
        sim->not_modified++;
        struct MHD_Response *r = MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header (r, "ETag", etag);
        enum MHD_Result rc = MHD_queue_response (c, MHD_HTTP_NOT_MODIFIED, r);
        MHD_destroy_response (r);
        return rc;
    }
    return s_send (c, MHD_HTTP_OK, type, body, len, etag);
}

static enum MHD_Result
s_send_json (s_sim_t *sim, struct MHD_Connection *c, json_t *doc)
{
    char *text = json_dumps (doc, JSON_COMPACT | JSON_ESCAPE_SLASH);
    json_decref (doc);
    return s_send_cached (sim, c, "application/json; charset=UTF-8", text);
}

static ssize_t
s_giant_reader (void *cls, uint64_t pos, char *buf, size_t max)
{
    if (pos >= GIANT_BYTES)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = GIANT_BYTES - pos < max ? (size_t) (GIANT_BYTES - pos) : max;
    memset (buf, pos == 0 ? '[' : ' ', n);
    buf[0] = pos == 0 ? '[' : ' ';
    return (ssize_t) n;
}

/* ---- helpers ---------------------------------------------------------------- */

static void
s_iso_time (double epoch, char *out, size_t cap)
{
    time_t t = (time_t) epoch;
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
s_iso_duration (int s, char *out, size_t cap)
{
    if (s >= 3600)
        snprintf (out, cap, "PT%dH%dM%dS", s / 3600, s / 60 % 60, s % 60);
    else if (s >= 60)
        snprintf (out, cap, "PT%dM%dS", s / 60, s % 60);
    else
        snprintf (out, cap, "PT%dS", s);
}

static void
s_html_escape (nf_buf_t *b, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': nf_buf_puts (b, "&amp;"); break;
        case '<': nf_buf_puts (b, "&lt;"); break;
        case '>': nf_buf_puts (b, "&gt;"); break;
        case '"': nf_buf_puts (b, "&quot;"); break;
        case '\'': nf_buf_puts (b, "&#39;"); break;
        default: nf_buf_append (b, p, 1);
        }
    }
}

static const char *
s_arg (struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, name);
}

/* "http://HOST" of this request, for absolute URLs in pages. */
static void
s_origin (struct MHD_Connection *c, char *out, size_t cap)
{
    const char *host = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Host");
    snprintf (out, cap, "http://%s", host ? host : "127.0.0.1");
}

/* ---- quota -------------------------------------------------------------------- */

/* Take UNITS from a daily bucket (USED against CAP, 0: unlimited). */
static bool
s_take (s_sim_t *sim, atomic_long *used, long cap, long units)
{
    long now = atomic_fetch_add (used, units) + units;
    if (cap > 0 && now > cap) {
        atomic_fetch_sub (used, units);
        sim->quota_refused++;
        return false;
    }
    return true;
}

static bool
s_charge (s_sim_t *sim, long units)
{
    return s_take (sim, &sim->quota_used, sim->quota, units);
}

static enum MHD_Result
s_quota_exceeded (struct MHD_Connection *c)
{
    return s_api_error (c, 403, "quotaExceeded", "youtube.quota",
                        "The request cannot be completed because you have exceeded your "
                        "<a href=\"/youtube/v3/getting-started#quota\">quota</a>.");
}

/* ---- /search ------------------------------------------------------------------- */

static bool
s_duration_ok (const char *filter, int s)
{
    if (!filter || strcmp (filter, "any") == 0)
        return true;
    if (strcmp (filter, "short") == 0)
        return s < 240;
    if (strcmp (filter, "medium") == 0)
        return s >= 240 && s <= 1200;
    return s > 1200; /* long */
}

static enum MHD_Result
s_search (s_sim_t *sim, struct MHD_Connection *c)
{
    const char *q = s_arg (c, "q");
    if (!q || !*q)
        return s_api_error (c, 400, "missingRequiredParameter", "global",
                            "No filter selected. Expected one of: q, channelId.");
    const char *type = s_arg (c, "type");
    if (type && strcmp (type, "video") != 0)
        return s_api_error (c, 400, "invalidSearchFilter", "youtube.search",
                            "The simulator serves type=video only.");
    const char *dur = s_arg (c, "videoDuration");
    if (dur && strcmp (dur, "any") && strcmp (dur, "short") && strcmp (dur, "medium")
        && strcmp (dur, "long"))
        return s_api_error (c, 400, "invalidVideoDuration", "youtube.search",
                            "Invalid value for videoDuration.");
    double after = 0, before = 1e18;
    const char *pa = s_arg (c, "publishedAfter"), *pb = s_arg (c, "publishedBefore");
    if ((pa && nf_time_parse (pa, strlen (pa), &after) != 0)
        || (pb && nf_time_parse (pb, strlen (pb), &before) != 0))
        return s_api_error (c, 400, "invalidPublishedAfter", "youtube.search",
                            "publishedAfter/publishedBefore must be RFC 3339 times.");
    const char *mr = s_arg (c, "maxResults");
    int max = mr ? atoi (mr) : 5;
    if (max < 0 || max > 50)
        return s_api_error (c, 400, "invalidMaxResults", "youtube.parameter",
                            "maxResults must be between 0 and 50.");
    long offset = 0;
    const char *token = s_arg (c, "pageToken");
    if (token && *token) {
        char *end = NULL;
        offset = token[0] == 'P' ? strtol (token + 1, &end, 36) : -1;
        if (offset < 0 || !end || *end || offset >= sim->world.catalog)
            return s_api_error (c, 400, "invalidPageToken", "youtube.parameter",
                                "The request specifies an invalid page token.");
    }
    if (!s_take (sim, &sim->search_used, sim->search_calls, 1))
        return s_quota_exceeded (c);
    uint64_t tag = nf_yt_query_tag (&sim->world, q);
    s_remember (sim, tag, q);
    const char *order = s_arg (c, "order");
    bool filtered = dur || pa || pb;
    (void) order; /* relevance, date, viewCount...: the catalog order (documented) */

    /* Walk the catalog, keeping matches; a page after the first repeats the
       previous page's last hit first (the real API returns duplicates too). */
    json_t *items = json_array ();
    long matched = 0, next = -1, total = 0;
    nf_ytvideo_t v;
    for (uint32_t i = 0; i < (uint32_t) sim->world.catalog; i++) {
        if (filtered) {
            nf_yt_video (&sim->world, tag, i, q, &v);
            if (v.published < after || v.published > before || !s_duration_ok (dur, v.duration_s))
                continue;
        }
        total++;
        long pos = matched++;
        bool dup = offset > 0 && pos == offset - 1;
        if ((pos < offset && !dup) || (long) json_array_size (items) >= max) {
            if ((long) json_array_size (items) >= max && next < 0)
                next = pos;
            continue;
        }
        nf_yt_video (&sim->world, tag, i, q, &v);
        char pub[32];
        s_iso_time (v.published, pub, sizeof pub);
        nf_ytchannel_t ch;
        nf_yt_channel (&sim->world, tag, v.channel_index, q, &ch);
        json_array_append_new (
            items,
            json_pack ("{s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s}}", "kind",
                       "youtube#searchResult", "id", "kind", "youtube#video", "videoId", v.id,
                       "snippet", "publishedAt", pub, "channelId", v.channel_id, "title", v.title,
                       "description", "A video about this niche.", "channelTitle", ch.title));
    }
    json_t *doc = json_pack ("{s:s, s:s, s:{s:I, s:i}, s:o}", "kind", "youtube#searchListResponse",
                             "regionCode", s_arg (c, "regionCode") ? s_arg (c, "regionCode") : "US",
                             "pageInfo", "totalResults", (json_int_t) total, "resultsPerPage", max,
                             "items", items);
    if (next > 0 && next < total) {
        char tok[32];
        int n = 0;
        char digits[24];
        for (long x = next; x > 0 || n == 0; x /= 36)
            digits[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[x % 36];
        tok[0] = 'P';
        for (int k = 0; k < n; k++)
            tok[1 + k] = digits[n - 1 - k];
        tok[1 + n] = 0;
        json_object_set_new (doc, "nextPageToken", json_string (tok));
    }
    return s_send_json (sim, c, doc);
}

/* ---- /videos, /channels ------------------------------------------------------ */

/* Split the comma list ID into at most 50 ids; -1 when there are more. */
static int
s_ids (const char *list, char ids[][32], int cap)
{
    int n = 0;
    const char *p = list ? list : "";
    while (*p) {
        const char *comma = strchr (p, ',');
        size_t len = comma ? (size_t) (comma - p) : strlen (p);
        if (len > 0) {
            if (n == cap)
                return -1;
            snprintf (ids[n++], 32, "%.*s", (int) (len < 31 ? len : 31), p);
        }
        p += len + (comma ? 1 : 0);
    }
    return n;
}

static char *
s_count (char *buf, size_t cap, int64_t n)
{
    snprintf (buf, cap, "%lld", (long long) n);
    return buf;
}

/* A videos.list or channels.list answer of KIND holding ITEMS (taken). */
static enum MHD_Result
s_send_list (s_sim_t *sim, struct MHD_Connection *c, const char *kind, json_t *items)
{
    json_int_t n = (json_int_t) json_array_size (items);
    return s_send_json (sim, c,
                        json_pack ("{s:s, s:{s:I, s:I}, s:o}", "kind", kind, "pageInfo",
                                   "totalResults", n, "resultsPerPage", n, "items", items));
}

static enum MHD_Result
s_videos (s_sim_t *sim, struct MHD_Connection *c)
{
    char ids[50][32];
    int n = s_ids (s_arg (c, "id"), ids, 50);
    if (n < 0)
        return s_api_error (c, 400, "tooManyIds", "youtube.parameter",
                            "The request specifies more than 50 ids.");
    if (!s_charge (sim, 1))
        return s_quota_exceeded (c);
    json_t *items = json_array ();
    for (int i = 0; i < n; i++) {
        uint64_t tag;
        uint32_t index;
        if (nf_yt_video_decode (ids[i], &tag, &index) != 0
            || !nf_yt_video_exists (&sim->world, index))
            continue;
        char q[256], pub[32], dur[32], a[24], b[24], d[24];
        s_recall (sim, tag, q, sizeof q);
        nf_ytvideo_t v;
        nf_yt_video (&sim->world, tag, index, q, &v);
        if (v.is_private)
            continue;
        nf_ytchannel_t ch;
        nf_yt_channel (&sim->world, tag, v.channel_index, q, &ch);
        s_iso_time (v.published, pub, sizeof pub);
        s_iso_duration (v.duration_s, dur, sizeof dur);
        json_t *snippet = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:[s, s]}", "publishedAt", pub,
                                     "channelId", v.channel_id, "title", v.title, "description",
                                     "Everything you need to know. Links below.", "channelTitle",
                                     ch.title, "tags", q[0] ? q : "video", "nicheflow");
        if (v.audio_lang)
            json_object_set_new (snippet, "defaultAudioLanguage", json_string (v.audio_lang));
        json_t *stats = json_pack ("{s:s, s:s}", "viewCount", s_count (a, sizeof a, v.views),
                                   "favoriteCount", "0");
        if (!v.likes_hidden)
            json_object_set_new (stats, "likeCount", json_string (s_count (b, sizeof b, v.likes)));
        json_object_set_new (stats, "commentCount",
                             json_string (s_count (d, sizeof d, v.comments)));
        json_array_append_new (items, json_pack ("{s:s, s:s, s:o, s:o, s:{s:s, s:s, s:s}}", "kind",
                                                 "youtube#video", "id", v.id, "snippet", snippet,
                                                 "statistics", stats, "contentDetails", "duration",
                                                 dur, "definition", "hd", "caption",
                                                 v.captions == 2 ? "true" : "false"));
    }
    return s_send_list (sim, c, "youtube#videoListResponse", items);
}

static enum MHD_Result
s_channels (s_sim_t *sim, struct MHD_Connection *c)
{
    char ids[50][32];
    int n = s_ids (s_arg (c, "id"), ids, 50);
    if (n < 0)
        return s_api_error (c, 400, "tooManyIds", "youtube.parameter",
                            "The request specifies more than 50 ids.");
    if (!s_charge (sim, 1))
        return s_quota_exceeded (c);
    json_t *items = json_array ();
    for (int i = 0; i < n; i++) {
        uint64_t tag;
        uint32_t index;
        if (nf_yt_channel_decode (ids[i], &tag, &index) != 0
            || index >= nf_yt_channel_count (&sim->world))
            continue;
        char q[256], a[24], b[24], d[24];
        s_recall (sim, tag, q, sizeof q);
        nf_ytchannel_t ch;
        nf_yt_channel (&sim->world, tag, index, q, &ch);
        json_t *snippet =
            json_pack ("{s:s, s:s}", "title", ch.title, "description", "Videos every week.");
        if (ch.country)
            json_object_set_new (snippet, "country", json_string (ch.country));
        json_t *stats =
            json_pack ("{s:s, s:b, s:s}", "viewCount", s_count (a, sizeof a, ch.view_count),
                       "hiddenSubscriberCount", ch.hidden_subscribers, "videoCount",
                       s_count (d, sizeof d, ch.video_count));
        if (!ch.hidden_subscribers)
            json_object_set_new (stats, "subscriberCount",
                                 json_string (s_count (b, sizeof b, ch.subscribers)));
        char uploads[32];
        snprintf (uploads, sizeof uploads, "UU%.22s", ch.id + 2);
        json_array_append_new (items,
                               json_pack ("{s:s, s:s, s:o, s:o, s:{s:{s:s, s:s}}}", "kind",
                                          "youtube#channel", "id", ch.id, "snippet", snippet,
                                          "statistics", stats, "contentDetails", "relatedPlaylists",
                                          "likes", "", "uploads", uploads));
    }
    return s_send_list (sim, c, "youtube#channelListResponse", items);
}

/* playlistItems.list of a channel's uploads playlist ("UU" and the
   channel id's tail): newest first, maxResults (1 to 50, default 5) a
   page, pageToken "P<offset>"; 1 unit. Another playlist: 404
   playlistNotFound, as the real API answers. */
static enum MHD_Result
s_playlist_items (s_sim_t *sim, struct MHD_Connection *c)
{
    const char *pl = s_arg (c, "playlistId"), *mr = s_arg (c, "maxResults");
    const char *tok = s_arg (c, "pageToken");
    long max = mr ? strtol (mr, NULL, 10) : 5;
    if (max < 0 || max > 50)
        return s_api_error (c, 400, "invalidParameter", "youtube.parameter",
                            "Invalid value for parameter maxResults.");
    if (max == 0)
        max = 5;
    char chan[32];
    uint64_t tag;
    uint32_t index;
    snprintf (chan, sizeof chan, "UC%s", pl && strncmp (pl, "UU", 2) == 0 ? pl + 2 : "");
    if (!pl || strncmp (pl, "UU", 2) != 0 || nf_yt_channel_decode (chan, &tag, &index) != 0
        || index >= nf_yt_channel_count (&sim->world))
        return s_api_error (c, 404, "playlistNotFound", "youtube.playlistItem",
                            "The playlist identified with the request's playlistId parameter "
                            "cannot be found.");
    if (!s_charge (sim, 1))
        return s_quota_exceeded (c);
    long offset = tok && tok[0] == 'P' ? strtol (tok + 1, NULL, 10) : 0;
    uint32_t *list = malloc (4096 * sizeof *list);
    size_t total = list ? nf_yt_uploads (&sim->world, tag, index, list, 4096) : 0;
    if (total > 4096)
        total = 4096;
    char q[256];
    s_recall (sim, tag, q, sizeof q);
    json_t *items = json_array ();
    for (long i = offset < 0 ? 0 : offset; i < offset + max && (size_t) i < total; i++) {
        nf_ytvideo_t v;
        nf_yt_video (&sim->world, tag, list[i], q, &v);
        if (v.is_private)
            continue; /* the uploads playlist lists public videos */
        char pub[32], item_id[48];
        s_iso_time (v.published, pub, sizeof pub);
        snprintf (item_id, sizeof item_id, "VVU%.20s%s", pl + 2, v.id);
        json_array_append_new (
            items, json_pack ("{s:s, s:s, s:{s:s, s:s}}", "kind", "youtube#playlistItem", "id",
                              item_id, "contentDetails", "videoId", v.id, "videoPublishedAt", pub));
    }
    free (list);
    json_t *doc = json_pack ("{s:s, s:{s:I, s:I}, s:o}", "kind", "youtube#playlistItemListResponse",
                             "pageInfo", "totalResults", (json_int_t) total, "resultsPerPage",
                             (json_int_t) max, "items", items);
    if ((size_t) (offset + max) < total) {
        char next[24];
        snprintf (next, sizeof next, "P%ld", offset + max);
        json_object_set_new (doc, "nextPageToken", json_string (next));
    }
    return s_send_json (sim, c, doc);
}

/* ---- i.ytimg.com ---------------------------------------------------------------------- */

/* A 320x180 baseline JPEG of video ID, as i.ytimg.com serves
   /vi/ID/mqdefault.jpg: a gradient in the video's own two colours and a
   bright block (a face, a title card), so that every outlier's picture
   differs. Into *OUT (malloc'd by libjpeg) and *LEN. */
static void
s_thumbnail_jpeg (const char *id, unsigned char **out, unsigned long *len)
{
    enum { W = 320, H = 180 };
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char) *p) * 1099511628211ULL;
    unsigned char a[3], b[3], spot[3];
    for (int k = 0; k < 3; k++) {
        a[k] = (unsigned char) (40 + (h >> (8 * k)) % 160);
        b[k] = (unsigned char) (40 + (h >> (8 * k + 24)) % 160);
        spot[k] = (unsigned char) (200 + (h >> (8 * k + 40)) % 56);
    }
    int bx = 20 + (int) (h % 140), by = 20 + (int) ((h >> 20) % 80);
    static unsigned char row[W * 3];
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error (&jerr);
    jpeg_create_compress (&cinfo);
    *out = NULL;
    *len = 0;
    jpeg_mem_dest (&cinfo, out, len);
    cinfo.image_width = W;
    cinfo.image_height = H;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults (&cinfo);
    jpeg_set_quality (&cinfo, 80, TRUE);
    jpeg_start_compress (&cinfo, TRUE);
    while (cinfo.next_scanline < H) {
        int y = (int) cinfo.next_scanline;
        for (int x = 0; x < W; x++) {
            bool in = x >= bx && x < bx + 140 && y >= by && y < by + 80;
            for (int k = 0; k < 3; k++)
                row[3 * x + k] = in ? spot[k] : (unsigned char) ((a[k] * (W - x) + b[k] * x) / W);
        }
        JSAMPROW r = row;
        jpeg_write_scanlines (&cinfo, &r, 1);
    }
    jpeg_finish_compress (&cinfo);
    jpeg_destroy_compress (&cinfo);
}

/* GET /vi/ID/mqdefault.jpg: the thumbnail of a video of the world; 404
   (as i.ytimg.com answers) for any other id or size. */
static enum MHD_Result
s_thumbnail (s_sim_t *sim, struct MHD_Connection *c, const char *url)
{
    char id[16] = "";
    uint64_t tag;
    uint32_t index;
    const char *slash = strchr (url + 4, '/');
    if (slash && slash - (url + 4) == 11)
        memcpy (id, url + 4, 11);
    if (!slash || strcmp (slash, "/mqdefault.jpg") != 0
        || nf_yt_video_decode (id, &tag, &index) != 0 || !nf_yt_video_exists (&sim->world, index))
        return s_send_text (c, 404, "text/html", "<html><body>404</body></html>");
    sim->thumbnails++;
    unsigned char *jpeg = NULL;
    unsigned long len = 0;
    s_thumbnail_jpeg (id, &jpeg, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback (len, jpeg, &free);
    MHD_add_response_header (r, "Content-Type", "image/jpeg");
    MHD_add_response_header (r, "Cache-Control", "public, max-age=7200");
    enum MHD_Result rc = MHD_queue_response (c, 200, r);
    MHD_destroy_response (r);
    return rc;
}

/* ---- /watch ------------------------------------------------------------------------ */

static const char *
s_lang_name (const char *code)
{
    return strcmp (code, "en") == 0   ? "English"
           : strcmp (code, "es") == 0 ? "Spanish"
           : strcmp (code, "de") == 0 ? "German"
           : strcmp (code, "hi") == 0 ? "Hindi"
           : strcmp (code, "fr") == 0 ? "French"
                                      : "Portuguese (Brazil)";
}

/* What today's YouTube adds to a video of the world (nothing with --legacy):
   an age gate, an unplayable video, or tracks only in another language than
   the spoken one. Drawn from a hash of their own, so every other attribute
   of the world stays as it was. */
typedef struct {
    bool age;               /* LOGIN_REQUIRED: "Sign in to confirm your age" */
    bool unplayable;        /* UNPLAYABLE */
    const char *track_lang; /* the language of its caption tracks */
} s_today_t;

static void
s_today (const s_sim_t *sim, const nf_ytvideo_t *v, s_today_t *t)
{
    t->age = t->unplayable = false;
    t->track_lang = v->caption_lang;
    if (sim->legacy || v->unavailable || v->is_private)
        return;
    unsigned r = (unsigned) (nf_yt_mix (sim->world.seed ^ (v->tag * UINT64_C (0x9E3779B97F4A7C15))
                                        ^ ((uint64_t) v->index << 20) ^ 0xA9E5)
                             % 1000);
    t->age = r < 20;
    t->unplayable = r >= 20 && r < 30;
    if (r >= 30 && r < 60 && v->captions > 0)
        t->track_lang = strcmp (v->caption_lang, "fr") != 0 ? "fr" : "de";
}

/* How a player answer's caption URLs are made. */
enum { URL_UNSIGNED, URL_GATED, URL_SIGNED };

/* The signature of a timed-text URL (hex into OUT). */
static void
s_sign (const s_sim_t *sim, const char *id, const char *lang, bool asr, long long expire,
        char out[17])
{
    uint64_t h = sim->world.seed ^ UINT64_C (0x51C0FFEE);
    for (const char *p = id; *p; p++)
        h = nf_yt_mix (h ^ (unsigned char) *p);
    for (const char *p = lang; *p; p++)
        h = nf_yt_mix (h ^ (unsigned char) *p);
    h = nf_yt_mix (h ^ (uint64_t) expire ^ (asr ? 0xA5 : 0));
    snprintf (out, 17, "%016llx", (unsigned long long) h);
}

/* A caption track's baseUrl for V in LANG (ASR or not) made the MODE way. */
static void
s_track_url (const s_sim_t *sim, const char *origin, const nf_ytvideo_t *v, const char *lang,
             bool asr, int mode, const char *client, char *url, size_t cap)
{
    int n = snprintf (url, cap, "%s/api/timedtext?v=%s&lang=%s%s", origin, v->id, lang,
                      asr ? "&kind=asr" : "");
    if (mode == URL_UNSIGNED || n < 0 || (size_t) n >= cap)
        return;
    long long expire = (long long) time (NULL) + sim->url_ttl_s;
    char sig[17];
    s_sign (sim, v->id, lang, asr, expire, sig);
    snprintf (url + n, cap - (size_t) n, "&c=%s&expire=%lld%s&sparams=v,lang,kind,expire&sig=%s",
              client, expire, mode == URL_GATED ? "&exp=xpe" : "", sig);
}

/* The player answer for V (ytInitialPlayerResponse, or /youtubei/v1/player
   for CLIENT), its caption URLs made the MODE way. New reference. */
static json_t *
s_player_json (const s_sim_t *sim, const nf_ytvideo_t *v, const nf_ytchannel_t *ch,
               const char *origin, int mode, const char *client)
{
    s_today_t today;
    s_today (sim, v, &today);
    if (v->unavailable || v->is_private)
        return json_pack ("{s:{s:s, s:s}}", "playabilityStatus", "status",
                          v->is_private ? "LOGIN_REQUIRED" : "ERROR", "reason",
                          v->is_private ? "This video is private" : "Video unavailable");
    if (today.age)
        return json_pack ("{s:{s:s, s:s, s:{s:{s:{s:[{s:s}]}}}}, s:{s:s}}", "playabilityStatus",
                          "status", "LOGIN_REQUIRED", "reason", "Sign in to confirm your age",
                          "errorScreen", "playerErrorMessageRenderer", "subreason", "runs", "text",
                          "This video may be inappropriate for some users.", "videoDetails",
                          "videoId", v->id);
    if (today.unplayable)
        return json_pack ("{s:{s:s, s:s}, s:{s:s}}", "playabilityStatus", "status", "UNPLAYABLE",
                          "reason",
                          "The uploader has not made this video available in your country",
                          "videoDetails", "videoId", v->id);
    char secs[16], num[24];
    snprintf (secs, sizeof secs, "%d", v->duration_s);
    json_t *player = json_pack ("{s:{s:s}, s:{s:s, s:s, s:s, s:s, s:s, s:s}}", "playabilityStatus",
                                "status", "OK", "videoDetails", "videoId", v->id, "title", v->title,
                                "lengthSeconds", secs, "channelId", v->channel_id, "viewCount",
                                s_count (num, sizeof num, v->views), "author", ch->title);
    if (v->captions > 0) {
        const char *lang = today.track_lang;
        json_t *tracks = json_array ();
        char url[768], name[64];
        if (v->captions == 2) {
            s_track_url (sim, origin, v, lang, false, mode, client, url, sizeof url);
            json_array_append_new (tracks,
                                   json_pack ("{s:s, s:{s:s}, s:s, s:s, s:b}", "baseUrl", url,
                                              "name", "simpleText", s_lang_name (lang), "vssId",
                                              lang, "languageCode", lang, "isTranslatable", 1));
        }
        s_track_url (sim, origin, v, lang, true, mode, client, url, sizeof url);
        snprintf (name, sizeof name, "%s (auto-generated)", s_lang_name (lang));
        json_array_append_new (tracks, json_pack ("{s:s, s:{s:s}, s:s, s:s, s:s, s:b}", "baseUrl",
                                                  url, "name", "simpleText", name, "vssId", "a.asr",
                                                  "languageCode", lang, "kind", "asr",
                                                  "isTranslatable", 1));
        json_object_set_new (
            player, "captions",
            json_pack ("{s:{s:o}}", "playerCaptionsTracklistRenderer", "captionTracks", tracks));
    }
    return player;
}

/* The video of a request's id, or -1 when it is none of ours. */
static int
s_lookup (s_sim_t *sim, const char *id, nf_ytvideo_t *v, nf_ytchannel_t *ch, char *q, size_t qcap)
{
    uint64_t tag;
    uint32_t index;
    if (!id || nf_yt_video_decode (id, &tag, &index) != 0 || index >= (uint32_t) sim->world.catalog)
        return -1;
    s_recall (sim, tag, q, qcap);
    nf_yt_video (&sim->world, tag, index, q, v);
    if (ch)
        nf_yt_channel (&sim->world, tag, v->channel_index, q, ch);
    return 0;
}

static enum MHD_Result
s_watch (s_sim_t *sim, struct MHD_Connection *c)
{
    const char *id = s_arg (c, "v");
    char q[256], origin[300], pub[32], dur[32];
    nf_ytvideo_t v;
    nf_ytchannel_t ch;
    if (s_lookup (sim, id, &v, &ch, q, sizeof q) != 0)
        return s_send_text (c, 404, "text/html; charset=utf-8",
                            "<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
                            "<body>This page isn't available.</body></html>");
    s_origin (c, origin, sizeof origin);
    s_iso_time (v.published, pub, sizeof pub);
    s_iso_duration (v.duration_s, dur, sizeof dur);
    json_t *player =
        s_player_json (sim, &v, &ch, origin, sim->legacy ? URL_UNSIGNED : URL_GATED, "WEB");
    char *pj = json_dumps (player, JSON_COMPACT | JSON_ESCAPE_SLASH);
    json_decref (player);

    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_puts (&b, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    s_html_escape (&b, v.title);
    nf_buf_puts (&b, " - YouTube</title>");
    if (v.markup == 0) {
        nf_buf_puts (&b, "<meta name=\"title\" content=\"");
        s_html_escape (&b, v.title);
        nf_buf_puts (&b, "\">");
    }
    else {
        nf_buf_puts (&b, "<meta property=\"og:title\" content=\"");
        s_html_escape (&b, v.title);
        nf_buf_puts (&b, "\">");
    }
    nf_buf_printf (&b,
                   "<meta itemprop=\"interactionCount\" content=\"%lld\">"
                   "<meta itemprop=\"datePublished\" content=\"%s\">"
                   "<meta itemprop=\"duration\" content=\"%s\">"
                   "<link rel=\"canonical\" href=\"%s/watch?v=%s\"></head><body>"
                   "<div id=\"player\"></div><script nonce=\"sim\">",
                   (long long) v.views, pub, dur, origin, v.id);
    if (v.markup == 0)
        nf_buf_printf (&b,
                       "var ytInitialPlayerResponse = %s;var meta = "
                       "document.createElement('meta');",
                       pj);
    else
        nf_buf_printf (&b, "window[\"ytInitialPlayerResponse\"] = %s;\nwindow.ytcsi = {};", pj);
    nf_buf_puts (&b, "</script></body></html>");
    free (pj);
    return s_send_cached (sim, c, "text/html; charset=utf-8", b.data);
}

/* ---- /api/timedtext -------------------------------------------------------------- */

typedef struct {
    nf_buf_t *b;
    int fmt; /* 0 srv1 XML, 1 srv3 XML, 2 json3, 3 HTML paragraphs (/site) */
    bool first;
} s_tt_t;

static void
s_tt_segment (int64_t start_ms, int64_t dur_ms, const char *text, void *arg)
{
    s_tt_t *t = arg;
    if (t->fmt == 2) {
        json_t *e = json_pack ("{s:I, s:I, s:[{s:s}]}", "tStartMs", (json_int_t) start_ms,
                               "dDurationMs", (json_int_t) dur_ms, "segs", "utf8", text);
        char *s = json_dumps (e, JSON_COMPACT);
        json_decref (e);
        nf_buf_printf (t->b, "%s%s", t->first ? "" : ",", s);
        free (s);
        t->first = false;
        return;
    }
    if (t->fmt == 3) {
        nf_buf_puts (t->b, "<p>");
        s_html_escape (t->b, text);
        nf_buf_puts (t->b, "</p>\n");
        return;
    }
    /* YouTube escapes the text for HTML, then the XML escapes that again. */
    nf_buf_t html;
    nf_buf_init (&html);
    s_html_escape (&html, text);
    if (t->fmt == 1)
        nf_buf_printf (t->b, "<p t=\"%lld\" d=\"%lld\">", (long long) start_ms, (long long) dur_ms);
    else
        nf_buf_printf (t->b, "<text start=\"%.2f\" dur=\"%.2f\">", (double) start_ms / 1000.0,
                       (double) dur_ms / 1000.0);
    s_html_escape (t->b, html.data ? html.data : "");
    nf_buf_puts (t->b, t->fmt == 1 ? "</p>" : "</text>");
    nf_buf_free (&html);
}

/* Today's answer to a timed-text URL that is unsigned, gated or expired:
   200 with an empty body. Counted in COUNTER. */
static enum MHD_Result
s_empty_200 (struct MHD_Connection *c, atomic_ulong *counter)
{
    (*counter)++;
    return s_send_text (c, 200, "text/xml; charset=UTF-8", "");
}

static enum MHD_Result
s_timedtext (s_sim_t *sim, struct MHD_Connection *c)
{
    const char *id = s_arg (c, "v"), *lang = s_arg (c, "lang"), *kind = s_arg (c, "kind");
    const char *fmt = s_arg (c, "fmt");
    char q[256];
    nf_ytvideo_t v;
    if (!lang || s_lookup (sim, id, &v, NULL, q, sizeof q) != 0)
        return sim->legacy ? s_send_text (c, 404, "text/plain", "no such track\n")
                           : s_empty_200 (c, &sim->tt_unsigned);
    bool asr = kind && strcmp (kind, "asr") == 0;
    s_today_t today;
    s_today (sim, &v, &today);
    if (!sim->legacy) {
        const char *sig = s_arg (c, "sig"), *expire = s_arg (c, "expire"), *exp = s_arg (c, "exp");
        char want[17];
        if (!sig || !expire)
            return s_empty_200 (c, &sim->tt_unsigned);
        s_sign (sim, v.id, lang, asr, strtoll (expire, NULL, 10), want);
        if (strcmp (sig, want) != 0)
            return s_empty_200 (c, &sim->tt_unsigned);
        if (exp && (strstr (exp, "xpe") || strstr (exp, "xpv")) && !s_arg (c, "pot"))
            return s_empty_200 (c, &sim->tt_gated);
        if (strtoll (expire, NULL, 10) < (long long) time (NULL))
            return s_empty_200 (c, &sim->tt_expired);
    }
    if (v.captions == 0 || v.unavailable || today.age || today.unplayable
        || strcmp (lang, today.track_lang) != 0 || (!asr && v.captions != 2))
        return sim->legacy ? s_send_text (c, 404, "text/plain", "no such track\n")
                           : s_empty_200 (c, &sim->tt_unsigned);
    if (!sim->legacy)
        sim->tt_signed++;
    nf_buf_t b;
    nf_buf_init (&b);
    s_tt_t t = {&b,
                fmt && strcmp (fmt, "json3") == 0  ? 2
                : fmt && strcmp (fmt, "srv3") == 0 ? 1
                                                   : 0,
                true};
    if (t.fmt == 2)
        nf_buf_puts (&b, "{\"wireMagic\":\"pb3\",\"events\":[");
    else if (t.fmt == 1)
        nf_buf_puts (&b,
                     "<?xml version=\"1.0\" encoding=\"utf-8\" ?><timedtext format=\"3\"><body>");
    else
        nf_buf_puts (&b, "<?xml version=\"1.0\" encoding=\"utf-8\" ?><transcript>");
    nf_yt_transcript (&sim->world, &v, q, asr, s_tt_segment, &t);
    nf_buf_puts (&b, t.fmt == 2 ? "]}" : t.fmt == 1 ? "</body></timedtext>" : "</transcript>");
    return s_send_cached (
        sim, c, t.fmt == 2 ? "application/json; charset=UTF-8" : "text/xml; charset=UTF-8", b.data);
}

/* ---- /youtubei/v1/player ------------------------------------------------------ */

/* BODY names the client and the video: {"context":{"client":{"clientName"}},
   "videoId"}. WEB answers gated tracks (it needs a PO token), every other
   client signed ones. */
static enum MHD_Result
s_player_api (s_sim_t *sim, struct MHD_Connection *c, const nf_buf_t *body)
{
    if (sim->legacy)
        return s_api_error (c, 404, "notFound", "global", "Not Found");
    json_t *req = json_loadb (body->data ? body->data : "", body->len, 0, NULL);
    const char *client = json_string_value (json_object_get (
        json_object_get (json_object_get (req, "context"), "client"), "clientName"));
    const char *id = json_string_value (json_object_get (req, "videoId"));
    if (!client || !id) {
        json_decref (req);
        return s_api_error (c, 400, "badRequest", "global",
                            "Request contains an invalid argument.");
    }
    char q[256], origin[300];
    nf_ytvideo_t v;
    nf_ytchannel_t ch;
    json_t *player;
    if (s_lookup (sim, id, &v, &ch, q, sizeof q) != 0)
        player = json_pack ("{s:{s:s, s:s}}", "playabilityStatus", "status", "ERROR", "reason",
                            "This video is unavailable");
    else {
        s_origin (c, origin, sizeof origin);
        char name[32];
        snprintf (name, sizeof name, "%.31s", client);
        player = s_player_json (sim, &v, &ch, origin,
                                strcmp (client, "WEB") == 0 ? URL_GATED : URL_SIGNED, name);
    }
    json_decref (req);
    char *text = json_dumps (player, JSON_COMPACT);
    json_decref (player);
    return s_send (c, 200, "application/json; charset=UTF-8", text, strlen (text), NULL);
}

/* YouTube's inline consent page (a 200 with a form posting to
   consent.youtube.com), as Europe gets it. */
static enum MHD_Result
s_consent_page (s_sim_t *sim, struct MHD_Connection *c)
{
    sim->consent_pages++;
    return s_send_text (
        c, 200, "text/html; charset=utf-8",
        "<!DOCTYPE html><html lang=\"en\"><head><title>Before you continue to YouTube</title>"
        "</head><body><div>We use cookies and data to deliver and maintain Google services"
        "</div><form action=\"https://consent.youtube.com/s\" method=\"POST\" "
        "style=\"display:inline;\"><input type=\"hidden\" name=\"gl\" value=\"DE\">"
        "<input type=\"hidden\" name=\"set_eom\" value=\"true\"><input type=\"hidden\" "
        "name=\"v\" value=\"cb.20260301-07-p0.en+FX+101\"><input type=\"submit\" "
        "value=\"Accept all\"></form></body></html>");
}

/* Whether the request carries a CONSENT=YES+ cookie (and, ANY, any consent
   cookie: SOCS or CONSENT). */
static bool
s_consented (struct MHD_Connection *c, bool any)
{
    const char *consent = MHD_lookup_connection_value (c, MHD_COOKIE_KIND, "CONSENT");
    if (consent && strncmp (consent, "YES+", 4) == 0)
        return true;
    return any && (consent || MHD_lookup_connection_value (c, MHD_COOKIE_KIND, "SOCS"));
}

/* ---- /site: a listing site for the generic template source ---------------------- */

#define SITE_PAGE 20

static enum MHD_Result
s_site_search (s_sim_t *sim, struct MHD_Connection *c)
{
    const char *q = s_arg (c, "q"), *pg = s_arg (c, "page");
    if (!q || !*q)
        return s_send_text (c, 400, "text/html", "<html><body>missing q</body></html>");
    long page = pg ? strtol (pg, NULL, 10) : 1;
    if (page < 1)
        page = 1;
    uint64_t tag = nf_yt_query_tag (&sim->world, q);
    s_remember (sim, tag, q);
    nf_buf_t eq; /* q again, percent-encoded for the next link */
    nf_buf_init (&eq);
    for (const unsigned char *p = (const unsigned char *) q; *p; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
            || *p == '-' || *p == '_' || *p == '.')
            nf_buf_append (&eq, p, 1);
        else
            nf_buf_printf (&eq, "%%%02X", *p);
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_puts (
        &b, "<!DOCTYPE html><html><head><title>Search</title></head><body><ul id=\"results\">");
    long first = (page - 1) * SITE_PAGE;
    for (long i = first; i < first + SITE_PAGE && i < sim->world.catalog; i++) {
        nf_ytvideo_t v;
        nf_yt_video (&sim->world, tag, (uint32_t) i, q, &v);
        nf_buf_printf (&b, "<li><a class=\"item\" href=\"/site/item/%s\">", v.id);
        s_html_escape (&b, v.title);
        nf_buf_puts (&b, "</a></li>");
    }
    nf_buf_puts (&b, "</ul>");
    if (first + SITE_PAGE < sim->world.catalog)
        nf_buf_printf (&b, "<a rel=\"next\" href=\"/site/search?q=%s&amp;page=%ld\">Next</a>",
                       eq.data, page + 1);
    nf_buf_puts (&b, "</body></html>");
    nf_buf_free (&eq);
    return s_send_cached (sim, c, "text/html; charset=utf-8", b.data);
}

static enum MHD_Result
s_site_item (s_sim_t *sim, struct MHD_Connection *c, const char *id)
{
    uint64_t tag;
    uint32_t index;
    if (nf_yt_video_decode (id, &tag, &index) != 0 || index >= (uint32_t) sim->world.catalog)
        return s_send_text (c, 404, "text/html", "<html><body>no such item</body></html>");
    char q[256], pub[32];
    s_recall (sim, tag, q, sizeof q);
    nf_ytvideo_t v;
    nf_yt_video (&sim->world, tag, index, q, &v);
    if (v.is_private || v.unavailable)
        return s_send_text (c, 410, "text/html", "<html><body>removed</body></html>");
    nf_ytchannel_t ch;
    nf_yt_channel (&sim->world, tag, v.channel_index, q, &ch);
    s_iso_time (v.published, pub, sizeof pub);
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_printf (&b, "<!DOCTYPE html><html lang=\"%s\"><head><title>",
                   v.audio_lang ? v.audio_lang : "en");
    s_html_escape (&b, v.title);
    nf_buf_puts (&b, "</title></head><body><h1 class=\"title\">");
    s_html_escape (&b, v.title);
    nf_buf_printf (&b, "</h1><p><span class=\"views\">%lld views</span> ", (long long) v.views);
    if (!v.likes_hidden)
        nf_buf_printf (&b, "<span class=\"likes\">%lld</span> ", (long long) v.likes);
    nf_buf_printf (
        &b,
        "<span class=\"comments\">%lld comments</span> <time datetime=\"%s\">%.10s</time> "
        "<span class=\"duration\">%d:%02d</span></p><p><a class=\"channel\" data-id=\"%s\"",
        (long long) v.comments, pub, pub, v.duration_s / 60, v.duration_s % 60, ch.id);
    if (ch.country)
        nf_buf_printf (&b, " data-country=\"%s\"", ch.country);
    nf_buf_puts (&b, " href=\"#\">");
    s_html_escape (&b, ch.title);
    nf_buf_puts (&b, "</a> ");
    if (!ch.hidden_subscribers)
        nf_buf_printf (&b, "<span class=\"subs\">%lld subscribers</span> ",
                       (long long) ch.subscribers);
    nf_buf_printf (
        &b,
        "<span class=\"channel-views\">%lld</span> <span class=\"channel-videos\">%lld</span></p>",
        (long long) ch.view_count, (long long) ch.video_count);
    if (v.captions > 0) {
        nf_buf_puts (&b, "<div class=\"transcript\">");
        s_tt_t t = {&b, 3, true};
        nf_yt_transcript (&sim->world, &v, q, false, s_tt_segment, &t);
        nf_buf_puts (&b, "</div>");
    }
    nf_buf_puts (&b, "</body></html>");
    return s_send_cached (sim, c, "text/html; charset=utf-8", b.data);
}

/* ---- /_sim ---------------------------------------------------------------------- */

static enum MHD_Result
s_stats (s_sim_t *sim, struct MHD_Connection *c, bool reset)
{
    json_t *req = json_object (), *faults = json_object ();
    unsigned long total = 0;
    for (int i = 0; i < P_COUNT; i++) {
        unsigned long n = reset ? atomic_exchange (&sim->requests[i], 0) : sim->requests[i];
        total += n;
        json_object_set_new (req, s_path_names[i], json_integer ((json_int_t) n));
    }
    for (int i = 0; i < F_COUNT; i++)
        json_object_set_new (
            faults, s_fault_names[i],
            json_integer ((json_int_t) (reset ? atomic_exchange (&sim->faults_served[i], 0)
                                              : sim->faults_served[i])));
    json_t *doc = json_pack (
        "{s:o, s:I, s:o, s:I, s:I, s:I, s:I, s:I}", "requests", req, "total", (json_int_t) total,
        "faults", faults, "quota_used", (json_int_t) sim->quota_used, "quota_refused",
        (json_int_t) sim->quota_refused, "not_modified", (json_int_t) sim->not_modified, "proxied",
        (json_int_t) sim->proxied, "catalog", (json_int_t) sim->world.catalog);
    json_object_set_new (doc, "timedtext",
                         json_pack ("{s:I, s:I, s:I, s:I}", "signed", (json_int_t) sim->tt_signed,
                                    "unsigned", (json_int_t) sim->tt_unsigned, "gated",
                                    (json_int_t) sim->tt_gated, "expired",
                                    (json_int_t) sim->tt_expired));
    json_object_set_new (doc, "consent_pages", json_integer ((json_int_t) sim->consent_pages));
    json_object_set_new (doc, "thumbnails", json_integer ((json_int_t) sim->thumbnails));
    json_object_set_new (doc, "search_calls", json_integer ((json_int_t) sim->search_used));
    json_object_set_new (doc, "legacy", json_boolean (sim->legacy));
    json_object_set_new (doc, "concurrent_max", json_integer ((json_int_t) sim->in_flight_max));
    pthread_mutex_lock (&sim->lock);
    json_object_set_new (
        doc, "gap_min_ms",
        json_pack ("{s:f, s:f}", "api",
                   sim->gap_min_us[0] < 0 ? -1.0 : (double) sim->gap_min_us[0] / 1000.0, "pages",
                   sim->gap_min_us[1] < 0 ? -1.0 : (double) sim->gap_min_us[1] / 1000.0));
    if (reset)
        for (int k = 0; k < 2; k++)
            sim->last_us[k] = 0, sim->gap_min_us[k] = -1;
    pthread_mutex_unlock (&sim->lock);
    if (reset) {
        sim->in_flight_max = 0;
        sim->tt_signed = sim->tt_unsigned = sim->tt_gated = sim->tt_expired = 0;
        sim->consent_pages = 0;
        sim->thumbnails = 0;
        sim->quota_used = 0;
        sim->search_used = 0;
        sim->quota_refused = 0;
        sim->not_modified = 0;
        sim->proxied = 0;
    }
    char *text = json_dumps (doc, JSON_INDENT (1));
    json_decref (doc);
    return s_send (c, 200, "application/json", text, strlen (text), NULL);
}

/* ---- dispatch --------------------------------------------------------------------- */

static int
s_path_of (const char *url)
{
    if (strcmp (url, "/youtube/v3/search") == 0)
        return P_SEARCH;
    if (strcmp (url, "/youtube/v3/videos") == 0)
        return P_VIDEOS;
    if (strcmp (url, "/youtube/v3/channels") == 0)
        return P_CHANNELS;
    if (strcmp (url, "/youtube/v3/playlistItems") == 0)
        return P_PLAYLIST;
    if (strncmp (url, "/vi/", 4) == 0)
        return P_IMAGE;
    if (strcmp (url, "/watch") == 0)
        return P_WATCH;
    if (strcmp (url, "/api/timedtext") == 0)
        return P_TIMEDTEXT;
    if (strcmp (url, "/youtubei/v1/player") == 0)
        return P_PLAYER;
    if (strncmp (url, "/site/", 6) == 0)
        return P_SITE;
    return P_OTHER;
}

/* The fault to inject for this request, or -1. */
static int
s_pick_fault (s_sim_t *sim, int path)
{
    unsigned long n = atomic_fetch_add (&sim->seq, 1);
    for (int i = 0; i < sim->nfaults; i++) {
        const s_fault_t *f = &sim->faults[i];
        if (!(f->paths & (1u << path)))
            continue;
        uint64_t r = nf_yt_mix (sim->world.seed ^ (n * UINT64_C (0x9E3779B1)) ^ (uint64_t) (i + 1));
        if ((double) (r >> 11) * (1.0 / 9007199254740992.0) < f->rate)
            return f->kind;
    }
    return -1;
}

static enum MHD_Result
s_fault (s_sim_t *sim, struct MHD_Connection *c, int kind, int path)
{
    sim->faults_served[kind]++;
    bool api = path <= P_PLAYLIST;
    char origin[300], hdr[16];
    switch (kind) {
    case F_500:
        return api ? s_api_error (c, 500, "backendError", "global", "Backend Error")
                   : s_send_text (c, 500, "text/html",
                                  "<html><body>500 Internal Server Error</body></html>");
    case F_503:
        return s_send_text (c, 503, "text/html",
                            "<html><body>503 Service Unavailable</body></html>");
    case F_429: {
        struct MHD_Response *r = MHD_create_response_from_buffer (
            strlen ("Too Many Requests\n"), (void *) "Too Many Requests\n", MHD_RESPMEM_PERSISTENT);
        snprintf (hdr, sizeof hdr, "%d", sim->retry_after);
        MHD_add_response_header (r, "Retry-After", hdr);
        MHD_add_response_header (r, "Content-Type", "text/plain");
        enum MHD_Result rc = MHD_queue_response (c, 429, r);
        MHD_destroy_response (r);
        return rc;
    }
    case F_TRUNCATE:
        return api ? s_send_text (c, 200, "application/json", "{\"kind\":\"youtube#videoListRe")
                   : s_send_text (c, 200, "text/html", "<!DOCTYPE html><html><head><title>x");
    case F_MALFORMED:
        return s_send_text (c, 200, api ? "application/json" : "text/xml",
                            "{\"items\": [ {\"id\": , ] \x01\xff}");
    case F_BLOCK:
        return s_send_text (c, 403, "text/html",
                            "<html><head><title>Sorry...</title></head><body><div>Our systems "
                            "have detected unusual traffic from your computer network. Please "
                            "solve the captcha below.</div><form id=\"captcha-form\"></form>"
                            "</body></html>");
    case F_CONSENT: return s_consent_page (sim, c);
    case F_CAPTCHA:
        return s_send_text (
            c, 200, "text/html",
            "<html><head><title>https://www.youtube.com/</title></head><body><div id=\"infoDiv\">"
            "Our systems have detected unusual traffic from your computer network.</div>"
            "<form id=\"captcha-form\" method=\"post\"><div class=\"g-recaptcha\" "
            "data-sitekey=\"sim\"></div></form></body></html>");
    case F_BOTCHECK: {
        const char *ps = "{\"playabilityStatus\":{\"status\":\"LOGIN_REQUIRED\",\"reason\":"
                         "\"Sign in to confirm you\u2019re not a bot\",\"errorScreen\":{"
                         "\"playerErrorMessageRenderer\":{\"subreason\":{\"runs\":[{\"text\":"
                         "\"This helps protect our community. \"}]}}}}}";
        if (path == P_PLAYER)
            return s_send_text (c, 200, "application/json; charset=UTF-8", ps);
        nf_buf_t b;
        nf_buf_init (&b);
        nf_buf_printf (&b,
                       "<!DOCTYPE html><html><head><title>YouTube</title></head><body><script>"
                       "var ytInitialPlayerResponse = %s;</script></body></html>",
                       ps);
        return s_send (c, 200, "text/html; charset=utf-8", b.data, b.len, NULL);
    }
    case F_CONSENT_REDIRECT: {
        s_origin (c, origin, sizeof origin);
        char loc[512];
        snprintf (loc, sizeof loc, "https://consent.youtube.com/m?continue=%s/watch", origin);
        struct MHD_Response *r = MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header (r, "Location", loc);
        enum MHD_Result rc = MHD_queue_response (c, 302, r);
        MHD_destroy_response (r);
        return rc;
    }
    case F_GIANT: {
        struct MHD_Response *r =
            MHD_create_response_from_callback (GIANT_BYTES, 64 * 1024, s_giant_reader, NULL, NULL);
        MHD_add_response_header (r, "Content-Type", api ? "application/json" : "text/html");
        enum MHD_Result rc = MHD_queue_response (c, 200, r);
        MHD_destroy_response (r);
        return rc;
    }
    default: /* F_RESET: close the connection without an answer */ return MHD_NO;
    }
}

/* The smallest gap between two requests of PATH's kind (the Data API's,
   or the pages, player and timed text): how a test sees the scraper's
   politeness pauses. */
static void
s_note_gap (s_sim_t *sim, int path)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int k = path <= P_PLAYLIST ? 0 : 1;
    pthread_mutex_lock (&sim->lock);
    if (sim->last_us[k] && (sim->gap_min_us[k] < 0 || now - sim->last_us[k] < sim->gap_min_us[k]))
        sim->gap_min_us[k] = now - sim->last_us[k];
    sim->last_us[k] = now;
    pthread_mutex_unlock (&sim->lock);
}

static enum MHD_Result s_route (s_sim_t *sim, struct MHD_Connection *c, const char *url, int path,
                                nf_buf_t *body);

/* A request ended: free its body buffer. */
static void
s_completed (void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode toe)
{
    nf_buf_t *body = *state;
    if (body) {
        nf_buf_free (body);
        free (body);
        *state = NULL;
    }
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *c, const char *url, const char *method,
          const char *version, const char *upload, size_t *upload_size, void **state)
{
    s_sim_t *sim = cls;
    if (*state == NULL) { /* first call: headers only */
        nf_buf_t *body = calloc (1, sizeof *body);
        if (!body)
            return MHD_NO;
        nf_buf_init (body);
        *state = body;
        return MHD_YES;
    }
    nf_buf_t *body = *state; /* freed by s_completed */
    if (*upload_size) {      /* a request body: kept up to 64 KiB (a player request) */
        if (body->len + *upload_size <= 65536)
            nf_buf_append (body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (strncmp (url, "http://", 7) == 0) { /* proxy form */
        const char *slash = strchr (url + 7, '/');
        url = slash ? slash : "/";
        sim->proxied++;
    }
    if (strncmp (url, "/_sim/", 6) == 0)
        return s_stats (sim, c, strcmp (url, "/_sim/reset") == 0);
    int path = s_path_of (url);
    bool post = strcmp (method, "POST") == 0;
    if (post != (path == P_PLAYER) || (!post && strcmp (method, "GET") && strcmp (method, "HEAD")))
        return s_send_text (c, 405, "text/plain", "method not allowed\n");
    sim->requests[path]++;
    s_note_gap (sim, path);
    long busy = atomic_fetch_add (&sim->in_flight, 1) + 1;
    for (long top = sim->in_flight_max;
         busy > top && !atomic_compare_exchange_weak (&sim->in_flight_max, &top, busy);)
        ;
    enum MHD_Result rc = s_route (sim, c, url, path, body);
    atomic_fetch_sub (&sim->in_flight, 1);
    return rc;
}

/* PATH's answer (counted in s_handle): the latency, a fault, or the page. */
static enum MHD_Result
s_route (s_sim_t *sim, struct MHD_Connection *c, const char *url, int path, nf_buf_t *body)
{
    if (sim->latency_ms > 0 || sim->jitter_ms > 0) {
        unsigned long n = sim->seq;
        int extra =
            sim->jitter_ms > 0 ? (int) (nf_yt_mix (n ^ 0x5151) % (unsigned) sim->jitter_ms) : 0;
        usleep ((useconds_t) (sim->latency_ms + extra) * 1000u);
    }
    int fault = s_pick_fault (sim, path);
    if (fault == F_CONSENT && s_consented (c, false))
        fault = -1; /* answered already */
    if (fault >= 0)
        return s_fault (sim, c, fault, path);
    /* Without any consent cookie, today's YouTube shows every other visitor
       the consent page first. */
    if (path == P_WATCH && !sim->legacy && !s_consented (c, true) && (sim->seq & 1))
        return s_consent_page (sim, c);
    if (path <= P_PLAYLIST && sim->api_key) {
        const char *key = s_arg (c, "key");
        if (!key || strcmp (key, sim->api_key) != 0)
            return s_api_error (c, 400, "keyInvalid", "usageLimits",
                                "API key not valid. Please pass a valid API key.");
    }
    switch (path) {
    case P_SEARCH: return s_search (sim, c);
    case P_VIDEOS: return s_videos (sim, c);
    case P_CHANNELS: return s_channels (sim, c);
    case P_PLAYLIST: return s_playlist_items (sim, c);
    case P_IMAGE: return s_thumbnail (sim, c, url);
    case P_WATCH: return s_watch (sim, c);
    case P_TIMEDTEXT: return s_timedtext (sim, c);
    case P_PLAYER: return s_player_api (sim, c, body);
    case P_SITE:
        if (strcmp (url, "/site/search") == 0)
            return s_site_search (sim, c);
        if (strncmp (url, "/site/item/", 11) == 0)
            return s_site_item (sim, c, url + 11);
        return s_send_text (c, 404, "text/html", "<html><body>not found</body></html>");
    default: return s_api_error (c, 404, "notFound", "global", "Not Found");
    }
}

/* ---- main ------------------------------------------------------------------------- */

static void
s_usage (FILE *out)
{
    fprintf (
        out,
        "Usage: nf-ytsim [options]\n"
        "Simulates the YouTube Data API v3, watch pages and timed text on loopback.\n\n"
        "  --port N               port (default 8089; 0 picks one, printed at start)\n"
        "  --bind ADDR            IPv4 address to bind (default 127.0.0.1)\n"
        "  --seed N               world seed (default 1)\n"
        "  --catalog N            videos per search query (default 2000)\n"
        "  --now YYYY-MM-DD       simulated date (default today, UTC midnight)\n"
        "  --threads N            worker threads (default 4); with latency: a thread per "
        "connection\n"
        "  --latency-ms N         fixed delay before each answer\n"
        "  --jitter-ms N          random extra delay in [0, N)\n"
        "  --quota N              daily units of videos.list/channels.list (1 a call); 0: none\n"
        "  --search-calls N       daily search.list calls (a bucket of their own); 0: none\n"
        "  --api-key KEY          refuse API requests without this key (400 keyInvalid)\n"
        "  --retry-after S        Retry-After seconds of injected 429s (default 1)\n"
        "  --url-ttl S            signed caption URLs expire S seconds after they are made\n"
        "                         (default 21600, as YouTube's)\n"
        "  --legacy               the YouTube of before 2025: no player API, unsigned timed\n"
        "                         text answered, ungated watch-page tracks\n"
        "  --fault KIND:RATE[:PATHS]  inject a fault into RATE (0..1) of requests;\n"
        "                         KIND: 500 503 429 truncate malformed block reset giant,\n"
        "                         consent (the inline consent page until CONSENT=YES+ is sent),\n"
        "                         consent-redirect (302 to consent.youtube.com), botcheck\n"
        "                         (\"Sign in to confirm you're not a bot\"), captcha (a 200\n"
        "                         captcha page);\n"
        "                         PATHS: comma list of "
        "search,videos,channels,watch,timedtext,player,site\n"
        "                         (default: all); repeatable\n"
        "  --help, --version\n");
}

static int
s_parse_fault (s_sim_t *sim, const char *spec)
{
    if (sim->nfaults == MAX_FAULTS)
        return -1;
    char buf[256];
    snprintf (buf, sizeof buf, "%s", spec);
    char *kind = strtok (buf, ":"), *rate = strtok (NULL, ":"), *paths = strtok (NULL, ":");
    s_fault_t f = {-1, 0, 0};
    for (int i = 0; kind && i < F_COUNT; i++)
        if (strcmp (kind, s_fault_names[i]) == 0)
            f.kind = i;
    char *end = NULL;
    f.rate = rate ? strtod (rate, &end) : -1;
    if (f.kind < 0 || !rate || *end || f.rate < 0 || f.rate > 1)
        return -1;
    if (!paths)
        f.paths = (1u << P_COUNT) - 1;
    for (char *p = paths ? strtok (paths, ",") : NULL; p; p = strtok (NULL, ",")) {
        int k = -1;
        for (int i = 0; i < P_OTHER; i++)
            if (strcmp (p, s_path_names[i]) == 0)
                k = i;
        if (k < 0)
            return -1;
        f.paths |= 1u << k;
    }
    sim->faults[sim->nfaults++] = f;
    return 0;
}

static int
s_int_arg (const char *v, long lo, long hi, long *out)
{
    char *end = NULL;
    long n = v ? strtol (v, &end, 10) : 0;
    if (!v || !*v || *end || n < lo || n > hi)
        return -1;
    *out = n;
    return 0;
}

int
main (int argc, char **argv)
{
    static s_sim_t sim;
    pthread_mutex_init (&sim.lock, NULL);
    sim.gap_min_us[0] = sim.gap_min_us[1] = -1;
    sim.world.seed = 1;
    sim.world.catalog = 2000;
    sim.world.now = (double) (time (NULL) / 86400 * 86400);
    sim.bind = "127.0.0.1";
    sim.port = 8089;
    sim.threads = 4;
    sim.retry_after = 1;
    sim.url_ttl_s = 6 * 3600;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        int bad = 0;
        if (strcmp (a, "--help") == 0) {
            s_usage (stdout);
            return 0;
        }
        if (strcmp (a, "--version") == 0) {
            printf ("nf-ytsim %s\n", NF_VERSION);
            return 0;
        }
        if (strcmp (a, "--legacy") == 0) {
            sim.legacy = true;
            continue;
        }
        if (!v) {
            fprintf (stderr, "nf-ytsim: %s needs a value (see --help)\n", a);
            return 2;
        }
        i++;
        if (strcmp (a, "--port") == 0)
            bad = s_int_arg (v, 0, 65535, &n), sim.port = (int) n;
        else if (strcmp (a, "--bind") == 0)
            sim.bind = v;
        else if (strcmp (a, "--seed") == 0)
            bad = s_int_arg (v, 0, LONG_MAX, &n), sim.world.seed = (uint64_t) n;
        else if (strcmp (a, "--catalog") == 0)
            bad = s_int_arg (v, 1, 1 << 24, &n), sim.world.catalog = (int) n;
        else if (strcmp (a, "--threads") == 0)
            bad = s_int_arg (v, 1, 256, &n), sim.threads = (int) n;
        else if (strcmp (a, "--latency-ms") == 0)
            bad = s_int_arg (v, 0, 600000, &n), sim.latency_ms = (int) n;
        else if (strcmp (a, "--jitter-ms") == 0)
            bad = s_int_arg (v, 0, 600000, &n), sim.jitter_ms = (int) n;
        else if (strcmp (a, "--quota") == 0)
            bad = s_int_arg (v, 0, LONG_MAX, &n), sim.quota = n;
        else if (strcmp (a, "--search-calls") == 0)
            bad = s_int_arg (v, 0, LONG_MAX, &n), sim.search_calls = n;
        else if (strcmp (a, "--url-ttl") == 0)
            bad = s_int_arg (v, 0, 7 * 86400, &n), sim.url_ttl_s = n;
        else if (strcmp (a, "--retry-after") == 0)
            bad = s_int_arg (v, 0, 86400, &n), sim.retry_after = (int) n;
        else if (strcmp (a, "--api-key") == 0)
            sim.api_key = v;
        else if (strcmp (a, "--fault") == 0)
            bad = s_parse_fault (&sim, v);
        else if (strcmp (a, "--now") == 0) {
            double t;
            bad = nf_time_parse (v, strlen (v), &t);
            sim.world.now = t;
        }
        else {
            fprintf (stderr, "nf-ytsim: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (bad) {
            fprintf (stderr, "nf-ytsim: bad value '%s' for %s (see --help)\n", v, a);
            return 2;
        }
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) sim.port)};
    if (inet_pton (AF_INET, sim.bind, &addr.sin_addr) != 1) {
        fprintf (stderr, "nf-ytsim: --bind: '%s' is not an IPv4 address\n", sim.bind);
        return 2;
    }
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &set, NULL); /* MHD's threads inherit the mask */
    bool per_conn = sim.latency_ms > 0 || sim.jitter_ms > 0;
    unsigned flags = MHD_USE_ERROR_LOG
                     | (per_conn ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD
                                 : MHD_USE_EPOLL_INTERNAL_THREAD);
    struct MHD_Daemon *d =
        per_conn
            ? MHD_start_daemon (flags, 0, NULL, NULL, s_handle, &sim, MHD_OPTION_SOCK_ADDR, &addr,
                                MHD_OPTION_CONNECTION_TIMEOUT, 15u, MHD_OPTION_CONNECTION_LIMIT,
                                2000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                                MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL, MHD_OPTION_END)
            : MHD_start_daemon (flags, 0, NULL, NULL, s_handle, &sim, MHD_OPTION_SOCK_ADDR, &addr,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned) sim.threads,
                                MHD_OPTION_CONNECTION_TIMEOUT, 15u, MHD_OPTION_CONNECTION_LIMIT,
                                2000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                                MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf (stderr, "nf-ytsim: cannot listen on %s:%d\n", sim.bind, sim.port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (d, MHD_DAEMON_INFO_BIND_PORT);
    char day[32];
    s_iso_time (sim.world.now, day, sizeof day);
    fprintf (stderr, "nf-ytsim: listening on http://%s:%u (seed %llu, catalog %d, now %s)\n",
             sim.bind, info ? info->port : (unsigned) sim.port, (unsigned long long) sim.world.seed,
             sim.world.catalog, day);
    int sig = 0;
    sigwait (&set, &sig);
    MHD_stop_daemon (d);
    for (int i = 0; i < MAX_QUERIES; i++)
        free (sim.queries[i].query);
    fprintf (stderr, "nf-ytsim: stopped\n");
    return 0;
}

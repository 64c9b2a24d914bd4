/*  nf_youtube: see nf_youtube.h. */
#include "nf_youtube.h"
#include "nf_sanitize.h"
#include "nf_template.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *
s_load (const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loadb (body ? body : "", len, 0, &jerr);
    if (!doc)
        snprintf (err, errlen, "invalid JSON: %s at byte %d", jerr.text, jerr.position);
    else if (!json_is_object (doc)) {
        snprintf (err, errlen, "answer is not a JSON object");
        json_decref (doc);
        doc = NULL;
    }
    return doc;
}

/* The "items" array of DOC (NULL when absent: none). -1 when malformed. */
static int
s_items (const json_t *doc, const json_t **items, char *err, size_t errlen)
{
    *items = json_object_get (doc, "items");
    if (*items && !json_is_array (*items)) {
        snprintf (err, errlen, "\"items\" is not an array");
        return -1;
    }
    return 0;
}

void
nf_yt_error_reason (const char *body, size_t len, char *out, size_t cap)
{
    out[0] = 0;
    json_t *doc = json_loadb (body ? body : "", len, 0, NULL);
    const char *r = json_string_value (json_object_get (
        json_array_get (json_object_get (json_object_get (doc, "error"), "errors"), 0), "reason"));
    if (r)
        snprintf (out, cap, "%s", r);
    json_decref (doc);
}

typedef void (s_item_fn) (const json_t *item, const char *id, void *arg);

/* Load a Data API list answer and give each item with a usable id (1 to
   63 bytes) to FN: the item's "id" string (videos.list, channels.list) or,
   for a search (SEARCH), its "id.videoId". The document (the caller's to
   free), or NULL with ERR when the answer is not a list. */
static json_t *
s_each_item (const char *body, size_t len, bool search, s_item_fn *fn, void *arg, char *err,
             size_t errlen)
{
    json_t *doc = s_load (body, len, err, errlen);
    const json_t *items = NULL;
    if (!doc || s_items (doc, &items, err, errlen) != 0) {
        json_decref (doc);
        return NULL;
    }
    size_t i;
    const json_t *it;
    json_array_foreach (items, i, it)
    {
        const json_t *idv = json_object_get (it, "id");
        const char *id = json_string_value (search ? json_object_get (idv, "videoId") : idv);
        if (id && *id && strlen (id) < 64)
            fn (it, id, arg);
    }
    return doc;
}

static void
s_search_item (const json_t *it, const char *id, void *arg)
{
    json_array_append_new ((json_t *) arg, json_string (id));
}

int
nf_yt_parse_search (const char *body, size_t len, json_t *ids, char *next, size_t nextcap,
                    char *err, size_t errlen)
{
    json_t *doc = s_each_item (body, len, true, s_search_item, ids, err, errlen);
    if (!doc)
        return -1;
    const char *tok = json_string_value (json_object_get (doc, "nextPageToken"));
    snprintf (next, nextcap, "%s", tok && strlen (tok) < nextcap ? tok : "");
    json_decref (doc);
    return 0;
}

/* A statistics count: the API sends strings of digits. */
static bool
s_count (const json_t *o, const char *key, json_int_t *out)
{
    const json_t *v = json_object_get (o, key);
    if (json_is_integer (v)) {
        *out = json_integer_value (v);
        return *out >= 0;
    }
    const char *s = json_string_value (v);
    if (!s || !*s)
        return false;
    char *end = NULL;
    long long n = strtoll (s, &end, 10);
    if (*end || n < 0)
        return false;
    *out = n;
    return true;
}

static void
s_set_str (json_t *obj, const char *key, const json_t *src, size_t max)
{
    const char *s = json_string_value (src);
    if (!s)
        return;
    size_t n = json_string_length (src);
    if (n > max) { /* cut at a character boundary */
        n = max;
        while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
            n--;
    }
    json_object_set_new (obj, key, json_stringn (s, n));
}

/* The counters of STATS (decimal strings in the API) that parse, into OBJ:
   N pairs of (the API's name, ours). */
static void
s_set_counts (json_t *obj, const json_t *stats, const char *const keys[][2], size_t n)
{
    json_int_t v;
    for (size_t k = 0; k < n; k++)
        if (s_count (stats, keys[k][0], &v))
            json_object_set_new (obj, keys[k][1], json_integer (v));
}

typedef struct {
    const char *web_url;
    json_t *out;
} s_videos_t;

static void
s_video_item (const json_t *it, const char *id, void *arg)
{
    s_videos_t *ctx = (s_videos_t *) arg;
    const json_t *sn = json_object_get (it, "snippet"),
                 *cd = json_object_get (it, "contentDetails");
    const char *channel = json_string_value (json_object_get (sn, "channelId"));
    json_t *meta = json_object ();
    s_set_str (meta, "title", json_object_get (sn, "title"), 1000);
    s_set_str (meta, "description", json_object_get (sn, "description"), NF_YT_DESCRIPTION_MAX);
    s_set_str (meta, "channel_title", json_object_get (sn, "channelTitle"), 300);
    s_set_str (meta, "published_at", json_object_get (sn, "publishedAt"), 64);
    s_set_str (meta, "default_audio_language", json_object_get (sn, "defaultAudioLanguage"), 32);
    s_set_str (meta, "default_language", json_object_get (sn, "defaultLanguage"), 32);
    static const char *const counts[][2] = {
        {"viewCount", "views"}, {"likeCount", "likes"}, {"commentCount", "comments"}};
    s_set_counts (meta, json_object_get (it, "statistics"), counts, 3);
    long secs = nf_duration_parse (json_string_value (json_object_get (cd, "duration")));
    if (secs >= 0) {
        json_object_set_new (meta, "duration_s", json_integer (secs));
        json_object_set_new (meta, "is_short",
                             json_boolean (secs > 0 && secs <= NF_YT_SHORT_MAX_S));
    }
    const char *cap = json_string_value (json_object_get (cd, "caption"));
    if (cap)
        json_object_set_new (meta, "captions_listed", json_boolean (strcmp (cap, "true") == 0));
    char url[512];
    snprintf (url, sizeof url, "%s/watch?v=%s", ctx->web_url, id);
    json_object_set_new (meta, "url", json_string (url));
    json_t *v = json_pack ("{s:s, s:o}", "video_id", id, "meta", meta);
    if (channel && *channel)
        json_object_set_new (v, "channel_id", json_string (channel));
    json_array_append_new (ctx->out, v);
}

int
nf_yt_parse_videos (const char *body, size_t len, const char *web_url, json_t *out, char *err,
                    size_t errlen)
{
    s_videos_t ctx = {web_url, out};
    json_t *doc = s_each_item (body, len, false, s_video_item, &ctx, err, errlen);
    if (!doc)
        return -1;
    json_decref (doc);
    return 0;
}

static void
s_channel_item (const json_t *it, const char *id, void *arg)
{
    const json_t *sn = json_object_get (it, "snippet"), *st = json_object_get (it, "statistics");
    json_t *data = json_object ();
    s_set_str (data, "title", json_object_get (sn, "title"), 300);
    const char *country = json_string_value (json_object_get (sn, "country"));
    json_object_set_new (data, "country",
                         country && strlen (country) == 2 ? json_string (country) : json_null ());
    bool hidden = json_is_true (json_object_get (st, "hiddenSubscriberCount"));
    json_object_set_new (data, "hidden_subscribers", json_boolean (hidden));
    static const char *const subs[][2] = {{"subscriberCount", "subscribers"}};
    static const char *const counts[][2] = {{"viewCount", "view_count"},
                                            {"videoCount", "video_count"}};
    if (!hidden)
        s_set_counts (data, st, subs, 1);
    s_set_counts (data, st, counts, 2);
    s_set_str (data, "uploads_playlist",
               json_object_get (
                   json_object_get (json_object_get (it, "contentDetails"), "relatedPlaylists"),
                   "uploads"),
               64);
    json_object_set_new (data, "channel_id", json_string (id));
    json_array_append_new ((json_t *) arg, data);
}

int
nf_yt_parse_channels (const char *body, size_t len, json_t *out, char *err, size_t errlen)
{
    json_t *doc = s_each_item (body, len, false, s_channel_item, out, err, errlen);
    if (!doc)
        return -1;
    json_decref (doc);
    return 0;
}

static void
s_playlist_item (const json_t *it, const char *id, void *arg)
{
    (void) id;
    const json_t *v = json_object_get (json_object_get (it, "contentDetails"), "videoId");
    const char *vid = json_string_value (v);
    if (vid && *vid && strlen (vid) < 64)
        json_array_append_new ((json_t *) arg, json_string (vid));
}

int
nf_yt_parse_playlist (const char *body, size_t len, json_t *ids, char *err, size_t errlen)
{
    json_t *doc = s_each_item (body, len, false, s_playlist_item, ids, err, errlen);
    if (!doc)
        return -1;
    json_decref (doc);
    return 0;
}

/* ---- caption tracks ---------------------------------------------------------- */

static bool
s_lang_match (const char *code, const char *lang)
{
    if (!code || !lang || !*lang)
        return false;
    size_t a = strcspn (code, "-_"), b = strcspn (lang, "-_");
    return a == b && strncasecmp (code, lang, a) == 0;
}

const json_t *
nf_yt_pick_track (const json_t *tracks, const char *lang)
{
    const json_t *best = NULL;
    int best_score = -1;
    size_t i;
    const json_t *t;
    json_array_foreach (tracks, i, t)
    {
        if (!json_is_string (json_object_get (t, "baseUrl")))
            continue;
        const char *kind = json_string_value (json_object_get (t, "kind"));
        bool asr = kind && strcmp (kind, "asr") == 0;
        bool match = s_lang_match (json_string_value (json_object_get (t, "languageCode")), lang);
        int score = (match ? 2 : 0) + (asr ? 0 : 1);
        if (score > best_score) {
            best = t;
            best_score = score;
        }
    }
    return best;
}

/* ---- timed text ------------------------------------------------------------------ */

/* "[m:ss] TEXT\n" onto OUT: TEXT's entities decoded (into SCRATCH, kept
   by the caller across lines), newlines as spaces, invalid UTF-8 repaired. */
static void
s_line (nf_buf_t *out, double start_s, const char *text, size_t len, nf_buf_t *scratch)
{
    nf_buf_reset (scratch);
    nf_html_unescape (text, len, scratch);
    /* one line per segment: newlines inside become spaces */
    for (size_t i = 0; i < scratch->len; i++)
        if (scratch->data[i] == '\n' || scratch->data[i] == '\r')
            scratch->data[i] = ' ';
    /* "[%ld:%02ld] " by hand: snprintf was a tenth of the parse */
    long s = start_s < 0 || start_s > 1e7 ? 0 : (long) start_s;
    char stamp[32], *e = stamp + sizeof stamp, *q = e;
    *--q = ' ';
    *--q = ']';
    *--q = (char) ('0' + s % 10);
    *--q = (char) ('0' + s % 60 / 10);
    *--q = ':';
    long m = s / 60;
    do
        *--q = (char) ('0' + m % 10);
    while ((m /= 10) > 0);
    *--q = '[';
    nf_buf_append (out, q, (size_t) (e - q));
    nf_buf_utf8_repair (out, scratch->data ? scratch->data : "", scratch->len);
    nf_buf_append (out, "\n", 1);
}

static bool
s_blank (const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace ((unsigned char) text[i]))
            return false;
    return true;
}

static int
s_json3 (const char *body, size_t len, nf_buf_t *out, char *err, size_t errlen)
{
    json_t *doc = s_load (body, len, err, errlen);
    const json_t *events = json_object_get (doc, "events");
    if (!json_is_array (events)) {
        if (doc)
            snprintf (err, errlen, "json3 timed text without \"events\"");
        json_decref (doc);
        return -1;
    }
    int n = 0;
    size_t i;
    const json_t *e;
    nf_buf_t scratch;
    nf_buf_init (&scratch);
    json_array_foreach (events, i, e)
    {
        const json_t *segs = json_object_get (e, "segs");
        if (!json_is_array (segs))
            continue;
        nf_buf_t text;
        nf_buf_init (&text);
        size_t k;
        const json_t *s;
        json_array_foreach (segs, k, s)
        {
            const char *u = json_string_value (json_object_get (s, "utf8"));
            if (u)
                nf_buf_puts (&text, u);
        }
        if (!s_blank (text.data, text.len)) {
            s_line (out, (double) json_integer_value (json_object_get (e, "tStartMs")) / 1000.0,
                    text.data, text.len, &scratch);
            n++;
        }
        nf_buf_free (&text);
    }
    nf_buf_free (&scratch);
    json_decref (doc);
    return n;
}

/* Timed text read by libxml2's SAX2 callbacks, without a tree (the tree
   was a fifth of a scraper's CPU): srv1 is <transcript><text start=S>,
   srv3 <timedtext><body><p t=MS> (the last <body>; without one, the
   root's own <p>). A segment's text is all the text inside it. */
typedef struct {
    char root[48]; /* the root's name, once seen */
    bool srv3, bad_root;
    int depth;            /* of the element being read */
    bool in_body;         /* srv3: inside a <body> under the root */
    bool body_seen;       /* srv3: a <body> was: its segments count */
    int seg_depth, seg_k; /* the segment being read (0: none) and which list it goes to */
    double seg_start;
    nf_buf_t seg, scratch;
    nf_buf_t lines[2]; /* [0]: segments under the root, [1]: under the last <body> */
    int count[2];
} s_tt_t;

static void
s_tt_start (void *ctx, const xmlChar *name, const xmlChar *prefix, const xmlChar *uri, int nns,
            const xmlChar **ns, int nattr, int ndefault, const xmlChar **attr)
{
    (void) prefix, (void) uri, (void) nns, (void) ns, (void) ndefault;
    s_tt_t *tt = ctx;
    const char *n = (const char *) name;
    if (++tt->depth == 1) {
        snprintf (tt->root, sizeof tt->root, "%s", n);
        tt->srv3 = strcmp (n, "timedtext") == 0;
        tt->bad_root = !tt->srv3 && strcmp (n, "transcript") != 0;
        return;
    }
    if (tt->bad_root || tt->seg_depth)
        return;
    if (tt->srv3 && tt->depth == 2 && strcmp (n, "body") == 0) {
        tt->in_body = tt->body_seen = true;
        nf_buf_reset (&tt->lines[1]); /* only the last <body> counts */
        tt->count[1] = 0;
        return;
    }
    int k = tt->depth == 2 ? 0 : tt->depth == 3 && tt->in_body ? 1 : -1;
    if (k < 0 || strcmp (n, tt->srv3 ? "p" : "text") != 0)
        return;
    tt->seg_depth = tt->depth;
    tt->seg_k = k;
    tt->seg_start = 0;
    nf_buf_reset (&tt->seg);
    const char *want = tt->srv3 ? "t" : "start";
    for (int i = 0; i < nattr; i++) {
        const xmlChar **a = attr + 5 * i;              /* localname, prefix, URI, value, end */
        if (strcmp ((const char *) a[0], want) == 0) { /* any prefix, as xmlGetProp was */
            char v[64];
            size_t vl =
                (size_t) (a[4] - a[3]) < sizeof v - 1 ? (size_t) (a[4] - a[3]) : sizeof v - 1;
            memcpy (v, a[3], vl);
            v[vl] = 0;
            tt->seg_start = strtod (v, NULL);
            if (tt->srv3)
                tt->seg_start /= 1000.0;
            break;
        }
    }
}

static void
s_tt_end (void *ctx, const xmlChar *name, const xmlChar *prefix, const xmlChar *uri)
{
    (void) name, (void) prefix, (void) uri;
    s_tt_t *tt = ctx;
    if (tt->seg_depth == tt->depth) {
        if (!s_blank (tt->seg.data ? tt->seg.data : "", tt->seg.len)) {
            s_line (&tt->lines[tt->seg_k], tt->seg_start, tt->seg.data, tt->seg.len, &tt->scratch);
            tt->count[tt->seg_k]++;
        }
        tt->seg_depth = 0;
    }
    if (tt->depth == 2)
        tt->in_body = false;
    tt->depth--;
}

static void
s_tt_text (void *ctx, const xmlChar *text, int len)
{
    s_tt_t *tt = ctx;
    if (tt->seg_depth && len > 0)
        nf_buf_append (&tt->seg, (const char *) text, (size_t) len);
}

static void
s_tt_error (void *ctx, xmlErrorPtr e)
{
    (void) ctx, (void) e; /* the parse's result says it; nothing on stderr */
}

int
nf_timedtext_parse (const char *body, size_t len, nf_buf_t *out, char *err, size_t errlen)
{
    size_t skip = 0;
    while (skip < len && isspace ((unsigned char) body[skip]))
        skip++;
    if (skip < len && body[skip] == '{')
        return s_json3 (body + skip, len - skip, out, err, errlen);
    if (len > INT_MAX) {
        snprintf (err, errlen, "timed text too large");
        return -1;
    }
    s_tt_t tt = {.depth = 0};
    for (int k = 0; k < 2; k++)
        nf_buf_init (&tt.lines[k]);
    nf_buf_init (&tt.seg);
    nf_buf_init (&tt.scratch);
    xmlSAXHandler sax = {.initialized = XML_SAX2_MAGIC,
                         .startElementNs = s_tt_start,
                         .endElementNs = s_tt_end,
                         .characters = s_tt_text,
                         .ignorableWhitespace = s_tt_text,
                         .cdataBlock = s_tt_text,
                         .serror = s_tt_error};
    int rc = xmlSAXUserParseMemory (&sax, &tt, body ? body : "", (int) len);
    int n = -1;
    if (rc != 0 || !tt.root[0])
        snprintf (err, errlen, "timed text is not XML");
    else if (tt.bad_root)
        snprintf (err, errlen, "timed text root is <%.40s>, not <transcript> or <timedtext>",
                  tt.root);
    else {
        int k = tt.body_seen ? 1 : 0;
        nf_buf_append (out, tt.lines[k].data ? tt.lines[k].data : "", tt.lines[k].len);
        n = tt.count[k];
    }
    for (int k = 0; k < 2; k++)
        nf_buf_free (&tt.lines[k]);
    nf_buf_free (&tt.seg);
    nf_buf_free (&tt.scratch);
    return n;
}

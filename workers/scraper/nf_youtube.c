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

static void
s_line (nf_buf_t *out, double start_s, const char *text, size_t len)
{
    nf_buf_t t;
    nf_buf_init (&t);
    nf_html_unescape (text, len, &t);
    /* one line per segment: newlines inside become spaces */
    for (size_t i = 0; i < t.len; i++)
        if (t.data[i] == '\n' || t.data[i] == '\r')
            t.data[i] = ' ';
    long s = start_s < 0 || start_s > 1e7 ? 0 : (long) start_s;
    nf_buf_printf (out, "[%ld:%02ld] ", s / 60, s % 60);
    nf_buf_utf8_repair (out, t.data ? t.data : "", t.len);
    nf_buf_append (out, "\n", 1);
    nf_buf_free (&t);
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
        bool blank = true;
        for (size_t c = 0; c < text.len && blank; c++)
            blank = isspace ((unsigned char) text.data[c]);
        if (!blank) {
            s_line (out, (double) json_integer_value (json_object_get (e, "tStartMs")) / 1000.0,
                    text.data, text.len);
            n++;
        }
        nf_buf_free (&text);
    }
    json_decref (doc);
    return n;
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
    xmlDocPtr doc = xmlReadMemory (body ? body : "", (int) len, "timedtext.xml", NULL,
                                   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement (doc) : NULL;
    if (!root) {
        snprintf (err, errlen, "timed text is not XML");
        if (doc)
            xmlFreeDoc (doc);
        return -1;
    }
    bool srv3 = xmlStrcmp (root->name, BAD_CAST "timedtext") == 0;
    if (!srv3 && xmlStrcmp (root->name, BAD_CAST "transcript") != 0) {
        snprintf (err, errlen, "timed text root is <%.40s>, not <transcript> or <timedtext>",
                  (const char *) root->name);
        xmlFreeDoc (doc);
        return -1;
    }
    xmlNodePtr parent = root;
    if (srv3)
        for (xmlNodePtr c = root->children; c; c = c->next)
            if (c->type == XML_ELEMENT_NODE && xmlStrcmp (c->name, BAD_CAST "body") == 0)
                parent = c;
    int n = 0;
    for (xmlNodePtr c = parent->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || xmlStrcmp (c->name, BAD_CAST (srv3 ? "p" : "text")) != 0)
            continue;
        xmlChar *at = xmlGetProp (c, BAD_CAST (srv3 ? "t" : "start"));
        double start = at ? strtod ((const char *) at, NULL) : 0;
        if (srv3)
            start /= 1000.0;
        xmlFree (at);
        xmlChar *content = xmlNodeGetContent (c);
        size_t clen = content ? strlen ((const char *) content) : 0;
        bool blank = true;
        for (size_t k = 0; k < clen && blank; k++)
            blank = isspace (content[k]);
        if (!blank) {
            s_line (out, start, (const char *) content, clen);
            n++;
        }
        xmlFree (content);
    }
    xmlFreeDoc (doc);
    return n;
}

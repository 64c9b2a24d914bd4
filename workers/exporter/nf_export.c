/*  nf_export: see nf_export.h. The outlier table is described once (s_cols)
    and every format is written from the same rows of cells. */
#define _GNU_SOURCE /* asprintf, mkstemps */
#include "nf_export.h"
#include "nf_states.h"
#include "nf_version.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xlsxwriter.h>

typedef enum {
    K_INT,
    K_NUM1,
    K_NUM2,
    K_PCT,
    K_DATE,
    K_DURATION,
    K_TIMES, /* "4.2x" */
    K_STR,
    K_LINK,
    K_IMAGE /* the workbook shows the picture; CSV and JSON its URL */
} s_kind_t;

typedef struct {
    const char *key;    /* CSV header and JSON key */
    const char *header; /* workbook header */
    s_kind_t kind;      /* how the value is typed and formatted */
} s_col_t;

/* The "Outliers" sheet, then the "AI Content" columns (C_AI on). */
enum {
    C_RANK,
    C_VIDEO_ID,
    C_URL,
    C_TITLE,
    C_CHANNEL,
    C_COUNTRY,
    C_SUBSCRIBERS,
    C_VIEWS,
    C_LIKES,
    C_COMMENTS,
    C_PUBLISHED,
    C_AGE,
    C_DURATION,
    C_MULTIPLIER,
    C_VPS,
    C_VELOCITY,
    C_ENGAGEMENT,
    C_COMPOSITE,
    C_QUALITY,
    C_OUTLIER_X,
    C_BASELINE,
    C_BASELINE_SRC,
    C_CHANNEL_URL,
    C_THUMB,
    C_AI,
    C_TITLES = C_AI,
    C_HOOK,
    C_OUTLINE,
    C_THUMBNAIL,
    C_WHY,
    C_AI_SOURCE,
    C_COUNT
};

static const s_col_t s_cols[C_COUNT] = {
    [C_RANK] = {"rank", "Rank", K_INT},
    [C_VIDEO_ID] = {"video_id", "Video ID", K_STR},
    [C_URL] = {"url", "Link", K_LINK},
    [C_TITLE] = {"title", "Title", K_STR},
    [C_CHANNEL] = {"channel", "Channel", K_STR},
    [C_COUNTRY] = {"country", "Country", K_STR},
    [C_SUBSCRIBERS] = {"subscribers", "Subscribers", K_INT},
    [C_VIEWS] = {"views", "Views", K_INT},
    [C_LIKES] = {"likes", "Likes", K_INT},
    [C_COMMENTS] = {"comments", "Comments", K_INT},
    [C_PUBLISHED] = {"published", "Published", K_DATE},
    [C_AGE] = {"age_days", "Age (days)", K_NUM1},
    [C_DURATION] = {"duration_s", "Duration", K_DURATION},
    [C_MULTIPLIER] = {"multiplier", "Multiplier", K_NUM2},
    [C_VPS] = {"views_per_sub", "Views per subscriber", K_NUM2},
    [C_VELOCITY] = {"velocity", "Velocity (views/day)", K_NUM2},
    [C_ENGAGEMENT] = {"engagement", "Engagement", K_PCT},
    [C_COMPOSITE] = {"composite", "Composite score", K_NUM2},
    [C_QUALITY] = {"quality", "Quality score", K_NUM1},
    [C_OUTLIER_X] = {"outlier_x", "Outlier (x baseline)", K_TIMES},
    [C_BASELINE] = {"baseline_views", "Baseline views", K_INT},
    [C_BASELINE_SRC] = {"baseline", "Baseline", K_STR},
    [C_CHANNEL_URL] = {"channel_url", "Channel link", K_LINK},
    [C_THUMB] = {"thumbnail_url", "Thumbnail", K_IMAGE},
    [C_TITLES] = {"title_variants", "Title variants", K_STR},
    [C_HOOK] = {"hook", "Hook (first 15 s)", K_STR},
    [C_OUTLINE] = {"outline", "Outline", K_STR},
    [C_THUMBNAIL] = {"thumbnail", "Thumbnail concept", K_STR},
    [C_WHY] = {"why_it_worked", "Why it worked", K_STR},
    [C_AI_SOURCE] = {"ai_source", "Written by", K_STR},
};

typedef struct {
    bool set;   /* a value is present */
    double num; /* numeric kinds (dates: seconds since the epoch) */
    char *str;  /* text kinds (owned) */
} s_cell_t;

typedef struct {
    s_cell_t c[C_COUNT]; /* one per column */
    int64_t rank;        /* sort key */
} s_row_t;

/* ---- small helpers ------------------------------------------------------ */

size_t
nf_cell_fit (const char *text, size_t len)
{
    size_t units = 0, i = 0;
    while (i < len) {
        unsigned char b = (unsigned char) text[i];
        size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        size_t u = n == 4 ? 2 : 1; /* 4-byte sequences are surrogate pairs in UTF-16 */
        if (units + u > NF_CELL_MAX || i + n > len)
            break;
        units += u;
        i += n;
    }
    return i;
}

bool
nf_cell_dangerous (const char *text)
{
    return text
           && (*text == '=' || *text == '+' || *text == '-' || *text == '@' || *text == '\t'
               || *text == '\r');
}

char *
nf_export_file_name (const char *niche, int64_t job_id, int copy, const char *ext)
{
    char base[61];
    size_t n = 0;
    bool dash = false;
    for (const char *p = niche ? niche : ""; *p && n < sizeof base - 1; p++) {
        unsigned char ch = (unsigned char) *p;
        if (isalnum (ch) && ch < 0x80) {
            base[n++] = (char) tolower (ch);
            dash = false;
        }
        else if (!dash && n > 0) {
            base[n++] = '-';
            dash = true;
        }
    }
    while (n > 0 && base[n - 1] == '-')
        n--;
    base[n] = 0;
    char *name = NULL;
    int rc = copy > 1 ? asprintf (&name, "%s-%lld-%d.%s", n ? base : "niche", (long long) job_id,
                                  copy, ext)
                      : asprintf (&name, "%s-%lld.%s", n ? base : "niche", (long long) job_id, ext);
    if (rc < 0)
        return NULL;
    return name;
}

static char *
s_dup (const msgpack_object *map, const char *key)
{
    const char *s;
    size_t len;
    if (!nf_mp_get_str (map, key, &s, &len))
        return NULL;
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_utf8_repair (&b, s, len);
    return b.data ? b.data : strdup ("");
}

static void
s_set_num (s_cell_t *cell, const msgpack_object *map, const char *key)
{
    cell->set = nf_mp_get_num (map, key, &cell->num);
}

static void
s_set_str (s_cell_t *cell, char *owned)
{
    cell->str = owned;
    cell->set = owned != NULL;
}

/* Join the strings of array ARR: numbered lines ("1. a\n2. b") or plain lines. */
static char *
s_join (const msgpack_object *arr, bool numbered)
{
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY)
        return NULL;
    nf_buf_t b;
    nf_buf_init (&b);
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_STR)
            continue;
        if (b.len)
            nf_buf_puts (&b, "\n");
        if (numbered)
            nf_buf_printf (&b, "%u. ", i + 1);
        nf_buf_utf8_repair (&b, o->via.str.ptr, o->via.str.size);
    }
    return b.data ? b.data : strdup ("");
}

static void
s_row_build (const msgpack_object *v, s_row_t *r)
{
    memset (r, 0, sizeof *r);
    const msgpack_object *meta = nf_mp_get (v, "meta");
    const msgpack_object *scores = nf_mp_get (v, "scores");
    const msgpack_object *ch = nf_mp_get (nf_mp_get (v, "channel"), "data");
    const msgpack_object *ai = nf_mp_get (v, "ai");
    r->rank = INT32_MAX;
    nf_mp_get_int (v, "rank", &r->rank);
    s_set_num (&r->c[C_RANK], v, "rank");
    s_set_str (&r->c[C_VIDEO_ID], s_dup (v, "video_id"));
    char *url = s_dup (meta, "url");
    if (!url && r->c[C_VIDEO_ID].str) {
        nf_buf_t b;
        nf_buf_init (&b);
        nf_buf_puts (&b, "https://www.youtube.com/watch?v=");
        for (const unsigned char *p = (const unsigned char *) r->c[C_VIDEO_ID].str; *p; p++)
            if (isalnum (*p) || *p == '-' || *p == '_')
                nf_buf_append (&b, p, 1);
            else
                nf_buf_printf (&b, "%%%02X", *p);
        url = b.data;
    }
    s_set_str (&r->c[C_URL], url);
    s_set_str (&r->c[C_TITLE], s_dup (meta, "title"));
    char *channel = s_dup (ch, "title");
    s_set_str (&r->c[C_CHANNEL], channel ? channel : s_dup (meta, "channel_title"));
    s_set_str (&r->c[C_COUNTRY], s_dup (meta, "country"));
    bool hidden = false;
    nf_mp_get_bool (ch, "hidden_subscribers", &hidden);
    if (!hidden)
        s_set_num (&r->c[C_SUBSCRIBERS], ch, "subscribers");
    s_set_num (&r->c[C_VIEWS], meta, "views");
    s_set_num (&r->c[C_LIKES], meta, "likes");
    s_set_num (&r->c[C_COMMENTS], meta, "comments");
    const char *pub;
    size_t pub_len;
    if (nf_mp_get_str (meta, "published_at", &pub, &pub_len))
        r->c[C_PUBLISHED].set = nf_time_parse (pub, pub_len, &r->c[C_PUBLISHED].num) == 0;
    s_set_num (&r->c[C_AGE], scores, "age_days");
    s_set_num (&r->c[C_DURATION], meta, "duration_s");
    s_set_num (&r->c[C_MULTIPLIER], scores, "multiplier");
    s_set_num (&r->c[C_VPS], scores, "views_per_sub");
    s_set_num (&r->c[C_VELOCITY], scores, "velocity");
    s_set_num (&r->c[C_ENGAGEMENT], scores, "engagement");
    s_set_num (&r->c[C_COMPOSITE], v, "composite");
    s_set_num (&r->c[C_QUALITY], v, "quality");
    s_set_num (&r->c[C_OUTLIER_X], scores, "outlier_x");
    s_set_num (&r->c[C_BASELINE], scores, "baseline");
    char *source = s_dup (scores, "baseline_source");
    int64_t used = 0;
    nf_mp_get_int (scores, "baseline_uploads", &used);
    char text[96];
    if (source && strcmp (source, "recent_median") == 0)
        snprintf (text, sizeof text, "median of %lld recent uploads", (long long) used);
    else if (source && strcmp (source, "lifetime_mean") == 0)
        snprintf (text, sizeof text, "channel lifetime mean (too few recent uploads)");
    else
        text[0] = 0;
    free (source);
    s_set_str (&r->c[C_BASELINE_SRC], text[0] ? strdup (text) : NULL);
    /* The channel's page and the thumbnail, on the video link's site. */
    const char *cid = NULL;
    size_t cid_len = 0;
    nf_mp_get_str (nf_mp_get (v, "channel"), "channel_id", &cid, &cid_len);
    const char *vurl = r->c[C_URL].str;
    const char *watch = vurl ? strstr (vurl, "/watch?") : NULL;
    if (cid && cid_len < 64 && watch) {
        char *link = NULL;
        if (asprintf (&link, "%.*s/channel/%.*s", (int) (watch - vurl), vurl, (int) cid_len, cid)
            >= 0)
            s_set_str (&r->c[C_CHANNEL_URL], link);
    }
    if (watch && r->c[C_VIDEO_ID].str && strlen (r->c[C_VIDEO_ID].str) < 64) {
        char *thumb = NULL;
        if (asprintf (&thumb, "https://i.ytimg.com/vi/%s/mqdefault.jpg", r->c[C_VIDEO_ID].str) >= 0)
            s_set_str (&r->c[C_THUMB], thumb);
    }
    s_set_str (&r->c[C_TITLES], s_join (nf_mp_get (ai, "titles"), false));
    s_set_str (&r->c[C_HOOK], s_dup (ai, "hook"));
    s_set_str (&r->c[C_OUTLINE], s_join (nf_mp_get (ai, "outline"), true));
    s_set_str (&r->c[C_THUMBNAIL], s_dup (ai, "thumbnail"));
    s_set_str (&r->c[C_WHY], s_dup (ai, "why"));
    s_set_str (&r->c[C_AI_SOURCE], s_dup (ai, "source"));
}

static void
s_rows_free (s_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < C_COUNT; k++)
            free (rows[i].c[k].str);
    free (rows);
}

static int
s_cmp_rank (const void *a, const void *b)
{
    const s_row_t *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return strcmp (x->c[C_VIDEO_ID].str ? x->c[C_VIDEO_ID].str : "",
                   y->c[C_VIDEO_ID].str ? y->c[C_VIDEO_ID].str : "");
}

static void
s_date (double epoch, char out[11])
{
    time_t t = (time_t) epoch;
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (out, 11, "%Y-%m-%d", &tm);
}

/* ---- metadata: key/value pairs shared by the workbook and the JSON ------- */

typedef struct {
    char *key;  /* label (owned) */
    char *text; /* value as text (owned), or NULL for a number */
    double num; /* value when TEXT is NULL */
} s_kv_t;

typedef struct {
    s_kv_t *items; /* pairs (owned) */
    size_t n, cap; /* used, allocated */
} s_kvs_t;

static void
s_kv_add (s_kvs_t *kv, const char *key, const char *text, double num)
{
    if (kv->n == kv->cap) {
        kv->cap = kv->cap ? kv->cap * 2 : 32;
        s_kv_t *items = realloc (kv->items, kv->cap * sizeof *kv->items);
        if (!items)
            abort (); /* nicheflow's out-of-memory policy (nf_util.h) */
        kv->items = items;
    }
    kv->items[kv->n++] = (s_kv_t){strdup (key), text ? strdup (text) : NULL, num};
}

static void
s_kvs_free (s_kvs_t *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        free (kv->items[i].key);
        free (kv->items[i].text);
    }
    free (kv->items);
}

static double
s_count (const msgpack_object *map, const char *key)
{
    double n = 0;
    nf_mp_get_num (map, key, &n);
    return n;
}

static void
s_metadata (const nf_task_t *task, size_t outliers, s_kvs_t *kv)
{
    char text[64];
    const msgpack_object *stats = nf_mp_get (task->input, "stats");
    const msgpack_object *funnel = nf_mp_get (task->input, "funnel");
    s_kv_add (kv, "nicheflow version", NF_VERSION, 0);
    s_kv_add (kv, "Job ID", NULL, (double) task->job_id);
    char *niche = s_dup (task->job, "niche");
    char *sub = s_dup (task->job, "sub_niche");
    s_kv_add (kv, "Niche", niche ? niche : "", 0);
    s_kv_add (kv, "Sub-niche", sub ? sub : "", 0);
    free (niche);
    free (sub);
    nf_buf_t opts;
    nf_buf_init (&opts);
    char err[128];
    const msgpack_object *options = nf_mp_get (task->job, "options");
    if (options && nf_mp_to_json (options, &opts, err, sizeof err) == 0)
        s_kv_add (kv, "Options", opts.data, 0);
    nf_buf_free (&opts);
    int64_t priority = 1;
    nf_mp_get_int (stats, "priority", &priority);
    s_kv_add (kv, "Priority", nf_priority_name (priority < 0 || priority > 3 ? -1 : (int) priority),
              0);
    s_kv_add (kv, "Target outliers", NULL, s_count (stats, "target"));
    char *created = s_dup (stats, "created_at");
    s_kv_add (kv, "Job created", created ? created : "", 0);
    free (created);
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    s_kv_add (kv, "Exported at", text, 0);
    s_kv_add (kv, "Outliers exported", NULL, (double) outliers);

    const msgpack_object *reached = nf_mp_get (task->input, "reached");
    const msgpack_object *states = nf_mp_get (funnel, "states");
    static const struct {
        const char *label, *state;
    } steps[] = {{"Funnel: discovered", "DISCOVERED"}, {"Funnel: scraped (RAW)", "RAW"},
                 {"Funnel: cleaned", "CLEANED"},       {"Funnel: validated (Tier-1)", "VALIDATED"},
                 {"Funnel: outliers", "OUTLIER"},      {"Funnel: ready", "READY"}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        s_kv_add (kv, steps[i].label, NULL, s_count (reached, steps[i].state));
    s_kv_add (kv, "Funnel: failed", NULL, s_count (states, "FAILED"));
    s_kv_add (kv, "Funnel: rejected", NULL, s_count (states, "REJECTED"));
    const msgpack_object *rejected = nf_mp_get (funnel, "rejected");
    if (rejected && rejected->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < rejected->via.map.size; i++) {
            const msgpack_object_kv *e = &rejected->via.map.ptr[i];
            if (e->key.type != MSGPACK_OBJECT_STR)
                continue;
            char label[160];
            snprintf (label, sizeof label, "Rejected: %.*s",
                      (int) (e->key.via.str.size > 100 ? 100 : e->key.via.str.size),
                      e->key.via.str.ptr);
            double n = e->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double) e->val.via.u64 : 0;
            s_kv_add (kv, label, NULL, n);
        }
    s_kv_add (kv, "YouTube search.list calls", NULL, s_count (stats, "search_calls"));
    s_kv_add (kv, "YouTube API quota units", NULL, s_count (stats, "quota_units"));
    s_kv_add (kv, "  of them for channel baselines", NULL, s_count (stats, "baseline_units"));
    s_kv_add (kv, "HTTP requests", NULL, s_count (stats, "http_requests"));
    s_kv_add (kv, "LLM tokens", NULL, s_count (stats, "tokens"));
}

/* ---- CSV ------------------------------------------------------------------ */

static void
s_csv_field (nf_buf_t *b, const char *text)
{
    bool quote = strpbrk (text, ",\"\r\n") != NULL || nf_cell_dangerous (text);
    if (!quote) {
        nf_buf_puts (b, text);
        return;
    }
    nf_buf_puts (b, "\"");
    if (nf_cell_dangerous (text))
        nf_buf_puts (b, "'");
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            nf_buf_puts (b, "\"");
        nf_buf_append (b, p, 1);
    }
    nf_buf_puts (b, "\"");
}

static void
s_num_text (const s_col_t *col, const s_cell_t *cell, char *out, size_t len)
{
    if (col->kind == K_DATE)
        s_date (cell->num, out);
    else if (col->kind == K_INT || col->kind == K_DURATION)
        snprintf (out, len, "%.0f", cell->num);
    else if (col->kind == K_TIMES)
        snprintf (out, len, "%.4f", cell->num);
    else
        snprintf (out, len, "%.10g", cell->num);
}

static void
s_csv (s_row_t *rows, size_t n, nf_buf_t *b)
{
    for (int k = 0; k < C_COUNT; k++) {
        if (k)
            nf_buf_puts (b, ",");
        nf_buf_puts (b, s_cols[k].key);
    }
    nf_buf_puts (b, "\r\n");
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < C_COUNT; k++) {
            const s_cell_t *cell = &rows[i].c[k];
            if (k)
                nf_buf_puts (b, ",");
            if (!cell->set)
                continue;
            if (cell->str)
                s_csv_field (b, cell->str);
            else {
                char num[64];
                s_num_text (&s_cols[k], cell, num, sizeof num);
                nf_buf_puts (b, num);
            }
        }
        nf_buf_puts (b, "\r\n");
    }
}

/* ---- JSON ----------------------------------------------------------------- */

static json_t *
s_json_value (const msgpack_object *o)
{
    nf_buf_t b;
    nf_buf_init (&b);
    char err[128];
    json_t *j = NULL;
    if (o && nf_mp_to_json (o, &b, err, sizeof err) == 0)
        j = json_loadb (b.data, b.len, JSON_DECODE_ANY, NULL);
    nf_buf_free (&b);
    return j ? j : json_null ();
}

static int
s_json (const nf_task_t *task, s_row_t *rows, size_t n, const s_kvs_t *kv, nf_buf_t *out)
{
    json_t *root = json_object ();
    json_object_set_new (root, "nicheflow", json_string (NF_VERSION));
    json_object_set_new (root, "job_id", json_integer (task->job_id));
    json_object_set_new (root, "job", s_json_value (task->job));
    json_t *list = json_array ();
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_object ();
        for (int k = 0; k < C_COUNT; k++) {
            const s_cell_t *cell = &rows[i].c[k];
            json_t *v;
            if (!cell->set)
                v = json_null ();
            else if (cell->str)
                v = json_string (cell->str);
            else if (s_cols[k].kind == K_DATE) {
                char d[11];
                s_date (cell->num, d);
                v = json_string (d);
            }
            else if (s_cols[k].kind == K_INT || s_cols[k].kind == K_DURATION)
                v = json_integer ((json_int_t) llround (cell->num));
            else
                v = json_real (cell->num);
            json_object_set_new (row, s_cols[k].key, v ? v : json_null ());
        }
        json_array_append_new (list, row);
    }
    json_object_set_new (root, "outliers", list);
    json_t *meta = json_object ();
    for (size_t i = 0; i < kv->n; i++)
        json_object_set_new (meta, kv->items[i].key,
                             kv->items[i].text ? json_string (kv->items[i].text)
                                               : json_real (kv->items[i].num));
    json_object_set_new (root, "metadata", meta);
    json_object_set_new (root, "funnel", s_json_value (nf_mp_get (task->input, "funnel")));
    json_object_set_new (root, "timings", s_json_value (nf_mp_get (task->input, "timings")));
    char *text = json_dumps (root, JSON_INDENT (2));
    json_decref (root);
    if (!text)
        return -1;
    nf_buf_puts (out, text);
    nf_buf_puts (out, "\n");
    free (text);
    return 0;
}

/* ---- XLSX ----------------------------------------------------------------- */

/* A workbook a creator opens (issue 25): the Outliers sheet leads with the
   thumbnail, the title linked to the video, the channel linked to its page
   and the outlier figure ("4.2x"); the picture links to the video (a
   title stays plain text: LibreOffice does not wrap a hyperlink's text);
   every wrapped row gets the height of its
   text (LibreOffice does not grow rows by itself); each sheet prints
   landscape, one page wide, its header repeated; the Charts sheet plots
   every candidate's views against its outlier figure with the top N
   marked, and the funnel. */

#define THUMB_SCALE  0.45 /* 320x180 pictures at 144x81 pixels (61 points) */
#define THUMB_ROW_PT 68.0 /* row height for them, with a margin */
#define LINE_PT      15.0 /* one line of 11-point text */
#define MAX_ROW_PT   409.0

typedef struct {
    lxw_format *header;            /* bold, bottom border, wrapped */
    lxw_format *kind[K_IMAGE + 1]; /* per column kind */
    lxw_format *wrap;              /* wrapped text, top aligned */
    lxw_format *bold;              /* section titles */
} s_formats_t;

/* The Outliers sheet's columns, in order, and their widths (characters;
   0: fitted to the content). */
static const struct {
    int col;
    double width;
} s_sheet[] = {
    {C_RANK, 6},       {C_THUMB, 23},     {C_TITLE, 40},        {C_CHANNEL, 30},
    {C_OUTLIER_X, 11}, {C_BASELINE, 11},  {C_BASELINE_SRC, 24}, {C_VIEWS, 0},
    {C_LIKES, 0},      {C_COMMENTS, 0},   {C_SUBSCRIBERS, 0},   {C_COUNTRY, 8},
    {C_PUBLISHED, 11}, {C_AGE, 0},        {C_DURATION, 9},      {C_VPS, 0},
    {C_VELOCITY, 0},   {C_ENGAGEMENT, 0}, {C_COMPOSITE, 0},     {C_QUALITY, 0},
    {C_VIDEO_ID, 0},   {C_URL, 30},       {C_CHANNEL_URL, 30},
};
#define SHEET_COLS (sizeof s_sheet / sizeof s_sheet[0])
/* The ids and raw links stay off the page: the title and the channel are the links there. */
#define PRINT_COLS (SHEET_COLS - 3)

/* Display width (code points of the longest line) of TEXT. */
static size_t
s_width (const char *text)
{
    size_t best = 0, cur = 0;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if (*p == '\n') {
            best = cur > best ? cur : best;
            cur = 0;
        }
        else if ((*p & 0xC0) != 0x80)
            cur++;
    }
    return cur > best ? cur : best;
}

/* Lines TEXT takes wrapped in a column WIDTH characters wide: each of its
   lines takes ceil(code points / chars a line); proportional text fits
   about 1.1 characters per width unit. */
static size_t
s_lines (const char *text, double width)
{
    size_t per = (size_t) fmax (1.0, floor (width * 1.1));
    size_t lines = 0, cur = 0;
    for (const unsigned char *p = (const unsigned char *) text;; p++) {
        if (*p == '\n' || !*p) {
            lines += cur ? (cur + per - 1) / per : 1;
            cur = 0;
            if (!*p)
                break;
        }
        else if ((*p & 0xC0) != 0x80)
            cur++;
    }
    return lines;
}

static double
s_row_height (size_t lines)
{
    return fmin (MAX_ROW_PT, (double) lines * LINE_PT + 3.0);
}

static lxw_error
s_xlsx_str (lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, const char *text, lxw_format *f)
{
    size_t len = strlen (text);
    size_t fit = nf_cell_fit (text, len);
    if (fit == len)
        return worksheet_write_string (ws, r, c, text, f);
    char *cut = strndup (text, fit);
    lxw_error e = worksheet_write_string (ws, r, c, cut, f);
    free (cut);
    return e;
}

static void
s_xlsx_datetime (double epoch, lxw_datetime *dt)
{
    time_t t = (time_t) epoch;
    struct tm tm;
    gmtime_r (&t, &tm);
    *dt = (lxw_datetime){tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, 0, 0, 0};
}

/* TEXT as a hyperlink to URL, or as plain text when the link cannot be
   written (too long, or refused). */
static lxw_error
s_xlsx_link (lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, const char *url, const char *text,
             lxw_format *f)
{
    if (url && strlen (url) < 2000 && nf_cell_fit (text, strlen (text)) == strlen (text)
        && worksheet_write_url_opt (ws, r, c, url, f, text, NULL) == LXW_NO_ERROR)
        return LXW_NO_ERROR;
    return s_xlsx_str (ws, r, c, text, f);
}

static lxw_error
s_xlsx_cell (lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, int k, const s_row_t *row,
             s_formats_t *fm)
{
    const s_col_t *col = &s_cols[k];
    const s_cell_t *cell = &row->c[k];
    if (!cell->set)
        return LXW_NO_ERROR;
    if (k == C_CHANNEL)
        return s_xlsx_link (ws, r, c, row->c[C_CHANNEL_URL].str, cell->str, fm->kind[K_LINK]);
    switch (col->kind) {
    case K_STR: return s_xlsx_str (ws, r, c, cell->str, fm->wrap);
    case K_IMAGE: return LXW_NO_ERROR; /* the picture goes over the cell */
    case K_LINK: return s_xlsx_link (ws, r, c, cell->str, cell->str, fm->kind[K_LINK]);
    case K_DATE: {
        lxw_datetime dt;
        s_xlsx_datetime (cell->num, &dt);
        return worksheet_write_datetime (ws, r, c, &dt, fm->kind[K_DATE]);
    }
    case K_DURATION:
        return worksheet_write_number (ws, r, c, cell->num / 86400.0, fm->kind[K_DURATION]);
    default: return worksheet_write_number (ws, r, c, cell->num, fm->kind[col->kind]);
    }
}

/* Landscape, one page wide (as many tall as it takes), the header row on
   every page, narrow margins. */
static void
s_print_setup (lxw_worksheet *ws, bool header)
{
    worksheet_set_landscape (ws);
    worksheet_set_paper (ws, 9); /* A4 */
    worksheet_set_margins (ws, 0.3, 0.3, 0.4, 0.4);
    worksheet_fit_to_pages (ws, 1, 0);
    if (header)
        worksheet_repeat_rows (ws, 0, 0);
}

/* The picture of ROW (when fetched) into cell (R, C). */
static void
s_thumbnail (lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, const s_row_t *row,
             const nf_export_image_t *images, size_t nimages)
{
    const char *id = row->c[C_VIDEO_ID].str;
    for (size_t i = 0; id && i < nimages; i++) {
        if (strcmp (images[i].video_id, id) != 0 || !images[i].len)
            continue;
        char alt[160];
        snprintf (alt, sizeof alt, "Thumbnail of video %s", id);
        lxw_image_options o = {.x_offset = 4,
                               .y_offset = 3,
                               .x_scale = THUMB_SCALE,
                               .y_scale = THUMB_SCALE,
                               .object_position = LXW_OBJECT_MOVE_DONT_SIZE,
                               .description = alt,
                               .url = row->c[C_URL].str};
        if (worksheet_insert_image_buffer_opt (ws, r, c, images[i].data, images[i].len, &o)
            != LXW_NO_ERROR)
            worksheet_insert_image_buffer (ws, r, c, images[i].data, images[i].len);
        return;
    }
}

static void
s_sheet_outliers (lxw_workbook *wb, s_row_t *rows, size_t n, s_formats_t *fm,
                  const nf_export_image_t *images, size_t nimages)
{
    lxw_worksheet *ws = workbook_add_worksheet (wb, "Outliers");
    double width[SHEET_COLS];
    for (size_t j = 0; j < SHEET_COLS; j++) {
        const s_col_t *col = &s_cols[s_sheet[j].col];
        worksheet_write_string (ws, 0, (lxw_col_t) j, col->header, fm->header);
        width[j] = s_sheet[j].width;
        if (width[j] > 0)
            continue;
        size_t w = s_width (col->header) < 14 ? s_width (col->header) : 14; /* headers wrap */
        for (size_t i = 0; i < n; i++) {
            const s_cell_t *cell = &rows[i].c[s_sheet[j].col];
            size_t cw = !cell->set ? 0 : cell->str ? s_width (cell->str) : 11;
            w = cw > w ? cw : w;
        }
        width[j] = (double) (w > 60 ? 60 : w) + 2;
    }
    size_t head = 1;
    for (size_t j = 0; j < SHEET_COLS; j++)
        head = fmax ((double) head, (double) s_lines (s_cols[s_sheet[j].col].header, width[j]));
    worksheet_set_row (ws, 0, s_row_height (head), NULL);
    for (size_t i = 0; i < n; i++) {
        lxw_row_t r = (lxw_row_t) (i + 1);
        size_t lines = 1;
        for (size_t j = 0; j < SHEET_COLS; j++) {
            int k = s_sheet[j].col;
            s_xlsx_cell (ws, r, (lxw_col_t) j, k, &rows[i], fm);
            if (rows[i].c[k].set && rows[i].c[k].str && s_cols[k].kind == K_STR)
                lines = fmax ((double) lines, (double) s_lines (rows[i].c[k].str, width[j]));
            if (k == C_THUMB)
                s_thumbnail (ws, r, (lxw_col_t) j, &rows[i], images, nimages);
        }
        double h = s_row_height (lines);
        worksheet_set_row (ws, r, nimages && h < THUMB_ROW_PT ? THUMB_ROW_PT : h, NULL);
    }
    for (size_t j = 0; j < SHEET_COLS; j++)
        worksheet_set_column (ws, (lxw_col_t) j, (lxw_col_t) j, width[j], NULL);
    worksheet_freeze_panes (ws, 1, 3); /* the header, and rank, picture and title */
    worksheet_autofilter (ws, 0, 0, (lxw_row_t) (n > 0 ? n : 1), (lxw_col_t) (SHEET_COLS - 1));
    s_print_setup (ws, true);
    worksheet_print_area (ws, 0, 0, (lxw_row_t) (n > 0 ? n : 1), (lxw_col_t) (PRINT_COLS - 1));
}

static void
s_sheet_ai (lxw_workbook *wb, s_row_t *rows, size_t n, s_formats_t *fm)
{
    lxw_worksheet *ws = workbook_add_worksheet (wb, "AI Content");
    static const int cols[] = {C_RANK,    C_VIDEO_ID,  C_TITLE, C_TITLES,   C_HOOK,
                               C_OUTLINE, C_THUMBNAIL, C_WHY,   C_AI_SOURCE};
    static const double widths[] = {6, 14, 40, 50, 50, 60, 50, 70, 12};
    for (size_t j = 0; j < sizeof cols / sizeof cols[0]; j++) {
        worksheet_write_string (ws, 0, (lxw_col_t) j, s_cols[cols[j]].header, fm->header);
        worksheet_set_column (ws, (lxw_col_t) j, (lxw_col_t) j, widths[j], fm->wrap);
    }
    for (size_t i = 0; i < n; i++) {
        size_t lines = 1;
        for (size_t j = 0; j < sizeof cols / sizeof cols[0]; j++) {
            const s_cell_t *cell = &rows[i].c[cols[j]];
            if (!cell->set)
                continue;
            if (cell->str) {
                s_xlsx_str (ws, (lxw_row_t) (i + 1), (lxw_col_t) j, cell->str, fm->wrap);
                lines = fmax ((double) lines, (double) s_lines (cell->str, widths[j]));
            }
            else
                worksheet_write_number (ws, (lxw_row_t) (i + 1), (lxw_col_t) j, cell->num,
                                        fm->wrap);
        }
        /* Rows do not grow by themselves in LibreOffice: each gets its text's height. */
        worksheet_set_row (ws, (lxw_row_t) (i + 1), s_row_height (lines), fm->wrap);
    }
    worksheet_freeze_panes (ws, 1, 0);
    s_print_setup (ws, true);
}

static lxw_row_t
s_title_row (lxw_worksheet *ws, lxw_row_t r, const char *const *titles, size_t n, s_formats_t *fm)
{
    for (size_t j = 0; j < n; j++)
        worksheet_write_string (ws, r, (lxw_col_t) j, titles[j], fm->header);
    return r + 1;
}

/* A text cell of the Metadata sheet, widening its column's W as needed. */
static void
s_meta_str (lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, const char *text, size_t *w)
{
    s_xlsx_str (ws, r, c, text, NULL);
    size_t tw = s_width (text);
    w[c] = tw > w[c] ? tw : w[c];
}

static void
s_sheet_metadata (lxw_workbook *wb, const nf_task_t *task, const s_kvs_t *kv, s_formats_t *fm)
{
    lxw_worksheet *ws = workbook_add_worksheet (wb, "Metadata");
    size_t w[5] = {12, 12, 12, 10, 10}; /* fitted to what the sheet holds */
    static const char *const kvh[] = {"Field", "Value"};
    lxw_row_t r = s_title_row (ws, 0, kvh, 2, fm);
    for (size_t i = 0; i < kv->n; i++, r++) {
        s_meta_str (ws, r, 0, kv->items[i].key, w);
        if (kv->items[i].text)
            s_meta_str (ws, r, 1, kv->items[i].text, w);
        else
            worksheet_write_number (ws, r, 1, kv->items[i].num, fm->kind[K_INT]);
    }
    r++;
    static const char *const th[] = {"Stage", "First transition", "Last transition", "Seconds",
                                     "Transitions"};
    r = s_title_row (ws, r, th, 5, fm);
    const msgpack_object *timings = nf_mp_get (task->input, "timings");
    size_t nst;
    const nf_stage_t *stages = nf_stages (&nst);
    for (size_t i = 0; i < nst; i++) { /* in pipeline order */
        const msgpack_object *t = nf_mp_get (timings, stages[i].service);
        if (!t)
            continue;
        char *first = s_dup (t, "first"), *last = s_dup (t, "last");
        double t0 = 0, t1 = 0;
        s_meta_str (ws, r, 0, stages[i].service, w);
        if (first)
            s_meta_str (ws, r, 1, first, w);
        if (last)
            s_meta_str (ws, r, 2, last, w);
        if (first && last && nf_time_parse (first, strlen (first), &t0) == 0
            && nf_time_parse (last, strlen (last), &t1) == 0)
            worksheet_write_number (ws, r, 3, t1 - t0, fm->kind[K_NUM2]);
        worksheet_write_number (ws, r, 4, s_count (t, "transitions"), fm->kind[K_INT]);
        free (first);
        free (last);
        r++;
    }
    r++;
    static const char *const fh[] = {"Failed video", "Failed in state", "Error"};
    r = s_title_row (ws, r, fh, 3, fm);
    const msgpack_object *failed = nf_mp_get (nf_mp_get (task->input, "funnel"), "failed");
    if (failed && failed->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < failed->via.array.size; i++, r++) {
            const msgpack_object *f = &failed->via.array.ptr[i];
            static const char *const keys[] = {"video_id", "failed_from", "error"};
            for (lxw_col_t c = 0; c < 3; c++) {
                char *text = s_dup (f, keys[c]);
                if (text)
                    s_meta_str (ws, r, c, text, w);
                free (text);
            }
        }
    /* Every timestamp whole: the columns are as wide as their longest text
       (up to 90; longer texts, error messages, wrap). */
    for (lxw_col_t c = 0; c < 5; c++)
        worksheet_set_column (ws, c, c, (double) (w[c] > 90 ? 90 : w[c]) + 2,
                              c == 2 ? fm->wrap : NULL);
    s_print_setup (ws, false);
}

/* A series of SCATTER: views in column COL of "Chart data" rows 1..N, the
   outlier figures in COL + 1, markers of MARKER, SIZE, FILL and LINE. */
static void
s_scatter_series (lxw_chart *scatter, lxw_col_t col, lxw_row_t n, const char *name, uint8_t marker,
                  uint8_t size, lxw_color_t fill, lxw_color_t line)
{
    lxw_chart_series *s = chart_add_series (scatter, NULL, NULL);
    chart_series_set_categories (s, "Chart data", 1, col, n, col);
    chart_series_set_values (s, "Chart data", 1, col + 1, n, col + 1);
    chart_series_set_name (s, name);
    chart_series_set_marker_type (s, marker);
    chart_series_set_marker_size (s, size);
    lxw_chart_fill f = {.color = fill};
    lxw_chart_line l = {.color = line};
    chart_series_set_marker_fill (s, &f);
    chart_series_set_marker_line (s, &l);
}

/* The Charts sheet: every ranked candidate's views against its outlier
   figure (log scales; the top N in their own colour) and the funnel as
   bars. Their data is on the hidden sheet "Chart data". */
static void
s_sheet_charts (lxw_workbook *wb, const nf_task_t *task, size_t top, const s_kvs_t *kv,
                s_formats_t *fm)
{
    lxw_worksheet *ws = workbook_add_worksheet (wb, "Charts");
    lxw_worksheet *data = workbook_add_worksheet (wb, "Chart data");
    static const char *const dh[] = {"Title",       "Views (others)", "Outlier (others)",
                                     "Views (top)", "Outlier (top)",  "",
                                     "Funnel",      "Videos"};
    s_title_row (data, 0, dh, 8, fm);
    const msgpack_object *cand = nf_mp_get (task->input, "candidates");
    lxw_row_t others = 0, best = 0;
    if (cand && cand->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < cand->via.array.size; i++) {
            const msgpack_object *c = &cand->via.array.ptr[i];
            double views = 0, x = 0;
            int64_t rank = 0;
            if (!nf_mp_get_num (c, "views", &views) || !nf_mp_get_num (c, "outlier_x", &x)
                || views <= 0 || x <= 0)
                continue; /* a log scale shows no zero */
            nf_mp_get_int (c, "rank", &rank);
            bool is_top = rank >= 1 && (size_t) rank <= top;
            lxw_row_t r = 1 + (is_top ? best++ : others++);
            worksheet_write_number (data, r, is_top ? 3 : 1, views, fm->kind[K_INT]);
            worksheet_write_number (data, r, is_top ? 4 : 2, x, fm->kind[K_TIMES]);
            char *title = s_dup (c, "title");
            if (title && is_top)
                s_xlsx_str (data, r, 0, title, NULL);
            free (title);
        }
    static const char *const steps[] = {"Funnel: discovered", "Funnel: scraped (RAW)",
                                        "Funnel: cleaned",    "Funnel: validated (Tier-1)",
                                        "Funnel: outliers",   "Funnel: ready"};
    static const char *const labels[] = {"Discovered", "Scraped",  "Cleaned",
                                         "Tier-1",     "Outliers", "Written"};
    for (size_t s = 0; s < 6; s++) {
        worksheet_write_string (data, (lxw_row_t) (s + 1), 6, labels[s], NULL);
        for (size_t i = 0; i < kv->n; i++)
            if (!kv->items[i].text && strcmp (kv->items[i].key, steps[s]) == 0)
                worksheet_write_number (data, (lxw_row_t) (s + 1), 7, kv->items[i].num,
                                        fm->kind[K_INT]);
    }
    worksheet_hide (data);

    lxw_chart *scatter = workbook_add_chart (wb, LXW_CHART_SCATTER);
    chart_title_set_name (scatter, "Every candidate: views against its baseline");
    if (others)
        s_scatter_series (scatter, 1, others, "Other candidates", LXW_CHART_MARKER_CIRCLE, 5,
                          0xA6A6A6, 0x7F7F7F);
    if (best) {
        char name[48];
        snprintf (name, sizeof name, "Top %zu outliers", top);
        s_scatter_series (scatter, 3, best, name, LXW_CHART_MARKER_DIAMOND, 9, 0xE8413C, 0x9C1C18);
    }
    chart_axis_set_name (scatter->x_axis, "Views");
    chart_axis_set_name (scatter->y_axis, "Outlier (x baseline)");
    chart_axis_set_log_base (scatter->x_axis, 10);
    chart_axis_set_log_base (scatter->y_axis, 10);
    lxw_chart_options big = {.x_scale = 1.6, .y_scale = 1.6};
    worksheet_insert_chart_opt (ws, 1, 1, scatter, &big);

    lxw_chart *bars = workbook_add_chart (wb, LXW_CHART_BAR);
    chart_title_set_name (bars, "Funnel");
    lxw_chart_series *f = chart_add_series (bars, NULL, NULL);
    chart_series_set_categories (f, "Chart data", 1, 6, 6, 6);
    chart_series_set_values (f, "Chart data", 1, 7, 6, 7);
    chart_series_set_name (f, "Videos");
    chart_axis_set_reverse (bars->y_axis); /* discovered at the top */
    chart_legend_set_position (bars, LXW_CHART_LEGEND_NONE);
    lxw_chart_options side = {.x_scale = 1.1, .y_scale = 1.6};
    worksheet_insert_chart_opt (ws, 1, 14, bars, &side); /* beside it: one landscape page */
    s_print_setup (ws, false);
}

static int
s_xlsx (const nf_task_t *task, s_row_t *rows, size_t n, const s_kvs_t *kv, const char *tmpdir,
        const nf_export_image_t *images, size_t nimages, nf_buf_t *out, char *err, size_t errlen)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/nf-export-XXXXXX.xlsx", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemps (path, 5);
    if (fd < 0) {
        snprintf (err, errlen, "cannot create a temporary file in %s: %s",
                  tmpdir && *tmpdir ? tmpdir : "/tmp", strerror (errno));
        return -1;
    }
    close (fd);
    lxw_workbook_options opt = {.constant_memory = 0,
                                .tmpdir = (char *) (tmpdir && *tmpdir ? tmpdir : NULL)};
    lxw_workbook *wb = workbook_new_opt (path, &opt);
    if (!wb) {
        unlink (path);
        snprintf (err, errlen, "libxlsxwriter could not start a workbook");
        return -1;
    }
    s_formats_t fm;
    memset (&fm, 0, sizeof fm);
    fm.header = workbook_add_format (wb);
    format_set_bold (fm.header);
    format_set_bottom (fm.header, LXW_BORDER_THIN);
    format_set_text_wrap (fm.header);
    format_set_align (fm.header, LXW_ALIGN_VERTICAL_TOP);
    static const char *const numfmt[] = {
        [K_INT] = "#,##0",     [K_NUM1] = "#,##0.0",    [K_NUM2] = "#,##0.00",
        [K_PCT] = "0.00%",     [K_DATE] = "yyyy-mm-dd", [K_DURATION] = "[h]:mm:ss",
        [K_TIMES] = "0.0\"x\""};
    for (int k = K_INT; k <= K_TIMES; k++) {
        fm.kind[k] = workbook_add_format (wb);
        format_set_num_format (fm.kind[k], numfmt[k]);
        format_set_align (fm.kind[k], LXW_ALIGN_VERTICAL_TOP);
    }
    format_set_bold (fm.kind[K_TIMES]);
    fm.kind[K_LINK] = workbook_add_format (wb);
    format_set_underline (fm.kind[K_LINK], LXW_UNDERLINE_SINGLE);
    format_set_font_color (fm.kind[K_LINK], LXW_COLOR_BLUE);
    format_set_align (fm.kind[K_LINK], LXW_ALIGN_VERTICAL_TOP);
    fm.wrap = workbook_add_format (wb);
    format_set_text_wrap (fm.wrap);
    format_set_align (fm.wrap, LXW_ALIGN_VERTICAL_TOP);
    s_sheet_outliers (wb, rows, n, &fm, images, nimages);
    s_sheet_charts (wb, task, n, kv, &fm);
    s_sheet_ai (wb, rows, n, &fm);
    s_sheet_metadata (wb, task, kv, &fm);
    lxw_doc_properties props = {.title = "nicheflow outliers",
                                .author = "nicheflow",
                                .comments = "Generated by nicheflow " NF_VERSION};
    workbook_set_properties (wb, &props);
    lxw_error e = workbook_close (wb);
    int rc = 0;
    if (e != LXW_NO_ERROR) {
        snprintf (err, errlen, "writing the workbook failed: %s", lxw_strerror (e));
        rc = -1;
    }
    else if (nf_buf_read_file (out, path, SIZE_MAX) != 0) {
        snprintf (err, errlen, "reading back %s failed: %s", path, strerror (errno));
        rc = -1;
    }
    unlink (path);
    return rc;
}

/* ---- entry point ------------------------------------------------------------ */

int
nf_export_build (const nf_task_t *task, const char *tmpdir, const nf_export_image_t *images,
                 size_t nimages, nf_export_files_t *out, char *err, size_t errlen)
{
    nf_buf_init (&out->xlsx);
    nf_buf_init (&out->csv);
    nf_buf_init (&out->json);
    const msgpack_object *videos = nf_mp_get (task->input, "videos");
    if (!videos || videos->type != MSGPACK_OBJECT_ARRAY) {
        snprintf (err, errlen, "task input has no 'videos' array");
        return -1;
    }
    size_t n = videos->via.array.size;
    s_row_t *rows = calloc (n + 1, sizeof *rows);
    if (!rows)
        abort ();
    for (size_t i = 0; i < n; i++)
        s_row_build (&videos->via.array.ptr[i], &rows[i]);
    qsort (rows, n, sizeof *rows, s_cmp_rank);
    s_kvs_t kv = {0};
    s_metadata (task, n, &kv);
    s_csv (rows, n, &out->csv);
    int rc = s_json (task, rows, n, &kv, &out->json);
    if (rc != 0)
        snprintf (err, errlen, "JSON encoding failed");
    else
        rc = s_xlsx (task, rows, n, &kv, tmpdir, images, nimages, &out->xlsx, err, errlen);
    s_kvs_free (&kv);
    s_rows_free (rows, n);
    if (rc != 0)
        nf_export_files_free (out);
    return rc;
}

void
nf_export_files_free (nf_export_files_t *files)
{
    nf_buf_free (&files->xlsx);
    nf_buf_free (&files->csv);
    nf_buf_free (&files->json);
}

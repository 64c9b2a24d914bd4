/*  nf_ytdata: see nf_ytdata.h. All numbers come from splitmix64 of the
    seed, the query tag, the index and a per-attribute salt. */
#include "nf_ytdata.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_BITS 40
#define TAG_MASK ((UINT64_C (1) << TAG_BITS) - 1)
#define IDX_MASK UINT64_C (0xFFFFFF)

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

uint64_t
nf_yt_mix (uint64_t x)
{
    x += UINT64_C (0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C (0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C (0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* A uniform number in [0, 1) for (tag, index, salt). */
static double
s_u (const nf_ytworld_t *w, uint64_t tag, uint64_t index, uint64_t salt)
{
    uint64_t r = nf_yt_mix (nf_yt_mix (w->seed ^ tag) ^ (index * UINT64_C (0x100000001B3)) ^ salt);
    return (double) (r >> 11) * (1.0 / 9007199254740992.0);
}

static double
s_lognormal (const nf_ytworld_t *w, uint64_t tag, uint64_t index, uint64_t salt, double mu,
             double sigma)
{
    double u1 = s_u (w, tag, index, salt), u2 = s_u (w, tag, index, salt + 7777);
    if (u1 < 1e-12)
        u1 = 1e-12;
    double z = sqrt (-2.0 * log (u1)) * cos (2.0 * M_PI * u2);
    return exp (mu + sigma * z);
}

static int
s_b64_value (char c)
{
    const char *p = c ? strchr (s_b64, c) : NULL;
    return p ? (int) (p - s_b64) : -1;
}

uint64_t
nf_yt_query_tag (const nf_ytworld_t *w, const char *q)
{
    uint64_t h = UINT64_C (0xcbf29ce484222325);
    while (*q && isspace ((unsigned char) *q))
        q++;
    size_t n = strlen (q);
    while (n > 0 && isspace ((unsigned char) q[n - 1]))
        n--;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint64_t) tolower ((unsigned char) q[i]);
        h *= UINT64_C (0x100000001b3);
    }
    return nf_yt_mix (h ^ w->seed) & TAG_MASK;
}

/* ---- ids ----------------------------------------------------------------- */

/* A bijection of 64-bit values (xorshift-multiply), so ids look random and
   still decode: x ^= x >> 31; x *= K; x ^= x >> 29. */
#define PERM_K UINT64_C (0xD6E8FEB86659FD93)

static uint64_t
s_unshift (uint64_t x, int k)
{
    uint64_t y = x;
    for (int s = k; s < 64; s += k)
        y ^= x >> s;
    return y;
}

static uint64_t
s_perm (uint64_t x)
{
    x ^= x >> 31;
    x *= PERM_K;
    return x ^ (x >> 29);
}

static uint64_t
s_unperm (uint64_t x)
{
    uint64_t inv = PERM_K; /* Newton's iteration for the inverse mod 2^64 */
    for (int i = 0; i < 6; i++)
        inv *= 2 - PERM_K * inv;
    return s_unshift (s_unshift (x, 29) * inv, 31);
}

/* 11 base64url characters of the 66-bit value (HI2, LO). */
static void
s_encode66 (uint64_t hi2, uint64_t lo, char *out)
{
    unsigned __int128 v = ((unsigned __int128) (hi2 & 3) << 64) | lo;
    for (int k = 0; k < 11; k++)
        out[k] = s_b64[(int) ((v >> (60 - 6 * k)) & 63)];
}

static int
s_decode66 (const char *in, uint64_t *hi2, uint64_t *lo)
{
    unsigned __int128 v = 0;
    for (int k = 0; k < 11; k++) {
        int d = s_b64_value (in[k]);
        if (d < 0)
            return -1;
        v = (v << 6) | (unsigned) d;
    }
    *hi2 = (uint64_t) (v >> 64) & 3;
    *lo = (uint64_t) v;
    return 0;
}

static void
s_video_id (uint64_t tag, uint32_t index, char out[12])
{
    uint64_t x = s_perm ((tag << 24) | index);
    s_encode66 (nf_yt_mix (x), x, out); /* the top two bits check the rest */
    out[11] = 0;
}

int
nf_yt_video_decode (const char *id, uint64_t *tag, uint32_t *index)
{
    uint64_t check, x;
    if (!id || strlen (id) != 11 || s_decode66 (id, &check, &x) != 0
        || (nf_yt_mix (x) & 3) != check)
        return -1;
    uint64_t head = s_unperm (x);
    *tag = head >> 24;
    *index = (uint32_t) (head & IDX_MASK);
    return 0;
}

static void
s_channel_id (uint64_t tag, uint32_t index, char out[25])
{
    uint64_t x = s_perm (((tag << 24) | index) ^ UINT64_C (0xC4A77E1C4A77E1));
    uint64_t tail = nf_yt_mix (x);
    memcpy (out, "UC", 2);
    s_encode66 (tail, x, out + 2);
    s_encode66 (0, tail, out + 13);
    out[24] = 0;
}

int
nf_yt_channel_decode (const char *id, uint64_t *tag, uint32_t *index)
{
    uint64_t hi2, x;
    if (!id || strlen (id) != 24 || strncmp (id, "UC", 2) != 0
        || s_decode66 (id + 2, &hi2, &x) != 0)
        return -1;
    uint64_t head = s_unperm (x) ^ UINT64_C (0xC4A77E1C4A77E1);
    char again[25];
    s_channel_id (head >> 24, (uint32_t) (head & IDX_MASK), again);
    if (strcmp (again, id) != 0)
        return -1;
    *tag = head >> 24;
    *index = (uint32_t) (head & IDX_MASK);
    return 0;
}

/* ---- channels ------------------------------------------------------------ */

uint32_t
nf_yt_channel_count (const nf_ytworld_t *w)
{
    int n = w->catalog / 10;
    return (uint32_t) (n < 8 ? 8 : n);
}

static const struct {
    const char *code;
    double p;
} s_countries[] = {{"US", 0.38}, {"GB", 0.12}, {"CA", 0.08}, {"AU", 0.06}, {"NZ", 0.02},
                   {"IN", 0.10}, {"DE", 0.05}, {"BR", 0.05}, {"PH", 0.04}, {NULL, 0.10}};

static const char *const s_channel_suffix[] = {"Academy", "Daily",   "Lab",    "Explained",
                                               "TV",      "Journal", "Club",   "with Sam",
                                               "Studio",  "Notes",   "Weekly", "Corner"};

/* "budget travel" -> "Budget Travel", at most CAP bytes. */
static void
s_title_case (const char *q, char *out, size_t cap)
{
    size_t n = 0;
    bool start = true;
    for (; q && *q && n + 1 < cap; q++) {
        unsigned char c = (unsigned char) *q;
        out[n++] = (char) (start && c < 128 ? toupper (c) : c);
        start = isspace (c);
    }
    out[n] = 0;
}

void
nf_yt_channel (const nf_ytworld_t *w, uint64_t tag, uint32_t index, const char *query,
               nf_ytchannel_t *c)
{
    memset (c, 0, sizeof *c);
    c->tag = tag;
    c->index = index;
    s_channel_id (tag, index, c->id);
    uint64_t k = UINT64_C (1) << 32 | index;
    char name[64];
    s_title_case (query && *query ? query : "Creator", name, 40);
    snprintf (c->title, sizeof c->title, "%s %s", name,
              s_channel_suffix[(int) (s_u (w, tag, k, 1) * 12)]);
    double u = s_u (w, tag, k, 2), acc = 0;
    c->country = NULL;
    for (size_t i = 0; i < sizeof s_countries / sizeof s_countries[0]; i++) {
        acc += s_countries[i].p;
        if (u < acc) {
            c->country = s_countries[i].code;
            break;
        }
    }
    double subs = s_lognormal (w, tag, k, 3, log (40000.0), 1.7);
    c->subscribers = (int64_t) fmin (fmax (subs, 50.0), 8e7);
    c->hidden_subscribers = s_u (w, tag, k, 4) < 0.08;
    c->video_count = 15 + (int64_t) fmin (s_lognormal (w, tag, k, 5, log (120.0), 0.9), 5000.0);
    double avg = (double) c->subscribers * s_lognormal (w, tag, k, 6, log (0.25), 0.7);
    if (avg < 20)
        avg = 20;
    c->view_count = (int64_t) (avg * (double) c->video_count);
}

/* ---- videos -------------------------------------------------------------- */

static const char *const s_titles[] = {
    "I Tried %s for 30 Days (Here's What Happened)",
    "%s: 10 Mistakes Every Beginner Makes",
    "The Truth About %s Nobody Tells You",
    "%s in 2026 \xE2\x80\x94 Complete Guide",
    "Why %s Is Harder Than You Think",
    "%s on a Budget \xF0\x9F\x92\xB8 (Real Numbers)",
    "My Honest %s Routine",
    "%s Explained in 12 Minutes",
    "Stop Doing This in %s \xF0\x9F\x98\xB1",
    "How I Got Started With %s",
    "Caf\xC3\xA9 Talk: %s Q&A \xE2\x98\x95",
    "%s vs Reality \xE2\x80\x94 What \"Experts\" Won't Say",
    "The %s Tier List \xE2\x9C\xA8",
    "%s \xE2\x80\x94 A Beginner's Week, Day by Day",
    "5 %s Habits That Changed Everything",
    "Ranking Every %s Tip I Know",
};

/* Hostile titles: what a spreadsheet or a web page must show as text. */
static const char *const s_hostile[] = {
    "=HYPERLINK(\"http://example.invalid\",\"%s\")",
    "<script>alert('%s')</script> & <b>bold</b>",
    "+cmd|' /C calc'!A0 %s",
    "@SUM(1+1) %s \"quoted\" 'single'",
};

/* TPL with its "%s" replaced by Q, into OUT of CAP bytes. */
static void
s_fill (const char *tpl, const char *q, char *out, size_t cap)
{
    const char *at = strstr (tpl, "%s");
    size_t head = at ? (size_t) (at - tpl) : strlen (tpl);
    snprintf (out, cap, "%.*s%s%s", (int) head, tpl, at ? q : "", at ? at + 2 : "");
}

static const char *const s_langs[] = {"es", "de", "pt-BR", "hi"};

/* The channel of catalog video INDEX (cheap: the uploads scan calls it for
   the whole catalog). */
static uint32_t
s_channel_of (const nf_ytworld_t *w, uint64_t tag, uint32_t index)
{
    uint32_t nch = nf_yt_channel_count (w);
    if (index >= NF_YT_UPLOAD_BASE)
        return ((index - NF_YT_UPLOAD_BASE) / 64) % nch;
    return (uint32_t) (nch * pow (s_u (w, tag, index, 10), 1.6)) % nch;
}

bool
nf_yt_video_exists (const nf_ytworld_t *w, uint32_t index)
{
    if (index < NF_YT_UPLOAD_BASE)
        return index < (uint32_t) w->catalog;
    uint32_t u = index - NF_YT_UPLOAD_BASE;
    return u / 64 < nf_yt_channel_count (w) && u % 64 < NF_YT_UPLOADS;
}

/* An upload only the playlist lists: the channel's K-th newest, one every
   GAP days (2 to 9, the channel's own pace), views about the channel's
   recent typical (its lifetime mean times 0.5 to 1.5), one in twenty a hit. */
static void
s_upload (const nf_ytworld_t *w, uint64_t tag, uint32_t index, const nf_ytchannel_t *c,
          nf_ytvideo_t *v)
{
    uint32_t k = (index - NF_YT_UPLOAD_BASE) % 64;
    uint64_t ck = UINT64_C (1) << 32 | c->index;
    double gap = 2.0 + 7.0 * s_u (w, tag, ck, 40);
    double pace = 0.5 + s_u (w, tag, ck, 41);
    v->published = floor (w->now - 86400.0 * (0.3 + gap * k + 0.5 * s_u (w, tag, index, 42)));
    double views = (double) c->view_count / (double) c->video_count * pace
                   * s_lognormal (w, tag, index, 43, 0.0, 0.6);
    if (s_u (w, tag, index, 44) < 0.05)
        views *= 4.0 + 10.0 * s_u (w, tag, index, 45);
    v->views = views < 10 ? 10 : (int64_t) views;
}

size_t
nf_yt_uploads (const nf_ytworld_t *w, uint64_t tag, uint32_t channel, uint32_t *out, size_t cap)
{
    /* Merge, newest first: the catalog videos of the channel (a scan of
       the catalog's channel numbers) and its playlist-only uploads. */
    size_t n = 0, room = cap;
    uint32_t *all = NULL;
    size_t total = NF_YT_UPLOADS;
    for (uint32_t i = 0; i < (uint32_t) w->catalog; i++)
        total += s_channel_of (w, tag, i) == channel;
    all = malloc (total * sizeof *all);
    double *when = malloc (total * sizeof *when);
    if (!all || !when) {
        free (all);
        free (when);
        return 0;
    }
    for (uint32_t i = 0; i < (uint32_t) w->catalog; i++)
        if (s_channel_of (w, tag, i) == channel)
            all[n++] = i;
    for (uint32_t k = 0; k < NF_YT_UPLOADS; k++)
        all[n++] = NF_YT_UPLOAD_BASE + 64 * channel + k;
    for (size_t i = 0; i < n; i++) {
        nf_ytvideo_t v;
        nf_yt_video (w, tag, all[i], NULL, &v);
        when[i] = v.published;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: a few dozen, newest first */
        for (size_t j = i;
             j > 0 && (when[j] > when[j - 1] || (when[j] == when[j - 1] && all[j] < all[j - 1]));
             j--) {
            double tw = when[j];
            when[j] = when[j - 1];
            when[j - 1] = tw;
            uint32_t ti = all[j];
            all[j] = all[j - 1];
            all[j - 1] = ti;
        }
    for (size_t i = 0; i < n && i < room; i++)
        out[i] = all[i];
    free (all);
    free (when);
    return n;
}

void
nf_yt_video (const nf_ytworld_t *w, uint64_t tag, uint32_t index, const char *query,
             nf_ytvideo_t *v)
{
    memset (v, 0, sizeof *v);
    v->tag = tag;
    v->index = index;
    s_video_id (tag, index, v->id);
    v->channel_index = s_channel_of (w, tag, index);
    nf_ytchannel_t c;
    nf_yt_channel (w, tag, v->channel_index, query, &c);
    memcpy (v->channel_id, c.id, sizeof v->channel_id);

    char q[128];
    s_title_case (query && *query ? query : "This", q, 100);
    double ut = s_u (w, tag, index, 11);
    s_fill (ut < 0.02 ? s_hostile[(int) (ut * 200) % 4]
                      : s_titles[(int) (s_u (w, tag, index, 12) * 16)],
            q, v->title, sizeof v->title);

    double avg = (double) c.view_count / (double) c.video_count;
    double views = avg * s_lognormal (w, tag, index, 13, 0.0, 0.8);
    if (s_u (w, tag, index, 14) < 0.06)
        views *= 5.0 + 55.0 * s_u (w, tag, index, 15); /* a real outlier */
    v->views = views < 10 ? 10 : (int64_t) views;
    v->likes = (int64_t) ((double) v->views * (0.015 + 0.045 * s_u (w, tag, index, 16)));
    v->comments = (int64_t) ((double) v->views * (0.0005 + 0.0035 * s_u (w, tag, index, 17)));
    v->likes_hidden = s_u (w, tag, index, 18) < 0.03;
    v->published = floor (w->now - 86400.0 * (1.0 + 364.0 * s_u (w, tag, index, 19)));
    if (index >= NF_YT_UPLOAD_BASE)
        s_upload (w, tag, index, &c, v);
    if (s_u (w, tag, index, 20) < 0.12)
        v->duration_s = 15 + (int) (44 * s_u (w, tag, index, 21));
    else
        v->duration_s =
            (int) fmin (fmax (s_lognormal (w, tag, index, 22, log (600.0), 0.6), 61), 7200);
    double ul = s_u (w, tag, index, 23);
    if (ul < 0.85) {
        v->caption_lang = "en";
        double ua = s_u (w, tag, index, 24);
        v->audio_lang = ua < 0.20 ? NULL : ua < 0.70 ? "en-US" : ua < 0.85 ? "en-GB" : "en";
    }
    else {
        v->caption_lang = s_langs[(int) ((ul - 0.85) / 0.15 * 4) % 4];
        v->audio_lang = v->caption_lang;
    }
    double uc = s_u (w, tag, index, 25);
    v->captions = uc < 0.12 ? 0 : uc < 0.62 ? 2 : 1;
    double up = s_u (w, tag, index, 26);
    v->is_private = up < 0.01;
    v->unavailable = up >= 0.01 && up < 0.02;
    double uk = s_u (w, tag, index, 27);
    v->transcript_kind = uk < 0.85 ? 0 : uk < 0.95 ? 1 : 2;
    v->markup = s_u (w, tag, index, 28) < 0.10;
}

/* ---- transcripts --------------------------------------------------------- */

static const char *const s_en[] = {
    "so today we are going to talk about %Q and why it matters more than you think",
    "the first thing I noticed was how %A the whole %N felt once I started",
    "if you are new to %Q you probably %V the %N without realising it",
    "here is the %A part that most people skip and it costs them %T dollars",
    "I spent %T weeks testing every %N I could find and the results surprised me",
    "let me show you exactly how I %V my %N step by step",
    "the biggest mistake is trying to %V everything at once instead of one %N a day",
    "what actually worked for me was a %A %N and a lot of patience",
    "a viewer asked whether %Q is worth it in %Y and my honest answer is yes with a catch",
    "you don't need expensive gear to %V a %A %N",
    "notice how the %N changes when you %V it slowly",
    "after %T attempts the %A approach finally clicked",
    "write this down because the %N is where the real progress happens",
    "most guides about %Q leave out the boring but %A details",
    "we will compare the cheap %N with the premium one side by side",
    "by the end of this video you will know how to %V a %N with confidence",
};
static const char *const s_en_n[] = {
    "plan",     "routine", "setup",  "budget",   "schedule", "method", "checklist", "habit",
    "strategy", "tool",    "system", "workflow", "lesson",   "result", "example",   "mistake"};
static const char *const s_en_v[] = {"build",    "track",  "organise", "improve",
                                     "simplify", "test",   "measure",  "repeat",
                                     "prepare",  "adjust", "review",   "finish"};
static const char *const s_en_a[] = {"simple",  "honest",    "practical", "surprising",
                                     "cheap",   "reliable",  "clever",    "boring",
                                     "careful", "realistic", "useful",    "quiet"};
static const char *const s_es[] = {
    "hoy vamos a hablar de %Q y de por qu\xC3\xA9 importa tanto",
    "lo primero que not\xC3\xA9 fue lo %A que era todo el %N",
    "si eres nuevo en %Q seguramente vas a %V el %N sin darte cuenta",
    "despu\xC3\xA9s de %T semanas el m\xC3\xA9todo por fin funcion\xC3\xB3",
};
static const char *const s_es_n[] = {"plan", "sistema", "presupuesto", "horario", "m\xC3\xA9todo"};
static const char *const s_es_v[] = {"organizar", "mejorar", "probar", "repetir"};
static const char *const s_es_a[] = {"sencillo", "honesto", "pr\u00e1ctico", "barato"};

#define N_OF(a) (sizeof (a) / sizeof ((a)[0]))

typedef struct {
    nf_yt_segment_fn *fn;
    void *arg;
    int64_t at_ms;
    bool asr;
} s_emit_t;

/* Split SENTENCE into segments of about 7 words and emit them. */
static void
s_emit_sentence (s_emit_t *e, const char *sentence)
{
    char seg[512];
    size_t n = 0;
    int words = 0;
    for (const char *p = sentence;; p++) {
        bool end = *p == 0;
        if (!end && n + 2 < sizeof seg) {
            char c = *p;
            if (e->asr && (c == ',' || c == '.' || c == '?' || c == '!'))
                continue;
            seg[n++] = e->asr && (unsigned char) c < 128 ? (char) tolower ((unsigned char) c) : c;
        }
        if (*p == ' ')
            words++;
        if (end || (*p == ' ' && words >= 7)) {
            while (n > 0 && seg[n - 1] == ' ')
                n--;
            seg[n] = 0;
            if (n > 0) {
                int64_t dur = 300 * (int64_t) (words + 1) + 400;
                e->fn (e->at_ms, dur, seg, e->arg);
                e->at_ms += dur + 150;
            }
            n = 0;
            words = 0;
        }
        if (end)
            break;
    }
}

void
nf_yt_transcript (const nf_ytworld_t *w, const nf_ytvideo_t *v, const char *query, bool asr,
                  nf_yt_segment_fn *fn, void *arg)
{
    s_emit_t e = {fn, arg, 1200, asr};
    bool es = strcmp (v->caption_lang, "en") != 0;
    int sentences = v->transcript_kind == 2 ? 2 : 40 + (int) (80 * s_u (w, v->tag, v->index, 40));
    const char *q = query && *query ? query : "this";
    for (int i = 0; i < sentences; i++) {
        uint64_t k = (uint64_t) v->index << 12 | (uint64_t) i;
        if (v->transcript_kind == 1 && i % 2 == 1) {
            s_emit_sentence (&e, s_u (w, v->tag, k, 41) < 0.5 ? "[Music]"
                                                              : "um uh um like you know uh");
            continue;
        }
        const char *tpl = es ? s_es[(int) (s_u (w, v->tag, k, 42) * N_OF (s_es))]
                             : s_en[(int) (s_u (w, v->tag, k, 42) * N_OF (s_en))];
        char out[512];
        size_t n = 0;
        for (const char *p = tpl; *p && n + 64 < sizeof out; p++) {
            if (*p != '%' || !p[1]) {
                out[n++] = *p;
                continue;
            }
            p++;
            double u = s_u (w, v->tag, k, 43 + (uint64_t) (p - tpl));
            const char *word = "";
            char num[24];
            switch (*p) {
            case 'Q': word = q; break;
            case 'N':
                word = es ? s_es_n[(int) (u * N_OF (s_es_n))] : s_en_n[(int) (u * N_OF (s_en_n))];
                break;
            case 'V':
                word = es ? s_es_v[(int) (u * N_OF (s_es_v))] : s_en_v[(int) (u * N_OF (s_en_v))];
                break;
            case 'A':
                word = es ? s_es_a[(int) (u * N_OF (s_es_a))] : s_en_a[(int) (u * N_OF (s_en_a))];
                break;
            case 'T':
                snprintf (num, sizeof num, "%d", 2 + (int) (u * 40));
                word = num;
                break;
            case 'Y': word = "2026"; break;
            default: break;
            }
            size_t wl = strlen (word);
            if (wl > sizeof out - n - 64)
                wl = sizeof out - n - 64;
            memcpy (out + n, word, wl);
            n += wl;
        }
        out[n++] = asr ? ' ' : '.';
        out[n] = 0;
        if (!asr && out[0] >= 'a' && out[0] <= 'z')
            out[0] = (char) (out[0] - 32);
        s_emit_sentence (&e, out);
    }
}

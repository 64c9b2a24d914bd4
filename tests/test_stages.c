/*  Unit tests of the stage computations (workers/<stage>/nf_<stage>.c) with golden
    inputs and hand-computed outputs: the sanitizer's cleaning and quality
    score, the geo rule, and the analyst's composite score and ranking. */
#include "nf_ai.h"
#include "nf_analyze.h"
#include "nf_export.h"
#include "nf_geo.h"
#include "nf_http.h"
#include "nf_llm.h"
#include "nf_sanitize.h"
#include "nf_template.h"
#include "nf_test.h"
#include "nf_util.h"
#include "nf_youtube.h"
#include "nf_ytdata.h"

#include <string.h>

#include <math.h>
#include <stdlib.h>

/* ---- sanitizer ---------------------------------------------------------- */

static void
test_sanitize_golden (void)
{
    const char *in =
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:03.000\n<c>so today</c> we are going to\n\n"
        "2\n00:00:03.000 --> 00:00:05.000\nwe are going to talk about "
        "&amp;#39;budget&amp;#39; travel [Music]\n\n[00:06] um the the best hostels "
        "in Lisbon (applause)\n\xe2\x99\xaa \xe2\x99\xaa\n>> and uh how to pack light "
        "light light\n";
    nf_sanitized_t s;
    CHECK_INT (nf_sanitize (in, strlen (in), 100000, &s), 0);
    CHECK_STR (s.text, "so today we are going to talk about 'budget' travel the the best hostels "
                       "in Lisbon and how to pack light");
    CHECK_INT (s.words, 21);
    CHECK_INT (s.unique_words, 19); /* "the" twice, "to" twice */
    CHECK_INT (s.real_words, 21);
    CHECK (!s.truncated);
    CHECK (s.noise_bytes > 0);
    CHECK_NEAR (s.quality, nf_quality_score (21, 19, 21, s.noise_bytes, strlen (s.text)), 1e-9);
    nf_sanitized_free (&s);

    /* Auto-caption rolling repeats: each line repeats the end of the previous one. */
    const char *rolling = "how to travel\nhow to travel cheaply in\ntravel cheaply in europe this\n"
                          "in europe this summer\n";
    CHECK_INT (nf_sanitize (rolling, strlen (rolling), 100000, &s), 0);
    CHECK_STR (s.text, "how to travel cheaply in europe this summer");
    nf_sanitized_free (&s);

    /* Phrases said twice collapse; "very very" stays; entities and NFKC. */
    const char *rep = "buy now buy now buy now it is very very good &lt;b&gt;ok&lt;/b&gt; "
                      "\xef\xbc\xa6\xef\xbd\x95\xef\xbd\x8c\xef\xbd\x8c caf&#xE9; &#0; &bogus;";
    CHECK_INT (nf_sanitize (rep, strlen (rep), 100000, &s), 0);
    CHECK_STR (s.text, "buy now it is very very good ok Full caf\xc3\xa9 \xef\xbf\xbd &bogus;");
    nf_sanitized_free (&s);
}

static void
test_sanitize_hostile (void)
{
    nf_sanitized_t s;
    /* Invalid UTF-8, NULs, control characters: repaired, never a crash. */
    const char bad[] = "ok \xff\xfe bad \xc3 \x00 nul \x01\x02 ctl \xed\xa0\x80 surrogate";
    CHECK_INT (nf_sanitize (bad, sizeof bad - 1, 100000, &s), 0);
    CHECK (nf_utf8_valid (s.text, strlen (s.text)));
    CHECK (strstr (s.text, "surrogate") != NULL);
    nf_sanitized_free (&s);

    /* Empty and NULL input: empty text, quality 0. */
    CHECK_INT (nf_sanitize ("", 0, 100, &s), 0);
    CHECK_STR (s.text, "");
    CHECK_NEAR (s.quality, 0.0, 0);
    nf_sanitized_free (&s);
    CHECK_INT (nf_sanitize (NULL, 5, 100, &s), 0);
    CHECK_STR (s.text, "");
    nf_sanitized_free (&s);

    /* The cap cuts at a character boundary (é is 2 bytes: 1023 is mid-character). */
    size_t big = 1 << 20;
    char *huge = malloc (big);
    for (size_t i = 0; i < big; i += 2)
        memcpy (huge + i, "\xc3\xa9", 2);
    CHECK_INT (nf_sanitize (huge, big, 1023, &s), 0);
    CHECK (s.truncated);
    CHECK_INT (s.input_bytes, 1022);
    CHECK (nf_utf8_valid (s.text, strlen (s.text)));
    nf_sanitized_free (&s);
    free (huge);

    /* Random bytes: always valid UTF-8 out, quality within 0..100. */
    unsigned seed = 7;
    char buf[4096];
    int bad_rounds = 0;
    for (int round = 0; round < 300; round++) {
        size_t n = (size_t) (rand_r (&seed) % (int) sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char) (rand_r (&seed) & 0xff);
        if (nf_sanitize (buf, n, sizeof buf, &s) != 0 || !nf_utf8_valid (s.text, strlen (s.text))
            || s.quality < 0 || s.quality > 100)
            bad_rounds++;
        nf_sanitized_free (&s);
    }
    CHECK_INT (bad_rounds, 0);
}

/* Compare nf_sanitize on IN with and without its ASCII fast paths. */
static void
s_sanitize_both_ways (const char *in, size_t len)
{
    nf_sanitized_t fast, slow;
    nf_sanitize_ascii_fast = true;
    CHECK_INT (nf_sanitize (in, len, 1 << 20, &fast), 0);
    nf_sanitize_ascii_fast = false;
    CHECK_INT (nf_sanitize (in, len, 1 << 20, &slow), 0);
    nf_sanitize_ascii_fast = true;
    CHECK_STR (fast.text, slow.text);
    CHECK_INT (fast.words, slow.words);
    CHECK_INT (fast.unique_words, slow.unique_words);
    CHECK_INT (fast.real_words, slow.real_words);
    CHECK_INT (fast.noise_bytes, slow.noise_bytes);
    CHECK_NEAR (fast.quality, slow.quality, 0);
    nf_sanitized_free (&fast);
    nf_sanitized_free (&slow);
}

static void
s_append_segment (int64_t start_ms, int64_t dur_ms, const char *text, void *arg)
{
    (void) dur_ms;
    nf_buf_printf ((nf_buf_t *) arg, "[%lld:%02lld] %s\n", (long long) (start_ms / 60000),
                   (long long) (start_ms / 1000 % 60), text);
}

/* The ASCII fast paths (tokens' keys, NFKC and control characters, real
   words) give what utf8proc gives: every ASCII byte in every position of
   a token, random ASCII lines with markup, entities, cues and fillers, and
   the simulator's transcripts (clean, noisy, auto-generated, several
   languages). */
static void
test_sanitize_ascii_fast (void)
{
    nf_buf_t b;
    nf_buf_init (&b);
    for (int c = 1; c < 128; c++) {
        nf_buf_reset (&b);
        nf_buf_printf (&b, "%cWord%cwoRD%c x%c %c%c Um%c uh %cA1%c 00:0%c", c, c, c, c, c, c, c, c,
                       c, c);
        s_sanitize_both_ways (b.data, b.len);
    }
    static const char *const parts[] = {"the ",
                                        "The ",
                                        "UM ",
                                        "uh, ",
                                        "Hmm... ",
                                        "&amp;",
                                        "&#39;",
                                        "&lt;b&gt;",
                                        "<i>",
                                        "</i>",
                                        "[Music] ",
                                        "(laughs) ",
                                        ">> ",
                                        "00:01 ",
                                        "1:02:03.5 ",
                                        "-->",
                                        "\t",
                                        "\r",
                                        "\x01",
                                        "\x7f",
                                        "don't ",
                                        "well-known ",
                                        "3.5% ",
                                        "A1B2 ",
                                        "x ",
                                        "zzz ",
                                        "\"quoted\" ",
                                        "so so so ",
                                        "buy now buy now ",
                                        "\n",
                                        "\n",
                                        "(applause)",
                                        "[",
                                        "]",
                                        "(",
                                        "...",
                                        "!!! "};
    uint64_t r = 12345;
    for (int line = 0; line < 300; line++) {
        nf_buf_reset (&b);
        for (int k = 0; k < 40; k++) {
            r = nf_yt_mix (r);
            if (r % 7 == 0)
                nf_buf_printf (&b, "%c", (char) (1 + (r >> 8) % 127));
            else
                nf_buf_puts (&b, parts[(r >> 8) % (sizeof parts / sizeof parts[0])]);
        }
        s_sanitize_both_ways (b.data, b.len);
    }
    nf_ytworld_t w = {.seed = 3, .catalog = 200, .now = 1.8e9};
    const char *queries[] = {"budget travel", "receitas faceis", "kochen lernen", "ramen"};
    for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
        uint64_t tag = nf_yt_query_tag (&w, queries[q]);
        for (uint32_t i = 0; i < 25; i++) {
            nf_ytvideo_t v;
            nf_yt_video (&w, tag, i, queries[q], &v);
            for (int asr = 0; asr < 2; asr++) {
                nf_buf_reset (&b);
                nf_yt_transcript (&w, &v, queries[q], asr, s_append_segment, &b);
                s_sanitize_both_ways (b.data ? b.data : "", b.len);
            }
        }
    }
    nf_buf_free (&b);
}

static void
test_quality (void)
{
    /* Hand-computed: L = 75/300 = 0.25, sqrt 0.5; D = 30/sqrt(75)/6 = 0.57735;
       W = 60/75 = 0.8; C = 1 - 200/500 = 0.6;
       100 x 0.5 x (0.35 x 0.57735 + 0.45 x 0.8 + 0.2 x 0.6) = 34.10 */
    CHECK_NEAR (nf_quality_score (75, 30, 60, 100, 400), 34.1, 1e-9);
    CHECK_NEAR (nf_quality_score (300, 120, 300, 0, 1000), 100.0, 1e-9);
    CHECK_NEAR (nf_quality_score (0, 0, 0, 10, 0), 0.0, 0);
    CHECK_NEAR (nf_quality_score (12, 12, 12, 0, 60), 17.0, 1e-9);

    /* A real transcript of ~400 distinct-ish words passes 50; spam does not. */
    nf_buf_t good, spam;
    nf_buf_init (&good);
    nf_buf_init (&spam);
    const char *words[] = {"travel", "budget", "hostel", "train", "ticket",  "city",  "museum",
                           "street", "food",   "market", "night", "morning", "beach", "river",
                           "bridge", "castle", "walk",   "bus",   "map",     "coffee"};
    for (int i = 0; i < 400; i++)
        nf_buf_printf (&good, "%s %s ", words[i % 20], words[(i * 7 + 3) % 20]);
    for (int i = 0; i < 400; i++)
        nf_buf_puts (&spam, "[Music] um uh subscribe ");
    nf_sanitized_t s;
    nf_sanitize (good.data, good.len, 100000, &s);
    CHECK (s.quality >= 50);
    nf_sanitized_free (&s);
    nf_sanitize (spam.data, spam.len, 100000, &s);
    CHECK (s.quality < 50);
    CHECK_STR (s.text, "subscribe");
    nf_sanitized_free (&s);
    nf_buf_free (&good);
    nf_buf_free (&spam);
}

/* ---- geo ------------------------------------------------------------------ */

static const char *
s_geo (const nf_tier1_t *set, const char *country, const char *audio, const char *lang,
       char *country_out)
{
    nf_geo_result_t g;
    nf_geo_check (set, country, country ? strlen (country) : 0, audio, audio ? strlen (audio) : 0,
                  lang, lang ? strlen (lang) : 0, &g);
    strcpy (country_out, g.country);
    return g.verdict == NF_GEO_PASS ? g.source : nf_geo_reason (g.verdict);
}

static void
test_geo (void)
{
    nf_tier1_t set, ext;
    char err[256], cc[3];
    CHECK_INT (nf_tier1_parse ("default", &set, err, sizeof err), 0);
    CHECK_INT (set.n, 5);
    CHECK_INT (nf_tier1_parse ("extended", &ext, err, sizeof err), 0);
    CHECK_INT (ext.n, 17);
    CHECK (nf_tier1_has (&ext, "LU") && nf_tier1_has (&ext, "NZ") && !nf_tier1_has (&ext, "PL"));
    CHECK_INT (nf_tier1_parse ("extended, pl,uk", &ext, err, sizeof err), 0);
    CHECK_INT (ext.n, 18); /* uk is GB, already there */
    CHECK_INT (nf_tier1_parse ("US,USA", &ext, err, sizeof err), -1);
    CHECK (strstr (err, "'USA'") != NULL);
    CHECK_INT (nf_tier1_parse (" , ", &ext, err, sizeof err), -1);

    CHECK_STR (s_geo (&set, "US", NULL, NULL, cc), "channel");
    CHECK_STR (cc, "US");
    CHECK_STR (s_geo (&set, " gb ", NULL, NULL, cc), "channel");
    CHECK_STR (s_geo (&set, "UK", NULL, NULL, cc), "channel");
    CHECK_STR (cc, "GB");
    CHECK_STR (s_geo (&set, "DE", "en-US", NULL, cc), "not_tier1"); /* country wins */
    CHECK_STR (cc, "DE");
    CHECK_STR (s_geo (&set, NULL, "en-AU", NULL, cc), "language");
    CHECK_STR (cc, "AU");
    CHECK_STR (s_geo (&set, "", "en_nz", NULL, cc), "language");
    CHECK_STR (s_geo (&set, NULL, NULL, "en-CA", cc), "language");     /* default language */
    CHECK_STR (s_geo (&set, NULL, "en", NULL, cc), "unknown_country"); /* no region */
    CHECK_STR (s_geo (&set, NULL, "en-IN", NULL, cc), "unknown_country");
    CHECK_STR (s_geo (&set, NULL, "fr-CA", NULL, cc), "unknown_country");
    CHECK_STR (s_geo (&set, "Narnia", NULL, NULL, cc), "unknown_country");
    CHECK_STR (s_geo (&set, NULL, NULL, NULL, cc), "unknown_country");
    CHECK_STR (cc, "");
}

/* ---- analyst -------------------------------------------------------------- */

static nf_candidate_t
s_cand (const char *id, double views, double ch_views, double ch_videos, double subs, double age,
        double likes, double comments)
{
    nf_candidate_t c;
    memset (&c, 0, sizeof c);
    c.video_id = id;
    c.views = views;
    c.has_channel = ch_views >= 0;
    c.channel_views = ch_views;
    c.channel_videos = ch_videos;
    c.has_subscribers = subs >= 0;
    c.subscribers = subs;
    c.age_days = age;
    c.has_likes = likes >= 0;
    c.likes = likes;
    c.has_comments = comments >= 0;
    c.comments = comments;
    return c;
}

static nf_analyze_opts_t
s_opts (void)
{
    nf_analyze_opts_t o;
    memset (&o, 0, sizeof o);
    char err[128];
    nf_weights_parse ("0.40,0.20,0.25,0.15", o.weights, err, sizeof err);
    return o;
}

/* The baseline (issue 25), by hand. Video V has 1,000 views; its channel's
   uploads, newest first (days old, views, seconds long):
     V itself     20  1000  600   the video: left out
     u1            2   900  600   younger than the 7-day maturity: left out
     u2            8   400   45   a Short: left out
     u3           10   300  600
     u4           12   100  600
     u5           15   hidden 600 views hidden: left out
     u6           20   500  900
     u7           30   200  700
     u8           40   700  800
   Left: u3 300, u4 100, u6 500, u7 200, u8 700 (5, the minimum): sorted
   100 200 300 500 700, median 300, outlier_x = 1000 / 300 = 3.3333.
   With max_uploads 4 (and min_uploads 4) the newest four count: 300 100
   500 200, median (200 + 300) / 2 = 250, 4x. With min_uploads 6: too few, the lifetime
   mean (channel 50,000 views / 100 videos = 500): 2x. */
static void
test_baseline_golden (void)
{
    const nf_upload_t u[] = {
        {"V", 1000, 20, 600}, {"u1", 900, 2, 600},  {"u2", 400, 8, 45},
        {"u3", 300, 10, 600}, {"u4", 100, 12, 600}, {"u5", -1, 15, 600},
        {"u6", 500, 20, 900}, {"u7", 200, 30, 700}, {"u8", 700, 40, 800},
    };
    nf_baseline_opts_t o = {30, 5, 7, 180};
    nf_candidate_t v = s_cand ("V", 1000, 50000, 100, 1000, 20, 10, 0);
    nf_baseline (&v, u, 9, &o);
    CHECK_INT (v.baseline_source, NF_BASE_RECENT_MEDIAN);
    CHECK_INT (v.baseline_n, 5);
    CHECK_NEAR (v.baseline, 300, 1e-9);
    nf_analyze_opts_t ao = s_opts ();
    nf_analyze (&v, 1, &ao, NULL);
    CHECK_NEAR (v.value[NF_C_MULTIPLIER], 1000.0 / 300.0, 1e-9);
    o.max_uploads = 4;
    o.min_uploads = 4;
    nf_baseline (&v, u, 9, &o);
    CHECK_INT (v.baseline_n, 4);
    CHECK_NEAR (v.baseline, 250, 1e-9);
    o.max_uploads = 30;
    o.min_uploads = 6;
    nf_baseline (&v, u, 9, &o);
    CHECK_INT (v.baseline_source, NF_BASE_NONE); /* too few: nf_analyze falls back */
    nf_analyze (&v, 1, &ao, NULL);
    CHECK_INT (v.baseline_source, NF_BASE_LIFETIME_MEAN);
    CHECK_NEAR (v.baseline, 500, 1e-9);
    CHECK_NEAR (v.value[NF_C_MULTIPLIER], 2.0, 1e-9);
    /* no uploads and no channel totals: no baseline, the component skipped */
    nf_candidate_t w = s_cand ("W", 1000, -1, -1, 1000, 20, 10, 0);
    nf_baseline (&w, NULL, 0, &o);
    nf_analyze (&w, 1, &ao, NULL);
    CHECK (!w.has[NF_C_MULTIPLIER]);
    /* a maturity of 0 keeps u1; zero-view uploads make a median of 0: the lifetime mean */
    o.min_uploads = 1;
    o.maturity_days = 0;
    const nf_upload_t zeros[] = {{"z1", 0, 10, 600}, {"z2", 0, 11, 600}};
    nf_baseline (&v, zeros, 2, &o);
    CHECK_INT (v.baseline_source, NF_BASE_NONE);
    nf_baseline (&v, u, 2, &o);
    CHECK_INT (v.baseline_n, 1);
    CHECK_NEAR (v.baseline, 900, 1e-9);
}

static void
test_analyze_golden (void)
{
    /* Worked by hand (see workers/README.md):
         A: mult 1000/1000 = 1, vps 1000/1000 = 1, vel 1000/10 = 100, eng 60/1000 = 0.06
         B: mult 5, vps 0.5, vel 100, eng 0.02
         C: mult 200/100 = 2, subscribers hidden, vel 200/max(0.5,1) = 200, eng 0.1
         D: zero views: mult 0, vps 0, vel 0, eng 0
       Percentiles: mult D0 A1/3 C2/3 B1; vps (3 have it) D0 B.5 A1;
       vel D0 A,B tied (1 + 1/2)/3 = .5, C1; eng D0 B1/3 A2/3 C1.
         A = .4/3 + .2 + .25 x .5 + .15 x 2/3      = 55.8333
         B = .4 + .2 x .5 + .25 x .5 + .15/3       = 67.5
         C = (.4 x 2/3 + .25 + .15) / .8           = 83.3333 (weights renormalized)
         D = 0 */
    nf_candidate_t c[4] = {
        s_cand ("A", 1000, 100000, 100, 1000, 10, 50, 10),
        s_cand ("B", 5000, 100000, 100, 10000, 50, 100, 0),
        s_cand ("C", 200, 10000, 100, -1, 0.5, 20, -1),
        s_cand ("D", 0, 100000, 100, 500, 5, 0, 0),
    };
    nf_analyze_opts_t o = s_opts ();
    size_t order[4];
    CHECK_INT (nf_analyze (c, 4, &o, order), 4);
    CHECK_NEAR (c[0].composite, 55.8333, 1e-4);
    CHECK_NEAR (c[1].composite, 67.5, 1e-9);
    CHECK_NEAR (c[2].composite, 83.3333, 1e-4);
    CHECK_NEAR (c[3].composite, 0.0, 1e-9);
    CHECK (!c[2].has[NF_C_VIEWS_PER_SUB]);
    CHECK_NEAR (c[0].pct[NF_C_VELOCITY], 0.5, 1e-12);
    CHECK_NEAR (c[1].pct[NF_C_VELOCITY], 0.5, 1e-12);
    CHECK_NEAR (c[0].value[NF_C_ENGAGEMENT], 0.06, 1e-12);
    CHECK_INT (c[2].rank, 1);
    CHECK_INT (c[1].rank, 2);
    CHECK_INT (c[0].rank, 3);
    CHECK_INT (c[3].rank, 4);
    CHECK_INT (order[0], 2);
    CHECK_INT (order[3], 3);
}

static void
test_analyze_ties_and_missing (void)
{
    /* E, F, G have equal components (so equal composites): more views first
       (F), then video id ascending (G "a" before E "e"). */
    nf_candidate_t c[3] = {
        s_cand ("e", 2000, 100000, 100, 1000, 20, 100, -1),
        s_cand ("f", 4000, 200000, 100, 2000, 40, 200, -1),
        s_cand ("a", 2000, 100000, 100, 1000, 20, 100, -1),
    };
    nf_analyze_opts_t o = s_opts ();
    size_t order[3];
    nf_analyze (c, 3, &o, order);
    CHECK_NEAR (c[0].composite, c[1].composite, 0);
    CHECK_NEAR (c[0].composite, 50.0, 1e-9); /* every percentile is 0.5 */
    CHECK_INT (order[0], 1);
    CHECK_INT (order[1], 2);
    CHECK_INT (order[2], 0);

    /* Missing channel statistics, hidden subscribers, unknown date, hidden
       likes and comments: only the present components count. */
    nf_candidate_t m[2] = {
        s_cand ("x", 100, -1, 0, -1, -1, -1, -1), /* nothing but views */
        s_cand ("y", 50, -1, 0, -1, 3, -1, -1),   /* velocity only */
    };
    nf_analyze (m, 2, &o, NULL);
    CHECK_NEAR (m[0].composite, 0.0, 0);      /* no component at all */
    CHECK_NEAR (m[1].composite, 100.0, 1e-9); /* the only one with velocity */
    CHECK_INT (m[1].rank, 1);
    CHECK_INT (m[0].rank, 2);

    /* One candidate: every present percentile is 1. */
    nf_candidate_t one = s_cand ("solo", 10, 1000, 10, 100, 2, 1, 1);
    nf_analyze (&one, 1, &o, NULL);
    CHECK_NEAR (one.composite, 100.0, 1e-9);
}

static void
test_analyze_filters (void)
{
    nf_candidate_t c[4] = {
        s_cand ("low", 50, 1000, 10, 100, 2, 1, 1),
        s_cand ("old", 5000, 1000, 10, 100, 400, 1, 1),
        s_cand ("short", 5000, 1000, 10, 100, 2, 1, 1),
        s_cand ("ok", 5000, 1000, 10, 100, 2, 1, 1),
    };
    c[2].is_short = true;
    nf_analyze_opts_t o = s_opts ();
    o.min_views = 100;
    o.max_age_days = 365;
    o.format = NF_FORMAT_LONG;
    size_t order[4];
    CHECK_INT (nf_analyze (c, 4, &o, order), 1);
    CHECK_STR (c[0].filtered, "below_min_views");
    CHECK_STR (c[1].filtered, "too_old");
    CHECK_STR (c[2].filtered, "format_excluded");
    CHECK (c[3].filtered == NULL);
    CHECK_INT (c[3].rank, 1);
    CHECK_INT (c[0].rank, 0);
    CHECK_INT (order[0], 3);
    o.format = NF_FORMAT_SHORT;
    o.min_views = 0;
    o.max_age_days = 0;
    CHECK_INT (nf_analyze (c, 4, &o, NULL), 1);
    CHECK_INT (c[2].rank, 1);

    /* An all-rejected job: nothing ranked. */
    o.min_views = 1000000;
    CHECK_INT (nf_analyze (c, 4, &o, order), 0);
    CHECK_INT (nf_analyze (c, 0, &o, order), 0);

    char err[160];
    double w[4];
    CHECK_INT (nf_weights_parse ("1,0,0,0", w, err, sizeof err), 0);
    CHECK_INT (nf_weights_parse ("0,0,0,0", w, err, sizeof err), -1);
    CHECK_INT (nf_weights_parse ("0.4,0.2,0.25", w, err, sizeof err), -1);
    CHECK_INT (nf_weights_parse ("0.4,-0.2,0.25,1", w, err, sizeof err), -1);
    CHECK (strstr (err, "views_per_sub") != NULL);
    CHECK_INT (nf_weights_parse ("0.4,0.2,0.25,0.15,9", w, err, sizeof err), -1);
}

static void
test_time_parse (void)
{
    double t;
    CHECK_INT (nf_time_parse ("2026-11-21T00:00:00Z", 20, &t), 0);
    CHECK_NEAR (t, 1795219200.0, 0);
    CHECK_INT (nf_time_parse ("2026-11-21", 10, &t), 0);
    CHECK_NEAR (t, 1795219200.0, 0);
    const char *pg = "2026-11-21T01:30:00.5+01:30";
    CHECK_INT (nf_time_parse (pg, strlen (pg), &t), 0);
    CHECK_NEAR (t, 1795219200.5, 1e-6);
    CHECK_INT (nf_time_parse ("2026-02-30", 10, &t), NF_ERR_INVALID);
    CHECK_INT (nf_time_parse ("2026-1-21", 9, &t), NF_ERR_INVALID);
    CHECK_INT (nf_time_parse ("2026-11-21T10:00", 16, &t), NF_ERR_INVALID);
    CHECK_INT (nf_time_parse ("2026-11-21Tjunk", 15, &t), NF_ERR_INVALID);
}

/* ---- architect ------------------------------------------------------------ */

static nf_ai_input_t
s_ai_input (void)
{
    nf_ai_input_t in;
    memset (&in, 0, sizeof in);
    in.video_id = "dQw4w9WgXcQ";
    in.niche = "budget travel";
    in.sub_niche = "solo female backpacking";
    in.title = "How I Backpacked Portugal for $30 a Day";
    in.channel = "Nomad Nina";
    in.transcript = "night trains save money. night trains are cheap and hostel dorms are cheap. "
                    "book hostel dorms early and take night trains. hostel dorms in lisbon cost "
                    "little";
    in.views = 184000;
    in.multiplier = 6.4;
    in.has_multiplier = true;
    in.channel_avg = 28750;
    in.has_channel_avg = true;
    in.velocity = 6133;
    in.has_velocity = true;
    in.age_days = 30;
    in.has_age = true;
    in.engagement = 0.052;
    in.has_engagement = true;
    in.pct_multiplier = 1.0;
    in.pct_velocity = 0.8;
    in.pct_engagement = 0.7;
    in.rank = 1;
    return in;
}

/* Key phrases leave out the stop words (looked up in a sorted copy of the
   list since 2026-12-03), whatever their place in the list or the text. */
static void
test_key_phrases_stop_words (void)
{
    const char *text = "The hostel dorms and the night trains. Hostel dorms, and then the night "
                       "trains: themselves, yourself, times, because, zzz hostel dorms.";
    char *kp[8];
    size_t n = nf_ai_key_phrases (text, kp, 8);
    CHECK (n >= 2);
    CHECK_STR (kp[0], "hostel dorms");
    CHECK_STR (kp[1], "night trains");
    for (size_t i = 0; i < n; i++) {
        CHECK (strcmp (kp[i], "the") != 0 && strcmp (kp[i], "and") != 0);
        CHECK (strcmp (kp[i], "themselves") != 0 && strcmp (kp[i], "yourself") != 0);
        CHECK (strcmp (kp[i], "times") != 0 && strcmp (kp[i], "because") != 0);
        CHECK (strcmp (kp[i], "then") != 0);
        free (kp[i]);
    }
}

static void
test_generator_golden (void)
{
    nf_ai_input_t in = s_ai_input ();
    nf_ai_t ai;
    nf_ai_generate (&in, &ai);
    CHECK_STR (ai.titles[0], "Budget Travel: What Nobody Tells You About Hostel Dorms");
    CHECK_STR (ai.titles[1], "I Tried Hostel Dorms So You Don't Have To");
    CHECK_STR (ai.titles[2], "7 Mistakes Budget Travel People Make With Hostel Dorms");
    CHECK_STR (ai.titles[3], "Hostel Dorms vs Night Trains: Which One Actually Works?");
    CHECK_STR (ai.titles[4], "The Budget Travel Guide to Night Trains I Wish I Had Sooner");
    /* the hook quotes the transcript's own opening sentence */
    CHECK_STR (ai.hook, "It opened with \"night trains save money\" and earned 6.4x its "
                        "channel's usual views. Open yours on hostel dorms in the first five "
                        "seconds.");
    CHECK (strstr (in.transcript, "night trains save money") == in.transcript);
    CHECK_INT (nf_ai_sentences (ai.hook), 2);
    /* the outline follows the transcript's fifths, each by its own key phrase */
    CHECK_STR (ai.outline[1], "Next night trains, as the original's second fifth covers it, with "
                              "your own example.");
    CHECK_STR (ai.outline[3], "Move on to hostel dorms, as the original's fourth fifth covers "
                              "it, with your own example.");
    CHECK_STR (ai.thumbnail, "An over-the-shoulder shot of the work; night trains shown big and "
                             "simple; the 2-4 word caption \"HOSTEL DORMS\" in bold white on a "
                             "yellow background; nothing else in frame.");
    /* The job's outliers (ranks 1..10) take frames no other outlier takes,
       and every article agrees with its word. */
    int seen[3][64];
    memset (seen, 0, sizeof seen);
    for (int r = 1; r <= 10; r++) {
        nf_ai_input_t one = s_ai_input ();
        one.rank = r;
        nf_ai_t x;
        nf_ai_generate (&one, &x);
        for (int t = 0; t < NF_AI_TITLES; t++)
            CHECK_INT (seen[0][x.frames[t]]++, 0);
        CHECK_INT (seen[1][x.frames[NF_AI_TITLES]]++, 0);
        CHECK_INT (seen[2][x.frames[NF_AI_TITLES + 1]]++, 0);
        CHECK (strstr (x.thumbnail, " a electric") == NULL
               && strstr (x.thumbnail, " a orange") == NULL
               && strstr (x.thumbnail, " a amber") == NULL
               && strstr (x.thumbnail, " a ocean") == NULL);
        CHECK (strstr (x.hook, "\"night trains save money\"") != NULL || !*one.transcript);
        CHECK (strstr (x.titles[0], "1 Mistakes") == NULL);
        nf_ai_free (&x);
    }
    CHECK_STR (ai.why, "It reached 184K views, 6.4x the 29K views an average video of Nomad Nina "
                       "gets, at 6133 views a day over 30 days. That is the highest multiplier of "
                       "the budget travel videos we ranked: the audience came from well beyond "
                       "the channel's own subscribers. 5.2% of viewers liked or commented (high "
                       "for the niche), and the transcript keeps returning to \"hostel dorms\" "
                       "and \"night trains\": one concrete promise, paid off on screen.");
    nf_ai_free (&ai);

    /* No transcript, no metrics: the title's words fill in, nothing is empty. */
    nf_ai_input_t bare;
    memset (&bare, 0, sizeof bare);
    bare.video_id = "x";
    bare.niche = "chess";
    bare.title = "Opening traps";
    bare.pct_multiplier = bare.pct_velocity = bare.pct_engagement = -1;
    nf_ai_generate (&bare, &ai);
    for (int i = 0; i < NF_AI_TITLES; i++)
        CHECK (ai.titles[i] && *ai.titles[i]);
    CHECK (strstr (ai.titles[1], "Opening") || strstr (ai.titles[1], "Traps"));
    CHECK (nf_ai_sentences (ai.hook) <= 2);
    CHECK (ai.why && strstr (ai.why, "It reached 0 views") == ai.why);
    nf_ai_free (&ai);

    CHECK_INT (nf_ai_sentences ("One. Two! Three?"), 3);
    CHECK_INT (nf_ai_sentences ("It costs 3.5 euros... really"), 2);
    CHECK_INT (nf_ai_sentences ("no end"), 1);
    CHECK_INT (nf_ai_sentences (""), 0);
}

static void
test_llm_helpers (void)
{
    nf_ai_input_t in = s_ai_input ();
    nf_buf_t b;
    nf_buf_init (&b);
    char err[512];
    CHECK_INT (nf_llm_render ("{{title}} | {{ multiplier }} | {{engagement}} | {{transcript}}", &in,
                              20, &b, err, sizeof err),
               0);
    CHECK_STR (b.data,
               "How I Backpacked Portugal for $30 a Day | 6.40x | 5.20% | night trains save [...]");
    nf_buf_reset (&b);
    CHECK_INT (nf_llm_render ("{{subscribers}}", &in, 20, &b, err, sizeof err), 0);
    CHECK_STR (b.data, "unknown");
    CHECK_INT (nf_llm_render ("x {{nope}} y", &in, 20, &b, err, sizeof err), -1);
    CHECK (strstr (err, "{{nope}}") != NULL);
    CHECK_INT (nf_llm_render ("x {{title", &in, 20, &b, err, sizeof err), -1);
    nf_buf_free (&b);

    const char *good =
        "{\"choices\":[{\"message\":{\"content\":\"{\\\"titles\\\":[\\\"a\\\",\\\"b\\\","
        "\\\"c\\\",\\\"d\\\",\\\"e\\\",\\\"f\\\"],\\\"hook\\\":\\\"Go. Now!\\\","
        "\\\"outline\\\":[\\\"1\\\",\\\"2\\\",\\\"3\\\",\\\"4\\\",\\\"5\\\"],"
        "\\\"thumbnail\\\":\\\"t\\\",\\\"why\\\":\\\"w\\\"}\"}}],"
        "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":20,\"total_tokens\":120}}";
    nf_ai_t ai;
    int64_t tokens = 5;
    CHECK_INT (nf_llm_parse (good, strlen (good), &ai, &tokens, err, sizeof err), 0);
    CHECK_INT (tokens, 125);
    CHECK_STR (ai.titles[4], "e"); /* a sixth title is dropped */
    CHECK_STR (ai.hook, "Go. Now!");
    nf_ai_free (&ai);
    const char *bad = "{\"choices\":[{\"message\":{\"content\":\"{\\\"titles\\\":[\\\"a\\\"],"
                      "\\\"hook\\\":\\\"One. Two. Three.\\\",\\\"outline\\\":[\\\"1\\\",\\\"2\\\","
                      "\\\"3\\\",\\\"4\\\",\\\"5\\\"],\\\"thumbnail\\\":\\\"\\\"}\"}}]}";
    CHECK_INT (nf_llm_parse (bad, strlen (bad), &ai, &tokens, err, sizeof err), -1);
    CHECK (strstr (err, "'titles' must be an array of 5") != NULL);
    CHECK (strstr (err, "'hook' has 3 sentences") != NULL);
    CHECK (strstr (err, "'thumbnail' must be a non-empty string") != NULL);
    CHECK (strstr (err, "'why' must be a non-empty string") != NULL);
    CHECK (ai.hook == NULL && ai.titles[0] == NULL);
    CHECK_INT (nf_llm_parse ("{\"choices\":[{\"message\":{\"content\":\"not json\"}}]}", 48, &ai,
                             &tokens, err, sizeof err),
               -1);
    CHECK (strstr (err, "answer is not a JSON object") != NULL);
    CHECK_INT (nf_llm_parse ("<html>", 6, &ai, &tokens, err, sizeof err), -1);
    CHECK (strstr (err, "response is not JSON") != NULL);

    CHECK_INT (nf_http_retry_after_ms ("7", 0), 7000);
    CHECK_INT (nf_http_retry_after_ms (" 0\r\n", 0), 0);
    CHECK_INT (nf_http_retry_after_ms ("Wed, 21 Oct 2015 07:28:30 GMT", 1445412480.0), 30000);
    CHECK_INT (nf_http_retry_after_ms ("soon", 0), -1);
    CHECK_INT (nf_http_retry_after_ms (NULL, 0), -1);
}

/* ---- exporter helpers ------------------------------------------------------ */

static void
test_export_helpers (void)
{
    char *name = nf_export_file_name ("Budget Travel / Solo?", 42, 1, "xlsx");
    CHECK_STR (name, "budget-travel-solo-42.xlsx");
    free (name);
    name = nf_export_file_name ("../../etc/passwd", 1, 0, "csv");
    CHECK_STR (name, "etc-passwd-1.csv");
    free (name);
    name = nf_export_file_name ("\xf0\x9f\x9a\x80", 3, 2, "json");
    CHECK_STR (name, "niche-3-2.json");
    free (name);
    CHECK (nf_cell_dangerous ("=1+1") && nf_cell_dangerous ("+1") && nf_cell_dangerous ("-1")
           && nf_cell_dangerous ("@x") && nf_cell_dangerous ("\tx") && nf_cell_dangerous ("\rx"));
    CHECK (!nf_cell_dangerous ("a=b") && !nf_cell_dangerous ("") && !nf_cell_dangerous (NULL));
    /* 32,767 UTF-16 units: an emoji counts 2 and is never split. */
    nf_buf_t b;
    nf_buf_init (&b);
    for (int i = 0; i < 32766; i++)
        nf_buf_puts (&b, "a");
    nf_buf_puts (&b, "\xf0\x9f\x9a\x80");
    CHECK_INT (nf_cell_fit (b.data, b.len), 32766);
    nf_buf_reset (&b);
    for (int i = 0; i < 40000; i++)
        nf_buf_puts (&b, "\xc3\xa9");
    CHECK_INT (nf_cell_fit (b.data, b.len), 2 * 32767);
    CHECK_INT (nf_cell_fit ("abc", 3), 3);
    nf_buf_free (&b);
}

/* ---- scraper: templates, YouTube formats, HTTP helpers, the simulator's ids ---- */

static const char s_page[] =
    "<html><head><title>A &amp; B - YouTube</title>"
    "<meta itemprop=\"interactionCount\" content=\"1,234,567\">"
    "<meta itemprop=\"duration\" content=\"PT1H2M3S\"></head><body>"
    "<a class=\"x\" href=\"/item/1\">one</a><a class=\"x\" href=\"item/2\">two</a>"
    "<script>window[\"ytInitialPlayerResponse\"] = {\"a\": {\"b\": [1, {\"c\": \"}{\\\"\"}]}, "
    "\"playabilityStatus\": {\"status\": \"OK\"}};var x = 1;</script></body></html>";

static void
test_template (void)
{
    char err[512] = "";
    const char *tpl =
        "{\"name\": \"t\", \"fields\": ["
        " {\"name\": \"player\", \"required\": true, \"selectors\": ["
        "   {\"xpath\": \"//script[contains(., 'var ytInitialPlayerResponse')]\", \"post\": "
        "[{\"json\": \"\"}]},"
        "   {\"xpath\": \"//script[contains(., 'ytInitialPlayerResponse')]\","
        "    \"post\": [{\"regex\": \"ytInitialPlayerResponse[]\\\"']* *= *(\\\\{.*)\", \"group\": "
        "1}, {\"json\": \"\"}]}]},"
        " {\"name\": \"c\", \"selectors\": [{\"from\": \"player\", \"post\": [{\"json\": "
        "\"a.b[1].c\"}]}]},"
        " {\"name\": \"title\", \"selectors\": [{\"xpath\": \"//meta[@name='title']/@content\"},"
        "   {\"xpath\": \"//title\", \"post\": [{\"regex\": \"^(.*) - YouTube$\", \"group\": "
        "1}]}], \"post\": [\"trim\"]},"
        " {\"name\": \"views\", \"selectors\": [{\"xpath\": "
        "\"//meta[@itemprop='interactionCount']/@content\"}], \"post\": [\"number\"]},"
        " {\"name\": \"dur\", \"selectors\": [{\"xpath\": "
        "\"//meta[@itemprop='duration']/@content\"}], \"post\": [\"duration\"]},"
        " {\"name\": \"links\", \"selectors\": [{\"xpath\": \"//a[@class='x']/@href\", \"all\": "
        "true}], \"post\": [\"url\"]},"
        " {\"name\": \"opt\", \"selectors\": [{\"xpath\": \"//nothing\"}]}]}";
    nf_template_t *t = nf_template_new (tpl, strlen (tpl), err, sizeof err);
    CHECK (t != NULL);
    if (!t) {
        fprintf (stderr, "template: %s\n", err);
        return;
    }
    json_t *out =
        nf_template_apply (t, s_page, strlen (s_page), "http://h/list/p", err, sizeof err);
    CHECK (out != NULL);
    CHECK_STR (json_string_value (json_object_get (out, "c")), "}{\"");
    CHECK_INT (json_integer_value (json_object_get (json_object_get (out, "_matched"), "player")),
               1);
    CHECK_STR (json_string_value (json_object_get (out, "title")), "A & B");
    CHECK_INT (json_integer_value (json_object_get (json_object_get (out, "_matched"), "title")),
               1);
    CHECK_INT (json_integer_value (json_object_get (out, "views")), 1234567);
    CHECK_INT (json_integer_value (json_object_get (out, "dur")), 3723);
    CHECK_STR (json_string_value (json_array_get (json_object_get (out, "links"), 0)),
               "http://h/item/1");
    CHECK_STR (json_string_value (json_array_get (json_object_get (out, "links"), 1)),
               "http://h/list/item/2");
    CHECK (json_object_get (out, "opt") == NULL);
    json_decref (out);
    /* No player at all: the required field names itself. */
    out = nf_template_apply (t, "<html><body>nothing</body></html>", 33, NULL, err, sizeof err);
    CHECK (out == NULL);
    CHECK_STR (err, "template t: required field 'player' not found (2 selectors tried)");
    /* Garbage and empty pages are pages too. */
    out = nf_template_apply (t, "\x00\xff<<<>>>", 8, NULL, err, sizeof err);
    CHECK (out == NULL);
    nf_template_destroy (&t);
    nf_template_destroy (&t);

    /* Bad templates say what is wrong. */
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"{", "not JSON"},
        {"{\"name\": \"x\", \"fields\": []}", "non-empty \"fields\""},
        {"{\"name\": \"x\", \"fields\": [{\"name\": \"a\", \"selectors\": [{\"xpath\": "
         "\"//[\"}]}]}",
         "bad XPath"},
        {"{\"name\": \"x\", \"fields\": [{\"name\": \"a\", \"selectors\": [{\"from\": \"b\"}]}]}",
         "not an earlier field"},
        {"{\"name\": \"x\", \"fields\": [{\"name\": \"a\", \"selectors\": [{\"xpath\": \"//a\"}], "
         "\"post\": [\"frobnicate\"]}]}",
         "unknown step"},
        {"{\"name\": \"x\", \"fields\": [{\"name\": \"a\", \"selectors\": [{\"xpath\": \"//a\", "
         "\"post\": [{\"regex\": \"(\"}]}]}]}",
         "bad regex"},
        {"{\"name\": \"x\", \"fields\": [{\"name\": \"a\", \"selectors\": [{\"xpath\": \"//a\", "
         "\"post\": [{\"regex\": \"a\", \"group\": 2}]}]}]}",
         "no group 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        nf_template_t *b = nf_template_new (bad[i].text, strlen (bad[i].text), err, sizeof err);
        CHECK (b == NULL);
        CHECK (strstr (err, bad[i].want) != NULL);
        nf_template_destroy (&b);
    }
    /* Steps alone. */
    static const struct {
        const char *step, *in;
        long long want;
    } nums[] = {{"\"number\"", "1,234 views", 1234},      {"\"number\"", "1.2M", 1200000},
                {"\"number\"", "3.4K subscribers", 3400}, {"\"duration\"", "12:34", 754},
                {"\"duration\"", "1:02:03", 3723},        {"\"duration\"", "PT15S", 15},
                {"\"duration\"", "P1DT1S", 86401},        {"\"duration\"", "754", 754}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        json_t *step = json_loads (nums[i].step, JSON_DECODE_ANY, NULL),
               *in = json_string (nums[i].in);
        json_t *r = nf_template_step (step, in);
        CHECK_INT (json_integer_value (r), nums[i].want);
        json_decref (r);
        json_decref (in);
        json_decref (step);
    }
    CHECK_INT (nf_duration_parse ("PT"), 0);
    CHECK_INT (nf_duration_parse ("1:2:3:4"), -1);
    CHECK_INT (nf_duration_parse ("abc"), -1);
    CHECK_INT (nf_duration_parse ("PTXS"), -1);
    json_t *step = json_string ("date"), *in = json_string ("Sun, 06 Nov 1994 08:49:37 GMT");
    json_t *r = nf_template_step (step, in);
    CHECK_STR (json_string_value (r), "1994-11-06T08:49:37Z");
    json_decref (r);
    json_decref (in);
    in = json_string ("2026-11-03");
    r = nf_template_step (step, in);
    CHECK_STR (json_string_value (r), "2026-11-03T00:00:00Z");
    json_decref (r);
    json_decref (in);
    json_decref (step);
}

static void
test_youtube_formats (void)
{
    char err[256], next[64];
    json_t *ids = json_array ();
    const char *search = "{\"nextPageToken\": \"P2\", \"items\": [{\"id\": {\"videoId\": \"abc\"}},"
                         "{\"id\": {\"channelId\": \"UCx\"}}, {\"id\": {\"videoId\": \"def\"}}]}";
    CHECK_INT (
        nf_yt_parse_search (search, strlen (search), ids, next, sizeof next, err, sizeof err), 0);
    CHECK_INT (json_array_size (ids), 2);
    CHECK_STR (next, "P2");
    CHECK_INT (nf_yt_parse_search ("{\"items\": [", 11, ids, next, sizeof next, err, sizeof err),
               -1);
    CHECK (strstr (err, "invalid JSON") != NULL);
    CHECK_INT (nf_yt_parse_search ("{\"items\": 3}", 12, ids, next, sizeof next, err, sizeof err),
               -1);
    CHECK_INT (nf_yt_parse_search ("[]", 2, ids, next, sizeof next, err, sizeof err), -1);
    CHECK_INT (nf_yt_parse_search ("{}", 2, ids, next, sizeof next, err, sizeof err), 0);
    CHECK_STR (next, "");
    json_decref (ids);

    json_t *out = json_array ();
    const char *videos =
        "{\"items\": [{\"id\": \"abc\", \"snippet\": {\"title\": \"T\", \"channelId\": \"UC1\","
        "\"publishedAt\": \"2026-01-02T03:04:05Z\", \"defaultAudioLanguage\": \"en-GB\"},"
        "\"statistics\": {\"viewCount\": \"1000\", \"commentCount\": \"7\"},"
        "\"contentDetails\": {\"duration\": \"PT45S\", \"caption\": \"true\"}},"
        "{\"snippet\": {}}]}";
    CHECK_INT (nf_yt_parse_videos (videos, strlen (videos), "http://w", out, err, sizeof err), 0);
    CHECK_INT (json_array_size (out), 1);
    json_t *m = json_object_get (json_array_get (out, 0), "meta");
    CHECK_INT (json_integer_value (json_object_get (m, "views")), 1000);
    CHECK (json_object_get (m, "likes") == NULL); /* hidden likes stay absent */
    CHECK_INT (json_integer_value (json_object_get (m, "duration_s")), 45);
    CHECK (json_is_true (json_object_get (m, "is_short")));
    CHECK_STR (json_string_value (json_object_get (m, "url")), "http://w/watch?v=abc");
    CHECK_STR (json_string_value (json_object_get (json_array_get (out, 0), "channel_id")), "UC1");
    json_array_clear (out);
    const char *channels =
        "{\"items\": [{\"id\": \"UC1\", \"snippet\": {\"title\": \"C\"},"
        "\"statistics\": {\"viewCount\": \"10\", \"hiddenSubscriberCount\": true,"
        "\"videoCount\": \"2\"}}]}";
    CHECK_INT (nf_yt_parse_channels (channels, strlen (channels), out, err, sizeof err), 0);
    json_t *c = json_array_get (out, 0);
    CHECK_STR (json_string_value (json_object_get (c, "channel_id")), "UC1");
    CHECK (json_is_null (json_object_get (c, "country")));
    CHECK (json_is_true (json_object_get (c, "hidden_subscribers")));
    CHECK (json_object_get (c, "subscribers") == NULL);
    CHECK_INT (json_integer_value (json_object_get (c, "video_count")), 2);
    json_decref (out);

    char reason[64];
    const char *e = "{\"error\": {\"code\": 403, \"errors\": [{\"reason\": \"quotaExceeded\"}]}}";
    nf_yt_error_reason (e, strlen (e), reason, sizeof reason);
    CHECK_STR (reason, "quotaExceeded");
    nf_yt_error_reason ("<html>", 6, reason, sizeof reason);
    CHECK_STR (reason, "");

    json_t *tracks =
        json_loads ("[{\"baseUrl\": \"a\", \"languageCode\": \"de\"},"
                    "{\"baseUrl\": \"b\", \"languageCode\": \"en\", \"kind\": \"asr\"},"
                    "{\"baseUrl\": \"c\", \"languageCode\": \"en-US\"}]",
                    0, NULL);
    CHECK_STR (json_string_value (json_object_get (nf_yt_pick_track (tracks, "en"), "baseUrl")),
               "c");
    CHECK_STR (json_string_value (json_object_get (nf_yt_pick_track (tracks, "fr"), "baseUrl")),
               "a");
    json_array_remove (tracks, 2);
    CHECK_STR (json_string_value (json_object_get (nf_yt_pick_track (tracks, "en-GB"), "baseUrl")),
               "b");
    CHECK (nf_yt_pick_track (NULL, "en") == NULL);
    json_decref (tracks);

    nf_buf_t b;
    nf_buf_init (&b);
    const char *srv1 =
        "<?xml version=\"1.0\"?><transcript><text start=\"61.5\" dur=\"2\">I&amp;#39;m "
        "here &amp;amp; now</text><text start=\"63\">  </text></transcript>";
    CHECK_INT (nf_timedtext_parse (srv1, strlen (srv1), &b, err, sizeof err), 1);
    CHECK_STR (b.data, "[1:01] I'm here & now\n");
    nf_buf_reset (&b);
    const char *srv3 =
        "<timedtext format=\"3\"><body><p t=\"2000\" d=\"1\">a<s>b</s></p></body></timedtext>";
    CHECK_INT (nf_timedtext_parse (srv3, strlen (srv3), &b, err, sizeof err), 1);
    CHECK_STR (b.data, "[0:02] ab\n");
    nf_buf_reset (&b);
    const char *json3 =
        "{\"events\": [{\"tStartMs\": 125000, \"segs\": [{\"utf8\": \"x\"}, {\"utf8\": \"\\ny\"}]},"
        "{\"tStartMs\": 1}]}";
    CHECK_INT (nf_timedtext_parse (json3, strlen (json3), &b, err, sizeof err), 1);
    CHECK_STR (b.data, "[2:05] x y\n");
    nf_buf_reset (&b);
    CHECK_INT (nf_timedtext_parse ("<html></html>", 13, &b, err, sizeof err), -1);
    CHECK_INT (nf_timedtext_parse ("{\"events\": [", 12, &b, err, sizeof err), -1);
    CHECK_INT (nf_timedtext_parse ("\xff\xfe", 2, &b, err, sizeof err), -1);
    /* srv3's last <body> counts, a segment's nested text is its own, an
       hour's minutes go on counting, and a document that declares its own
       entities is refused (YouTube's never does; they are how a hostile
       one grows): the SAX reader of 2026-12-03 keeps the tree's answers. */
    const char *bodies = "<timedtext><body><p t=\"1000\">one</p></body><body><p "
                         "t=\"3725500\">two <s>and</s> <![CDATA[<three>]]></p></body></timedtext>";
    CHECK_INT (nf_timedtext_parse (bodies, strlen (bodies), &b, err, sizeof err), 1);
    CHECK_STR (b.data, "[62:05] two and <three>\n");
    nf_buf_reset (&b);
    const char *dtd = "<!DOCTYPE transcript [<!ENTITY e \"EXPANDED\">]><transcript><text "
                      "start=\"1\">a &e; b</text></transcript>";
    CHECK_INT (nf_timedtext_parse (dtd, strlen (dtd), &b, err, sizeof err), -1);
    CHECK_STR (err, "timed text is not XML");
    CHECK_INT ((int) b.len, 0);
    const char *cut = "<transcript><text start=\"1\">kept?</text><text start=\"2\">no";
    CHECK_INT (nf_timedtext_parse (cut, strlen (cut), &b, err, sizeof err), -1);
    CHECK_INT ((int) b.len, 0);
    nf_html_unescape ("&#x1F600;&#0;&bogus;&#12", 24, &b);
    CHECK_STR (b.data, "\xF0\x9F\x98\x80\xEF\xBF\xBD&bogus;&#12");
    nf_buf_free (&b);
}

static void
test_http_helpers (void)
{
    long a, b;
    CHECK_INT (nf_http_parse_range ("200-800", &a, &b), 0);
    CHECK_INT (a, 200);
    CHECK_INT (b, 800);
    CHECK_INT (nf_http_parse_range ("0", &a, &b), 0);
    CHECK_INT (b, 0);
    CHECK_INT (nf_http_parse_range ("9-3", &a, &b), -1);
    CHECK_INT (nf_http_parse_range ("x", &a, &b), -1);
    CHECK_INT (nf_http_parse_range ("5-", &a, &b), -1);
    CHECK_INT (nf_http_retry_after_ms ("3", 0), 3000);
    CHECK_INT (nf_http_retry_after_ms ("Thu, 01 Jan 1970 00:00:10 GMT", 4.0), 6000);
    CHECK_INT (nf_http_retry_after_ms ("soon", 0), -1);
#define BLOCKED(text) nf_http_is_block_page (text, strlen (text))
    CHECK (BLOCKED ("<html><body><p>Unusual Traffic from your network</p></body></html>"));
    CHECK (BLOCKED ("\xef\xbb\xbf \r\n<!DOCTYPE HTML><form id=\"captcha-form\">"));
    CHECK (BLOCKED ("<!doctype html><div class=\"g-recaptcha\">"));
    CHECK (!BLOCKED ("<html><p>no captcha needed here</p></html>")); /* a word, not a page */
    /* Only an HTML document is a block page: answers whose texts say so are not. */
    CHECK (!BLOCKED ("{\"items\": [{\"snippet\": {\"title\": \"Unusual traffic on the M25\"}}]}"));
    CHECK (!BLOCKED ("<?xml version=\"1.0\"?><timedtext><p t=\"0\">the captcha-form and "
                     "unusual traffic</p></timedtext>"));
    CHECK (!BLOCKED ("<p>unusual traffic from your network</p>")); /* no document */
    CHECK (!BLOCKED ("<html><p>unusual traf"));                    /* cut short */
#undef BLOCKED
    CHECK (nf_http_blank (" \r\n\t", 4) && nf_http_blank ("", 0) && nf_http_blank (NULL, 0));
    CHECK (!nf_http_blank (" x ", 3));
    CHECK (!nf_http_is_block_page ("{\"error\": 403}", 14));
    char k1[65], k2[65], k3[65];
    nf_http_cache_key ("http://a/s?q=x&key=SECRET&p=1", k1);
    nf_http_cache_key ("http://a/s?q=x&key=OTHER&p=1", k2);
    nf_http_cache_key ("http://a/s?q=x&p=2", k3);
    CHECK_STR (k1, k2); /* the key does not shape the file name */
    CHECK (strcmp (k1, k3) != 0);
    /* SHA-256 of the URL without its key (python3 hashlib gives the same) */
    nf_http_cache_key ("http://a/s?q=x&key=SECRET&p=1", k1);
    CHECK_STR (k1, "7951bdf605e5c4a9562afb92816e03e118cf6777075f4c16c046be6f99fade58");
    nf_http_cache_key ("http://a/s?q=x&key=SECRET", k1);
    CHECK_STR (k1, "c55a6f549a64a78edd61b95ccdeb780a4037d9591cdf4f75b304c864da2644d4");
    nf_http_cache_key ("http://a/s?key=SECRET", k1);
    CHECK_STR (k1, "6610e6bec65f06439aefbfa98c7cd663f4b84672667d8610863b93fbe7a06919");
    char id[17];
    nf_http_url_id ("http://a/s?q=x&p=1", id);
    CHECK_STR (id, "7951bdf605e5c4a9");
}

static void
test_ytsim_ids (void)
{
    nf_ytworld_t w = {.seed = 9, .catalog = 1000, .now = 1.8e9};
    uint64_t tag = nf_yt_query_tag (&w, "  Budget Travel "), t2;
    CHECK (tag == nf_yt_query_tag (&w, "budget travel"));
    uint32_t idx;
    int ok = 0;
    for (uint32_t i = 0; i < 1000; i += 7) {
        nf_ytvideo_t v, v2;
        nf_yt_video (&w, tag, i, "budget travel", &v);
        nf_yt_video (&w, tag, i, "budget travel", &v2);
        ok += nf_yt_video_decode (v.id, &t2, &idx) == 0 && t2 == tag && idx == i
              && memcmp (&v, &v2, sizeof v) == 0 && strlen (v.id) == 11;
        nf_ytchannel_t c;
        nf_yt_channel (&w, tag, v.channel_index, "budget travel", &c);
        ok += nf_yt_channel_decode (c.id, &t2, &idx) == 0 && t2 == tag && idx == v.channel_index
              && strcmp (c.id, v.channel_id) == 0;
    }
    CHECK_INT (ok, 2 * 143);
    CHECK_INT (nf_yt_video_decode ("AAAAAAAAAAA", &t2, &idx), -1);
    CHECK_INT (nf_yt_video_decode ("short", &t2, &idx), -1);
    CHECK_INT (nf_yt_channel_decode ("UCAAAAAAAAAAAAAAAAAAAAAA", &t2, &idx), -1);
}

int
main (void)
{
    test_sanitize_golden ();
    test_sanitize_hostile ();
    test_sanitize_ascii_fast ();
    test_quality ();
    test_geo ();
    test_analyze_golden ();
    test_baseline_golden ();
    test_analyze_ties_and_missing ();
    test_analyze_filters ();
    test_time_parse ();
    test_key_phrases_stop_words ();
    test_generator_golden ();
    test_llm_helpers ();
    test_export_helpers ();
    test_template ();
    test_youtube_formats ();
    test_http_helpers ();
    test_ytsim_ids ();
    return NF_TEST_END ();
}

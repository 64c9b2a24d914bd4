/*  nf_ai: see nf_ai.h. The built-in generator fills fixed sentence patterns
    with the video's key phrases and metrics. Variety between videos comes
    from a hash of the video id, so the same input always gives the same
    text (golden-tested in tests/test_stages.c). */
#define _GNU_SOURCE /* qsort_r */
#include "nf_ai.h"
#include "nf_util.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_stop =
    "the and for that this with you your are was were have has had not but all can will just "
    "what when where who why how which there their them they then than its it's i'm you're "
    "we're don't can't that's there's from into onto about out our ours his her hers she him "
    "one two get got going gonna want wanna like really very much more most some any also "
    "too here now well yeah okay right know think thing things way lot lots let let's say said "
    "see look make made even still because over under again back only own same each every "
    "other such being been did does doing would could should might must shall may these "
    "those him himself herself itself myself yourself ourselves themselves video videos "
    "today guys channel subscribe something anything everything nothing actually basically";

void
nf_ai_free (nf_ai_t *ai)
{
    for (int i = 0; i < NF_AI_TITLES; i++)
        free (ai->titles[i]);
    for (int i = 0; i < NF_AI_POINTS; i++)
        free (ai->outline[i]);
    free (ai->hook);
    free (ai->thumbnail);
    free (ai->why);
    memset (ai, 0, sizeof *ai);
}

int
nf_ai_sentences (const char *text)
{
    int n = 0;
    bool open = false;
    for (const char *p = text; *p; p++) {
        if (*p == '.' || *p == '!' || *p == '?') {
            while (p[1] == '.' || p[1] == '!' || p[1] == '?' || p[1] == '"' || p[1] == '\'')
                p++;
            if (p[1] == 0 || isspace ((unsigned char) p[1])) {
                if (open)
                    n++;
                open = false;
            }
        }
        else if (!isspace ((unsigned char) *p))
            open = true;
    }
    return n + (open ? 1 : 0);
}

/* ---- key phrases ------------------------------------------------------- */

typedef struct {
    char *text; /* phrase (owned) */
    int count;  /* occurrences */
} s_phrase_t;

static int
s_cmp_phrase (const void *a, const void *b)
{
    const s_phrase_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp (x->text, y->text);
}

static int
s_cmp_text (const void *a, const void *b)
{
    return strcmp (((const s_phrase_t *) a)->text, ((const s_phrase_t *) b)->text);
}

/* Count equal texts of LIST (N entries, sorted by text) into unique entries. */
static size_t
s_count_unique (s_phrase_t *list, size_t n)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u > 0 && strcmp (list[u - 1].text, list[i].text) == 0) {
            list[u - 1].count++;
            free (list[i].text);
        }
        else
            list[u++] = (s_phrase_t){list[i].text, 1};
    }
    return u;
}

size_t
nf_ai_key_phrases (const char *text, char **phrases, size_t max)
{
    /* words: ASCII letters and apostrophes, lower-cased, 3..24 letters */
    size_t cap = 64, nw = 0;
    char **words = malloc (cap * sizeof *words);
    bool *stop = malloc (cap * sizeof *stop);
    if (!words || !stop)
        abort ();
    for (const char *p = text ? text : ""; *p;) {
        while (*p && !isalpha ((unsigned char) *p))
            p++;
        const char *s = p;
        while (*p && (isalpha ((unsigned char) *p) || *p == '\''))
            p++;
        size_t len = (size_t) (p - s);
        while (len && s[len - 1] == '\'')
            len--;
        if (len == 0)
            continue;
        if (nw == cap) {
            cap *= 2;
            char **w2 = realloc (words, cap * sizeof *words);
            bool *s2 = w2 ? realloc (stop, cap * sizeof *stop) : NULL;
            if (!w2 || !s2)
                abort (); /* nicheflow's out-of-memory policy (nf_util.h) */
            words = w2;
            stop = s2;
        }
        char *w = strndup (s, len);
        for (char *q = w; *q; q++)
            *q = (char) tolower ((unsigned char) *q);
        words[nw] = w;
        stop[nw] = len < 3 || len > 24 || nf_word_in (s_stop, w, len);
        nw++;
    }
    s_phrase_t *bi = calloc (nw + 1, sizeof *bi), *uni = calloc (nw + 1, sizeof *uni);
    size_t nb = 0, nu = 0;
    for (size_t i = 0; i < nw; i++) {
        if (stop[i])
            continue;
        uni[nu++] = (s_phrase_t){strdup (words[i]), 0};
        if (i + 1 < nw && !stop[i + 1] && strcmp (words[i], words[i + 1]) != 0) {
            char *b = NULL;
            if (asprintf (&b, "%s %s", words[i], words[i + 1]) < 0)
                abort ();
            bi[nb++] = (s_phrase_t){b, 0};
        }
    }
    qsort (bi, nb, sizeof *bi, s_cmp_text);
    qsort (uni, nu, sizeof *uni, s_cmp_text);
    nb = s_count_unique (bi, nb);
    nu = s_count_unique (uni, nu);
    qsort (bi, nb, sizeof *bi, s_cmp_phrase);
    qsort (uni, nu, sizeof *uni, s_cmp_phrase);
    size_t out = 0;
    /* Phrases said at least twice first, then single words not already inside one. */
    for (size_t i = 0; i < nb && out < max; i++)
        if (bi[i].count >= 2)
            phrases[out++] = strdup (bi[i].text);
    for (size_t i = 0; i < nu && out < max; i++) {
        bool inside = false;
        for (size_t j = 0; j < out && !inside; j++) {
            const char *hit = strstr (phrases[j], uni[i].text);
            size_t l = strlen (uni[i].text);
            inside = hit && (hit == phrases[j] || hit[-1] == ' ') && (hit[l] == 0 || hit[l] == ' ');
        }
        if (!inside)
            phrases[out++] = strdup (uni[i].text);
    }
    for (size_t i = 0; i < nb; i++)
        free (bi[i].text);
    for (size_t i = 0; i < nu; i++)
        free (uni[i].text);
    for (size_t i = 0; i < nw; i++)
        free (words[i]);
    free (bi);
    free (uni);
    free (words);
    free (stop);
    return out;
}

/* ---- the generator --------------------------------------------------------- */

static uint32_t
s_hash (const char *text)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *) (text ? text : ""); *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* "Title Case" of TEXT (ASCII words). Caller frees. */
static char *
s_title_case (const char *text)
{
    char *t = strdup (text);
    bool start = true;
    for (char *p = t; *p; p++) {
        if (start && isalpha ((unsigned char) *p))
            *p = (char) toupper ((unsigned char) *p);
        start = *p == ' ' || *p == '-';
    }
    return t;
}

/* 1234567 as "1.2M", 34500 as "34.5K", 950 as "950". */
static void
s_human (double n, char *out, size_t len)
{
    if (n >= 1e9)
        snprintf (out, len, "%.1fB", n / 1e9);
    else if (n >= 1e6)
        snprintf (out, len, "%.1fM", n / 1e6);
    else if (n >= 1e4)
        snprintf (out, len, "%.0fK", n / 1e3);
    else if (n >= 1e3)
        snprintf (out, len, "%.1fK", n / 1e3);
    else
        snprintf (out, len, "%.0f", n);
}

static char *s_printf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static char *
s_printf (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *s = NULL;
    if (vasprintf (&s, fmt, ap) < 0)
        abort ();
    va_end (ap);
    return s;
}

/* The words nf_ai_generate builds with: three key phrases (the
   transcript's, topped up from the title, then fallbacks), two of them
   title-cased, the niche title-cased, and the views in short form. */
typedef struct {
    char *kp[3];
    char *k1, *k2, *niche;
    char views[32];
    uint32_t h; /* the video id's hash: picks among variants */
} s_words_t;

static void
s_words_init (s_words_t *w, const nf_ai_input_t *in)
{
    memset (w, 0, sizeof *w);
    size_t nk = nf_ai_key_phrases (in->transcript, w->kp, 3);
    if (nk < 3) /* a thin transcript: the title's words fill in */
        nk += nf_ai_key_phrases (in->title, w->kp + nk, 3 - nk);
    const char *fallback[] = {in->niche && *in->niche ? in->niche : "this topic", "the basics",
                              "the details"};
    for (size_t i = nk; i < 3; i++)
        w->kp[i] = strdup (fallback[i]);
    w->k1 = s_title_case (w->kp[0]);
    w->k2 = s_title_case (w->kp[1]);
    w->niche = s_title_case (in->niche && *in->niche ? in->niche : "your niche");
    w->h = s_hash (in->video_id);
    s_human (in->views, w->views, sizeof w->views);
}

static void
s_words_free (s_words_t *w)
{
    for (int i = 0; i < 3; i++)
        free (w->kp[i]);
    free (w->k1);
    free (w->k2);
    free (w->niche);
}

static void
s_gen_titles (const nf_ai_input_t *in, const s_words_t *w, nf_ai_t *out)
{
    static const int counts[] = {3, 5, 7, 9};
    const char *sub = in->sub_niche && *in->sub_niche ? in->sub_niche : NULL;
    out->titles[0] = s_printf ("%s: What Nobody Tells You About %s", w->niche, w->k1);
    out->titles[1] = s_printf ("I Tried %s So You Don't Have To", w->k1);
    out->titles[2] =
        s_printf ("%d %s Mistakes That Cost Beginners the Most", counts[w->h % 4], w->k1);
    out->titles[3] = s_printf ("%s vs %s: Which One Actually Works?", w->k1, w->k2);
    char *sub_title = sub ? s_title_case (sub) : NULL;
    out->titles[4] = sub ? s_printf ("The %s Guide to %s I Wish I Had Sooner", w->niche, sub_title)
                         : s_printf ("The Honest %s Guide to %s (%s Views Can't Be Wrong)",
                                     w->niche, w->k2, w->views);
    free (sub_title);
}

static void
s_gen_hook_outline (const nf_ai_input_t *in, const s_words_t *w, nf_ai_t *out)
{
    char *const *kp = w->kp;
    const char *sub = in->sub_niche && *in->sub_niche ? in->sub_niche : NULL;
    if (in->has_multiplier && in->multiplier >= 1.5)
        out->hook =
            s_printf ("This is the %s idea that pulled %.1fx more views than its channel "
                      "usually gets, and it comes down to %s. Stay for the next minute "
                      "and you'll know exactly how to use %s yourself.",
                      in->niche && *in->niche ? in->niche : "", in->multiplier, kp[0], kp[1]);
    else
        out->hook = s_printf ("%s views say people want to know about %s. In the next minute "
                              "I'll show you the part everyone gets wrong, and how %s fixes it.",
                              w->views, kp[0], kp[1]);
    out->outline[0] = s_printf ("Open on the payoff: show the result of %s in the first 15 "
                                "seconds, before any intro.",
                                kp[0]);
    out->outline[1] = s_printf ("Set the stakes: what %s changes for anyone into %s, with one "
                                "concrete number.",
                                kp[1], sub ? sub : (in->niche ? in->niche : "the topic"));
    out->outline[2] = s_printf ("Walk through %s step by step, the way the original \"%.80s\" "
                                "does, but with your own example.",
                                kp[0], in->title ? in->title : "");
    out->outline[3] = s_printf ("Call out the common mistake around %s and show the fix on "
                                "screen.",
                                kp[2]);
    out->outline[4] = s_printf ("Close with a one-line takeaway and ask viewers which %s tip "
                                "they'll try first, to pull comments.",
                                kp[1]);
}

static void
s_gen_thumbnail (const s_words_t *w, nf_ai_t *out)
{
    static const char *const colors[] = {"yellow", "electric blue", "red", "green"};
    char *caps = strdup (w->kp[0]);
    for (char *p = caps; *p; p++)
        *p = (char) toupper ((unsigned char) *p);
    out->thumbnail = s_printf ("A close-up, surprised face on the left; on the right, %s shown "
                               "big and simple; 2-4 word caption \"%s\" in bold white on a %s "
                               "background; nothing else in frame.",
                               w->kp[1], caps, colors[(w->h >> 3) % 4]);
    free (caps);
}

/* "Why it worked": the figures, where the video stands among the niche's,
   engagement, and what the transcript keeps returning to. */
static char *
s_gen_why (const nf_ai_input_t *in, const s_words_t *w)
{
    nf_buf_t why;
    nf_buf_init (&why);
    nf_buf_printf (&why, "It reached %s views", w->views);
    if (in->has_multiplier && in->has_channel_avg) {
        char avg[32];
        s_human (in->channel_avg, avg, sizeof avg);
        nf_buf_printf (&why, ", %.1fx the %s views an average video of %s gets", in->multiplier,
                       avg, in->channel && *in->channel ? in->channel : "its channel");
    }
    if (in->has_velocity && in->has_age)
        nf_buf_printf (&why, ", at %.0f views a day over %.0f days", in->velocity, in->age_days);
    nf_buf_puts (&why, ". ");
    if (in->pct_multiplier >= 0 || in->pct_velocity >= 0) {
        bool mult_lead = in->pct_multiplier >= in->pct_velocity;
        double best = mult_lead ? in->pct_multiplier : in->pct_velocity;
        const char *what = mult_lead ? "multiplier" : "velocity";
        const char *niche_name = in->niche && *in->niche ? in->niche : "niche";
        if (best >= 0.999)
            nf_buf_printf (&why, "That is the highest %s of the %s videos we ranked", what,
                           niche_name);
        else
            nf_buf_printf (&why, "Its %s beats %d%% of the %s videos we ranked", what,
                           (int) floor (best * 100.0), niche_name);
        nf_buf_puts (&why, mult_lead ? ": the audience came from well beyond the channel's own "
                                       "subscribers. "
                                     : ": it kept pulling views long after upload. ");
    }
    if (in->has_engagement)
        nf_buf_printf (&why, "%.1f%% of viewers liked or commented (%s for the niche), ",
                       in->engagement * 100.0,
                       in->pct_engagement >= 0.66   ? "high"
                       : in->pct_engagement >= 0.33 ? "typical"
                                                    : "low");
    nf_buf_printf (&why,
                   "%s transcript keeps returning to \"%s\" and \"%s\": one concrete "
                   "promise, paid off on screen.",
                   in->has_engagement ? "and the" : "The", w->kp[0], w->kp[1]);
    return why.data;
}

void
nf_ai_generate (const nf_ai_input_t *in, nf_ai_t *out)
{
    memset (out, 0, sizeof *out);
    s_words_t w;
    s_words_init (&w, in);
    s_gen_titles (in, &w, out);
    s_gen_hook_outline (in, &w, out);
    s_gen_thumbnail (&w, out);
    out->why = s_gen_why (in, &w);
    s_words_free (&w);
}
